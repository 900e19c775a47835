//! A `tower::Layer` that admits only requests with a valid access token (feature `remote`).
//!
//! It reads exactly one `Authorization` header (`Bearer` or, with one `DPoP` proof header,
//! `DPoP`; the scheme in any case), verifies the token with a [`RemoteVerifier`], checks the
//! required scopes, and puts the verified [`Claims`] into the request's extensions for the
//! handler. Everything else is answered here, as RFC 6750 §3 and RFC 9449 §7.1 say: 401 with a
//! `WWW-Authenticate` challenge for a missing or invalid token, 403 `insufficient_scope`, 400
//! for a token in the query string or a duplicated header, and 503 (never 401) when the issuer's
//! keys or revocation feed are unavailable.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_verify::layer::VerifyLayer;
//! use tessera_verify::remote::RemoteVerifier;
//! let verifier = RemoteVerifier::builder("https://id.example.com", "https://api.example.com").build().await?;
//! let layer = VerifyLayer::new(verifier).public_origin("https://api.example.com").require_scope("invoices:read");
//! // axum: Router::new().route("/invoices", get(list)).layer(layer);
//! // handler: async fn list(Extension(claims): Extension<tessera_verify::Claims>) -> … {}
//! # let _ = layer; Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode, header};
use tessera_proto::UnixTime;

use crate::dpop::{DpopNonces, DpopPolicy, ResourceRequest};
use crate::remote::{RemoteError, RemoteVerifier};
use crate::{Claims, VerifyError};

/// The client's TLS certificate (DER) for this request, put into the request's extensions by
/// whatever terminated TLS (the server's accept loop, or a proxy header believed only from a
/// trusted proxy): with it, certificate-bound tokens (RFC 8705 §3) are accepted as `Bearer`.
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Vec<u8>);

/// The client's address for this request, put into the request's extensions by the embedding
/// service (from its peer address, or a trusted proxy's `X-Forwarded-For`): with it, each
/// address may have the issuer look up at most [`UNKNOWN_KEY_LOOKUPS`] unknown API keys at once
/// (then one a second; 429 past that), so junk keys cannot make the issuer work for one
/// client without bound.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub std::net::IpAddr);

/// Unknown API keys one client address may have looked up at once (see [`ClientAddress`]).
pub const UNKNOWN_KEY_LOOKUPS: u32 = 20;

/// The token the client actually presented, when an earlier layer put the JWT it stands for
/// into `Authorization` (phantom and split tokens): a DPoP proof's `ath` hashes this one.
#[derive(Clone, Debug)]
pub struct PresentedToken(pub String);

/// Protects a service with a [`RemoteVerifier`].
#[derive(Clone, Debug)]
pub struct VerifyLayer {
    config: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    verifier: RemoteVerifier,
    public_origin: Option<String>,
    scopes: Vec<String>,
    realm: String,
    resource_metadata: Option<String>,
    dpop_max_age: u64,
    dpop_nonces: Option<Arc<DpopNonces>>,
    unknown_keys: Arc<UnknownKeys>,
}

/// Addresses that presented unknown API keys, and those over their allowance until when.
struct UnknownKeys {
    lookups: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
    over: moka::sync::Cache<std::net::IpAddr, std::time::Instant>,
}

impl std::fmt::Debug for UnknownKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnknownKeys").field("over", &self.over.entry_count()).finish()
    }
}

impl Default for UnknownKeys {
    fn default() -> UnknownKeys {
        let burst = std::num::NonZeroU32::new(UNKNOWN_KEY_LOOKUPS).unwrap_or(std::num::NonZeroU32::MIN);
        UnknownKeys {
            lookups: governor::RateLimiter::keyed(
                governor::Quota::per_second(std::num::NonZeroU32::MIN).allow_burst(burst),
            ),
            over: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(60))
                .build(),
        }
    }
}

impl UnknownKeys {
    /// Seconds until `address` may have unknown keys looked up again.
    fn blocked(&self, address: std::net::IpAddr) -> Option<u64> {
        let left = self.over.get(&address)?.saturating_duration_since(std::time::Instant::now());
        (!left.is_zero()).then(|| left.as_secs().max(1))
    }

    /// Counts an unknown key from `address`.
    fn unknown(&self, address: std::net::IpAddr) {
        if let Err(not_until) = self.lookups.check_key(&address) {
            let clock = governor::clock::DefaultClock::default();
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
            self.over.insert(address, std::time::Instant::now() + wait.max(std::time::Duration::from_secs(1)));
        }
    }
}

