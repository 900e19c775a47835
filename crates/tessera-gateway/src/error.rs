//! Every answer the gateway gives in place of the upstream's: an RFC 6749-shaped JSON body
//! (`tessera_proto::error::ErrorBody`), never cached, carrying who caused it. [`ErrorSource`]
//! (after pingora's) is the client (a malformed request, a bad or missing token, a method or
//! path no route serves), the upstream (unreachable, too slow), the issuer (it cannot answer, or
//! answers something unusable) or the gateway itself (its own set-up). The source rides on the
//! response as an extension, so `tessera_gateway_errors_total{route, source}` and the log say
//! who failed, and an operator paged for 502s can tell an upstream outage from a client's junk.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tessera_proto::error::ErrorBody;

/// Who caused an error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The request was refused for what the client sent.
    Client,
    /// The upstream API could not be reached or did not answer in time.
    Upstream,
    /// The issuer (introspection, exchange, the token handler's endpoints) could not answer, or
    /// answered something unusable.
    Issuer,
    /// The gateway's own set-up.
    Gateway,
}

impl ErrorSource {
    /// The label value: `client`, `upstream`, `issuer`, `gateway`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorSource::Client => "client",
            ErrorSource::Upstream => "upstream",
            ErrorSource::Issuer => "issuer",
            ErrorSource::Gateway => "gateway",
        }
    }

    /// An error answer caused by this source: `{"error", "error_description"}` with `status`,
    /// `Cache-Control: no-store`, and the source as an extension.
    pub(crate) fn answer(self, status: StatusCode, error: &str, description: &str) -> Response {
        let mut response = (status, axum::Json(ErrorBody::new(error, Some(description)))).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response.extensions_mut().insert(self);
        response
    }
}

/// The source of an error answer, if the gateway built it.
pub(crate) fn source_of(response: &Response) -> Option<ErrorSource> {
    response.extensions().get::<ErrorSource>().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_is_an_oauth_error_body_never_cached_with_its_source() {
        let response = ErrorSource::Upstream.answer(StatusCode::BAD_GATEWAY, "bad_gateway", "gone");
        assert_eq!(source_of(&response), Some(ErrorSource::Upstream));
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, serde_json::json!({"error": "bad_gateway", "error_description": "gone"}));
    }
}
