//! Axum routers and thin handlers: extract, read the clock once, call one flow, map the result.
//! Only this module knows status codes.

mod admin;
mod browser;
mod endpoint;
mod error;
mod feed;
mod registration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::GrantType;
use crate::flows::client_auth::ClientRequest;
use crate::flows::dpop::PresentedProof;
use crate::flows::{self, error::OAuthError};
use crate::form::Form;
use crate::grants;
use crate::tls::ClientCertificate;
use endpoint::EndpointRequest;

pub use admin::admin_app;

/// Request bodies larger than this get 413.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The public listener: protocol endpoints, discovery and health.
pub fn app(state: AppState) -> Router {
    crate::metrics::handle();
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/jwks.json", get(jwks))
        .route("/token", post(token).route_layer(axum::middleware::from_fn_with_state(state.clone(), throttle)))
        .route(
            "/introspect",
            post(introspect).route_layer(axum::middleware::from_fn_with_state(state.clone(), throttle)),
        )
        .route("/revoke", post(revoke).route_layer(axum::middleware::from_fn_with_state(state.clone(), throttle)))
        .route("/par", post(par).route_layer(axum::middleware::from_fn_with_state(state.clone(), throttle)))
        .route(
            "/device_authorization",
            post(device_authorization).route_layer(axum::middleware::from_fn_with_state(state.clone(), throttle)),
        )
        .route("/userinfo", get(userinfo).post(userinfo))
        .route(
            "/revocations",
            get(feed::page).route_layer(axum::middleware::from_fn_with_state(state.clone(), throttle)),
        )
        .route(
            "/revocations/stream",
            get(feed::stream).route_layer(axum::middleware::from_fn_with_state(state.clone(), throttle)),
        )
        .route(
            "/split-tokens/{hash}",
            get(feed::split_token).route_layer(axum::middleware::from_fn_with_state(state.clone(), throttle)),
        )
        .route("/statuslists/{list}", get(status_list))
        .merge(browser::routes())
        .merge(registration::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(public_metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(tower::util::MapRequestLayer::new({
            let trusted: std::sync::Arc<[ipnet::IpNet]> = state.config.trusted_proxies.clone().into();
            move |request| client_certificate(&trusted, request)
        }));
    with_catch_up(router, &state)
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_server_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe_public))
        .with_state(state)
}

/// Marks an introspection answer `active: false`, for the token-scanning throttle.
#[derive(Clone, Copy)]
struct InactiveAnswer;

fn inactive_answer(mut response: Response) -> Response {
    response.extensions_mut().insert(InactiveAnswer);
    response
}

/// 429 with `Retry-After`.
pub(crate) fn too_many(retry_after: u64, why: &str) -> Response {
    let mut response = error::json_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", Some(why));
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Header names looked up on every request, parsed once (a `&str` name is parsed at each lookup).
static X_FORWARDED_FOR: axum::http::HeaderName = axum::http::HeaderName::from_static("x-forwarded-for");
static X_REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// The request's client address (see [`tessera_listener::client_ip`]).
pub(crate) fn request_ip(
    state: &AppState,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
) -> Option<std::net::IpAddr> {
    let peer = extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let forwarded = headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok());
    tessera_listener::client_ip(peer, forwarded, &state.config.trusted_proxies)
}

/// The client id a request claims, before anything is checked: HTTP Basic's user, or the
/// form's `client_id`.
fn claimed_client_id(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let basic =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(flows::client_auth::basic_client_id);
    basic
        .or_else(|| url::form_urlencoded::parse(body).find(|(k, _)| k == "client_id").map(|(_, v)| v.into_owned()))
        .map(|id| id.chars().take(128).collect())
}

