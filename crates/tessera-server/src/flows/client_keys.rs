//! A client's public keys: its inline `jwks`, or the JWK Set at its `jwks_uri`, fetched with
//! a timeout and a size limit, never from a private, loopback or link-local address (also not
//! after a redirect, and not by a name that resolves to one), and cached. An unknown key makes
//! the next verification fetch again, at most once a minute per URI, so a client can rotate
//! keys without a restart and nobody can make the server hammer the URI.
//!
//! On a loopback issuer (local development and the tests) private addresses are allowed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tessera_proto::UnixTime;

use crate::client::Client;

/// Largest JWK Set accepted from a `jwks_uri`.
const MAX_JWKS_BYTES: usize = 64 * 1024;
/// How long a fetched set is used before it is fetched again.
const TTL: u64 = 300;
/// The least time between two fetches of one URI.
const COOL_DOWN: u64 = 60;

/// Fetches and caches clients' JWK Sets.
pub struct ClientKeys {
    /// Built on first use: most deployments never fetch a `jwks_uri`, and an HTTP client with its
    /// TLS roots costs memory at start-up.
    http: std::sync::OnceLock<reqwest::Client>,
    allow_private: bool,
    cache: moka::sync::Cache<String, (Arc<Value>, u64)>,
}

impl ClientKeys {
    /// `allow_private` permits private and loopback addresses (a loopback issuer only).
    pub fn new(allow_private: bool) -> anyhow::Result<ClientKeys> {
        Ok(ClientKeys { http: std::sync::OnceLock::new(), allow_private, cache: moka::sync::Cache::new(10_000) })
    }

    fn http(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let allow_private = self.allow_private;
        let resolver = Arc::new(PublicOnly { allow_private });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                let acceptable = attempt.previous().len() < 3
                    && (attempt.url().scheme() == "https" || allow_private)
                    && host_allowed(attempt.url(), allow_private);
                if acceptable { attempt.follow() } else { attempt.stop() }
            }))
            .dns_resolver(resolver)
            .build()?;
        Ok(self.http.get_or_init(|| http))
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
        let jwks = Arc::new(self.fetch(uri).await?);
        self.cache.insert(uri.clone(), (jwks.clone(), now.secs()));
        Ok(jwks)
    }

    async fn fetch(&self, uri: &str) -> anyhow::Result<Value> {
        let url = url::Url::parse(uri)?;
        if !host_allowed(&url, self.allow_private) {
            anyhow::bail!("jwks_uri names a private address");
        }
        let mut res = self.http()?.get(url).header("accept", "application/json").send().await?;
        if !res.status().is_success() {
            anyhow::bail!("jwks_uri answered {}", res.status());
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                anyhow::bail!("the JWK Set at jwks_uri is larger than {MAX_JWKS_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        let jwks: Value = serde_json::from_slice(&body)?;
        if !jwks.get("keys").is_some_and(Value::is_array) {
            anyhow::bail!("jwks_uri did not return a JWK Set");
        }
        Ok(jwks)
    }
}

/// Whether an address may be fetched from: public unicast only, unless private ones are allowed.
fn address_allowed(ip: IpAddr, allow_private: bool) -> bool {
    if allow_private {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4), false);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A URL's host, when it is an address literal, must be allowed (names go through the resolver).
fn host_allowed(url: &url::Url, allow_private: bool) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => address_allowed(IpAddr::V4(ip), allow_private),
        Some(url::Host::Ipv6(ip)) => address_allowed(IpAddr::V6(ip), allow_private),
        Some(url::Host::Domain(_)) => true,
        None => false,
    }
}

/// Resolves names and drops every address that may not be fetched from.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|addr| address_allowed(addr.ip(), allow_private))
                .collect();
            if addresses.is_empty() {
                return Err("no public address".into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
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
            assert!(format!("{err:#}").contains("private") || format!("{err:#}").contains("public"), "{uri}: {err:#}");
        }
    }

    #[test]
    fn private_addresses_are_refused() {
        for ip in [
            "10.0.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!address_allowed(ip.parse().unwrap(), false), "{ip}");
            assert!(address_allowed(ip.parse().unwrap(), true), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(address_allowed(ip.parse().unwrap(), false), "{ip}");
        }
    }
}
