//! `gateway.toml`: the gateway's settings, its routes and how each route's callers present their
//! tokens ([`Mode`]); [`GatewayConfig::check`] refuses what cannot work before anything starts.

use std::net::SocketAddr;

use anyhow::Context as _;
use http::Method;
use serde::Deserialize;
use tessera_proto::SecretString;

use crate::{bff, canonical_path};

/// `gateway.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where the gateway listens, e.g. `127.0.0.1:9000`.
    pub listen: SocketAddr,
    /// The token issuer (a Tessera server).
    pub issuer: String,
    /// A resource-server client (`introspection: true`) of the issuer: reads the revocation feed.
    pub client_id: String,
    /// That client's secret.
    pub client_secret: SecretString,
    /// How clients reach the gateway (`https://api.example.com`): DPoP `htu` and RFC 9728 URLs.
    pub public_origin: String,
    /// Seconds the revocation feed may be down before tokens are refused with 503 (fail closed).
    #[serde(default = "default_feed_outage")]
    pub max_feed_outage: u64,
    /// The routes, matched by longest path prefix.
    pub routes: Vec<RouteConfig>,
    /// The token handler for single-page apps, needed by `bff` routes.
    #[serde(default)]
    pub bff: Option<bff::BffConfig>,
    /// TLS-terminating proxies in front of the gateway: from these peers only, an RFC 9440
    /// `Client-Cert` header is believed, so certificate-bound tokens (RFC 8705) are accepted.
    #[serde(default)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Peers that may read `/metrics` [default: loopback only]; requests that came through a
    /// proxy (`Forwarded`, `X-Forwarded-For`) never may.
    #[serde(default = "default_metrics_from")]
    pub metrics_from: Vec<ipnet::IpNet>,
    /// Open connections at once [default: 10000].
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Open connections at once from one client address, IPv6 by /64 [default: 512].
    #[serde(default)]
    pub max_connections_per_ip: Option<usize>,
    /// Seconds a connection may take to send a request's headers, and may sit idle between
    /// requests [default: 10].
    #[serde(default)]
    pub header_read_timeout: Option<u64>,
    /// How old a DPoP proof's `iat` may be, in seconds [default: 60].
    #[serde(default)]
    pub dpop_max_age: Option<u64>,
    /// The key (base64, at least 32 bytes) of this deployment's DPoP nonces: every gateway
    /// sharing it accepts the nonces of every other. Needed by routes with `dpop_nonce = true`.
    #[serde(default)]
    pub dpop_nonce_key: Option<SecretString>,
}

fn default_metrics_from() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect()
}

fn default_feed_outage() -> u64 {
    10
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix, e.g. `/invoices`; matches `/invoices` and `/invoices/…`, not `/invoicesx`.
    pub prefix: String,
    /// Base URL of the upstream (`http://127.0.0.1:7000`); the request path is appended.
    pub upstream: String,
    /// The audience tokens must be addressed to.
    pub audience: String,
    /// Scopes every token must carry.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Allowed methods; empty means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// `jwt` (the default): verify the JWT locally; `phantom`: the client presents an opaque
    /// token, exchanged once for its JWT, which is verified and forwarded instead; `split`: the
    /// client presents a JWT's signature part; `bff`: the browser presents the token handler's
    /// session cookie, and the gateway attaches the session's access token.
    #[serde(default)]
    pub mode: Mode,
    /// Accept API keys (`tessera_pat_…`, `tessera_sak_…`) in `Authorization` too: each is
    /// introspected once, cached for at most five minutes, and forwarded as the JWT the issuer
    /// returns for it (revoked within a second through the feed, like any token).
    #[serde(default)]
    pub api_keys: bool,
    /// DPoP proofs must carry a nonce of this deployment (RFC 9449 §9, `dpop_nonce_key`): a proof
    /// cannot be made in advance, and a replay at another gateway node works only while the
    /// nonce lasts.
    #[serde(default)]
    pub dpop_nonce: bool,
}

/// How a route's callers present their tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A JWT access token, verified here.
    #[default]
    Jwt,
    /// An opaque reference token, exchanged once for its JWT ([`crate::phantom`]).
    Phantom,
    /// A JWT's signature part; the gateway fetches the rest ([`crate::phantom`]).
    Split,
    /// The token handler's session cookie ([`crate::bff`]).
    Bff,
}

