//! Forwarding an admitted request to its upstream: exactly the canonical path, with hop-by-hop,
//! identity and client routing headers removed (`canonical.rs` lists them), the gateway's own
//! `X-Forwarded-For/-Host/-Proto` and the verified identity in `x-tessera-*` headers; the
//! upstream's answer with its hop-by-hop headers removed. The body is read whole first (at most
//! [`MAX_BODY_BYTES`]): a client's broken body is its own 400 (413 when too large) and nothing
//! is forwarded. An upstream that cannot be reached is 502, one that does not answer in 30 s is
//! 504, both blamed on the upstream ([`ErrorSource`]).

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tessera_verify::Claims;

use crate::canonical::{strip, strip_client_headers};
use crate::{ClientAddress, ErrorSource};

/// The largest request body forwarded (read whole before forwarding); larger is 413.
pub(crate) const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

fn too_large() -> Response {
    ErrorSource::Client.answer(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request",
        "the request body is larger than the gateway forwards",
    )
}

/// Sends the admitted request upstream and returns its answer.
pub(crate) async fn forward(
    client: &Client<HttpConnector, Body>,
    upstream: &str,
    scheme: &'static str,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let claims = parts.extensions.remove::<Claims>();
    let remote = parts.extensions.get::<ClientAddress>().map(|c| c.0);
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("{upstream}{path_and_query}").parse::<http::Uri>() else {
        return ErrorSource::Client.answer(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request target cannot be forwarded",
        );
    };
    let original_host = parts.headers.get(header::HOST).cloned();
    // Every spelling of every header only the gateway may set (`X_Tessera_Sub` too).
    strip_client_headers(&mut parts.headers);
    parts.headers.remove(header::HOST);
    if let Some(host) = original_host {
        parts.headers.insert("x-forwarded-host", host);
    }
    if let Some(ip) = remote.and_then(|ip| HeaderValue::from_str(&ip.to_string()).ok()) {
        parts.headers.insert("x-forwarded-for", ip);
    }
    parts.headers.insert("x-forwarded-proto", HeaderValue::from_static(scheme));
    if let Some(claims) = &claims {
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                parts.headers.insert(name, value);
            }
        };
        set("x-tessera-sub", &claims.sub);
        set("x-tessera-client-id", &claims.client_id);
        set("x-tessera-scope", claims.scope.as_deref().unwrap_or(""));
        set("x-tessera-jti", &claims.jti);
    }
    parts.uri = uri;
    // The whole body is read before anything is sent upstream: a body that breaks off or is
    // malformed (bad chunk sizes, bare-LF chunk lines, a Content-Length it never fills) is the
    // client's fault, answered here and never forwarded; one over MAX_BODY_BYTES is 413.
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Body::from(bytes),
        Err(err) if format!("{err:#}").contains("length limit") => return too_large(),
        Err(_) => {
            tracing::info!("request refused: the client's body could not be read");
            return ErrorSource::Client.answer(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the request body is malformed or incomplete",
            );
        }
    };
    let outbound = http::Request::from_parts(parts, body);
    match tokio::time::timeout(Duration::from_secs(30), client.request(outbound)).await {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(err)) => {
            tracing::warn!(err = %err, "upstream unreachable");
            ErrorSource::Upstream.answer(StatusCode::BAD_GATEWAY, "bad_gateway", "the upstream cannot be reached")
        }
        Err(_) => ErrorSource::Upstream.answer(
            StatusCode::GATEWAY_TIMEOUT,
            "gateway_timeout",
            "the upstream did not answer in time",
        ),
    }
}
