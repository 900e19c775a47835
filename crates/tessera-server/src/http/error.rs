//! Maps flow errors to status codes and RFC-shaped JSON bodies. Internal causes are logged
//! here and never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_proto::error::ErrorBody;

use crate::flows::admin::AdminError;
use crate::flows::error::OAuthError;
use crate::flows::userinfo::UserinfoError;

pub(crate) fn json_error(status: StatusCode, code: &str, description: Option<&str>) -> Response {
    (status, Json(ErrorBody::new(code, description))).into_response()
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match &self {
            OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            OAuthError::Internal(err) => {
                tracing::error!(err = format!("{err:#}"), "request failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = json_error(status, &self.to_string(), self.description().as_deref());
        if let OAuthError::InvalidClient { basic: true } = self {
            // RFC 6749 §5.2: a failed Basic authentication answers with a challenge.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tessera\""));
        }
        if let OAuthError::UseDpopNonce(nonce) = &self
            && let Ok(value) = HeaderValue::from_str(nonce)
        {
            response.headers_mut().insert("dpop-nonce", value);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, description) = match &self {
            AdminError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, Some("an active access token is required".to_owned()))
            }
            AdminError::Forbidden => (StatusCode::FORBIDDEN, Some("only an admin client's own client_credentials token with scope tessera:admin may use the admin API".to_owned())),
            AdminError::InvalidClientMetadata(why) | AdminError::InvalidRequest(why) => {
                (StatusCode::BAD_REQUEST, Some(why.clone()))
            }
            AdminError::NotFound => (StatusCode::NOT_FOUND, None),
            AdminError::Conflict(why) => (StatusCode::CONFLICT, Some(why.clone())),
            AdminError::Internal(err) => {
                tracing::error!(err = format!("{err:#}"), "admin request failed");
                (StatusCode::SERVICE_UNAVAILABLE, None)
            }
        };
        let mut response = json_error(status, &self.to_string(), description.as_deref());
        // RFC 6750 §3.
        let challenge = match self {
            AdminError::Unauthorized => Some("Bearer realm=\"tessera-admin\", error=\"invalid_token\""),
            AdminError::Forbidden => {
                Some("Bearer realm=\"tessera-admin\", error=\"insufficient_scope\", scope=\"tessera:admin\"")
            }
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}

/// RFC 6750 §3, RFC 9449 §7.1: userinfo's refusals carry their challenge.
impl IntoResponse for UserinfoError {
    fn into_response(self) -> Response {
        let err = self;
        let (status, challenge) = match &err {
            UserinfoError::NoToken => (StatusCode::UNAUTHORIZED, "Bearer realm=\"tessera\""),
            UserinfoError::InvalidToken { dpop: false } => {
                (StatusCode::UNAUTHORIZED, "Bearer realm=\"tessera\", error=\"invalid_token\"")
            }
            UserinfoError::InvalidToken { dpop: true } => (
                StatusCode::UNAUTHORIZED,
                "DPoP realm=\"tessera\", error=\"invalid_token\", algs=\"ES256 EdDSA PS256 RS256\"",
            ),
            UserinfoError::InvalidDpopProof => (
                StatusCode::UNAUTHORIZED,
                "DPoP realm=\"tessera\", error=\"invalid_dpop_proof\", algs=\"ES256 EdDSA PS256 RS256\"",
            ),
            UserinfoError::InsufficientScope => {
                (StatusCode::FORBIDDEN, "Bearer realm=\"tessera\", error=\"insufficient_scope\", scope=\"openid\"")
            }
            UserinfoError::Internal(err) => {
                tracing::error!(err = format!("{err:#}"), "userinfo failed");
                let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, "server_error", None);
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return super::no_store(response);
            }
        };
        let mut response = json_error(status, &err.to_string(), None);
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        response
    }
}
