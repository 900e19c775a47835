//! Verification against a live Tessera issuer (feature `remote`, on by default): discovery,
//! a JWKS cache that fetches again for an unknown `kid` at most once per interval, a cache of
//! verified tokens bounded by their `exp`, and revocations from the issuer's revocation feed
//! (Server-Sent Events), applied to every token, cached or not.
//!
//! Unlike the rest of this crate, this module performs I/O and keeps time for its caches and
//! rate limits; the token checks themselves are those of [`Verifier`] and take `now` explicitly.
//!
//! ```no_run
//! # async fn example() -> Result<(), tessera_verify::remote::RemoteError> {
//! use tessera_verify::remote::RemoteVerifier;
//! let verifier = RemoteVerifier::builder("https://id.example.com", "https://api.example.com")
//!     .revocation_feed("api-client-id", "api-client-secret")
//!     .build()
//!     .await?;
//! let claims = verifier.verify("eyJ…", tessera_proto::UnixTime(1_767_225_600)).await?;
//! println!("{} may {}", claims.sub, claims.scope.unwrap_or_default());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tessera_proto::discovery::IssuerMetadata;
use tessera_proto::feed::{RevocationEvent, RevocationKind};
use tessera_proto::jwks::JwkSet;
use tessera_proto::{SecretString, UnixTime};
use tokio::time::Instant;

use crate::dpop::{ReplayCache, ResourceRequest};
use crate::{Claims, Confirmation, Verifier, VerifyError};

/// Why a token could not be accepted, or could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The token is invalid (`invalid_token`, or `invalid_dpop_proof` for a proof).
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// The token was revoked (the revocation feed says so).
    #[error("the token was revoked")]
    Revoked,
    /// The issuer cannot be reached for keys, or the revocation feed has been down for longer
    /// than allowed: the token cannot be judged, so it is not accepted (fail closed).
    #[error("the issuer is unavailable: {0}")]
    Unavailable(String),
}

/// Builds a [`RemoteVerifier`].
#[derive(Debug)]
pub struct RemoteVerifierBuilder {
    issuer: String,
    audience: String,
    feed: Option<(String, SecretString)>,
    http: Option<reqwest::Client>,
    refetch_interval: Duration,
    max_feed_outage: Duration,
    api_keys: bool,
}

impl RemoteVerifierBuilder {
    /// Accept API keys (`tessera_pat_…`, `tessera_sak_…`) as well, through
    /// [`RemoteVerifier::verify_api_key`] (and `VerifyLayer`): each key is introspected at the
    /// issuer as the [`revocation_feed`](Self::revocation_feed) client (needed), and the JWT the
    /// issuer returns for it is verified like any token and cached until it expires (five
    /// minutes); the feed revokes it within a second like any token.
    pub fn api_keys(mut self) -> RemoteVerifierBuilder {
        self.api_keys = true;
        self
    }

    /// Follow the issuer's revocation feed as this resource-server client (registered with
    /// `introspection: true`). Without it, revocation is effective only at token expiry.
    pub fn revocation_feed(mut self, client_id: &str, client_secret: &str) -> RemoteVerifierBuilder {
        self.feed = Some((client_id.to_owned(), SecretString::from(client_secret)));
        self
    }

    /// The HTTP client for discovery, keys and the feed (to trust a private CA, say). Defaults to
    /// one with a 10 s timeout that follows no redirect; a client given here should not follow
    /// redirects either. Bodies are read up to 1 MiB whatever the client.
    pub fn http_client(mut self, http: reqwest::Client) -> RemoteVerifierBuilder {
        self.http = Some(http);
        self
    }

    /// The least time between two key fetches caused by unknown `kid`s. Defaults to 60 s.
    pub fn refetch_interval(mut self, interval: Duration) -> RemoteVerifierBuilder {
        self.refetch_interval = interval;
        self
    }

    /// How long the revocation feed may be disconnected before tokens are refused as
    /// unjudgeable. Defaults to 10 s.
    pub fn max_feed_outage(mut self, outage: Duration) -> RemoteVerifierBuilder {
        self.max_feed_outage = outage;
        self
    }