/// How old a DPoP proof's `iat` may be at a resource, unless [`VerifyLayer::dpop_max_age`] says.
pub const DPOP_MAX_AGE: u64 = 60;

impl VerifyLayer {
    /// A layer that accepts tokens `verifier` accepts.
    pub fn new(verifier: RemoteVerifier) -> VerifyLayer {
        VerifyLayer {
            config: Arc::new(Config {
                verifier,
                public_origin: None,
                scopes: Vec::new(),
                realm: "api".into(),
                resource_metadata: None,
                dpop_max_age: DPOP_MAX_AGE,
                dpop_nonces: None,
                unknown_keys: Arc::default(),
            }),
        }
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> VerifyLayer {
        let mut config = Arc::try_unwrap(self.config).unwrap_or_else(|shared| Config {
            verifier: shared.verifier.clone(),
            public_origin: shared.public_origin.clone(),
            scopes: shared.scopes.clone(),
            realm: shared.realm.clone(),
            resource_metadata: shared.resource_metadata.clone(),
            dpop_max_age: shared.dpop_max_age,
            dpop_nonces: shared.dpop_nonces.clone(),
            unknown_keys: shared.unknown_keys.clone(),
        });
        change(&mut config);
        VerifyLayer { config: Arc::new(config) }
    }

    /// The scheme and authority clients use to reach this service (`https://api.example.com`),
    /// against which DPoP proofs' `htu` is checked. Defaults to `https://` and the `Host` header.
    pub fn public_origin(self, origin: &str) -> VerifyLayer {
        let origin = origin.trim_end_matches('/').to_owned();
        self.with(|c| c.public_origin = Some(origin))
    }

    /// A scope every request's token must carry (repeat for several).
    pub fn require_scope(self, scope: &str) -> VerifyLayer {
        let scope = scope.to_owned();
        self.with(|c| c.scopes.push(scope))
    }

    /// The URL of this resource's RFC 9728 metadata, named in every challenge
    /// (`resource_metadata`, RFC 9728 §5.1).
    pub fn resource_metadata(self, url: &str) -> VerifyLayer {
        let url = url.to_owned();
        self.with(|c| c.resource_metadata = Some(url))
    }

    /// How old a DPoP proof's `iat` may be, in seconds. Defaults to [`DPOP_MAX_AGE`] (60).
    pub fn dpop_max_age(self, seconds: u64) -> VerifyLayer {
        self.with(|c| c.dpop_max_age = seconds)
    }

    /// Requires DPoP proofs to carry a nonce from `nonces` (RFC 9449 §9): a proof without a
    /// current one is answered 401 `use_dpop_nonce`, and every answer carries a fresh nonce in
    /// `DPoP-Nonce`. Every node sharing the nonce key accepts every node's nonces. Defaults to
    /// no nonces.
    pub fn dpop_nonces(self, nonces: DpopNonces) -> VerifyLayer {
        let nonces = Arc::new(nonces);
        self.with(|c| c.dpop_nonces = Some(nonces))
    }

    /// The `realm` of the challenges. Defaults to `api`.
    pub fn realm(self, realm: &str) -> VerifyLayer {
        let realm = realm.to_owned();
        self.with(|c| c.realm = realm)
    }
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> VerifyService<S> {
        VerifyService { inner, config: self.config.clone() }
    }
}

/// The service [`VerifyLayer`] makes.
#[derive(Clone, Debug)]
pub struct VerifyService<S> {
    inner: S,
    config: Arc<Config>,
}

/// Why a request was turned away.
enum Refusal {
    /// No token at all (RFC 6750 §3.1: a challenge without an error code).
    NoToken,
    BadRequest(&'static str),
    /// RFC 6750 §2.3 is refused (SECURITY-TESTS GW-07): 401, so no client mistakes it for success.
    TokenInQuery,
    InvalidToken {
        dpop: bool,
        proof: bool,
        description: String,
    },
    InsufficientScope,
    Unavailable,
    /// RFC 9449 §9: the proof must carry a current nonce of this resource.
    UseDpopNonce,
    /// The client's address presented too many unknown API keys (seconds to wait).
    TooManyUnknownKeys(u64),
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for VerifyService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready serves this request; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            // The body is not looked at (nor held across the verification).
            let (mut parts, body) = request.into_parts();
            let mut response = match admit(&config, &parts).await {
                Ok(claims) => {
                    parts.extensions.insert(claims);
                    inner.call(Request::from_parts(parts, body)).await?
                }
                Err(refusal) => refuse(&config, refusal),
            };
            // RFC 9449 §9: every answer carries the nonce the next proof should use.
            if let Some(nonce) = config.dpop_nonces.as_ref().and_then(|n| HeaderValue::from_str(&n.current(now())).ok())
            {
                response.headers_mut().insert("dpop-nonce", nonce);
            }
            Ok(response)
        })
    }
}

