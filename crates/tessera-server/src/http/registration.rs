//! `POST /register` and `GET`/`PUT`/`DELETE /register/{client_id}` (RFC 7591, RFC 7592); the
//! rules are in `flows::registration`. Here: the JSON body, the bearer token, the per-address
//! throttle, and the answers (`201`, `200`, `204`; `400 invalid_redirect_uri` /
//! `invalid_client_metadata`, `401 invalid_token` with a challenge, `404` when registration is
//! off, `429` with `Retry-After`), never cached.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use tessera_proto::registration::RegistrationRequest;

use super::{MAX_BODY_BYTES, error::json_error, no_store, request_ip, too_many};
use crate::AppState;
use crate::config::Registration;
use crate::flows::registration::{self, RegistrationError};

pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/register", post(register))
        .route("/register/{client_id}", axum::routing::get(read).put(update).delete(delete))
}

impl IntoResponse for RegistrationError {
    fn into_response(self) -> Response {
        let status = match &self {
            RegistrationError::Disabled => StatusCode::NOT_FOUND,
            RegistrationError::InvalidToken => StatusCode::UNAUTHORIZED,
            RegistrationError::InvalidRedirectUri(_) | RegistrationError::InvalidClientMetadata(_) => {
                StatusCode::BAD_REQUEST
            }
            RegistrationError::TooMany(wait) => return too_many(*wait, "too many registrations; try again later"),
            RegistrationError::Internal(err) => {
                tracing::error!(err = format!("{err:#}"), "registration failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let mut response = json_error(status, &self.to_string(), self.description().as_deref());
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"tessera\", error=\"invalid_token\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        no_store(response)
    }
}

/// The one `Authorization: Bearer …` token (any other scheme, or two headers: none).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return None };
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// A JSON object body (RFC 7591 §3.1).
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<RegistrationRequest, RegistrationError> {
    let media_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !media_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json") {
        return Err(RegistrationError::InvalidClientMetadata("the body must be application/json".into()));
    }
    serde_json::from_slice(body)
        .map_err(|err| RegistrationError::InvalidClientMetadata(format!("the body is not client metadata: {err}")))
}

fn answer(status: StatusCode, result: Result<impl serde::Serialize, RegistrationError>) -> Response {
    match result {
        Ok(body) => no_store((status, Json(body)).into_response()),
        Err(err) => err.into_response(),
    }
}

async fn register(State(state): State<AppState>, request: Request) -> Response {
    let now = state.clock.now();
    if state.config.registration == Registration::Off {
        return RegistrationError::Disabled.into_response();
    }
    let (parts, body) = request.into_parts();
    let ip = request_ip(&state, &parts.extensions, &parts.headers);
    let key = format!("register:{}", ip.map_or_else(|| "?".to_owned(), crate::abuse::address_key));
    if let Some(wait) = state.abuse.registrations.blocked(&key) {
        return too_many(wait, "too many registrations from this address; try again later");
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", Some("the body is too large"));
    };
    let result = async {
        let metadata = json_body(&parts.headers, &body)?;
        registration::register(&state, bearer(&parts.headers), metadata, ip.map(|ip| ip.to_string()), now).await
    }
    .await;
    // Under `open`, every attempt spends the address's allowance; under `token`, failures do.
    if state.config.registration == Registration::Open || result.is_err() {
        state.abuse.registrations.failed(&key);
    }
    answer(StatusCode::CREATED, result)
}

/// RFC 7592: a wrong registration access token counts against the address like a failed
/// client authentication.
async fn managed<T>(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    run: impl Future<Output = Result<T, RegistrationError>>,
) -> Result<T, RegistrationError> {
    let ip = request_ip(state, extensions, headers).map(crate::abuse::address_key);
    let key = format!("ip:{}", ip.as_deref().unwrap_or("?"));
    if let Some(wait) = state.abuse.client_auth.blocked(&key) {
        return Err(RegistrationError::TooMany(wait));
    }
    let result = run.await;
    if matches!(result, Err(RegistrationError::InvalidToken)) {
        state.abuse.client_auth.failed(&key);
    }
    result
}

async fn read(State(state): State<AppState>, Path(client_id): Path<String>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let run = registration::read(&state, &client_id, bearer(&parts.headers));
    answer(StatusCode::OK, managed(&state, &parts.headers, &parts.extensions, run).await)
}

async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let run = async {
        let metadata = json_body(&headers, &body)?;
        registration::update(&state, &client_id, bearer(&headers), metadata, now).await
    };
    answer(StatusCode::OK, managed(&state, &headers, &extensions, run).await)
}

async fn delete(State(state): State<AppState>, Path(client_id): Path<String>, request: Request) -> Response {
    let now = state.clock.now();
    let (parts, _) = request.into_parts();
    let run = registration::delete(&state, &client_id, bearer(&parts.headers), now);
    match managed(&state, &parts.headers, &parts.extensions, run).await {
        Ok(()) => no_store(StatusCode::NO_CONTENT.into_response()),
        Err(err) => err.into_response(),
    }
}
