//! Phantom-token mode: the client holds an opaque reference token (`tat_…`); the gateway asks
//! the issuer once for the JWT it stands for (`POST /introspect` with `Accept: application/jwt`),
//! caches it by SHA-256 of the whole opaque token until the token's `exp`, and puts the JWT in
//! `Authorization` in place of the opaque token. `VerifyLayer`, next in line, verifies that JWT
//! like any other (signature, audience, scopes, revocation feed: the JWT carries the opaque
//! token's `jti`), and the upstream never sees the opaque token.
//!
//! Split-token mode is the same exchange with another lookup: the client holds only a JWT's
//! signature part; the gateway fetches the header and payload by SHA-256 of that part
//! (`GET /split-tokens/{hash}`), reassembles the JWT, and the next layer verifies it, so a
//! forged or tampered part fails the signature check.
//!
//! A JWT sent to such a route is refused (it would bypass the reference-token design); an
//! inactive or unknown token is 401; the issuer unreachable, or refusing the gateway for rate
//! reasons (429), is 503 with `Retry-After`; the issuer refusing the gateway's own credentials
//! is 502, never 401.
//!
//! Misses are cheap and bounded (docs/threat-model.md, T-02): a token the issuer called inactive
//! or unknown is remembered (by SHA-256, for [`NEGATIVE_TTL`]) and refused without asking
//! again, and each client address may make the issuer look up at most [`UNKNOWN_LOOKUPS`]
//! unknown tokens at once (then one per second); past that, its requests with tokens the gateway
//! has not cached are 429. A flood of junk tokens therefore costs the issuer a bounded number of
//! lookups per address, and never touches a valid token that is cached or sent from elsewhere.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderValue, StatusCode, header};
use tessera_proto::SecretString;
use tessera_proto::feed::SplitToken;

use crate::ErrorSource;

/// Exchanges reference tokens for JWTs.
#[derive(Clone)]
pub struct PhantomLayer {
    exchange: Arc<Exchange>,
}

/// What the client presents in place of a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// An opaque token (`tat_…`), introspected.
    Phantom,
    /// A JWT's signature part, reassembled.
    Split,
    /// Nothing but JWTs (a `jwt` route), unless API keys are allowed.
    None,
}

struct Exchange {
    kind: Reference,
    /// API keys (`tessera_pat_…`, `tessera_sak_…`) are introspected like phantom tokens.
    api_keys: bool,
    http: reqwest::Client,
    /// The issuer, without a trailing slash.
    issuer: String,
    client_id: String,
    client_secret: SecretString,
    resource_metadata: String,
    /// JWTs by SHA-256 of the whole opaque token, with the token's `exp`.
    cache: moka::sync::Cache<[u8; 32], (Arc<str>, u64)>,
    /// Tokens the issuer called inactive or unknown, by SHA-256 (bounded, [`NEGATIVE_TTL`]).
    negative: moka::sync::Cache<[u8; 32], ()>,
    /// Unknown tokens looked up per client address ([`UNKNOWN_LOOKUPS`]), and the addresses
    /// that spent their allowance, until when.
    unknown_lookups: governor::DefaultKeyedRateLimiter<IpAddr>,
    over_allowance: moka::sync::Cache<IpAddr, std::time::Instant>,
}

/// How long a token the issuer called inactive is refused without asking again. A revoked or
/// unknown token never becomes active, so this only bounds memory.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// Unknown tokens one client address may have the issuer look up at once; then one per second.
pub const UNKNOWN_LOOKUPS: u32 = 20;

impl PhantomLayer {
    /// Exchanges `kind` tokens at `issuer` as the gateway's resource-server client.
    pub fn new(
        kind: Reference,
        api_keys: bool,
        issuer: &str,
        client_id: &str,
        client_secret: &SecretString,
        resource_metadata: &str,
    ) -> anyhow::Result<PhantomLayer> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        Ok(PhantomLayer {
            exchange: Arc::new(Exchange {
                kind,
                api_keys,
                http,
                issuer: issuer.trim_end_matches('/').to_owned(),
                client_id: client_id.to_owned(),
                client_secret: client_secret.clone(),
                resource_metadata: resource_metadata.to_owned(),
                cache: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(86_400))
                    .build(),
                negative: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(NEGATIVE_TTL).build(),
                unknown_lookups: governor::RateLimiter::keyed(
                    governor::Quota::per_second(NonZeroU32::MIN)
                        .allow_burst(NonZeroU32::new(UNKNOWN_LOOKUPS).unwrap_or(NonZeroU32::MIN)),
                ),
                over_allowance: moka::sync::Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(Duration::from_secs(60))
                    .build(),
            }),
        })
    }
}