fn now() -> UnixTime {
    // The layer is the edge where the wall clock is read; everything below takes `now`.
    #[allow(clippy::disallowed_methods)]
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    UnixTime(since.as_secs())
}

async fn admit(config: &Config, request: &http::request::Parts) -> Result<Claims, Refusal> {
    // RFC 6750 §2.3 is not offered: a token in the query string leaks into logs (RFC 9700 §4.3.2).
    let query = request.uri.query().unwrap_or("");
    if query.split('&').any(|pair| pair.split('=').next() == Some("access_token"))
        || query.contains(tessera_proto::token::USER_API_KEY_PREFIX)
        || query.contains(tessera_proto::token::CLIENT_API_KEY_PREFIX)
    {
        return Err(Refusal::TokenInQuery);
    }
    let mut authorizations = request.headers.get_all(header::AUTHORIZATION).iter();
    let authorization = match (authorizations.next(), authorizations.next()) {
        (None, _) => return Err(Refusal::NoToken),
        (Some(value), None) => value.to_str().map_err(|_| Refusal::BadRequest("Authorization is not ASCII"))?,
        (Some(_), Some(_)) => return Err(Refusal::BadRequest("more than one Authorization header")),
    };
    let (scheme, token) = authorization.split_once(' ').ok_or(Refusal::NoToken)?;
    let token = token.trim();
    let now = now();
    let result = if scheme.eq_ignore_ascii_case("bearer") && tessera_proto::token::looks_like_api_key(token) {
        let address = request.extensions.get::<ClientAddress>().map(|a| a.0);
        if let Some(wait) = address.and_then(|a| config.unknown_keys.blocked(a)) {
            return Err(Refusal::TooManyUnknownKeys(wait));
        }
        let verified = config.verifier.verify_api_key(token, now).await;
        if let (Err(RemoteError::Invalid(_)), Some(address)) = (&verified, address) {
            config.unknown_keys.unknown(address);
        }
        verified
    } else if scheme.eq_ignore_ascii_case("bearer") {
        let certificate = request.extensions.get::<ClientCertificate>().map(|c| c.0.as_slice());
        config.verifier.verify_bearer(token, certificate, now).await
    } else if scheme.eq_ignore_ascii_case("dpop") {
        let mut proofs = request.headers.get_all("dpop").iter();
        let proof = match (proofs.next(), proofs.next()) {
            (Some(proof), None) => proof.to_str().unwrap_or(""),
            _ => {
                return Err(Refusal::InvalidToken {
                    dpop: true,
                    proof: true,
                    description: "exactly one DPoP proof is required".into(),
                });
            }
        };
        let url = match &config.public_origin {
            Some(origin) => format!("{origin}{}", request.uri.path()),
            None => {
                let host = request.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
                format!("https://{host}{}", request.uri.path())
            }
        };
        // RFC 9449 §9: with nonces, the proof's own nonce must be one this resource issued (on
        // any node sharing the key); the proof is then verified with that nonce required.
        let claimed = crate::dpop::unverified_nonce(proof);
        let nonce = match &config.dpop_nonces {
            None => None,
            Some(nonces) => match claimed.as_deref() {
                Some(nonce) if nonces.accepts(nonce, now) => Some(nonce),
                _ => return Err(Refusal::UseDpopNonce),
            },
        };
        let policy = DpopPolicy { max_age: config.dpop_max_age, ..DpopPolicy::default() };
        let resource = ResourceRequest { method: request.method.as_str(), url: &url, nonce, policy };
        let presented = request.extensions.get::<PresentedToken>().map_or(token, |p| p.0.as_str());
        config.verifier.verify_dpop_presented(token, presented, proof, &resource, now).await
    } else {
        return Err(Refusal::NoToken);
    };
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    let claims = result.map_err(|err| match err {
        RemoteError::Unavailable(_) => Refusal::Unavailable,
        RemoteError::Invalid(VerifyError::UseDpopNonce) => Refusal::UseDpopNonce,
        RemoteError::Invalid(VerifyError::InvalidDpopProof(why)) => {
            Refusal::InvalidToken { dpop: true, proof: true, description: why.into() }
        }
        RemoteError::Invalid(err @ (VerifyError::ReplayedProof | VerifyError::WrongBinding("DPoP key"))) if dpop => {
            Refusal::InvalidToken { dpop: true, proof: true, description: err.to_string() }
        }
        RemoteError::Invalid(err @ VerifyError::WrongBinding("client certificate")) => {
            Refusal::InvalidToken { dpop: false, proof: false, description: err.to_string() }
        }
        RemoteError::Invalid(VerifyError::SenderConstrained) => Refusal::InvalidToken {
            dpop: true,
            proof: false,
            description: "the token is DPoP- or certificate-bound".into(),
        },
        other => Refusal::InvalidToken { dpop, proof: false, description: other.to_string() },
    })?;
    let granted: Vec<&str> = claims.scope.as_deref().unwrap_or("").split(' ').collect();
    if !config.scopes.iter().all(|s| granted.contains(&s.as_str())) {
        return Err(Refusal::InsufficientScope);
    }
    Ok(claims)
}

