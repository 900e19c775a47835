//! Server-rendered HTML pages (minijinja, auto-escaping on). The built-in templates are compiled
//! in; a deployer themes them by putting files of the same names (and `tessera.css`) into the
//! `templates_dir`, which are read at start-up.

use std::path::Path;

use anyhow::Context;
use minijinja::Environment;

/// Every template and asset, with its built-in text.
const BUILT_IN: [(&str, &str); 8] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("account.html", include_str!("../templates/account.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("logout.html", include_str!("../templates/logout.html")),
    ("device.html", include_str!("../templates/device.html")),
    ("tessera.css", include_str!("../templates/tessera.css")),
];

/// The loaded templates and stylesheet.
pub struct Pages {
    env: Environment<'static>,
    css: String,
}

impl Pages {
    /// Loads the templates, each from `dir` if it has one of that name, else the built-in one.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Pages> {
        let mut env = Environment::new();
        env.add_filter("datetime", datetime);
        let mut css = String::new();
        for (name, built_in) in BUILT_IN {
            let text = match dir.map(|d| d.join(name)).filter(|p| p.exists()) {
                Some(path) => std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
                None => built_in.to_owned(),
            };
            if name == "tessera.css" {
                css = text;
            } else {
                env.add_template_owned(name, text).with_context(|| format!("template {name}"))?;
            }
        }
        Ok(Pages { env, css })
    }

    /// Renders a page.
    pub fn render(&self, name: &str, context: minijinja::Value) -> anyhow::Result<String> {
        Ok(self.env.get_template(name)?.render(context)?)
    }

    /// The stylesheet.
    pub fn css(&self) -> &str {
        &self.css
    }
}

/// Seconds since the epoch as `2026-01-01 00:00 UTC`.
fn datetime(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_render_and_escape() {
        let pages = Pages::load(None).unwrap();
        let html = pages.render("error.html", minijinja::context! { message => "<script>alert(1)</script>" }).unwrap();
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert_eq!(datetime(1_767_225_600), "2026-01-01 00:00 UTC");
    }

    #[test]
    fn a_templates_dir_overrides_single_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("error.html"), "custom: {{ message }}").unwrap();
        let pages = Pages::load(Some(dir.path())).unwrap();
        assert_eq!(pages.render("error.html", minijinja::context! { message => "x" }).unwrap(), "custom: x");
        assert!(pages.render("login.html", minijinja::context! {}).unwrap().contains("Sign in"));
    }
}