/// `/token`, `/introspect`, `/revoke`, `/par`, the revocation feed and `/split-tokens`: the
/// request-rate budgets and failure throttles of `crate::abuse`. Before anything is checked, a
/// request is refused (429) only for what its own address or its own (claimed client id,
/// address) pair did; after the answer, the budget of whoever the request turned out to be is
/// spent: the authenticated confidential client's, or else the address's.
async fn throttle(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return error::json_error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", Some("the body is too large"));
    };
    let abuse = &state.abuse;
    let address = request_ip(&state, &parts.extensions, &parts.headers);
    let ip = address.map(crate::abuse::address_key);
    let claimed = claimed_client_id(&parts.headers, &bytes);
    let pair = claimed.as_ref().map(|id| format!("pair:{id} {}", ip.as_deref().unwrap_or("ip:?")));
    for key in [&ip, &pair].into_iter().flatten() {
        if let Some(wait) = abuse.client_auth.blocked(key) {
            return too_many(wait, "too many failed client authentications; try again later");
        }
    }
    if let Some(wait) = ip.as_deref().and_then(|ip| abuse.per_ip.blocked(ip)) {
        return too_many(wait, "too many requests from this address");
    }
    // Only an authenticated client spends this budget, so only it can exhaust it.
    if let Some(wait) = claimed.as_deref().and_then(|id| abuse.per_client.blocked(&format!("client:{id}"))) {
        return too_many(wait, "too many requests from this client");
    }
    let introspection = parts.uri.path() == "/introspect";
    if introspection && let Some(wait) = claimed.as_deref().and_then(|c| abuse.scans.blocked(&format!("client:{c}"))) {
        return too_many(wait, "too many inactive tokens introspected; try again later");
    }
    let endpoint = parts.uri.path().to_owned();
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    let (mut response, authenticated) = crate::abuse::noting_authentication(next.run(request)).await;
    match &authenticated {
        Some(who) if introspection && who.resource_server => {}
        Some(who) => abuse.per_client.spend(&format!("client:{}", who.client_id)),
        None => {
            if let Some(ip) = &ip {
                abuse.per_ip.spend(ip);
            }
        }
    }
    let now = state.clock.now().secs();
    if response.status() == StatusCode::UNAUTHORIZED {
        for key in [&ip, &pair].into_iter().flatten() {
            abuse.client_auth.failed(key);
        }
        if let Some(id) = &claimed {
            let key = format!("client:{id}");
            abuse.client_id_failures.failed(&key);
            // The last resort: this id is under attack from many addresses. A wrong credential
            // is told to wait; a right one was never refused.
            if let Some(wait) = abuse.client_id_failures.blocked(&key) {
                response = too_many(wait, "too many failed client authentications; try again later");
            }
        }
        let record = Record::new(Event::ClientAuthFailed, now, "anonymous").failed().detail("endpoint", &endpoint);
        audit_quietly(
            &state,
            match &claimed {
                Some(id) => record.client(id),
                None => record,
            },
        )
        .await;
    }
    if introspection
        && response.extensions().get::<InactiveAnswer>().is_some()
        && let Some(who) = &authenticated
    {
        if !who.resource_server {
            abuse.scans.failed(&format!("client:{}", who.client_id));
        }
        audit_quietly(
            &state,
            Record::new(Event::IntrospectionInactive, now, format!("client:{}", who.client_id)).client(&who.client_id),
        )
        .await;
    }
    response
}

/// Records an event that changes nothing else (a refused client, an inactive token): a
/// failure to record it is logged, never turned into a different answer.
fn audit_quietly(state: &AppState, record: Record) -> impl Future<Output = ()> + Send + '_ {
    // The record is handed to the store now, not carried by the throttle's future.
    let written = state.store.audit(record);
    async move {
        if let Err(err) = written.await {
            tracing::error!(err = %err, "cannot write an audit record");
        }
    }
}

/// A request id for logs and the answer: the caller's `X-Request-Id` when it is short and
/// plain (a proxy's), else a fresh one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(crate::secret::unique_id, str::to_owned)
}