impl<S> tower::Layer<S> for PhantomLayer {
    type Service = PhantomService<S>;

    fn layer(&self, inner: S) -> PhantomService<S> {
        PhantomService { inner, exchange: self.exchange.clone() }
    }
}

/// The service [`PhantomLayer`] makes.
#[derive(Clone)]
pub struct PhantomService<S> {
    inner: S,
    exchange: Arc<Exchange>,
}

enum Outcome {
    /// Nothing to exchange (no or several `Authorization` headers, another scheme): the next
    /// layer answers.
    PassThrough,
    /// The JWT the reference stands for.
    Replace(Arc<str>),
    Refuse(Response),
}

impl<S> tower::Service<Request> for PhantomService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let exchange = self.exchange.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // The client's address as the gateway saw it (behind `trusted_proxies`, the forwarded one).
            let address = parts.extensions.get::<crate::ClientAddress>().map(|c| tessera_listener::address_key(c.0));
            match exchange.outcome(&parts.headers, address).await {
                Outcome::PassThrough => {}
                Outcome::Replace(jwt) => {
                    // A DPoP-bound reference keeps its scheme; the proof's `ath` hashes the
                    // reference the client sent, which the next layer is told.
                    let (scheme, presented) = presented(&parts.headers).unwrap_or(("Bearer", String::new()));
                    let scheme = if scheme.eq_ignore_ascii_case("dpop") { "DPoP" } else { "Bearer" };
                    if let Ok(value) = HeaderValue::from_str(&format!("{scheme} {jwt}")) {
                        parts.headers.insert(header::AUTHORIZATION, value);
                    }
                    parts.extensions.insert(tessera_verify::layer::PresentedToken(presented));
                }
                Outcome::Refuse(response) => return Ok(response),
            }
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}

/// A refusal: the client's fault when it is a 4xx, the issuer's otherwise.
fn refuse(exchange: &Exchange, status: StatusCode, error: &str, description: &str) -> Response {
    let source = if status.is_client_error() { ErrorSource::Client } else { ErrorSource::Issuer };
    refuse_as(exchange, source, status, error, description)
}

