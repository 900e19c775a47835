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

use std::collections::HashMap;
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
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tessera_verify::Claims;
use tessera_verify::layer::VerifyLayer;
use tessera_verify::remote::RemoteVerifier;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

pub use canonical::canonical_path;
use canonical::{CLIENT_ROUTING_HEADERS, IDENTITY_HEADERS, connection_ok, strip};
pub use config::{GatewayConfig, Mode, RouteConfig};

pub mod bff;
mod canonical;
mod config;
mod metrics;
pub mod phantom;

/// How long a gateway DPoP nonce lasts: the window it names and the next.
const DPOP_NONCE_WINDOW: u64 = 60;

type RouteService = BoxCloneSyncService<Request, Response, std::convert::Infallible>;

/// The client's address, in each request's extensions: the peer's, or from a peer in
/// `trusted_proxies` the nearest untrusted `X-Forwarded-For` hop. Throttles key on it, and the
/// upstream gets it as `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub(crate) std::net::IpAddr);

struct Route {
    config: RouteConfig,
    service: RouteService,
    metadata: serde_json::Value,
}

struct Gateway {
    routes: Vec<Route>,
    /// One verifier per audience.
    verifiers: Vec<(String, RemoteVerifier)>,
    metrics_from: Vec<ipnet::IpNet>,
    trusted_proxies: Vec<ipnet::IpNet>,
    bff: Option<Arc<bff::Bff>>,
}

/// A JSON body that is never cached.
fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `{"error", "error_description"}`, never cached.
fn json_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, &serde_json::json!({"error": error, "error_description": description}))
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

/// Builds the gateway: one verifier per audience (each following the revocation feed), and a
/// verifying proxy service per route.
async fn build(config: &GatewayConfig) -> anyhow::Result<Gateway> {
    let mut connector = HttpConnector::new();
    // Small request/response exchanges: never let Nagle's algorithm hold one back.
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let mut by_audience: HashMap<String, RemoteVerifier> = HashMap::new();
    let mut routes = Vec::new();
    let origin = config.public_origin.trim_end_matches('/');
    let token_handler = match &config.bff {
        Some(bff) => {
            Some(Arc::new(bff::Bff::new(bff, &config.issuer, origin).await.context("setting up the token handler")?))
        }
        None => None,
    };
    for route in &config.routes {
        let verifier = match by_audience.get(&route.audience) {
            Some(verifier) => verifier.clone(),
            None => {
                let verifier = RemoteVerifier::builder(&config.issuer, &route.audience)
                    .revocation_feed(&config.client_id, config.client_secret.expose())
                    .max_feed_outage(Duration::from_secs(config.max_feed_outage))
                    .build()
                    .await
                    .with_context(|| format!("following the issuer for audience {}", route.audience))?;
                by_audience.insert(route.audience.clone(), verifier.clone());
                verifier
            }
        };
        let metadata_url = format!("{origin}/.well-known/oauth-protected-resource{}", route.prefix);
        let mut layer = VerifyLayer::new(verifier)
            .public_origin(origin)
            .resource_metadata(&metadata_url)
            .realm("tessera-gateway")
            .dpop_max_age(config.dpop_max_age.unwrap_or(tessera_verify::layer::DPOP_MAX_AGE));
        if route.dpop_nonce {
            let nonces = tessera_verify::dpop::DpopNonces::new(&config.dpop_nonce_key_bytes()?, DPOP_NONCE_WINDOW)
                .map_err(|err| anyhow::anyhow!("dpop_nonce_key: {err}"))?;
            layer = layer.dpop_nonces(nonces);
        }
        for scope in &route.scopes {
            layer = layer.require_scope(scope);
        }
        let upstream = route.upstream.trim_end_matches('/').to_owned();
        let client = client.clone();
        let scheme = if origin.starts_with("https://") { "https" } else { "http" };
        let proxy = tower::service_fn(move |request: Request| {
            let (client, upstream) = (client.clone(), upstream.clone());
            async move { Ok::<_, std::convert::Infallible>(forward(&client, &upstream, scheme, request).await) }
        });
        let reference = match route.mode {
            Mode::Phantom => Some(phantom::Reference::Phantom),
            Mode::Split => Some(phantom::Reference::Split),
            Mode::Jwt if route.api_keys => Some(phantom::Reference::None),
            _ => None,
        };
        let service = if let Some(kind) = reference {
            let phantom = phantom::PhantomLayer::new(
                kind,
                route.api_keys,
                &config.issuer,
                &config.client_id,
                &config.client_secret,
                &metadata_url,
            )?;
            BoxCloneSyncService::new(tower::ServiceBuilder::new().layer(phantom).layer(layer).service(proxy))
        } else if let (true, Some(handler)) = (route.mode == Mode::Bff, &token_handler) {
            let verified = BoxCloneSyncService::new(tower::ServiceBuilder::new().layer(layer).service(proxy));
            let handler = handler.clone();
            BoxCloneSyncService::new(tower::service_fn(move |request: Request| {
                let (handler, verified) = (handler.clone(), verified.clone());
                async move { Ok::<_, std::convert::Infallible>(through_token_handler(&handler, verified, request).await) }
            }))
        } else {
            BoxCloneSyncService::new(tower::ServiceBuilder::new().layer(layer).service(proxy))
        };
        // RFC 9728 §2.
        let metadata = serde_json::json!({
            "resource": route.audience,
            "authorization_servers": [config.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": route.scopes,
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA", "PS256", "RS256"],
        });
        routes.push(Route { config: route.clone(), service, metadata });
    }
    Ok(Gateway {
        routes,
        verifiers: by_audience.into_iter().collect(),
        metrics_from: config.metrics_from.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        bff: token_handler,
    })
}

/// A `bff` route: the token handler admits the browser's request and attaches the session's
/// access token, then the token is verified and the request proxied like any other.
async fn through_token_handler(handler: &bff::Bff, verified: RouteService, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    let mut request_headers = HeaderMap::new();
    if let Some(origin) = origin {
        request_headers.insert(header::ORIGIN, origin);
    }
    let mut response = match handler.admit(&mut parts).await {
        Err(response) => response,
        Ok(renewed) => {
            let mut response = match verified.oneshot(Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            if let Some(cookie) = renewed {
                bff::set_cookie(&mut response, &cookie);
            }
            response
        }
    };
    handler.decorate(&request_headers, &mut response);
    response
}

fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The route for a normal path: the longest prefix that ends at a segment boundary.
fn route_for<'a>(gateway: &'a Gateway, path: &str) -> Option<&'a Route> {
    gateway
        .routes
        .iter()
        .filter(|r| {
            let prefix = r.config.prefix.trim_end_matches('/');
            path == prefix || path.starts_with(&format!("{prefix}/")) || prefix.is_empty()
        })
        .max_by_key(|r| r.config.prefix.len())
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
    metrics::request(&label, response.status().as_u16(), started.elapsed());
    response
}

