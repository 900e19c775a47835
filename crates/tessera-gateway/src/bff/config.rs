//! The `[bff]` section of `gateway.toml` and its checks; the cookie key it names.

use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine as _;
use cookie::Key;
use serde::Deserialize;
use tessera_proto::SecretString;

/// The `[bff]` section of `gateway.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BffConfig {
    /// A confidential client of the issuer with the `authorization_code` and `refresh_token`
    /// grants, `redirect_uri` registered, and the routes' audience.
    pub client_id: String,
    /// That client's secret.
    pub client_secret: SecretString,
    /// The SPA page the issuer sends the browser back to (registered with the client).
    pub redirect_uri: String,
    /// Scopes to ask for [default: `openid`].
    #[serde(default = "default_scope")]
    pub scope: String,
    /// At least 32 random bytes, base64 (`openssl rand -base64 32`): the cookie encryption key.
    /// Keep it stable across restarts and equal on every gateway instance.
    pub cookie_key: SecretString,
    /// Origins besides `public_origin` that may call the token handler and the `bff` routes
    /// (CORS with credentials), e.g. `https://app.example.com`.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Where the token handler's endpoints live [default: `/bff`].
    #[serde(default = "default_path")]
    pub path: String,
    /// A directory of static files (the SPA) served for GET requests no route matches.
    #[serde(default)]
    pub static_dir: Option<PathBuf>,
    /// Refresh when the access token expires within this many seconds [default: 30].
    #[serde(default = "default_refresh_margin")]
    pub refresh_before_expiry: u64,
    /// Where the issuer's logout page returns to (registered with the client); with it,
    /// `/logout` answers the issuer's `end_session_url` for the SPA to navigate to.
    #[serde(default)]
    pub post_logout_redirect_uri: Option<String>,
}

pub(super) fn default_scope() -> String {
    "openid".into()
}

pub(super) fn default_path() -> String {
    "/bff".into()
}

pub(super) fn default_refresh_margin() -> u64 {
    30
}

impl BffConfig {
    pub(crate) fn check(&self, public_origin: &str) -> anyhow::Result<()> {
        cookie_key(self.cookie_key.expose())?;
        if !self.path.starts_with('/') || self.path.len() < 2 || self.path.ends_with('/') {
            anyhow::bail!("bff.path {:?}: an absolute path without a trailing slash, e.g. /bff", self.path);
        }
        let redirect = url::Url::parse(&self.redirect_uri).context("bff.redirect_uri")?;
        if redirect.fragment().is_some() {
            anyhow::bail!("bff.redirect_uri may not have a fragment");
        }
        for origin in self.allowed_origins.iter().map(String::as_str).chain([public_origin]) {
            let parsed = url::Url::parse(origin).with_context(|| format!("origin {origin:?}"))?;
            if parsed.origin().ascii_serialization() != origin.trim_end_matches('/') {
                anyhow::bail!("{origin:?} is not an origin (scheme://host[:port], nothing more)");
            }
            if parsed.scheme() != "https" && !is_local(&parsed) {
                anyhow::bail!("{origin:?}: the token handler's cookies are Secure, so origins must be https");
            }
        }
        if let Some(dir) = &self.static_dir
            && !dir.is_dir()
        {
            anyhow::bail!("bff.static_dir {} is not a directory", dir.display());
        }
        Ok(())
    }
}

/// Browsers treat these as secure contexts, so `Secure` cookies work over plain http.
pub(super) fn is_local(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(super) fn cookie_key(encoded: &str) -> anyhow::Result<Key> {
    let encoded = encoded.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
        .map(zeroize::Zeroizing::new)
        .context("bff.cookie_key is not base64")?;
    if bytes.len() < 32 {
        anyhow::bail!("bff.cookie_key must hold at least 32 random bytes (openssl rand -base64 32)");
    }
    Ok(Key::derive_from(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BffConfig {
        BffConfig {
            client_id: "spa".into(),
            client_secret: "secret".into(),
            redirect_uri: "https://app.example.com/".into(),
            scope: default_scope(),
            cookie_key: base64::engine::general_purpose::STANDARD.encode([7u8; 32]).into(),
            allowed_origins: vec!["https://app.example.com".into()],
            path: default_path(),
            static_dir: None,
            refresh_before_expiry: 30,
            post_logout_redirect_uri: None,
        }
    }

    #[test]
    fn configuration_is_checked() {
        assert!(config().check("https://api.example.com").is_ok());
        assert!(config().check("http://localhost:9000").is_ok());
        assert!(config().check("http://api.example.com").is_err(), "Secure cookies need https");
        let short =
            BffConfig { cookie_key: base64::engine::general_purpose::STANDARD.encode([7u8; 16]).into(), ..config() };
        assert!(short.check("https://api.example.com").is_err());
        let path = BffConfig { path: "/bff/".into(), ..config() };
        assert!(path.check("https://api.example.com").is_err());
        let origin = BffConfig { allowed_origins: vec!["https://app.example.com/spa".into()], ..config() };
        assert!(origin.check("https://api.example.com").is_err());
    }
}
