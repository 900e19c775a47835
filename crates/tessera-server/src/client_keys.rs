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
    /// URIs whose last fetch failed, with when: not fetched again within [`COOL_DOWN`], so a
    /// client naming a slow or broken `jwks_uri` cannot make the server fetch once per request.
    failed: moka::sync::Cache<String, u64>,
}

impl ClientKeys {
    /// `allow_private` permits private and loopback addresses (a loopback issuer only).
    pub fn new(allow_private: bool) -> anyhow::Result<ClientKeys> {
        Ok(ClientKeys {
            http: std::sync::OnceLock::new(),
            allow_private,
            cache: moka::sync::Cache::new(10_000),
            failed: moka::sync::Cache::new(10_000),
        })
    }

    fn http(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let allow_private = self.allow_private;
        let resolver = Arc::new(PublicOnly { allow_private });
        // A client names the URL: never follow its redirects, never go through a proxy the
        // environment names (the address filter would check the proxy, not the target).
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
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

/// Whether an address may be fetched from: global unicast only (every special-purpose block of
/// the IANA IPv4 and IPv6 registries is refused, and so are the IPv6 forms that embed an IPv4
/// address: NAT64, 6to4, Teredo, IPv4-compatible), unless private ones are allowed.
fn address_allowed(ip: IpAddr, allow_private: bool) -> bool {
    if allow_private {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0 // 0.0.0.0/8, "this network"
                || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10, shared address space
                || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24, IETF protocol assignments
                || (a == 192 && b == 88 && c == 99) // 192.88.99.0/24, 6to4 relay anycast
                || (a == 198 && (b & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || a >= 240) // 240.0.0.0/4, reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return address_allowed(IpAddr::V4(v4), false);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_multicast()
                || s[..6] == [0; 6] // ::/96: unspecified and IPv4-compatible
                || (s[0] == 0x64 && s[1] == 0xff9b) // 64:ff9b::/96 and 64:ff9b:1::/48, NAT64
                || (s[0] == 0x100 && s[1..4] == [0; 3]) // 100::/64, discard
                || (s[0] == 0x2001 && s[1] < 0x200) // 2001::/23, IETF protocol assignments (Teredo)
                || (s[0] == 0x2001 && s[1] == 0xdb8) // 2001:db8::/32, documentation
                || s[0] == 0x2002 // 2002::/16, 6to4
                || (s[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
                || (s[0] & 0xffc0) == 0xfe80 // fe80::/10, link local
                || (s[0] & 0xffc0) == 0xfec0) // fec0::/10, site local (deprecated)
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
            // Regression: #23.
            "0.1.2.3",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.254",
            "192.0.0.8",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "::7f00:1",
            "::a00:1",
            "::",
            "2001::1",
            "2001:db8::1",
            "100::1",
            "fec0::1",
        ] {
            assert!(!address_allowed(ip.parse().unwrap(), false), "{ip}");
            assert!(address_allowed(ip.parse().unwrap(), true), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(address_allowed(ip.parse().unwrap(), false), "{ip}");
        }
    }
}