impl GatewayConfig {
    /// The DPoP nonce key, decoded.
    pub(crate) fn dpop_nonce_key_bytes(&self) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
        use base64::Engine as _;
        let Some(key) = &self.dpop_nonce_key else {
            anyhow::bail!("dpop_nonce_key: routes with dpop_nonce = true need one (base64, 32 bytes or more)");
        };
        match base64::engine::general_purpose::STANDARD.decode(key.expose().trim()).map(zeroize::Zeroizing::new) {
            Ok(bytes) if bytes.len() >= 32 => Ok(bytes),
            _ => anyhow::bail!("dpop_nonce_key: base64 of at least 32 bytes"),
        }
    }

    /// Reads and checks a `gateway.toml`.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<GatewayConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: GatewayConfig = toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config.check()?;
        Ok(config)
    }

    /// Checks a parsed configuration as [`GatewayConfig::from_file`] does.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.routes.is_empty() {
            anyhow::bail!("routes: at least one route is needed");
        }
        for route in &self.routes {
            if !route.prefix.starts_with('/') || canonical_path(&route.prefix).ok().as_ref() != Some(&route.prefix) {
                anyhow::bail!("routes: prefix {:?} is not a canonical absolute path", route.prefix);
            }
            if route.mode == Mode::Bff && self.bff.is_none() {
                anyhow::bail!("routes: {} is a bff route, so a [bff] section is needed", route.prefix);
            }
            let upstream = url::Url::parse(&route.upstream).ok();
            if !upstream.is_some_and(|u| u.scheme() == "http" && u.path() == "/" && u.query().is_none()) {
                anyhow::bail!("routes: upstream {:?} is not an http://host:port base URL", route.upstream);
            }
            for method in &route.methods {
                Method::from_bytes(method.as_bytes()).with_context(|| format!("routes: {method:?} is no method"))?;
            }
        }
        if self.routes.iter().any(|r| r.dpop_nonce) {
            self.dpop_nonce_key_bytes()?;
        }
        if let Some(bff) = &self.bff {
            bff.check(self.public_origin.trim_end_matches('/'))?;
            let path = bff.path.as_str();
            if self.routes.iter().any(|r| r.prefix == path || r.prefix.starts_with(&format!("{path}/"))) {
                anyhow::bail!("routes: no route may lie under the token handler's path {path}");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_dpop_nonces_need_a_key() {
        let with = |key: &str| {
            let text = format!(
                "listen = \"127.0.0.1:1\"\nissuer = \"http://127.0.0.1:2\"\nclient_id = \"g\"\nclient_secret = \"s\"\npublic_origin = \"http://127.0.0.1:1\"\n{key}\n[[routes]]\nprefix = \"/api\"\nupstream = \"http://127.0.0.1:3\"\naudience = \"https://api.example\"\ndpop_nonce = true\n"
            );
            toml::from_str::<GatewayConfig>(&text).unwrap().check()
        };
        assert!(with("").is_err(), "no key");
        assert!(with("dpop_nonce_key = \"c2hvcnQ=\"").is_err(), "too short");
        assert!(with("dpop_nonce_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"").is_ok());
    }

    // Regression: #23 (T-15). `GatewayConfig`'s derived `Debug` printed the client secret, the
    // DPoP nonce key and the BFF's client secret and cookie key.
    #[test]
    fn a_printed_configuration_shows_no_secret() {
        let text = "listen = \"127.0.0.1:1\"\nissuer = \"http://127.0.0.1:2\"\nclient_id = \"g\"\n\
            client_secret = \"gateway-secret-1\"\npublic_origin = \"http://127.0.0.1:1\"\n\
            dpop_nonce_key = \"bm9uY2Uta2V5LTItbm9uY2Uta2V5LTItbm9uY2Uta2V5LTI=\"\nroutes = []\n\
            [bff]\nclient_id = \"spa\"\nclient_secret = \"bff-secret-3\"\nredirect_uri = \"http://127.0.0.1:1/\"\n\
            cookie_key = \"Y29va2llLWtleS00LWNvb2tpZS1rZXktNC1jb29raWUtNA==\"\n";
        let config: GatewayConfig = toml::from_str(text).unwrap();
        let printed = format!("{config:?}");
        for secret in ["gateway-secret-1", "bm9uY2Uta2V5", "bff-secret-3", "Y29va2llLWtleS00"] {
            assert!(!printed.contains(secret), "{secret} printed: {printed}");
        }
        assert!(printed.contains("SecretString([redacted])"));
    }

    /// Every complete `gateway.toml` in docs/gateway.md parses and passes the checks.
    #[test]
    fn the_documented_configurations_are_valid() {
        let doc = include_str!("../../../docs/gateway.md");
        let spa = std::env::temp_dir();
        let blocks: Vec<&str> = doc
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split("```").next())
            .filter(|block| block.starts_with("listen = "))
            .collect();
        assert!(blocks.len() >= 2, "the jwt and bff examples");
        for block in blocks {
            let block = block
                .replace('…', "x")
                .replace("cookie_key = \"x\"", "cookie_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"")
                .replace("static_dir = \"spa\"", &format!("static_dir = {:?}", spa.to_str().unwrap()));
            let config: GatewayConfig = toml::from_str(&block).unwrap_or_else(|e| panic!("{e}\n{block}"));
            config.check().unwrap_or_else(|e| panic!("{e:#}\n{block}"));
        }
    }
}