    /// Discovers the issuer (RFC 8414; its `issuer` must equal the one given), fetches its keys
    /// and, with a feed, waits until the feed's backlog is applied.
    pub async fn build(self) -> Result<RemoteVerifier, RemoteError> {
        let http = match self.http {
            Some(http) => http,
            // The issuer's URLs are followed exactly: a redirect could lead anywhere (#23).
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| RemoteError::Unavailable(e.to_string()))?,
        };
        let issuer = self.issuer.trim_end_matches('/').to_owned();
        let url = format!("{issuer}/.well-known/oauth-authorization-server");
        let metadata: IssuerMetadata = fetch_json(&http, &url).await?;
        if metadata.issuer != issuer {
            return Err(RemoteError::Unavailable(format!("{url} names issuer {:?}", metadata.issuer)));
        }
        let Some(jwks_uri) = metadata.jwks_uri else {
            return Err(RemoteError::Unavailable(format!("{url} names no jwks_uri")));
        };
        let jwks: JwkSet = fetch_json(&http, &jwks_uri).await?;
        let api_keys = match (self.api_keys, &self.feed, &metadata.introspection_endpoint) {
            (false, _, _) => None,
            (true, Some(_), Some(endpoint)) => Some(ApiKeys {
                endpoint: endpoint.clone(),
                exchanged: moka::sync::Cache::builder()
                    .max_capacity(50_000)
                    .time_to_live(Duration::from_secs(300))
                    .build(),
                inactive: moka::sync::Cache::builder()
                    .max_capacity(50_000)
                    .time_to_live(Duration::from_secs(60))
                    .build(),
            }),
            (true, None, _) => {
                return Err(RemoteError::Unavailable(
                    "API keys need the revocation_feed client to introspect them".into(),
                ));
            }
            (true, Some(_), None) => {
                return Err(RemoteError::Unavailable("the issuer publishes no introspection_endpoint".into()));
            }
        };
        let keys = Verifier::new(&issuer, &self.audience, &jwks)?;
        let inner = Arc::new(Inner {
            issuer,
            audience: self.audience,
            jwks_uri,
            http,
            keys: RwLock::new(Arc::new(keys)),
            last_fetch: Mutex::new(Instant::now()),
            fetching: tokio::sync::Mutex::new(()),
            refetch_interval: self.refetch_interval,
            verified: moka::sync::Cache::new(50_000),
            feed: self.feed.map(|credentials| Feed::new(credentials, self.max_feed_outage)),
            replay: ReplayCache::new(100_000),
            api_keys,
        });
        if let Some(feed) = &inner.feed {
            let caught_up = feed.caught_up.clone();
            tokio::spawn(follow_feed(Arc::downgrade(&inner)));
            let mut caught_up = caught_up.subscribe();
            let waited = tokio::time::timeout(Duration::from_secs(10), caught_up.wait_for(|c| *c)).await;
            if !matches!(waited, Ok(Ok(_))) {
                return Err(RemoteError::Unavailable("the revocation feed did not catch up".into()));
            }
        }
        Ok(RemoteVerifier { inner })
    }
}

/// API keys: where to introspect them, and the JWTs they stood for lately (by SHA-256 of the
/// key, with the JWT's `exp`).
struct ApiKeys {
    endpoint: String,
    exchanged: moka::sync::Cache<[u8; 32], (Arc<str>, u64)>,
    /// Keys the issuer called inactive lately, refused without asking again: a flood of junk
    /// keys costs the issuer one lookup each per minute at most (bounded, 50,000 entries).
    inactive: moka::sync::Cache<[u8; 32], ()>,
}

/// The most of a discovery document or key set that is read (#23: a body is never read
/// without bound, whoever answers).
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The most of an exchanged JWT that is read.
const MAX_JWT_BYTES: usize = 64 * 1024;

/// Reads `res`'s body up to `max` bytes; a longer one is an error, not a truncation.
async fn body_capped(mut res: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn fetch_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T, RemoteError> {
    let unavailable = |e: &dyn std::fmt::Display| RemoteError::Unavailable(format!("{url}: {e}"));
    let res = http.get(url).send().await.map_err(|e| unavailable(&e))?;
    if !res.status().is_success() {
        return Err(unavailable(&res.status()));
    }
    let body = body_capped(res, MAX_DOCUMENT_BYTES).await.map_err(|e| unavailable(&e))?;
    serde_json::from_slice(&body).map_err(|e| unavailable(&e))
}

/// Verifies access tokens from one issuer for one audience, with keys, revocations and caches
/// kept current in the background. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RemoteVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    jwks_uri: String,
    http: reqwest::Client,
    keys: RwLock<Arc<Verifier>>,
    last_fetch: Mutex<Instant>,
    fetching: tokio::sync::Mutex<()>,
    refetch_interval: Duration,
    /// Verified claims by SHA-256 of the token (checked again for time, binding and revocation
    /// on every use).
    verified: moka::sync::Cache<[u8; 32], Arc<Claims>>,
    feed: Option<Feed>,
    replay: ReplayCache,
    api_keys: Option<ApiKeys>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteVerifier").field("issuer", &self.issuer).field("audience", &self.audience).finish()
    }
}