/// Answers one request; with the label its metrics go under (the route prefix, or `bff`,
/// `static`, `none`, `invalid`).
async fn handle(gateway: &Gateway, mut request: Request) -> (String, Response) {
    let path = match canonical_path(request.uri().path()) {
        Ok(path) => path,
        Err(why) => return ("invalid".into(), json_error(StatusCode::BAD_REQUEST, "invalid_request", why)),
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
                    json_error(StatusCode::BAD_REQUEST, "invalid_request", "bad request target"),
                );
            }
        }
    }
    if !connection_ok(request.headers()) {
        return (
            "invalid".into(),
            json_error(
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
            json_error(
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
        return ("none".into(), json_error(StatusCode::NOT_FOUND, "not_found", "no route for this path"));
    };
    let label = route.config.prefix.clone();
    let methods = &route.config.methods;
    if !methods.is_empty() && !methods.iter().any(|m| m.eq_ignore_ascii_case(request.method().as_str())) {
        let mut response = json_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here");
        if let Ok(allow) = HeaderValue::from_str(&methods.join(", ")) {
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
        return json_error(StatusCode::FORBIDDEN, "forbidden", "metrics are not served to this address");
    }
    let Some(handle) = metrics::handle() else {
        return json_error(StatusCode::NOT_FOUND, "not_found", "another metrics recorder is installed in this process");
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

/// Sends the admitted request upstream and returns its answer.
async fn forward(
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
        return json_error(StatusCode::BAD_REQUEST, "invalid_request", "the request target cannot be forwarded");
    };
    let original_host = parts.headers.get(header::HOST).cloned();
    strip(&mut parts.headers);
    for name in IDENTITY_HEADERS.iter().chain(&CLIENT_ROUTING_HEADERS) {
        parts.headers.remove(*name);
    }
    let own: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-tessera-") || name.as_str().starts_with("x-forwarded-"))
        .cloned()
        .collect();
    for name in own {
        parts.headers.remove(name);
    }
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
    let outbound = http::Request::from_parts(parts, body);
    match tokio::time::timeout(Duration::from_secs(30), client.request(outbound)).await {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(err)) => {
            tracing::warn!(err = %err, "upstream unreachable");
            json_error(StatusCode::BAD_GATEWAY, "bad_gateway", "the upstream cannot be reached")
        }
        Err(_) => json_error(StatusCode::GATEWAY_TIMEOUT, "gateway_timeout", "the upstream did not answer in time"),
    }
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
        None => json_error(StatusCode::NOT_FOUND, "not_found", "no such protected resource"),
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
