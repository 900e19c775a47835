//! A client's public keys: its inline `jwks`, or the JWK Set at its `jwks_uri`, fetched through
//! [`crate::outbound`] (a timeout, a size limit, no redirects, never a special-purpose address,
//! also not by a name that resolves to one), and cached. An unknown key makes
//! the next verification fetch again, at most once a minute per URI, so a client can rotate
//! keys without a restart and nobody can make the server hammer the URI.
//!
//! On a loopback issuer (local development and the tests) private addresses are allowed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tessera_proto::UnixTime;

use crate::client::Client;
use crate::outbound::{Outbound, Reach};

/// Largest JWK Set accepted from a `jwks_uri`.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// How long a fetched set is used before it is fetched again.
const TTL: u64 = 300;
/// The least time between two fetches of one URI.
const COOL_DOWN: u64 = 60;

/// Fetches and caches clients' JWK Sets.
pub struct ClientKeys {
    outbound: Outbound,
    cache: moka::sync::Cache<String, (Arc<Value>, u64)>,
    /// URIs whose last fetch failed, with when: not fetched again within [`COOL_DOWN`], so a
    /// client naming a slow or broken `jwks_uri` cannot make the server fetch once per request.
    failed: moka::sync::Cache<String, u64>,
}

impl ClientKeys {
    /// `allow_private` permits private and loopback addresses (a loopback issuer only).
    pub fn new(allow_private: bool) -> anyhow::Result<ClientKeys> {
        let reach = if allow_private { Reach::Any } else { Reach::Public };
        Ok(ClientKeys {
            outbound: Outbound::new(reach, Duration::from_secs(5)),
            cache: moka::sync::Cache::new(10_000),
            failed: moka::sync::Cache::new(10_000),
        })
    }

    /// The client's key set: inline, or from its `jwks_uri` (cached; fetched again when
    /// `refresh` is set and the cached copy is older than the cool-down).
    pub async fn of(&self, client: &Client, refresh: bool, now: UnixTime) -> anyhow::Result<Arc<Value>> {
        if let Some(jwks) = &client.jwks {
            return Ok(Arc::new(jwks.clone()));
        }
        let Some(uri) = &client.jwks_uri else { anyhow::bail!("the client has no keys") };
        if let Some((jwks, fetched_at)) = self.cache.get(uri) {
            let age = now.secs().saturating_sub(fetched_at);
            if age < TTL && !(refresh && age >= COOL_DOWN) {
                return Ok(jwks);
            }
        }
        if let Some(failed_at) = self.failed.get(uri)
            && now.secs().saturating_sub(failed_at) < COOL_DOWN
        {
            // A failure is remembered like a fetched set: a stale set still serves meanwhile.
            return match self.cache.get(uri) {
                Some((jwks, _)) => Ok(jwks),
                None => anyhow::bail!("jwks_uri failed less than {COOL_DOWN} s ago"),
            };
        }
        let jwks = match self.fetch(uri).await {
            Ok(jwks) => Arc::new(jwks),
            Err(err) => {
                self.failed.insert(uri.clone(), now.secs());
                return Err(err);
            }
        };
        self.failed.invalidate(uri);
        self.cache.insert(uri.clone(), (jwks.clone(), now.secs()));
        Ok(jwks)
    }

    async fn fetch(&self, uri: &str) -> anyhow::Result<Value> {
        let url = url::Url::parse(uri)?;
        let fetched = self.outbound.get(&url, "application/json", MAX_JWKS_BYTES).await?;
        let jwks: Value = serde_json::from_slice(&fetched.body)?;
        if !jwks.get("keys").is_some_and(Value::is_array) {
            anyhow::bail!("jwks_uri did not return a JWK Set");
        }
        Ok(jwks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_jwks_uri_on_a_private_address_or_name_is_never_fetched() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let keys = ClientKeys::new(false).unwrap();
        for uri in [format!("http://127.0.0.1:{port}/jwks.json"), format!("http://localhost:{port}/jwks.json")] {
            let err = keys.fetch(&uri).await.unwrap_err();
            assert!(
                format!("{err:#}").contains("special-purpose") || format!("{err:#}").contains("public"),
                "{uri}: {err:#}"
            );
        }
    }

    // Regression: #23. A failed fetch was not remembered: a client naming a broken jwks_uri made
    // the server fetch it once per authentication attempt.
    #[tokio::test]
    async fn a_failing_jwks_uri_is_fetched_at_most_once_a_cool_down() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let broken = axum::Router::new().fallback(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }
        });
        tokio::spawn(async move { axum::serve(listener, broken).await.unwrap() });
        let keys = ClientKeys::new(true).unwrap();
        let mut client = Client::for_api_key("c", 60);
        client.jwks_uri = Some(uri);
        for _ in 0..5 {
            assert!(keys.of(&client, true, UnixTime(1_000)).await.is_err());
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(keys.of(&client, true, UnixTime(1_000 + COOL_DOWN)).await.is_err());
        assert_eq!(hits.load(Ordering::SeqCst), 2, "fetched again after the cool-down");
    }
}
