//! The SPA's side of the protocol under the token handler's path: login start and end, refresh,
//! userinfo and logout.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Deserialize;

use tessera_proto::bff::{LoginEnd, LoginStart, Logout};

use crate::{ErrorSource, json_response as json, now, sha256};

/// An error the client caused.
pub(super) fn error(status: StatusCode, code: &str, description: &str) -> Response {
    ErrorSource::Client.answer(status, code, description)
}

use super::cookies::{random_b64, set_cookie};
use super::issuer::{IssuerError, form_encode, outcome};
use super::{
    Bff, CSRF_HEADER, LOGIN_COOKIE, LOGIN_TTL, Login, OriginCheck, SESSION_COOKIE, Session, cors, equal, expired,
};

impl Bff {
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

    pub(super) fn login_start(&self) -> Response {
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
            return ErrorSource::Issuer.answer(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the issuer's authorization endpoint is not a URL",
            );
        };
        let mut response = json(StatusCode::OK, &LoginStart { authorization_url: url.into() });
        set_cookie(&mut response, &self.seal(LOGIN_COOKIE, &login, Some(LOGIN_TTL)));
        response
    }

    pub(super) async fn login_end(&self, headers: &HeaderMap, body: &[u8]) -> Response {
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
                &LoginEnd { handled: false, is_logged_in: session.is_some(), csrf: session.map(|s| s.csrf) },
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

    pub(super) async fn redeem(&self, login: &Login, code: &str) -> Response {
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
            return ErrorSource::Issuer.answer(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the issuer returned no ID token",
            );
        }
        let session = self.session_from(tokens, None, random_b64(32));
        let mut response =
            json(StatusCode::OK, &LoginEnd { handled: true, is_logged_in: true, csrf: Some(session.csrf.clone()) });
        set_cookie(&mut response, &self.session_cookie(&session));
        response
    }

    /// The session of a state-changing request, with its CSRF value checked.
    #[allow(clippy::result_large_err)] // the refusal is the answer, built once per refused request
    pub(super) fn csrf_checked_session(&self, headers: &HeaderMap) -> Result<Session, Response> {
        let Some(session) = self.session(headers) else {
            return Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "no session"));
        };
        let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !equal(presented, &session.csrf) {
            return Err(error(StatusCode::UNAUTHORIZED, "unauthorized_request", "the CSRF header is missing or wrong"));
        }
        Ok(session)
    }

    pub(super) async fn refresh_endpoint(&self, headers: &HeaderMap) -> Response {
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
    pub(super) fn refresh_failed(&self, err: IssuerError) -> Response {
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

    pub(super) async fn userinfo(&self, headers: &HeaderMap) -> Response {
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
                Err(_) => {
                    ErrorSource::Issuer.answer(StatusCode::BAD_GATEWAY, "bad_gateway", "an unreadable userinfo answer")
                }
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

    pub(super) async fn logout(&self, headers: &HeaderMap) -> Response {
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
            json(StatusCode::OK, &Logout { end_session_url })
        } else {
            ErrorSource::Issuer.answer(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "signed out here, but the issuer did not confirm the revocation",
            )
        };
        set_cookie(&mut response, &expired(SESSION_COOKIE));
        set_cookie(&mut response, &expired(LOGIN_COOKIE));
        response
    }
}

pub(super) fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

pub(super) fn unavailable() -> Response {
    let mut response = ErrorSource::Issuer.answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the issuer cannot be reached",
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
