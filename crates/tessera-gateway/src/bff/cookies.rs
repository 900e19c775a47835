//! The token handler's cookies: sealed with AES-256-GCM through the `cookie` crate's private
//! jar (the cookie name as associated data), `__Host-`, `Secure; HttpOnly; SameSite=Strict`.

use axum::response::Response;
use base64::Engine as _;
use cookie::{Cookie, CookieJar, SameSite};
use http::{HeaderMap, HeaderValue, header};
use serde::Serialize;

use super::config::cookie_key;
use super::{Bff, SESSION_COOKIE, Session};

pub(super) fn random_b64(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // An RNG failure is not recoverable; aws-lc's system RNG does not fail on supported systems.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut buffer).expect("system random number generator");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

pub(super) fn equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub(crate) fn set_cookie(response: &mut Response, cookie: &Cookie<'_>) {
    // Values are base64 (sealed) or empty: nothing to percent-encode.
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub(super) fn expired(name: &'static str) -> Cookie<'static> {
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
pub(super) fn request_cookie(headers: &HeaderMap, name: &str) -> Option<Cookie<'static>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()).filter_map(Result::ok).collect::<Vec<_>>())
        .find(|c| c.name() == name)
}

impl Bff {
    pub(super) fn open<T: serde::de::DeserializeOwned>(&self, headers: &HeaderMap, name: &'static str) -> Option<T> {
        let sealed = request_cookie(headers, name)?;
        let jar = CookieJar::new();
        let opened = jar.private(&self.key).decrypt(sealed)?;
        serde_json::from_str(opened.value()).ok()
    }

    pub(super) fn seal<T: Serialize>(&self, name: &'static str, value: &T, max_age: Option<u64>) -> Cookie<'static> {
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
    pub(super) fn session_cookie(&self, session: &Session) -> Cookie<'static> {
        self.seal(SESSION_COOKIE, session, None)
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