/// The revocation feed as followed so far.
struct Feed {
    /// The reader's client id and secret (zeroized on drop).
    credentials: (String, SecretString),
    state: RwLock<Revoked>,
    /// Set once the backlog has been applied.
    caught_up: tokio::sync::watch::Sender<bool>,
    /// Since when the stream has been down (`None` while connected).
    down_since: Mutex<Option<Instant>>,
    max_outage: Duration,
}

/// What the feed has revoked: tokens by `jti` (until `exp`), and cut-offs by subject, session
/// and client (tokens issued at or before the instant).
#[derive(Default)]
struct Revoked {
    last_seq: u64,
    jtis: HashMap<String, u64>,
    users: HashMap<String, (u64, u64)>,
    sessions: HashMap<String, (u64, u64)>,
    clients: HashMap<String, (u64, u64)>,
}

impl Revoked {
    fn apply(&mut self, event: RevocationEvent) {
        self.last_seq = self.last_seq.max(event.seq);
        let cutoff = (event.at, event.exp);
        let keep_latest = |map: &mut HashMap<String, (u64, u64)>, key: String| {
            let entry = map.entry(key).or_insert(cutoff);
            *entry = (entry.0.max(cutoff.0), entry.1.max(cutoff.1));
        };
        match event.kind {
            RevocationKind::Jti => {
                self.jtis.insert(event.value, event.exp);
            }
            RevocationKind::User => keep_latest(&mut self.users, event.value),
            RevocationKind::Session => keep_latest(&mut self.sessions, event.value),
            RevocationKind::Client => keep_latest(&mut self.clients, event.value),
            // A kind newer than this version: nothing it could match is known here.
            RevocationKind::Unknown => {}
        }
    }

    /// Drops what can no longer match any unexpired token.
    fn prune(&mut self, now: u64) {
        self.jtis.retain(|_, exp| *exp > now);
        for map in [&mut self.users, &mut self.sessions, &mut self.clients] {
            map.retain(|_, (_, exp)| *exp > now);
        }
    }

    fn covers(&self, claims: &Claims) -> bool {
        let cut = |map: &HashMap<String, (u64, u64)>, key: Option<&str>| {
            key.and_then(|k| map.get(k)).is_some_and(|(at, _)| claims.iat <= *at)
        };
        self.jtis.contains_key(&claims.jti)
            || cut(&self.users, Some(&claims.sub))
            || cut(&self.clients, Some(&claims.client_id))
            || cut(&self.sessions, claims.as_json().get("sid").and_then(serde_json::Value::as_str))
    }
}

impl Feed {
    fn new(credentials: (String, SecretString), max_outage: Duration) -> Feed {
        Feed {
            credentials,
            state: RwLock::default(),
            caught_up: tokio::sync::watch::channel(false).0,
            down_since: Mutex::new(None),
            max_outage,
        }
    }

    fn set_down(&self, down: bool) {
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        match (down, since.is_some()) {
            (true, false) => *since = Some(Instant::now()),
            (false, true) => *since = None,
            _ => {}
        }
    }

    /// Whether revocations are known well enough to judge a token.
    fn current(&self) -> bool {
        let since = *self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        *self.caught_up.borrow() && since.is_none_or(|since| since.elapsed() <= self.max_outage)
    }
}

/// Follows the feed until the verifier is dropped: the stream from the last position seen,
/// reconnecting after a failure (with a short back-off) or a silence longer than the server's
/// keep-alive.
async fn follow_feed(verifier: Weak<Inner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(inner) = verifier.upgrade() else { return };
        let Some(feed) = &inner.feed else { return };
        let after = feed.state.read().unwrap_or_else(|p| p.into_inner()).last_seq;
        let request = inner
            .http
            .get(format!("{}/revocations/stream?after={after}", inner.issuer))
            .basic_auth(&feed.credentials.0, Some(feed.credentials.1.expose()))
            .timeout(Duration::from_secs(86_400));
        let connected = match request.send().await {
            Ok(res) if res.status().is_success() => Some(res),
            _ => None,
        };
        if let Some(mut response) = connected {
            feed.set_down(false);
            backoff = Duration::from_millis(100);
            let mut buffer = String::new();
            // The server sends a keep-alive comment every few seconds; silence means trouble.
            while let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(20), response.chunk()).await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    handle_block(feed, &block);
                }
            }
        }
        feed.set_down(true);
        drop(inner);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

