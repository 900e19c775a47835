//! `bff` mode: a token handler for single-page apps (the "backend for frontend" pattern of
//! draft-ietf-oauth-browser-based-apps §6.1). The gateway is the OAuth client: it runs the code
//! flow with PKCE as a confidential client, keeps the tokens in an AEAD-encrypted `__Host-`
//! cookie (`Secure; HttpOnly; SameSite=Strict; Path=/`, AES-256-GCM through the `cookie`
//! crate's private jar, the cookie name as associated data), refreshes them silently, and puts
//! the access token on API calls it proxies. Browser JavaScript never holds a token: it sees an
//! authorization URL, a CSRF value and whatever the APIs answer.
//!
//! The SPA's side of the protocol, under `path` (default `/bff`):
//! - `POST /login/start` → `{"authorization_url"}`; a short-lived login cookie keeps `state`,
//!   the PKCE verifier and the nonce. The SPA navigates to the URL.
//! - `POST /login/end` with `{"page_url": location.href}` when the SPA loads: with `code` and
//!   `state` in that URL, the state must match the login cookie, the code is exchanged, the
//!   ID token's `iss`/`aud`/`nonce` are checked, and the session cookie is set; without them it
//!   only says whether a session exists. Either way `{"handled", "is_logged_in", "csrf"}`.
//! - `POST /refresh`, `GET /userinfo`, `POST /logout` (revokes the refresh and access tokens
//!   at the issuer, expires both cookies, and returns the issuer's `end_session_url` when a
//!   `post_logout_redirect_uri` is configured).
//!
//! Every request is checked: an `Origin` outside the allow-list (the public origin plus
//! `allowed_origins`) is 401 `unauthorized_request`, and POSTs must carry one; state-changing
//! requests with a session must carry `x-tessera-csrf` equal to the session's CSRF value;
//! CORS headers go only to allowed origins (a preflight from another origin gets a bare 204).
//! Errors map as SECURITY-TESTS.md BF-C5 says: the issuer refusing the code exchange is 400
//! (not 401, which would start the SPA's login again), refusing a refresh is 401 and ends the
//! session, a front-channel `login_required` is 401, and the issuer unreachable is 502/503.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine as _;
use cookie::{Cookie, CookieJar, Key, SameSite};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};
use tessera_proto::SecretString;

use crate::{json_error as error, json_response as json, now, sha256};

/// The encrypted session cookie: access token, refresh token, expiry, CSRF value.
pub const SESSION_COOKIE: &str = "__Host-tessera-session";
/// The encrypted login cookie: `state`, PKCE verifier, nonce, for ten minutes.
pub const LOGIN_COOKIE: &str = "__Host-tessera-login";
/// The header that state-changing requests must carry (CSRF defence).
pub const CSRF_HEADER: &str = "x-tessera-csrf";
/// How long a started login may take.
const LOGIN_TTL: u64 = 600;

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

fn default_scope() -> String {
    "openid".into()
}

fn default_path() -> String {
    "/bff".into()
}

