//! `tessera gateway`: a reverse proxy that lets a request reach an upstream API only with a
//! valid access token for that API (`jwt` mode: verified locally by `tessera-verify`, with the
//! issuer's revocation feed applied, so a revocation is in force here within a second;
//! `phantom` and `split` modes: a reference token exchanged once for its JWT, see [`phantom`];
//! `bff` mode: a token handler for single-page apps, which holds the tokens in an encrypted
//! cookie and attaches them to the API calls it proxies, see [`bff`]).
//!
//! Per request: the path is brought to its one canonical form ([`canonical_path`]: percent-
//! encoded unreserved characters decoded, RFC 3986 §6.2.2.2), and refused (400) if that form
//! has dot or empty segments, `;`, backslashes, or any percent-encoding that could change
//! routing (`%2F`, `%5C`, `%25`, `%3B`, controls); the longest route prefix (at a segment
//! boundary, case-sensitive) of the canonical path decides the upstream, or 404; the method must
//! be allowed, or 405; a `Connection` header may name only hop-by-hop headers, or 400; then
//! `VerifyLayer` admits the token (401/403/503 with RFC 6750/9449 challenges that point at the
//! RFC 9728 metadata). The upstream gets exactly the canonical path, with hop-by-hop headers,
//! client-supplied identity headers and client-supplied routing headers (`Forwarded`,
//! `X-Forwarded-*`, `X-Real-IP`, `X-Original-URL`, `X-Rewrite-URL`, method overrides) removed;
//! only the gateway speaks for the client: its own `X-Forwarded-For/-Host/-Proto` and the
//! verified identity in `x-tessera-*` headers. An upstream that cannot be reached is 502, one
//! that does not answer in time 504, each as JSON.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, Method, StatusCode, header};
use tower::ServiceExt as _;

pub use canonical::canonical_path;
use canonical::connection_ok;
pub use config::{GatewayConfig, Mode, RouteConfig};
pub use error::ErrorSource;
use routes::{Gateway, build, is_preflight, route_for};

pub mod bff;
mod canonical;
mod config;
mod error;
mod metrics;
pub mod phantom;
mod proxy;
mod routes;

/// The client's address, in each request's extensions: the peer's, or from a peer in
/// `trusted_proxies` the nearest untrusted `X-Forwarded-For` hop. Throttles key on it, and the
/// upstream gets it as `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub(crate) std::net::IpAddr);

