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

mod config;
mod cookies;
mod endpoints;
mod issuer;

use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::response::Response;
use cookie::{Cookie, Key};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::ErrorSource;
use endpoints::error;

pub use config::BffConfig;
use config::cookie_key;
pub(crate) use cookies::set_cookie;
use cookies::{equal, expired};
pub use cookies::{open_session_cookie, seal_session_cookie};
use issuer::Endpoints;

/// The encrypted session cookie: access token, refresh token, expiry, CSRF value.
pub const SESSION_COOKIE: &str = "__Host-tessera-session";
/// The encrypted login cookie: `state`, PKCE verifier, nonce, for ten minutes.
pub const LOGIN_COOKIE: &str = "__Host-tessera-login";
/// The header that state-changing requests must carry (CSRF defence).
pub const CSRF_HEADER: &str = "x-tessera-csrf";
/// How long a started login may take.
const LOGIN_TTL: u64 = 600;

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
pub(super) struct Login {
    state: String,
    verifier: String,
    nonce: String,
    exp: u64,
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
        let metadata = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("fetching the issuer's discovery document")?
            .json()
            .await
            .context("reading the issuer's discovery document")?;
        let endpoints = Endpoints::of(&issuer, metadata)?;
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
        let bearer = HeaderValue::from_str(&format!("Bearer {}", session.at)).map_err(|_| {
            ErrorSource::Issuer.answer(StatusCode::BAD_GATEWAY, "bad_gateway", "the issuer's access token is unusable")
        })?;
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

fn cors(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
}