fn default_refresh_margin() -> u64 {
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
fn is_local(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn cookie_key(encoded: &str) -> anyhow::Result<Key> {
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

/// What the session cookie holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The access token.
    pub at: String,
    /// The refresh token, when the issuer gave one.
    pub rt: Option<String>,
    /// When the access token expires (Unix seconds).
    pub exp: u64,
    /// The CSRF value state-changing requests must echo in `x-tessera-csrf`.
    pub csrf: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Login {
    state: String,
    verifier: String,
    nonce: String,
    exp: u64,
}

#[derive(Debug, Deserialize)]
struct Endpoints {
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
}

/// Why the issuer did not give tokens.
#[derive(Debug, Clone)]
enum IssuerError {
    /// It answered with an OAuth error.
    Refused(String),
    /// It could not be reached, or failed.
    Unavailable,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    id_token: Option<String>,
}

/// The token handler: configuration, the issuer's endpoints, the cookie key, and refreshes in
/// flight (one per refresh token, so parallel API calls with an expiring session refresh once).
pub(crate) struct Bff {
    config: BffConfig,
    issuer: String,
    origins: Vec<String>,
    key: Key,
    endpoints: Endpoints,
    http: reqwest::Client,
    refreshes: moka::future::Cache<[u8; 32], Session>,
}

fn random_b64(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // An RNG failure is not recoverable; aws-lc's system RNG does not fail on supported systems.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut buffer).expect("system random number generator");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

fn equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub(crate) fn set_cookie(response: &mut Response, cookie: &Cookie<'_>) {
    // Values are base64 (sealed) or empty: nothing to percent-encode.
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn expired(name: &'static str) -> Cookie<'static> {
    Cookie::build((name, ""))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
        .build()
}

/// The request's cookie of that name (the first, if a browser sent several).
fn request_cookie(headers: &HeaderMap, name: &str) -> Option<Cookie<'static>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()).filter_map(Result::ok).collect::<Vec<_>>())
        .find(|c| c.name() == name)
}

/// The origin check's verdict on a request.
enum OriginCheck {
    /// No `Origin` header (a same-origin GET, or not a browser).
    Absent,
    /// An allowed origin: it gets CORS headers.
    Allowed(HeaderValue),
    /// Another origin.
    Refused,
}

impl Bff {
    pub(crate) async fn new(config: &BffConfig, issuer: &str, public_origin: &str) -> anyhow::Result<Bff> {
        config.check(public_origin)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let issuer = issuer.trim_end_matches('/').to_owned();
        let endpoints: Endpoints = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("fetching the issuer's discovery document")?
            .json()
            .await
            .context("reading the issuer's discovery document")?;
        let origins = config
            .allowed_origins
            .iter()
            .map(String::as_str)
            .chain([public_origin])
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect();
        Ok(Bff {
            key: cookie_key(config.cookie_key.expose())?,
            config: config.clone(),
            issuer,
            origins,
            endpoints,
            http,
            refreshes: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        })
    }

    /// The token handler's path prefix.
    pub(crate) fn path(&self) -> &str {
        &self.config.path
    }

    pub(crate) fn static_dir(&self) -> Option<&std::path::Path> {
        self.config.static_dir.as_deref()
    }

    fn check_origin(&self, headers: &HeaderMap) -> OriginCheck {
        let mut values = headers.get_all(header::ORIGIN).iter();
        match (values.next(), values.next()) {
            (None, _) => OriginCheck::Absent,
            (Some(origin), None) if self.origins.iter().any(|o| origin.as_bytes() == o.as_bytes()) => {
                OriginCheck::Allowed(origin.clone())
            }
            _ => OriginCheck::Refused,
        }
    }

    /// Answers a CORS preflight: 204, with CORS headers only for an allowed origin.
    pub(crate) fn preflight(&self, headers: &HeaderMap) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let OriginCheck::Allowed(origin) = self.check_origin(headers) {
            let out = response.headers_mut();
            cors(out, origin);
            out.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE"),
            );
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, x-tessera-csrf"));
            out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
        response
    }

    fn open<T: serde::de::DeserializeOwned>(&self, headers: &HeaderMap, name: &'static str) -> Option<T> {
        let sealed = request_cookie(headers, name)?;
        let jar = CookieJar::new();
        let opened = jar.private(&self.key).decrypt(sealed)?;
        serde_json::from_str(opened.value()).ok()
    }

    fn seal<T: Serialize>(&self, name: &'static str, value: &T, max_age: Option<u64>) -> Cookie<'static> {
        let mut jar = CookieJar::new();
        let mut cookie = Cookie::build((name, serde_json::to_string(value).unwrap_or_default()))
            .path("/")
            .secure(true)
            .http_only(true)
            .same_site(SameSite::Strict);
        if let Some(seconds) = max_age {
            cookie = cookie.max_age(cookie::time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)));
        }
        jar.private_mut(&self.key).add(cookie.build());
        jar.get(name).cloned().unwrap_or_else(|| expired(name))
    }

    /// The session of a request, if its cookie opens.
    pub(crate) fn session(&self, headers: &HeaderMap) -> Option<Session> {
        self.open(headers, SESSION_COOKIE)
    }

    /// The session cookie for `session`.
    fn session_cookie(&self, session: &Session) -> Cookie<'static> {
        self.seal(SESSION_COOKIE, session, None)
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, IssuerError> {
        let response = self
            .http
            .post(&self.endpoints.token_endpoint)
            .basic_auth(form_encode(&self.config.client_id), Some(form_encode(self.config.client_secret.expose())))
            .form(form)
            .send()
            .await
            .map_err(|err| {
                tracing::warn!(err = %err, "the issuer's token endpoint cannot be reached");
                IssuerError::Unavailable
            })?;
        let status = response.status();
        // A busy issuer, or one rate-limiting the token handler, says nothing about the session:
        // ending every SPA user's session on a 429 would let whoever causes it log them out
        // (docs/threat-model.md, T-02).
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            tracing::warn!(%status, "the issuer could not answer the token handler's token request");
            return Err(IssuerError::Unavailable);
        }
        if !status.is_success() {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let code = body.get("error").and_then(|e| e.as_str()).unwrap_or("invalid_request").to_owned();
            tracing::info!(%status, error = %code, "the issuer refused the token handler's token request");
            return Err(IssuerError::Refused(code));
        }
        response.json().await.map_err(|_| IssuerError::Unavailable)
    }

    fn session_from(&self, tokens: TokenResponse, previous_rt: Option<String>, csrf: String) -> Session {
        let exp = now().saturating_add(tokens.expires_in.unwrap_or(60));
        Session { at: tokens.access_token, rt: tokens.refresh_token.or(previous_rt), exp, csrf }
    }

    /// Refreshes `session` once, however many requests ask at the same time.
    async fn refresh(&self, session: &Session) -> Result<Session, IssuerError> {
        let Some(rt) = session.rt.clone() else { return Err(IssuerError::Refused("invalid_grant".into())) };
        let key = sha256(rt.as_bytes());
        let csrf = session.csrf.clone();
        self.refreshes
            .try_get_with(key, async move {
                let tokens = self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await;
                crate::metrics::bff("refresh", outcome(&tokens));
                Ok(self.session_from(tokens?, Some(rt), csrf))
            })
            .await
            .map_err(|err: Arc<IssuerError>| (*err).clone())
    }

    /// A session whose access token is good for at least `refresh_before_expiry` more seconds:
    /// the same one, or a refreshed one (`true`: set the cookie again).
    async fn fresh(&self, session: Session) -> Result<(Session, bool), IssuerError> {
        if session.exp > now().saturating_add(self.config.refresh_before_expiry) {
            return Ok((session, false));
        }
        Ok((self.refresh(&session).await?, true))
    }

    /// Handles a request under [`Bff::path`].
    pub(crate) async fn endpoint(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let origin = match self.check_origin(&parts.headers) {
            OriginCheck::Refused => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized_request",
                    "this origin may not call the token handler",
                );
            }
            OriginCheck::Allowed(origin) => Some(origin),
            OriginCheck::Absent => None,
        };
        let sub = parts.uri.path().strip_prefix(self.config.path.as_str()).unwrap_or("");
        let post = parts.method == Method::POST;
        let mut response = match (sub, &parts.method) {
            ("/login/start" | "/login/end" | "/refresh" | "/logout", _) if !post => method_not_allowed("POST"),
            ("/userinfo", m) if m != Method::GET => method_not_allowed("GET"),
            (_, &Method::POST) if origin.is_none() => {
                error(StatusCode::UNAUTHORIZED, "unauthorized_request", "a POST must carry an allowed Origin")
            }
            ("/login/start", _) => self.login_start(),
            ("/login/end", _) => match axum::body::to_bytes(body, 16 * 1024).await {
                Ok(bytes) => self.login_end(&parts.headers, &bytes).await,
                Err(_) => error(StatusCode::BAD_REQUEST, "invalid_request", "the body is too large"),
            },
            ("/refresh", _) => self.refresh_endpoint(&parts.headers).await,
            ("/logout", _) => self.logout(&parts.headers).await,
            ("/userinfo", _) => self.userinfo(&parts.headers).await,
            _ => error(StatusCode::NOT_FOUND, "not_found", "no such token-handler endpoint"),
        };
        if let Some(origin) = origin {
            cors(response.headers_mut(), origin);
        }
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
        response
    }

    fn login_start(&self) -> Response {
        let login =
            Login { state: random_b64(32), verifier: random_b64(32), nonce: random_b64(32), exp: now() + LOGIN_TTL };
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(login.verifier.as_bytes()));
        let url = url::Url::parse_with_params(
            &self.endpoints.authorization_endpoint,
            [
                ("response_type", "code"),
                ("client_id", self.config.client_id.as_str()),
                ("redirect_uri", self.config.redirect_uri.as_str()),
                ("scope", self.config.scope.as_str()),
                ("state", login.state.as_str()),
                ("nonce", login.nonce.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        );
        let Ok(url) = url else {
            return error(StatusCode::BAD_GATEWAY, "bad_gateway", "the issuer's authorization endpoint is not a URL");
        };
        let mut response = json(StatusCode::OK, &serde_json::json!({"authorization_url": url.as_str()}));
        set_cookie(&mut response, &self.seal(LOGIN_COOKIE, &login, Some(LOGIN_TTL)));
        response
    }

    async fn login_end(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        #[derive(Deserialize)]
        struct Body {
            #[serde(alias = "pageUrl")]
            page_url: Option<String>,
        }
        let page_url = match serde_json::from_slice::<Body>(body) {
            Ok(Body { page_url }) => page_url,
            Err(_) if body.is_empty() => None,
            Err(_) => {
                return error(StatusCode::BAD_REQUEST, "invalid_request", "the body must be JSON: {\"page_url\"}");
            }
        };
        let query: Vec<(String, String)> = page_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let (code, state, front_error) = (param("code"), param("state"), param("error"));
        if code.is_none() && front_error.is_none() {
            let session = self.session(headers);
            return json(
                StatusCode::OK,
                &serde_json::json!({
                    "handled": false,
                    "is_logged_in": session.is_some(),
                    "csrf": session.map(|s| s.csrf),
                }),
            );
        }
        let login: Option<Login> = self.open(headers, LOGIN_COOKIE).filter(|l: &Login| l.exp > now());
        let state_matches = matches!((&login, state), (Some(l), Some(s)) if equal(&l.state, s));
        let mut response = if !state_matches {
            error(StatusCode::BAD_REQUEST, "invalid_request", "the state does not belong to a login of this browser")
        } else if param("iss").is_some_and(|iss| iss != self.issuer) {
            error(StatusCode::BAD_REQUEST, "invalid_request", "the response comes from another issuer (RFC 9207)")
        } else if let Some(front_error) = front_error {
            let status = match front_error {
                "login_required" | "consent_required" | "interaction_required" | "account_selection_required" => {
                    StatusCode::UNAUTHORIZED
                }
                _ => StatusCode::BAD_REQUEST,
            };
            let code = if front_error.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                front_error
            } else {
                "invalid_request"
            };
            error(status, code, "the issuer ended the login with an error")
        } else if let (Some(login), Some(code)) = (&login, code) {
            self.redeem(login, code).await
        } else {
            error(StatusCode::BAD_REQUEST, "invalid_request", "no code")
        };
        if login.is_some() || state.is_some() {
            set_cookie(&mut response, &expired(LOGIN_COOKIE));
        }
        response
    }

    async fn redeem(&self, login: &Login, code: &str) -> Response {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_uri.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ];
        let tokens = self.token_request(&form).await;
        crate::metrics::bff("login", outcome(&tokens));
        let tokens = match tokens {
            Ok(tokens) => tokens,
            // BF-C5: 400, never 401, so the SPA does not loop back into a login.
            Err(IssuerError::Refused(code)) => {
                return error(StatusCode::BAD_REQUEST, &code, "the issuer refused the authorization code");
            }
            Err(IssuerError::Unavailable) => return unavailable(),
        };
        // The ID token came straight from the token endpoint over the gateway's own connection
        // (OpenID Connect Core §3.1.3.7: TLS stands in for the signature check); its issuer,
        // audience and nonce tie it to this login.
        if let Some(id_token) = &tokens.id_token {
            let claims = id_token
                .split('.')
                .nth(1)
                .and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .unwrap_or_default();
            let aud_ok = match &claims["aud"] {
                serde_json::Value::String(a) => *a == self.config.client_id,
                serde_json::Value::Array(list) => list.iter().any(|a| a.as_str() == Some(&self.config.client_id)),
                _ => false,
            };
            let nonce_ok = claims["nonce"].as_str().is_some_and(|n| equal(n, &login.nonce));
            if claims["iss"].as_str() != Some(self.issuer.as_str()) || !aud_ok || !nonce_ok {
                tracing::warn!("an ID token from the code exchange did not match the login");
                return error(StatusCode::BAD_REQUEST, "invalid_request", "the ID token does not belong to this login");
            }
        } else if self.config.scope.split(' ').any(|s| s == "openid") {
            return error(StatusCode::BAD_GATEWAY, "bad_gateway", "the issuer returned no ID token");
        }
        let session = self.session_from(tokens, None, random_b64(32));
        let mut response =
            json(StatusCode::OK, &serde_json::json!({"handled": true, "is_logged_in": true, "csrf": session.csrf}));
        set_cookie(&mut response, &self.session_cookie(&session));
        response
    }

    /// The session of a state-changing request, with its CSRF value checked.
    #[allow(clippy::result_large_err)] // the refusal is the answer, built once per refused request
    fn csrf_checked_session(&self, headers: &HeaderMap) -> Result<Session, Response> {
        let Some(session) = self.session(headers) else {
            return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "no session"));
        };
        let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !equal(presented, &session.csrf) {
            return Err(error(StatusCode::UNAUTHORIZED, "unauthorized_request", "the CSRF header is missing or wrong"));
        }
        Ok(session)
    }

    async fn refresh_endpoint(&self, headers: &HeaderMap) -> Response {
        let session = match self.csrf_checked_session(headers) {
            Ok(session) => session,
            Err(response) => return response,
        };
        match self.refresh(&session).await {
            Ok(session) => {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = StatusCode::NO_CONTENT;
                response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                set_cookie(&mut response, &self.session_cookie(&session));
                response
            }
            Err(err) => self.refresh_failed(err),
        }
    }

    /// BF-C5: the issuer refusing a refresh ends the session (401); unreachable is 503.
    fn refresh_failed(&self, err: IssuerError) -> Response {
        match err {
            IssuerError::Refused(_) => {
                let mut response =
                    error(StatusCode::UNAUTHORIZED, "session_expired", "the session has ended; log in again");
                set_cookie(&mut response, &expired(SESSION_COOKIE));
                response
            }
            IssuerError::Unavailable => unavailable(),
        }
    }

    async fn userinfo(&self, headers: &HeaderMap) -> Response {
        let Some(session) = self.session(headers) else {
            return error(StatusCode::UNAUTHORIZED, "unauthorized", "no session");
        };
        let Some(endpoint) = &self.endpoints.userinfo_endpoint else {
            return error(StatusCode::NOT_FOUND, "not_found", "the issuer has no userinfo endpoint");
        };
        let (session, renewed) = match self.fresh(session).await {
            Ok(fresh) => fresh,
            Err(err) => return self.refresh_failed(err),
        };
        let answer = self.http.get(endpoint).bearer_auth(&session.at).send().await;
        let mut response = match answer {
            Ok(answer) if answer.status().is_success() => match answer.json::<serde_json::Value>().await {
                Ok(claims) => json(StatusCode::OK, &claims),
                Err(_) => error(StatusCode::BAD_GATEWAY, "bad_gateway", "an unreadable userinfo answer"),
            },
            Ok(answer) if answer.status().is_client_error() => {
                error(StatusCode::UNAUTHORIZED, "unauthorized", "the issuer no longer accepts this session")
            }
            _ => unavailable(),
        };
        if renewed {
            set_cookie(&mut response, &self.session_cookie(&session));
        }
        response
    }

    async fn logout(&self, headers: &HeaderMap) -> Response {
        let session = match self.csrf_checked_session(headers) {
            Ok(session) => session,
            Err(mut response) => {
                if response.status() == StatusCode::UNAUTHORIZED && self.session(headers).is_none() {
                    set_cookie(&mut response, &expired(SESSION_COOKIE));
                }
                return response;
            }
        };
        let mut revoked = true;
        if let Some(endpoint) = &self.endpoints.revocation_endpoint {
            let tokens = session.rt.iter().map(|t| (t, "refresh_token")).chain([(&session.at, "access_token")]);
            for (token, hint) in tokens {
                let answer = self
                    .http
                    .post(endpoint)
                    .basic_auth(
                        form_encode(&self.config.client_id),
                        Some(form_encode(self.config.client_secret.expose())),
                    )
                    .form(&[("token", token.as_str()), ("token_type_hint", hint)])
                    .send()
                    .await;
                if !answer.is_ok_and(|a| a.status().is_success()) {
                    tracing::warn!(hint, "the issuer did not confirm the revocation at logout");
                    revoked = false;
                }
            }
        }
        let end_session_url = match (&self.endpoints.end_session_endpoint, &self.config.post_logout_redirect_uri) {
            (Some(endpoint), Some(back)) => url::Url::parse_with_params(
                endpoint,
                [("client_id", self.config.client_id.as_str()), ("post_logout_redirect_uri", back.as_str())],
            )
            .ok()
            .map(String::from),
            _ => None,
        };
        crate::metrics::bff("logout", if revoked { "ok" } else { "unavailable" });
        let mut response = if revoked {
            json(StatusCode::OK, &serde_json::json!({"end_session_url": end_session_url}))
        } else {
            error(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "signed out here, but the issuer did not confirm the revocation",
            )
        };
        set_cookie(&mut response, &expired(SESSION_COOKIE));
        set_cookie(&mut response, &expired(LOGIN_COOKIE));
        response
    }

    /// Admits an API request of a `bff` route: the origin, the session, the CSRF value for a
    /// state-changing method, a refresh when due; then `Authorization: Bearer <access token>`
    /// replaces whatever the browser sent, and the token handler's cookies are taken out.
    /// `Ok` carries the session cookie to set again after a refresh.
    pub(crate) async fn admit(&self, parts: &mut http::request::Parts) -> Result<Option<Cookie<'static>>, Response> {
        if let OriginCheck::Refused = self.check_origin(&parts.headers) {
            return Err(error(StatusCode::UNAUTHORIZED, "unauthorized_request", "this origin may not call this API"));
        }
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        let session = if safe {
            self.session(&parts.headers).ok_or_else(|| error(StatusCode::UNAUTHORIZED, "unauthorized", "no session"))?
        } else {
            self.csrf_checked_session(&parts.headers)?
        };
        let (session, renewed) = self.fresh(session).await.map_err(|err| self.refresh_failed(err))?;
        let cookies: Vec<String> = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';').map(|c| c.trim().to_owned()).collect::<Vec<_>>())
            .filter(|c| !c.starts_with(&format!("{SESSION_COOKIE}=")) && !c.starts_with(&format!("{LOGIN_COOKIE}=")))
            .filter(|c| !c.is_empty())
            .collect();
        parts.headers.remove(header::COOKIE);
        if let Ok(value) = HeaderValue::from_str(&cookies.join("; "))
            && !cookies.is_empty()
        {
            parts.headers.insert(header::COOKIE, value);
        }
        parts.headers.remove(header::AUTHORIZATION);
        parts.headers.remove("dpop");
        let bearer = HeaderValue::from_str(&format!("Bearer {}", session.at))
            .map_err(|_| error(StatusCode::BAD_GATEWAY, "bad_gateway", "the issuer's access token is unusable"))?;
        parts.headers.insert(header::AUTHORIZATION, bearer);
        Ok(renewed.then(|| self.session_cookie(&session)))
    }

    /// CORS headers for the answer to an admitted request from an allowed origin.
    pub(crate) fn decorate(&self, request_headers: &HeaderMap, response: &mut Response) {
        if let OriginCheck::Allowed(origin) = self.check_origin(request_headers) {
            cors(response.headers_mut(), origin);
        }
        response.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
        // The upstream's answer could carry the token we attached; the SPA never sees it.
        response.headers_mut().remove(header::AUTHORIZATION);
    }
}