fn refuse<B: From<String>>(config: &Config, refusal: Refusal) -> Response<B> {
    let realm = &config.realm;
    let quoted = |s: &str| s.replace(['"', '\\'], "'");
    let (status, challenge, error, description) = match refusal {
        Refusal::NoToken => (
            StatusCode::UNAUTHORIZED,
            Some(format!("Bearer realm=\"{realm}\"")),
            "invalid_request",
            "an access token is required".to_owned(),
        ),
        Refusal::BadRequest(why) => (
            StatusCode::BAD_REQUEST,
            Some(format!("Bearer realm=\"{realm}\", error=\"invalid_request\"")),
            "invalid_request",
            why.to_owned(),
        ),
        Refusal::TokenInQuery => (
            StatusCode::UNAUTHORIZED,
            Some(format!("Bearer realm=\"{realm}\", error=\"invalid_request\"")),
            "invalid_request",
            "access tokens are accepted in the Authorization header only".to_owned(),
        ),
        Refusal::InvalidToken { dpop, proof, description } => {
            let error = if proof { "invalid_dpop_proof" } else { "invalid_token" };
            let scheme = if dpop { "DPoP" } else { "Bearer" };
            let algs = if dpop { ", algs=\"ES256 EdDSA PS256 RS256\"" } else { "" };
            let challenge = format!(
                "{scheme} realm=\"{realm}\", error=\"{error}\", error_description=\"{}\"{algs}",
                quoted(&description)
            );
            (StatusCode::UNAUTHORIZED, Some(challenge), error, description)
        }
        Refusal::InsufficientScope => {
            let scope = config.scopes.join(" ");
            let challenge = format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scope}\"");
            (StatusCode::FORBIDDEN, Some(challenge), "insufficient_scope", format!("requires scope {scope}"))
        }
        Refusal::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "temporarily_unavailable",
            "the token issuer cannot be reached; try again".to_owned(),
        ),
        Refusal::TooManyUnknownKeys(wait) => {
            let body = serde_json::json!({
                "error": "too_many_requests",
                "error_description": "too many unknown API keys from this address; try again later",
            });
            let mut response = Response::new(B::from(body.to_string()));
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        Refusal::UseDpopNonce => (
            StatusCode::UNAUTHORIZED,
            Some(format!(
                "DPoP realm=\"{realm}\", error=\"use_dpop_nonce\", error_description=\"a current DPoP nonce is required\", algs=\"ES256 EdDSA PS256 RS256\""
            )),
            "use_dpop_nonce",
            "a current DPoP nonce is required (see DPoP-Nonce)".to_owned(),
        ),
    };
    let body = serde_json::json!({"error": error, "error_description": description}).to_string();
    let mut response = Response::new(B::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let challenge = challenge.map(|c| match &config.resource_metadata {
        Some(url) => format!("{c}, resource_metadata=\"{url}\""),
        None => c,
    });
    if let Some(challenge) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::WWW_AUTHENTICATE, challenge);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
