//! A browser without a browser: a cookie jar and no automatic redirects, so that every hop of a
//! sign-in is visible to the test; and the authorization requests the tests make.

use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::app::{TestApp, TestClient};

/// The redirect URI of the code-flow clients the tests register.
pub const REDIRECT_URI: &str = "https://client.example.org/cb";
/// The RFC 7636 Appendix B verifier and its S256 challenge (SECURITY-TESTS.md d.1).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery staple";

/// A browser: a cookie jar and no automatic redirects, so every hop is visible to the test.
pub struct Browser<'a> {
    base: String,
    http: reqwest::Client,
    _app: std::marker::PhantomData<&'a TestApp>,
    pub cookies: std::collections::BTreeMap<String, String>,
    pub user_agent: String,
}

/// Where a response sends the browser (`Location`), if anywhere.
pub fn location(res: &reqwest::Response) -> Option<String> {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_owned())
}

/// The value of the hidden form field `name` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&#x2f;", "/").replace("&amp;", "&"))
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        Browser::with(&app.url(""), app.http.clone())
    }

    /// A browser for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn at(base: &str) -> Browser<'a> {
        Browser::with(base, reqwest::Client::builder().redirect(Policy::none()).build().unwrap())
    }

    /// A browser that talks through `http` (one that trusts a test CA, say).
    pub fn with(base: &str, http: reqwest::Client) -> Browser<'a> {
        Browser {
            base: base.trim_end_matches('/').to_owned(),
            http,
            _app: std::marker::PhantomData,
            cookies: Default::default(),
            user_agent: "TestBrowser/1.0".into(),
        }
    }

    /// An absolute URL on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn absolute(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") { path_or_url.to_owned() } else { self.url(path_or_url) }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Keeps what `Set-Cookie` says (deleting cookies with `Max-Age=0`).
    pub fn remember(&mut self, res: &reqwest::Response) {
        for value in res.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, val) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), val.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path_or_url: &str) -> reqwest::Response {
        let res = self
            .http
            .get(self.absolute(path_or_url))
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .send()
            .await
            .unwrap();
        self.remember(&res);
        res
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let res = self
            .http
            .post(self.absolute(path))
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .form(form)
            .send()
            .await
            .unwrap();
        self.remember(&res);
        res
    }

    /// Submits the login form of `login_url` (a `/login?request=…` page).
    pub async fn login(&mut self, login_url: &str, username: &str, password: &str) -> reqwest::Response {
        let page = self.get(login_url).await;
        assert_eq!(page.status(), 200, "login page");
        let html = page.text().await.unwrap();
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let request = hidden_field(&html, "request").unwrap_or_default();
        self.post(
            "/login",
            &[("request", &request), ("csrf_token", &csrf), ("username", username), ("password", password)],
        )
        .await
    }

    /// Answers the consent page at `consent_url` with `decision` (`allow` or `deny`).
    pub async fn consent(&mut self, consent_url: &str, decision: &str) -> reqwest::Response {
        let page = self.get(consent_url).await;
        assert_eq!(page.status(), 200, "consent page");
        let html = page.text().await.unwrap();
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let request = hidden_field(&html, "request").unwrap();
        self.post("/consent", &[("request", &request), ("csrf_token", &csrf), ("decision", decision)]).await
    }

    /// Follows an authorization request through login and consent (as needed) to the client's
    /// redirect, which is returned.
    pub async fn authorize(&mut self, query: &[(&str, &str)], username: &str) -> String {
        let url = reqwest::Url::parse_with_params(&self.url("/authorize"), query).unwrap();
        self.follow_authorization(url.as_str(), username).await
    }

    /// Follows an authorization URL (one a client built) through login and consent (as needed)
    /// to the client's redirect, which is returned.
    pub async fn follow_authorization(&mut self, url: &str, username: &str) -> String {
        let mut res = self.get(url).await;
        for _ in 0..4 {
            assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
            let next = location(&res).unwrap();
            if next.starts_with("/login") {
                res = self.login(&next, username, PASSWORD).await;
            } else if next.starts_with("/consent") {
                res = self.consent(&next, "allow").await;
            } else {
                return next;
            }
        }
        panic!("too many hops");
    }
}

/// The authorization query of a code flow with PKCE (d.1), `openid` and a state.
pub fn code_request<'a>(client_id: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", scope),
        ("state", "s-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

impl TestApp {
    /// Registers a user with [`PASSWORD`]; returns the user's id.
    pub async fn create_user(&self, username: &str) -> String {
        let res = self
            .admin_post("/admin/users", &json!({"username": username, "password": PASSWORD, "email": format!("{username}@example.com"), "name": username, "email_verified": true}))
            .await;
        assert_eq!(res.status(), 201, "user registration failed");
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// A confidential code-flow client with refresh tokens, redirecting to [`REDIRECT_URI`];
    /// `extra` metadata is merged in.
    pub async fn code_client(&self, extra: Value) -> TestClient {
        let mut metadata = json!({
            "client_name": "Example App",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": ["https://client.example.org/bye"],
            "scope": "openid profile email offline_access read",
        });
        for (k, v) in extra.as_object().unwrap() {
            metadata[k] = v.clone();
        }
        let res = self.admin_post("/admin/clients", &metadata).await;
        assert_eq!(res.status(), 201, "client registration failed: {}", res.text().await.unwrap());
        let body: Value = res.json().await.unwrap();
        TestClient {
            id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Redeems a code with the d.1 verifier.
    pub async fn redeem(&self, client: &TestClient, code: &str) -> reqwest::Response {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ];
        self.token_like("/token", client, &form).await
    }

    /// A refresh request.
    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> reqwest::Response {
        self.token_like("/token", client, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }
}