/// Decrypts a session cookie's value with the key of a `[bff]` section (`cookie_key`): for
/// tests and tooling that hold the key, e.g. to check that a browser's cookie is all it takes.
pub fn open_session_cookie(cookie_key_b64: &str, value: &str) -> Option<Session> {
    let key = cookie_key(cookie_key_b64).ok()?;
    let opened = CookieJar::new().private(&key).decrypt(Cookie::new(SESSION_COOKIE, value.to_owned()))?;
    serde_json::from_str(opened.value()).ok()
}

/// Encrypts `session` as a session cookie's value under the key of a `[bff]` section: for
/// tests that need a session in a given state (an access token about to expire, say).
pub fn seal_session_cookie(cookie_key_b64: &str, session: &Session) -> Option<String> {
    let key = cookie_key(cookie_key_b64).ok()?;
    let mut jar = CookieJar::new();
    jar.private_mut(&key).add(Cookie::new(SESSION_COOKIE, serde_json::to_string(session).ok()?));
    jar.get(SESSION_COOKIE).map(|c| c.value().to_owned())
}

fn outcome<T>(result: &Result<T, IssuerError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(IssuerError::Refused(_)) => "refused",
        Err(IssuerError::Unavailable) => "unavailable",
    }
}

fn cors(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn unavailable() -> Response {
    let mut response =
        error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", "the issuer cannot be reached");
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// RFC 6749 §2.3.1: client credentials in HTTP Basic are form-encoded first.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
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