fn handle_block(feed: &Feed, block: &str) {
    let mut event = None;
    let mut data = String::new();
    for line in block.lines() {
        if let Some(name) = line.strip_prefix("event:") {
            event = Some(name.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.trim_start());
        }
    }
    match event.as_deref() {
        Some("revocation") => {
            if let Ok(parsed) = serde_json::from_str::<RevocationEvent>(&data) {
                feed.state.write().unwrap_or_else(|p| p.into_inner()).apply(parsed);
            }
        }
        Some("caught-up") => {
            feed.caught_up.send_replace(true);
        }
        _ => {}
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

impl RemoteVerifier {
    /// A builder for tokens from `issuer` addressed to `audience`.
    pub fn builder(issuer: &str, audience: &str) -> RemoteVerifierBuilder {
        RemoteVerifierBuilder {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            feed: None,
            http: None,
            refetch_interval: Duration::from_secs(60),
            max_feed_outage: Duration::from_secs(10),
            api_keys: false,
        }
    }

    /// Verifies an API key (see [`RemoteVerifierBuilder::api_keys`]): the claims of the JWT the
    /// issuer returns for it (`client_id` and `jti` are the key's id, `sub` its owner), unless
    /// the feed revoked it. Refused when API keys were not enabled.
    pub async fn verify_api_key(&self, key: &str, now: UnixTime) -> Result<Claims, RemoteError> {
        let inner = &self.inner;
        let (Some(api), Some(feed)) = (&inner.api_keys, &inner.feed) else {
            return Err(VerifyError::Malformed("API keys are not accepted here").into());
        };
        let hash = token_hash(key);
        if api.inactive.contains_key(&hash) {
            return Err(VerifyError::Inactive.into());
        }
        let jwt = match api.exchanged.get(&hash).filter(|(_, exp)| *exp > now.0) {
            Some((jwt, _)) => jwt,
            None => {
                let (id, secret) = &feed.credentials;
                let unavailable = |e: &dyn std::fmt::Display| RemoteError::Unavailable(format!("introspection: {e}"));
                let res = inner
                    .http
                    .post(&api.endpoint)
                    .basic_auth(id, Some(secret.expose()))
                    .header(http::header::ACCEPT, "application/jwt")
                    .form(&[("token", key)])
                    .send()
                    .await
                    .map_err(|e| unavailable(&e))?;
                if !res.status().is_success() {
                    return Err(unavailable(&res.status()));
                }
                let is_jwt = res
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| t.starts_with("application/jwt"));
                if !is_jwt {
                    api.inactive.insert(hash, ());
                    return Err(VerifyError::Inactive.into());
                }
                let body = body_capped(res, MAX_JWT_BYTES).await.map_err(|e| unavailable(&e))?;
                let text = std::str::from_utf8(&body).map_err(|e| unavailable(&e))?;
                let jwt: Arc<str> = Arc::from(text.trim());
                let claims = self.claims(&jwt, now).await?;
                api.exchanged.insert(hash, (jwt.clone(), claims.exp));
                jwt
            }
        };
        let claims = self.claims(&jwt, now).await?;
        if claims.cnf.is_some() {
            return Err(VerifyError::SenderConstrained.into());
        }
        Ok(claims)
    }

    /// Verifies a bearer token (as [`Verifier::verify`]) and that it is not revoked.
    pub async fn verify(&self, token: &str, now: UnixTime) -> Result<Claims, RemoteError> {
        let claims = self.claims(token, now).await?;
        if claims.cnf.is_some() {
            return Err(VerifyError::SenderConstrained.into());
        }
        Ok(claims)
    }

    /// Verifies a DPoP-bound token with its proof (as [`Verifier::verify_dpop`], the proof's
    /// `jti` remembered against replay) and that it is not revoked.
    pub async fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        request: &ResourceRequest<'_>,
        now: UnixTime,
    ) -> Result<Claims, RemoteError> {
        self.verify_dpop_presented(token, token, proof, request, now).await
    }

    /// [`RemoteVerifier::verify_dpop`] for a JWT that stands for the token the client
    /// presented (`presented`: a phantom or split reference): the proof's `ath` must hash what
    /// the client sent, the binding is the JWT's.
    pub async fn verify_dpop_presented(
        &self,
        token: &str,
        presented: &str,
        proof: &str,
        request: &ResourceRequest<'_>,
        now: UnixTime,
    ) -> Result<Claims, RemoteError> {
        let claims = self.claims(token, now).await?;
        let Some(Confirmation::Jkt(jkt)) = &claims.cnf else {
            return Err(VerifyError::WrongBinding("DPoP key").into());
        };
        let proof_request = crate::dpop::DpopRequest {
            method: request.method,
            url: request.url,
            access_token: Some(presented),
            nonce: request.nonce,
        };
        let verified = crate::dpop::verify_proof(proof, &proof_request, &request.policy, now)?;
        if &verified.jkt != jkt {
            return Err(VerifyError::WrongBinding("DPoP key").into());
        }
        self.inner.replay.check_and_remember(&verified, &request.policy, now)?;
        Ok(claims)
    }

    /// Verifies a token presented as `Bearer` over a connection with this client certificate
    /// (DER), if any: an unbound token, or one bound to that certificate (RFC 8705 §3); a
    /// DPoP-bound token is refused, as is a certificate-bound one without its certificate.
    pub async fn verify_bearer(
        &self,
        token: &str,
        client_cert_der: Option<&[u8]>,
        now: UnixTime,
    ) -> Result<Claims, RemoteError> {
        let claims = self.claims(token, now).await?;
        match (&claims.cnf, client_cert_der) {
            (None, _) => Ok(claims),
            (Some(Confirmation::X5tS256(x5t)), Some(der)) if *x5t == crate::certificate_thumbprint(der) => Ok(claims),
            (Some(Confirmation::X5tS256(_)), Some(_)) => Err(VerifyError::WrongBinding("client certificate").into()),
            _ => Err(VerifyError::SenderConstrained.into()),
        }
    }

    /// Verifies a certificate-bound token for the connection's client certificate (DER).
    pub async fn verify_certificate_bound(
        &self,
        token: &str,
        client_cert_der: &[u8],
        now: UnixTime,
    ) -> Result<Claims, RemoteError> {
        let claims = self.claims(token, now).await?;
        match &claims.cnf {
            Some(Confirmation::X5tS256(x5t)) if *x5t == crate::certificate_thumbprint(client_cert_der) => Ok(claims),
            _ => Err(VerifyError::WrongBinding("client certificate").into()),
        }
    }

    /// The token's verified claims (from the cache when seen before), not revoked.
    async fn claims(&self, token: &str, now: UnixTime) -> Result<Claims, RemoteError> {
        let inner = &self.inner;
        if let Some(feed) = &inner.feed
            && !feed.current()
        {
            return Err(RemoteError::Unavailable("the revocation feed is not current".into()));
        }
        let hash = token_hash(token);
        let claims = match inner.verified.get(&hash) {
            Some(claims) => {
                let keys = inner.current_keys();
                claims.check(&inner.issuer, Some(&inner.audience), now, keys.leeway(), keys.max_lifetime())?;
                claims
            }
            None => {
                let claims = match inner.current_keys().verify_reporting_binding(token, now) {
                    Err(VerifyError::UnknownKey) if inner.refetch_keys().await => {
                        inner.current_keys().verify_reporting_binding(token, now)?
                    }
                    result => result?,
                };
                let claims = Arc::new(claims);
                inner.verified.insert(hash, claims.clone());
                claims
            }
        };
        if let Some(feed) = &inner.feed {
            let (covered, crowded) = {
                let revoked = feed.state.read().unwrap_or_else(|p| p.into_inner());
                (revoked.covers(&claims), revoked.jtis.len() > 100_000)
            };
            if covered {
                return Err(RemoteError::Revoked);
            }
            if crowded {
                feed.state.write().unwrap_or_else(|p| p.into_inner()).prune(now.secs());
            }
        }
        Ok((*claims).clone())
    }

    /// The issuer this verifier trusts.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Whether revocations are current (always true without a feed).
    pub fn is_current(&self) -> bool {
        self.inner.feed.as_ref().is_none_or(Feed::current)
    }

    /// The sequence number of the last revocation-feed event applied (`None` without a feed):
    /// compared with the server's, it shows how far this verifier lags.
    pub fn feed_position(&self) -> Option<u64> {
        self.inner.feed.as_ref().map(|feed| feed.state.read().unwrap_or_else(|p| p.into_inner()).last_seq)
    }
}

impl Inner {
    fn current_keys(&self) -> Arc<Verifier> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Fetches the key set again, unless that happened less than `refetch_interval` ago
    /// (JW-17: unknown `kid`s cannot make the verifier hammer the issuer). Whether new keys
    /// were installed.
    async fn refetch_keys(&self) -> bool {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let mut last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < self.refetch_interval {
                return false;
            }
            *last = Instant::now();
        }
        let Ok(jwks) = fetch_json::<JwkSet>(&self.http, &self.jwks_uri).await else { return false };
        let Ok(verifier) = Verifier::new(&self.issuer, &self.audience, &jwks) else { return false };
        let current = self.current_keys();
        let verifier = verifier.with_leeway(current.leeway()).with_max_lifetime(current.max_lifetime());
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(verifier);
        true
    }
}