/// Every request: a request id (in a tracing span around the handler, so every log line of
/// the request carries it, and in `X-Request-Id` of the answer) and its metrics, by route
/// pattern (never the raw path, which could hold anything).
pub(crate) async fn observe(
    state: &AppState,
    listener: &'static str,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let id = request_id(request.headers());
    let endpoint = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), endpoint = %endpoint);
    // The audit records the request makes name its address and id.
    let context = crate::audit::Context {
        ip: request_ip(state, request.extensions(), request.headers()).map(|ip| ip.to_string()),
        request_id: Some(id.clone()),
        actor: None,
    };
    let mut response = crate::audit::in_context(context, next.run(request)).instrument(span).await;
    crate::metrics::http_request(listener, &endpoint, response.status().as_u16(), started.elapsed());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}

async fn observe_public(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    observe(&state, "public", request, next).await
}

/// `GET /metrics` on the public listener: only for loopback peers whose request did not come
/// through a proxy (scrape the admin listener from elsewhere).
async fn public_metrics(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let peer = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let proxied = request.headers().contains_key(header::FORWARDED) || request.headers().contains_key(&X_FORWARDED_FOR);
    if proxied || !peer.is_some_and(|ip| ip.is_loopback()) {
        return error::json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            Some("metrics are served to loopback peers only"),
        );
    }
    metrics_text(&state).await
}

/// The Prometheus text exposition of this process's metrics.
pub(crate) async fn metrics_text(state: &AppState) -> Response {
    let Some(handle) = crate::metrics::handle() else {
        return error::json_error(StatusCode::NOT_FOUND, "not_found", Some("another metrics recorder is installed"));
    };
    let (size, idle) = state.store.pool_stats();
    let head = state.store.revocation_head().await.unwrap_or(0);
    crate::metrics::sampled(size, idle, head);
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], handle.render())
        .into_response()
}

/// On PostgreSQL, every request first applies what other nodes changed; SQLite has one node
/// and skips the layer.
pub(crate) fn with_catch_up(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    if state.store.backend() == crate::store::Backend::Postgres {
        router.layer(axum::middleware::from_fn_with_state(state.clone(), catch_up))
    } else {
        router
    }
}

/// Before any request: apply what other nodes changed (PostgreSQL; nothing to do on SQLite).
pub(crate) async fn catch_up(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state.catch_up().await;
    next.run(request).await
}

/// Counts 5xx responses (a panic caught below becomes a 500) so tests and operators can see
/// that none happened. A not-ready `/readyz` is an answer, not an error.
pub(crate) async fn count_server_errors(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let readiness = request.uri().path() == "/readyz";
    let response = next.run(request).await;
    if response.status().is_server_error() && !readiness {
        state.server_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    response
}

fn authorization(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => {
            value.to_str().map(Some).map_err(|_| OAuthError::InvalidRequest("Authorization header is not ASCII".into()))
        }
        (Some(_), Some(_)) => Err(OAuthError::InvalidRequest("more than one Authorization header".into())),
    }
}

/// The client certificate of a request, set by the TLS accept loop or from a trusted proxy.
type Certificate = Option<axum::Extension<ClientCertificate>>;

fn client_request<'a>(
    headers: &'a HeaderMap,
    certificate: &'a Certificate,
    endpoint: &'a str,
) -> Result<ClientRequest<'a>, OAuthError> {
    Ok(ClientRequest {
        authorization: authorization(headers)?,
        certificate: certificate.as_ref().map(|c| &c.0),
        endpoint,
        ip: None,
    })
}

/// Client-certificate headers set by TLS-terminating proxies: RFC 9440's, which we read from
/// trusted proxies, and the older ones, which we never read. All are removed from every request
/// before any handler sees it (RFC 9700 §4.13).
const CLIENT_CERT_HEADERS: [&str; 5] =
    ["client-cert", "client-cert-chain", "x-client-cert", "x-ssl-client-cert", "x-forwarded-client-cert"];

