//! The route table: what a gateway configuration builds (one verifier per audience, following
//! the revocation feed; per route a verifying proxy service, through the phantom/split exchange or
//! the token handler as the route's [`Mode`] says, and its RFC 9728 metadata), and which route a
//! canonical path goes to (the longest prefix ending at a segment boundary).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, Method, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tessera_verify::layer::VerifyLayer;
use tessera_verify::remote::RemoteVerifier;
use tower::ServiceExt as _;
use tower::util::BoxCloneSyncService;

use crate::{GatewayConfig, Mode, RouteConfig, bff, phantom, proxy};

/// How long a gateway DPoP nonce lasts: the window it names and the next.
const DPOP_NONCE_WINDOW: u64 = 60;

pub(crate) type RouteService = BoxCloneSyncService<Request, Response, std::convert::Infallible>;

/// A route as served: its configuration, the service that verifies and forwards, and its RFC 9728
/// metadata.
pub(crate) struct Route {
    pub(crate) config: RouteConfig,
    pub(crate) service: RouteService,
    pub(crate) metadata: serde_json::Value,
}

/// The routes in force and what serving them needs; a reload swaps it whole.
pub(crate) struct Gateway {
    pub(crate) routes: Vec<Route>,
    /// One verifier per audience.
    pub(crate) verifiers: Vec<(String, RemoteVerifier)>,
    pub(crate) metrics_from: Vec<ipnet::IpNet>,
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    pub(crate) bff: Option<Arc<bff::Bff>>,
    /// `scheme://host[:port]` clients use: the only origin an absolute-form target may name.
    pub(crate) public_origin: String,
}

/// Builds the gateway: one verifier per audience (each following the revocation feed), and a
/// verifying proxy service per route.
pub(crate) async fn build(config: &GatewayConfig) -> anyhow::Result<Gateway> {
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
            async move { Ok::<_, std::convert::Infallible>(proxy::forward(&client, &upstream, scheme, request).await) }
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
        public_origin: config.public_origin.trim_end_matches('/').to_ascii_lowercase(),
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

pub(crate) fn is_preflight(request: &Request) -> bool {
    request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ORIGIN)
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The route for a normal path: the longest prefix that ends at a segment boundary.
pub(crate) fn route_for<'a>(gateway: &'a Gateway, path: &str) -> Option<&'a Route> {
    gateway
        .routes
        .iter()
        .filter(|r| {
            let prefix = r.config.prefix.trim_end_matches('/');
            path == prefix || path.starts_with(&format!("{prefix}/")) || prefix.is_empty()
        })
        .max_by_key(|r| r.config.prefix.len())
}