fn refuse_as(exchange: &Exchange, source: ErrorSource, status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = source.answer(status, error, description);
    let headers = response.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = format!(
            "Bearer realm=\"tessera-gateway\", error=\"{error}\", resource_metadata=\"{}\"",
            exchange.resource_metadata
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// 429 for an address that had too many unknown tokens looked up.
fn too_many(wait: u64) -> Response {
    let mut response = ErrorSource::Client.answer(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "too many unknown tokens from this address; try again later",
    );
    if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The `exp` of a JWT, read without checking anything (the next layer verifies the JWT).
fn unverified_exp(jwt: &str) -> Option<u64> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?.get("exp")?.as_u64()
}

/// The scheme (`Bearer` or `DPoP`) and token of the one `Authorization` header.
fn presented(headers: &http::HeaderMap) -> Option<(&'static str, String)> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return None };
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        "Bearer"
    } else if scheme.eq_ignore_ascii_case("dpop") {
        "DPoP"
    } else {
        return None;
    };
    Some((scheme, token.trim().to_owned()))
}

impl Exchange {
    async fn outcome(&self, headers: &http::HeaderMap, address: Option<IpAddr>) -> Outcome {
        let Some((_, token)) = presented(headers) else { return Outcome::PassThrough };
        let token = token.as_str();
        let api_key = tessera_proto::token::looks_like_api_key(token);
        if api_key && !self.api_keys {
            return Outcome::Refuse(refuse(
                self,
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "this route takes no API keys",
            ));
        }
        let kind = if api_key { Reference::Phantom } else { self.kind };
        let fits = match kind {
            Reference::None => return Outcome::PassThrough,
            Reference::Phantom => token.starts_with("tat_") || api_key,
            Reference::Split => {
                (40..=1024).contains(&token.len())
                    && !token.starts_with("tat_")
                    && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }
        };
        if !fits {
            return Outcome::Refuse(refuse(
                self,
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "this route takes reference tokens",
            ));
        }
        let key = crate::sha256(token.as_bytes());
        let mode = match kind {
            Reference::Phantom if api_key => "api_key",
            Reference::Phantom | Reference::None => "phantom",
            Reference::Split => "split",
        };
        if let Some((jwt, exp)) = self.cache.get(&key)
            && exp > crate::now()
        {
            crate::metrics::exchange(mode, "hit");
            return Outcome::Replace(jwt);
        }
        if self.negative.contains_key(&key) {
            crate::metrics::exchange(mode, "negative");
            return Outcome::Refuse(refuse(self, StatusCode::UNAUTHORIZED, "invalid_token", "the token is not active"));
        }
        if let Some(until) = address.and_then(|a| self.over_allowance.get(&a)) {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if !left.is_zero() {
                crate::metrics::exchange(mode, "throttled");
                return Outcome::Refuse(too_many(left.as_secs().max(1)));
            }
        }
        let outcome = self.exchange(kind, token, key).await;
        if let Outcome::Refuse(response) = &outcome
            && response.status() == StatusCode::UNAUTHORIZED
        {
            self.negative.insert(key, ());
            if let Some(address) = address
                && let Err(not_until) = self.unknown_lookups.check_key(&address)
            {
                let clock = governor::clock::DefaultClock::default();
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
                self.over_allowance.insert(address, std::time::Instant::now() + wait.max(Duration::from_secs(1)));
            }
        }
        crate::metrics::exchange(
            mode,
            match &outcome {
                Outcome::Replace(_) => "miss",
                Outcome::Refuse(r) if r.status().is_server_error() => "unavailable",
                _ => "refused",
            },
        );
        outcome
    }

    /// Asks the issuer for the JWT behind `token` (whose SHA-256 is `key`) and caches it.
    async fn exchange(&self, kind: Reference, token: &str, key: [u8; 32]) -> Outcome {
        let request = match kind {
            Reference::Phantom | Reference::None => self
                .http
                .post(format!("{}/introspect", self.issuer))
                .header(header::ACCEPT, "application/jwt")
                .form(&[("token", token)]),
            Reference::Split => {
                let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key);
                self.http.get(format!("{}/split-tokens/{hash}", self.issuer))
            }
        };
        let response = request.basic_auth(&self.client_id, Some(self.client_secret.expose())).send().await;
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                tracing::warn!(err = %err, "introspection failed");
                return Outcome::Refuse(refuse(
                    self,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the token issuer cannot be reached; try again",
                ));
            }
        };
        let status = response.status();
        let is_jwt = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/jwt"));
        // The issuer busy (5xx) or rate-limiting the gateway (429) says nothing about the token.
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            tracing::warn!(%status, "the issuer could not answer the gateway's exchange request");
            return Outcome::Refuse(refuse(
                self,
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the token issuer is unavailable; try again",
            ));
        }
        if kind == Reference::Split && status == StatusCode::NOT_FOUND {
            return Outcome::Refuse(refuse(self, StatusCode::UNAUTHORIZED, "invalid_token", "the token is not known"));
        }
        if !status.is_success() {
            tracing::error!(%status, "the issuer refused the gateway's exchange request");
            return Outcome::Refuse(refuse_as(
                self,
                ErrorSource::Gateway,
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the gateway cannot introspect tokens",
            ));
        }
        let jwt = match kind {
            Reference::Phantom | Reference::None if !is_jwt => {
                return Outcome::Refuse(refuse(
                    self,
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "the token is not active",
                ));
            }
            Reference::Phantom | Reference::None => response.text().await.ok().map(|t| t.trim().to_owned()),
            Reference::Split => {
                response.json::<SplitToken>().await.ok().map(|split| format!("{}.{token}", split.header_payload))
            }
        };
        let Some(jwt) = jwt else {
            return Outcome::Refuse(refuse(self, StatusCode::BAD_GATEWAY, "bad_gateway", "an unreadable answer"));
        };
        let jwt: Arc<str> = Arc::from(jwt);
        if let Some(exp) = unverified_exp(&jwt) {
            self.cache.insert(key, (jwt.clone(), exp));
        }
        Outcome::Replace(jwt)
    }
}