/// Takes the client certificate from a trusted proxy's RFC 9440 `Client-Cert` header (when the
/// connection itself brought none) and strips every client-certificate header. Synchronous, so
/// it costs no task hop on the hot path.
pub(crate) fn client_certificate(
    trusted_proxies: &[ipnet::IpNet],
    mut request: axum::extract::Request,
) -> axum::extract::Request {
    let from_proxy = !trusted_proxies.is_empty()
        && request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|remote| trusted_proxies.iter().any(|net| net.contains(&remote.0.ip())));
    if from_proxy && request.extensions().get::<ClientCertificate>().is_none() {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        if let Some(cert) = header("client-cert") {
            match crate::mtls::from_proxy_headers(cert, header("client-cert-chain")) {
                Some(certificate) => {
                    request.extensions_mut().insert(certificate);
                }
                None => tracing::info!("a trusted proxy sent a malformed Client-Cert header"),
            }
        }
    }
    for name in CLIENT_CERT_HEADERS {
        request.headers_mut().remove(name);
    }
    request
}

/// RFC 9449 §4.3 step 1: at most one `DPoP` header, holding one proof.
fn dpop_header(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all("dpop").iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => match value.to_str() {
            Ok(proof) if !proof.contains(',') => Ok(Some(proof.trim())),
            _ => Err(OAuthError::InvalidDpopProof("the DPoP header holds more than one proof or is not ASCII")),
        },
        (Some(_), Some(_)) => Err(OAuthError::InvalidDpopProof("more than one DPoP header")),
    }
}

/// RFC 6749 §3.2: token endpoint requests are `application/x-www-form-urlencoded`.
fn form(headers: &HeaderMap, body: &Bytes) -> Result<Form, OAuthError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::InvalidRequest("the body must be application/x-www-form-urlencoded".into()));
    }
    Form::parse(body).map_err(|e| OAuthError::InvalidRequest(e.0))
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn token(State(state): State<AppState>, request: EndpointRequest) -> Response {
    let result = async {
        let (form, now) = (&request.form, request.now);
        let proof = request.proof()?;
        let grant_type = GrantType::of(form)?;
        if grant_type == Some(GrantType::TokenExchange) {
            let peer = request.peer.map(|ip| ip.to_string());
            // Boxed, so that every other grant's request future stays small.
            return Box::pin(grants::token_exchange::grant(&state, form, &proof, peer, now)).await;
        }
        grants::token(&state, grant_type, &request.client()?, form, &proof, now).await
    }
    .await;
    no_store(match result {
        Ok(response) => Json(response).into_response(),
        Err(err) => err.into_response(),
    })
}

async fn introspect(State(state): State<AppState>, request: EndpointRequest) -> Response {
    let (form, now) = (&request.form, request.now);
    let accepts = |media: &str| {
        request.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| {
            accept.split(',').any(|t| t.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(media))
        })
    };
    if accepts("application/token-introspection+jwt") {
        let result = async { flows::introspect::introspect_rfc9701(&state, &request.client()?, form, now).await }.await;
        return no_store(match result {
            Ok(jwt) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/token-introspection+jwt"))], jwt)
                .into_response(),
            Err(err) => err.into_response(),
        });
    }
    let wants_jwt = accepts("application/jwt");
    if wants_jwt {
        let result = async { flows::introspect::introspect_as_jwt(&state, &request.client()?, form, now).await }.await;
        return no_store(match result {
            Ok(Some(jwt)) => {
                ([(header::CONTENT_TYPE, HeaderValue::from_static("application/jwt"))], jwt).into_response()
            }
            Ok(None) => inactive_answer(Json(tessera_proto::token::IntrospectionResponse::inactive()).into_response()),
            Err(err) => err.into_response(),
        });
    }
    let result = async { flows::introspect::introspect(&state, &request.client()?, form, now).await }.await;
    no_store(match result {
        Ok(response) if !response.active => inactive_answer(Json(response).into_response()),
        Ok(response) => Json(response).into_response(),
        Err(err) => err.into_response(),
    })
}