/// A JSON body that is never cached.
fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The wall clock in Unix seconds: the gateway's caches and sessions live at the edge, where it
/// is read.
fn now() -> u64 {
    #[allow(clippy::disallowed_methods)]
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_secs()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The routes in force; a reload swaps them whole.
type Shared = Arc<std::sync::RwLock<Arc<Gateway>>>;

fn current(shared: &Shared) -> Arc<Gateway> {
    shared.read().unwrap_or_else(|p| p.into_inner()).clone()
}

async fn dispatch(State(shared): State<Shared>, request: Request) -> Response {
    let started = std::time::Instant::now();
    let gateway = current(&shared);
    let (label, response) = handle(&gateway, request).await;
    let source = error::source_of(&response);
    metrics::request(&label, response.status().as_u16(), source, started.elapsed());
    if let Some(source) = source {
        metrics::error(&label, source);
    }
    response
}

/// Answers one request; with the label its metrics go under (the route prefix, or `bff`,
/// `static`, `none`, `invalid`).
async fn handle(gateway: &Gateway, mut request: Request) -> (String, Response) {
    let refuse =
        |why: &str| ("invalid".to_owned(), ErrorSource::Client.answer(StatusCode::BAD_REQUEST, "invalid_request", why));
    // RFC 9112 §3.2.2: an absolute-form target is for a proxy; the gateway accepts one only for
    // its own origin (and routes on its path), never for anywhere else.
    // (HTTP/2 always carries `:scheme` and `:authority`; this is about HTTP/1's target form.)
    if request.version() <= http::Version::HTTP_11
        && let Some(scheme) = request.uri().scheme_str()
    {
        let authority = request.uri().authority().map_or("", |a| a.as_str());
        if format!("{scheme}://{authority}").to_ascii_lowercase() != gateway.public_origin {
            return refuse("an absolute-form request target must name this gateway's origin");
        }
    }
    if let Some(name) = canonical::ambiguous_protected(request.headers()) {
        tracing::info!(header = %name, "request refused: a protected header in two spellings");
        return refuse("a header only the gateway may set is sent in two spellings");
    }
    let path = match canonical_path(request.uri().path()) {
        Ok(path) => path,
        Err(why) => {
            return ("invalid".into(), ErrorSource::Client.answer(StatusCode::BAD_REQUEST, "invalid_request", why));
        }
    };
    if path != request.uri().path() {
        // From here on, and upstream, the request is for the canonical path only.
        let target = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path.clone(),
        };
        match target.parse::<http::uri::PathAndQuery>() {
            Ok(path_and_query) => {
                let mut parts = request.uri().clone().into_parts();
                parts.path_and_query = Some(path_and_query);
                if let Ok(uri) = http::Uri::from_parts(parts) {
                    *request.uri_mut() = uri;
                }
            }
            Err(_) => {
                return (
                    "invalid".into(),
                    ErrorSource::Client.answer(StatusCode::BAD_REQUEST, "invalid_request", "bad request target"),
                );
            }
        }
    }
    if !connection_ok(request.headers()) {
        return (
            "invalid".into(),
            ErrorSource::Client.answer(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the Connection header may name only hop-by-hop headers",
            ),
        );
    }
    // SECURITY-TESTS AK-03: an API key in a URL ends up in logs and histories; refuse it
    // whatever the parameter is called (and never log it).
    let query = request.uri().query().unwrap_or("");
    if query.contains(tessera_proto::token::USER_API_KEY_PREFIX)
        || query.contains(tessera_proto::token::CLIENT_API_KEY_PREFIX)
    {
        return (
            "invalid".into(),
            ErrorSource::Client.answer(
                StatusCode::UNAUTHORIZED,
                "invalid_request",
                "API keys are accepted in the Authorization header only",
            ),
        );
    }
    if let Some(handler) = &gateway.bff {
        let under = path == handler.path() || path.starts_with(&format!("{}/", handler.path()));
        let bff_route = route_for(gateway, &path).is_some_and(|r| r.config.mode == Mode::Bff);
        if is_preflight(&request) && (under || bff_route) {
            return ("preflight".into(), handler.preflight(request.headers()));
        }
        if under {
            return ("bff".into(), handler.endpoint(request).await);
        }
    }
    let Some(route) = route_for(gateway, &path) else {
        if let Some(dir) = gateway.bff.as_ref().and_then(|b| b.static_dir())
            && matches!(*request.method(), Method::GET | Method::HEAD)
        {
            return ("static".into(), static_file(dir, request).await);
        }
        return (
            "none".into(),
            ErrorSource::Client.answer(StatusCode::NOT_FOUND, "not_found", "no route for this path"),
        );
    };
    let label = route.config.prefix.clone();
    let methods = &route.config.methods;
    let listed = methods.iter().any(|m| m.eq_ignore_ascii_case(request.method().as_str()));
    // CONNECT and TRACE have no business at an API gateway: only a route that lists them gets them.
    let tunnel_or_trace = matches!(*request.method(), Method::CONNECT | Method::TRACE);
    if (!methods.is_empty() || tunnel_or_trace) && !listed {
        let mut response =
            ErrorSource::Client.answer(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here");
        let allow = if methods.is_empty() {
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS".to_owned()
        } else {
            methods.join(", ")
        };
        if let Ok(allow) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return (label, response);
    }
    client_certificate(gateway, &mut request);
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let forwarded_for = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    if let Some(address) = tessera_listener::client_ip(peer, forwarded_for, &gateway.trusted_proxies) {
        request.extensions_mut().insert(ClientAddress(address));
    }
    match route.service.clone().oneshot(request).await {
        Ok(response) => (label, response),
        Err(never) => match never {},
    }
}

/// RFC 9440: a trusted proxy's `Client-Cert` (a byte sequence, `:base64-DER:`) becomes the
/// request's [`ClientCertificate`](tessera_verify::layer::ClientCertificate); from anyone else
/// it is ignored. Client-certificate headers never travel further (see [`IDENTITY_HEADERS`]).
fn client_certificate(gateway: &Gateway, request: &mut Request) {
    use base64::Engine as _;
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if !peer.is_some_and(|ip| gateway.trusted_proxies.iter().any(|net| net.contains(&ip))) {
        return;
    }
    let mut values = request.headers().get_all("client-cert").iter();
    let (Some(value), None) = (values.next(), values.next()) else { return };
    let der = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix(':')?.strip_suffix(':').map(str::to_owned))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok());
    if let Some(der) = der {
        request.extensions_mut().insert(tessera_verify::layer::ClientCertificate(der));
    }
}

/// `GET /metrics`: Prometheus text format, for peers in `metrics_from` that did not come
/// through a proxy.
async fn metrics_endpoint(State(shared): State<Shared>, request: Request) -> Response {
    let gateway = current(&shared);
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let proxied =
        request.headers().contains_key(header::FORWARDED) || request.headers().contains_key("x-forwarded-for");
    if proxied || !peer.is_some_and(|ip| gateway.metrics_from.iter().any(|net| net.contains(&ip))) {
        return ErrorSource::Client.answer(
            StatusCode::FORBIDDEN,
            "forbidden",
            "metrics are not served to this address",
        );
    }
    let Some(handle) = metrics::handle() else {
        return ErrorSource::Gateway.answer(
            StatusCode::NOT_FOUND,
            "not_found",
            "another metrics recorder is installed in this process",
        );
    };
    for (audience, verifier) in &gateway.verifiers {
        metrics::feed(audience, verifier.feed_position(), verifier.is_current());
    }
    let mut response = handle.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// A file of the SPA, with headers that keep it from being framed or sniffed and keep the
/// page's URL (which briefly holds the authorization code) out of `Referer`.
async fn static_file(dir: &std::path::Path, request: Request) -> Response {
    let serve = tower_http::services::ServeDir::new(dir).append_index_html_on_directories(true);
    let mut response = match serve.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    };
    let headers = response.headers_mut();
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(shared): State<Shared>) -> Response {
    let gateway = current(&shared);
    if gateway.verifiers.iter().all(|(_, verifier)| verifier.is_current()) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "revocation feed not current").into_response()
    }
}

