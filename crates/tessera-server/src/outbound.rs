//! The one way the server fetches a URL that someone else named (a client's `jwks_uri`, a
//! client ID metadata document): no redirects, no proxy from the environment, a timeout, a body
//! cap, and never a special-purpose address — neither as a literal in the URL nor behind a name
//! that resolves to one (the resolver drops those addresses before connecting, so a rebinding
//! name cannot slip one in between a check and the connection).
//!
//! What a stranger can make it do: fetch a public URL of their choosing, once per cache period
//! of the caller (`client_keys`, `flows::metadata_document`), and wait at most the timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Which addresses a fetch may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Global unicast addresses only.
    Public,
    /// Public ones and loopback (`cimd_allow_loopback`: development and tests).
    PublicAndLoopback,
    /// Any address (a loopback issuer: local development and the tests).
    Any,
}

/// A fetched body with the response's `Cache-Control`.
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) cache_control: Option<String>,
}

/// An HTTP client for URLs that strangers name.
pub(crate) struct Outbound {
    /// Built on first use: most deployments never fetch anything, and an HTTP client with its
    /// TLS roots costs memory at start-up.
    http: OnceLock<reqwest::Client>,
    reach: Reach,
    timeout: Duration,
}

impl Outbound {
    pub(crate) fn new(reach: Reach, timeout: Duration) -> Outbound {
        Outbound { http: OnceLock::new(), reach, timeout }
    }

    fn http(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let resolver = Arc::new(Filtered { reach: self.reach });
        // A stranger names the URL: never follow its redirects, never go through a proxy the
        // environment names (the address filter would check the proxy, not the target).
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(3)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(resolver)
            .build()?;
        Ok(self.http.get_or_init(|| http))
    }

    /// `GET url` accepting `accept`; a non-2xx answer (a redirect included), a body over
    /// `max_bytes` or a refused address is an error that says which.
    pub(crate) async fn get(&self, url: &url::Url, accept: &str, max_bytes: usize) -> anyhow::Result<Fetched> {
        if !host_allowed(url, self.reach) {
            anyhow::bail!("{} is a special-purpose address", url.host_str().unwrap_or(""));
        }
        let mut res = self.http()?.get(url.clone()).header("accept", accept).send().await?;
        if !res.status().is_success() {
            anyhow::bail!("the server answered {}", res.status());
        }
        if res.content_length().is_some_and(|n| n > max_bytes as u64) {
            anyhow::bail!("the body is larger than {max_bytes} bytes");
        }
        let cache_control =
            res.headers().get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await? {
            if body.len() + chunk.len() > max_bytes {
                anyhow::bail!("the body is larger than {max_bytes} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, cache_control })
    }
}

/// Whether an address may be fetched from: global unicast only (every special-purpose block of
/// the IANA IPv4 and IPv6 registries is refused, and so are the IPv6 forms that embed an IPv4
/// address: NAT64, 6to4, Teredo, IPv4-compatible), plus what `reach` adds.
fn address_allowed(ip: IpAddr, reach: Reach) -> bool {
    match reach {
        Reach::Any => return true,
        Reach::PublicAndLoopback if ip.to_canonical().is_loopback() => return true,
        _ => {}
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
                return address_allowed(IpAddr::V4(v4), Reach::Public);
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
fn host_allowed(url: &url::Url, reach: Reach) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => address_allowed(IpAddr::V4(ip), reach),
        Some(url::Host::Ipv6(ip)) => address_allowed(IpAddr::V6(ip), reach),
        Some(url::Host::Domain(_)) => true,
        None => false,
    }
}

/// Resolves names and drops every address that may not be fetched from.
struct Filtered {
    reach: Reach,
}

impl reqwest::dns::Resolve for Filtered {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let reach = self.reach;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|addr| address_allowed(addr.ip(), reach))
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
            assert!(!address_allowed(ip.parse().unwrap(), Reach::Public), "{ip}");
            assert!(address_allowed(ip.parse().unwrap(), Reach::Any), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(address_allowed(ip.parse().unwrap(), Reach::Public), "{ip}");
        }
    }

    #[test]
    fn loopback_reach_adds_loopback_only() {
        for ip in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            assert!(address_allowed(ip.parse().unwrap(), Reach::PublicAndLoopback), "{ip}");
        }
        for ip in ["10.0.0.1", "169.254.169.254", "192.168.1.1", "fd00::1", "0.0.0.0"] {
            assert!(!address_allowed(ip.parse().unwrap(), Reach::PublicAndLoopback), "{ip}");
        }
    }
}