async fn revoke(State(state): State<AppState>, request: EndpointRequest) -> Response {
    let result = async { flows::revoke::revoke(&state, &request.client()?, &request.form, request.now).await }.await;
    no_store(match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => err.into_response(),
    })
}

async fn par(State(state): State<AppState>, request: EndpointRequest) -> Response {
    let result = async {
        flows::authorize::push(&state, &request.client()?, &request.form, &request.proof()?, request.now).await
    }
    .await;
    no_store(match result {
        Ok((request_uri, expires_in)) => {
            let pushed = tessera_proto::token::PushedAuthorizationResponse { request_uri, expires_in };
            (StatusCode::CREATED, Json(pushed)).into_response()
        }
        Err(err) => err.into_response(),
    })
}

/// `POST /device_authorization` (RFC 8628 §3.1): each address may ask for
/// [`crate::abuse::DEVICE_AUTHORIZATIONS`] device codes at once, then one every three seconds.
async fn device_authorization(State(state): State<AppState>, request: EndpointRequest) -> Response {
    let key = format!("device:{}", request.ip.map_or_else(|| "?".to_owned(), crate::abuse::address_key));
    if let Some(wait) = state.abuse.device_authorizations.blocked(&key) {
        let mut response = error::json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            Some("too many device codes asked for from this address; try again later"),
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return no_store(response);
    }
    let result = async {
        let ip = request.ip.map(|ip| ip.to_string());
        flows::device::start(&state, &request.client()?, &request.form, ip, request.now).await
    }
    .await;
    if result.is_ok() {
        state.abuse.device_authorizations.failed(&key);
    }
    no_store(match result {
        Ok(answer) => Json(answer).into_response(),
        Err(err) => err.into_response(),
    })
}

async fn userinfo(
    State(state): State<AppState>,
    certificate: Certificate,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    use flows::userinfo::UserinfoError;
    let now = state.clock.now();
    let url = state.config.issuer.join("/userinfo");
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let result = match dpop_header(&headers) {
        Ok(proof) => {
            let proof = PresentedProof { proof, method: method.as_str(), url: &url };
            flows::userinfo::userinfo(&state, authorization, &proof, certificate.as_ref().map(|c| &c.0), now).await
        }
        Err(_) => Err(UserinfoError::InvalidDpopProof),
    };
    no_store(match result {
        Ok(claims) => Json(claims).into_response(),
        Err(err) => err.into_response(),
    })
}

async fn discovery(State(state): State<AppState>) -> Response {
    let mut response = Json(flows::discovery::metadata(&state.config)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// `GET /statuslists/{n}`: the signed status list token (draft-ietf-oauth-status-list §8),
/// public like the key set, cacheable for its `ttl`.
async fn status_list(
    State(state): State<AppState>,
    axum::extract::Path(list): axum::extract::Path<String>,
) -> Response {
    let Some(list) = list.parse::<u64>().ok().filter(|_| list.len() <= 12 && !list.starts_with('+')) else {
        return error::json_error(StatusCode::NOT_FOUND, "not_found", Some("no such status list"));
    };
    match flows::status_list::token(&state, list, state.clock.now()).await {
        Ok(Some(token)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/statuslist+jwt")),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60")),
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
            ],
            token,
        )
            .into_response(),
        Ok(None) => error::json_error(StatusCode::NOT_FOUND, "not_found", Some("no such status list")),
        Err(err) => OAuthError::from(err).into_response(),
    }
}

async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.keys.current();
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        ],
        keys.jwks_json.clone(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.store.ping().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
    }
}

async fn not_found() -> Response {
    error::json_error(StatusCode::NOT_FOUND, "not_found", Some("no such endpoint"))
}