async fn protected_resource(State(shared): State<Shared>, request: Request) -> Response {
    let gateway = current(&shared);
    let prefix = request.uri().path().trim_start_matches("/.well-known/oauth-protected-resource");
    match gateway.routes.iter().find(|r| r.config.prefix == prefix) {
        Some(route) => axum::Json(route.metadata.clone()).into_response(),
        None => ErrorSource::Client.answer(StatusCode::NOT_FOUND, "not_found", "no such protected resource"),
    }
}

/// Reloads the configuration when its file changes (checked every 2 s) or on SIGHUP: a new
/// file that parses and builds replaces the routes whole; anything else is logged and the
/// running routes stay. The listener cannot move; a changed `listen` is reported and ignored.
fn reload_on_change(
    shared: std::sync::Weak<std::sync::RwLock<Arc<Gateway>>>,
    path: std::path::PathBuf,
    listen: SocketAddr,
) {
    let file = path.clone();
    tessera_listener::reload_on_change(vec![file], Duration::from_secs(2), std::future::pending(), move || {
        let (shared, path) = (shared.clone(), path.clone());
        async move {
            // The gateway is gone: stop looking.
            let Some(shared) = shared.upgrade() else { return false };
            let rebuilt = async {
                let config = GatewayConfig::from_file(&path)?;
                if config.listen != listen {
                    tracing::warn!(listen = %config.listen, "listen changed in the configuration: restart to move the listener");
                }
                anyhow::Ok((config.routes.len(), build(&config).await?))
            };
            match rebuilt.await {
                Ok((routes, gateway)) => {
                    *shared.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(gateway);
                    tracing::info!(routes, "gateway configuration reloaded");
                }
                Err(err) => {
                    tracing::error!(
                        err = format!("{err:#}"),
                        "gateway configuration not reloaded; the running routes stay"
                    )
                }
            }
            true
        }
    });
}

/// Runs the gateway on `listener` until `shutdown` resolves; with `config_path`, reloads the
/// configuration when that file changes or on SIGHUP.
pub async fn run(
    config: GatewayConfig,
    config_path: Option<&std::path::Path>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.check()?;
    metrics::handle();
    let gateway: Shared = Arc::new(std::sync::RwLock::new(Arc::new(build(&config).await?)));
    if let Some(path) = config_path {
        reload_on_change(Arc::downgrade(&gateway), path.to_owned(), config.listen);
    }
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_endpoint))
        .route("/.well-known/oauth-protected-resource/{*prefix}", get(protected_resource))
        .fallback(dispatch)
        .with_state(gateway);
    tracing::info!(listen = %listener.local_addr()?, routes = config.routes.len(), "tessera gateway serving");
    // Slow or greedy clients cannot hold the gateway (docs/threat-model.md T-12).
    let default = tessera_listener::Limits::default();
    let limits = tessera_listener::Limits {
        max_connections: config.max_connections.unwrap_or(default.max_connections).max(1),
        max_connections_per_ip: config.max_connections_per_ip.unwrap_or(default.max_connections_per_ip).max(1),
        header_read_timeout: config
            .header_read_timeout
            .map_or(default.header_read_timeout, |s| Duration::from_secs(s.max(1))),
    };
    tessera_listener::serve(listener, None, app, limits, shutdown).await.context("gateway listener")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_are_believed_from_trusted_proxies_only() {
        let gateway = |trusted: &[&str]| Gateway {
            routes: Vec::new(),
            verifiers: Vec::new(),
            metrics_from: Vec::new(),
            trusted_proxies: trusted.iter().map(|n| n.parse().unwrap()).collect(),
            bff: None,
            public_origin: "http://127.0.0.1:1".into(),
        };
        let request = |peer: &str, header: &str| {
            let mut request = Request::new(Body::empty());
            request.headers_mut().insert("client-cert", HeaderValue::from_str(header).unwrap());
            request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
            request
        };
        let certificate = |gateway: &Gateway, mut request: Request| {
            client_certificate(gateway, &mut request);
            request.extensions().get::<tessera_verify::layer::ClientCertificate>().map(|c| c.0.clone())
        };
        let trusting = gateway(&["10.0.0.0/8"]);
        assert_eq!(certificate(&trusting, request("10.1.2.3:4000", ":AQID:")), Some(vec![1, 2, 3]));
        assert_eq!(certificate(&trusting, request("192.0.2.1:4000", ":AQID:")), None, "not a trusted proxy");
        assert_eq!(certificate(&trusting, request("10.1.2.3:4000", "AQID")), None, "not a byte sequence");
        assert_eq!(certificate(&gateway(&[]), request("127.0.0.1:4000", ":AQID:")), None, "no proxy is trusted");
    }
}
