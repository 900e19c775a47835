//! Configuration: `RawConfig` mirrors `tessera.toml` and the `TESSERA_*` overrides; `Config`
//! is the validated result. Precedence is defaults < file < environment < flags; the CLI
//! layers the last two on top of the file with [`RawConfig::overlay`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// Every setting as written by a person: all optional, nothing checked yet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Public listener address.
    pub listen: Option<String>,
    /// Admin listener address.
    pub admin_listen: Option<String>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Database URL; defaults to a SQLite file in the data directory.
    pub database_url: Option<String>,
    /// Issuer identifier.
    pub issuer: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Directory of page templates and `style.css` overriding the built-in ones.
    pub templates_dir: Option<PathBuf>,
    /// The master key that seals signing keys; every node on one database needs the same one.
    pub master_key_file: Option<PathBuf>,
    /// Absolute refresh-token (grant) lifetime in seconds.
    pub refresh_token_ttl: Option<u64>,
    /// A refresh token unused for this long expires, in seconds.
    pub refresh_token_idle_ttl: Option<u64>,
    /// Seconds after a rotation in which presenting the previous refresh token again returns
    /// the same successor instead of counting as reuse; 0 disables the grace window.
    pub refresh_token_grace_period: Option<u64>,
    /// Browser session lifetime in seconds.
    pub session_ttl: Option<u64>,
    /// Requests per second one client may make to /token, /introspect, /revoke and /par; 0: no limit.
    pub rate_limit_per_client: Option<u32>,
    /// Requests per second one IP address may make to those endpoints; 0: no limit.
    pub rate_limit_per_ip: Option<u32>,
    /// Failed client authentications allowed per client id and per address before 429.
    pub auth_failure_allowance: Option<u32>,
    /// Open connections per listener.
    pub max_connections: Option<usize>,
    /// Open connections per client address (IPv6: per /64) on each listener.
    pub max_connections_per_ip: Option<usize>,
    /// Seconds a connection may take to send a request's headers (and may sit idle between requests).
    pub header_read_timeout: Option<u64>,
    /// PostgreSQL: connections per node.
    pub database_max_connections: Option<u32>,
    /// PostgreSQL: seconds a request waits for a connection before it fails with 503.
    pub database_acquire_timeout: Option<u64>,
    /// PostgreSQL: statement timeout in seconds.
    pub database_statement_timeout: Option<u64>,
    /// The public listener's certificate chain (PEM); with `tls_key`, the listener speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that `tls_client_auth` clients' certificates must chain to.
    pub tls_client_ca: Option<PathBuf>,
    /// Addresses or networks (CIDR) of TLS-terminating proxies whose RFC 9440 `Client-Cert`
    /// header is believed; from anyone else the header is removed.
    pub trusted_proxies: Option<Vec<String>>,
    /// Dynamic client registration at `/register` (RFC 7591): `off` (default), `token` (an
    /// initial access token is required) or `open` (anyone, within the open-registration policy).
    pub registration: Option<String>,
    /// Seconds after which a self-registered client that never completed an authorization is
    /// deleted (default 7 days).
    pub registration_expiry: Option<u64>,
    /// The scopes a self-registered client may ask for, space-separated (default
    /// `openid profile email`); a registration without `scope` gets all of them.
    pub registration_scopes: Option<String>,
    /// The audiences (resource indicators) a self-registered client's tokens may be for; the
    /// first is the default (default: the issuer). An MCP server's URL goes here.
    pub registration_audiences: Option<Vec<String>>,
    /// Whether an `https` URL is accepted as a `client_id` naming its own client ID metadata
    /// document (default true).
    pub client_id_metadata_documents: Option<bool>,
    /// INSECURE, for development and tests only: also accept metadata documents at `http` URLs
    /// on loopback addresses.
    pub cimd_allow_loopback: Option<bool>,
}

impl RawConfig {
    /// Reads a `tessera.toml`.
    pub fn from_file(path: &Path) -> anyhow::Result<RawConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// `self` with every setting that `over` has replaced by `over`'s.
    pub fn overlay(self, over: RawConfig) -> RawConfig {
        RawConfig {
            listen: over.listen.or(self.listen),
            admin_listen: over.admin_listen.or(self.admin_listen),
            data_dir: over.data_dir.or(self.data_dir),
            database_url: over.database_url.or(self.database_url),
            issuer: over.issuer.or(self.issuer),
            log_format: over.log_format.or(self.log_format),
            templates_dir: over.templates_dir.or(self.templates_dir),
            master_key_file: over.master_key_file.or(self.master_key_file),
            refresh_token_ttl: over.refresh_token_ttl.or(self.refresh_token_ttl),
            refresh_token_idle_ttl: over.refresh_token_idle_ttl.or(self.refresh_token_idle_ttl),
            refresh_token_grace_period: over.refresh_token_grace_period.or(self.refresh_token_grace_period),
            rate_limit_per_client: over.rate_limit_per_client.or(self.rate_limit_per_client),
            rate_limit_per_ip: over.rate_limit_per_ip.or(self.rate_limit_per_ip),
            auth_failure_allowance: over.auth_failure_allowance.or(self.auth_failure_allowance),
            max_connections: over.max_connections.or(self.max_connections),
            max_connections_per_ip: over.max_connections_per_ip.or(self.max_connections_per_ip),
            header_read_timeout: over.header_read_timeout.or(self.header_read_timeout),
            session_ttl: over.session_ttl.or(self.session_ttl),
            database_max_connections: over.database_max_connections.or(self.database_max_connections),
            database_acquire_timeout: over.database_acquire_timeout.or(self.database_acquire_timeout),
            database_statement_timeout: over.database_statement_timeout.or(self.database_statement_timeout),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            tls_client_ca: over.tls_client_ca.or(self.tls_client_ca),
            trusted_proxies: over.trusted_proxies.or(self.trusted_proxies),
            registration: over.registration.or(self.registration),
            registration_expiry: over.registration_expiry.or(self.registration_expiry),
            registration_scopes: over.registration_scopes.or(self.registration_scopes),
            registration_audiences: over.registration_audiences.or(self.registration_audiences),
            client_id_metadata_documents: over.client_id_metadata_documents.or(self.client_id_metadata_documents),
            cimd_allow_loopback: over.cimd_allow_loopback.or(self.cimd_allow_loopback),
        }
    }
}

/// Who may register a client at `/register` (RFC 7591).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Nobody: `/register` answers 404 and is not advertised.
    Off,
    /// Holders of an initial access token (`tessera client registration-token create`).
    Token,
    /// Anyone, within the open-registration policy (docs/registration.md).
    Open,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// An issuer identifier: an https URL, or http on a loopback host; no query, no fragment,
/// no trailing slash (RFC 8414 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerUrl(String);

impl IssuerUrl {
    /// Parses and checks an issuer identifier.
    pub fn parse(s: &str) -> anyhow::Result<IssuerUrl> {
        let url = url::Url::parse(s).with_context(|| format!("issuer {s:?} is not an absolute URL"))?;
        if url.query().is_some() || url.fragment().is_some() {
            bail!("issuer {s:?} must not have a query or fragment");
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            _ => bail!("issuer {s:?} must use https (plain http is allowed only on a loopback host)"),
        }
        Ok(IssuerUrl(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// The issuer exactly as it appears in tokens and metadata.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the issuer is on a loopback host (local development).
    pub fn is_loopback(&self) -> bool {
        url::Url::parse(&self.0).is_ok_and(|url| is_loopback(&url))
    }

    /// An endpoint below the issuer, e.g. `/token`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Validated configuration. Built only by [`Config::from_raw`] or [`Config::for_tests`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Public listener address.
    pub listen: SocketAddr,
    /// Admin listener address.
    pub admin_listen: SocketAddr,
    /// Data directory: SQLite database, master key, `admin.json`.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Issuer identifier.
    pub issuer: IssuerUrl,
    /// Base URL of the admin API, written into `admin.json`.
    pub admin_url: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Directory of templates overriding the built-in pages.
    pub templates_dir: Option<PathBuf>,
    /// The master key file (`<data_dir>/master.key` unless set).
    pub master_key_file: PathBuf,
    /// Absolute refresh-token lifetime (seconds).
    pub refresh_token_ttl: u64,
    /// Refresh-token inactivity lifetime (seconds).
    pub refresh_token_idle_ttl: u64,
    /// Rotation grace window (seconds); 0 = none.
    pub refresh_token_grace_period: u64,
    /// Browser session lifetime (seconds).
    pub session_ttl: u64,
    /// Requests per second per client on the token endpoints (0: no limit).
    pub rate_limit_per_client: u32,
    /// Requests per second per IP address on the token endpoints (0: no limit).
    pub rate_limit_per_ip: u32,
    /// Failed client authentications per client id and per address before 429 (refilled one
    /// every 6 s).
    pub auth_failure_allowance: u32,
    /// Connection caps and the header deadline of both listeners (docs/threat-model.md T-12).
    pub listener: tessera_listener::Limits,
    /// PostgreSQL connection settings.
    pub postgres: PostgresSettings,
    /// HTTPS on the public listener: `(certificate chain, private key)` files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// CA certificates for `tls_client_auth`.
    pub tls_client_ca: Option<PathBuf>,
    /// Proxies whose `Client-Cert` header is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Who may register clients at `/register`.
    pub registration: Registration,
    /// Seconds a self-registered client may stay unused before it is deleted.
    pub registration_expiry: u64,
    /// Scopes a self-registered client may ask for.
    pub registration_scopes: Vec<String>,
    /// Audiences a self-registered client's tokens may be for; the first is the default.
    pub registration_audiences: Vec<String>,
    /// Whether `https` URLs are accepted as client ids naming a client ID metadata document.
    pub client_id_metadata_documents: bool,
    /// INSECURE: metadata documents may also be fetched over `http` from loopback addresses.
    pub cimd_allow_loopback: bool,
}

impl Config {
    /// Applies defaults and checks every value.
    pub fn from_raw(raw: RawConfig) -> anyhow::Result<Config> {
        let listen = parse_addr(raw.listen.as_deref().unwrap_or("127.0.0.1:8080"), "listen")?;
        let admin_listen = parse_addr(raw.admin_listen.as_deref().unwrap_or("127.0.0.1:8081"), "admin_listen")?;
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from("./tessera-data"));
        let database_url = match raw.database_url {
            Some(url) => url,
            None => format!("sqlite://{}", data_dir.join("tessera.db").display()),
        };
        if !database_url.starts_with("sqlite:") && !is_postgres_url(&database_url) {
            bail!("database URL must be sqlite:… or postgres://…");
        }
        let defaults = PostgresSettings::default();
        let postgres = PostgresSettings {
            max_connections: raw.database_max_connections.unwrap_or(defaults.max_connections),
            acquire_timeout: raw
                .database_acquire_timeout
                .map(std::time::Duration::from_secs)
                .unwrap_or(defaults.acquire_timeout),
            statement_timeout: raw
                .database_statement_timeout
                .map(std::time::Duration::from_secs)
                .unwrap_or(defaults.statement_timeout),
        };
        if postgres.max_connections == 0 || postgres.acquire_timeout.is_zero() || postgres.statement_timeout.is_zero() {
            bail!("database_max_connections, database_acquire_timeout and database_statement_timeout must be positive");
        }
        let issuer = IssuerUrl::parse(raw.issuer.as_deref().unwrap_or("http://127.0.0.1:8080"))?;
        let log_format = match raw.log_format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("log format {other:?} is not `text` or `json`"),
        };
        let admin_host =
            if admin_listen.ip().is_unspecified() { "127.0.0.1".to_owned() } else { admin_listen.ip().to_string() };
        let admin_url = match admin_listen {
            SocketAddr::V6(_) if !admin_listen.ip().is_unspecified() => {
                format!("http://[{admin_host}]:{}", admin_listen.port())
            }
            _ => format!("http://{admin_host}:{}", admin_listen.port()),
        };
        let master_key_file = raw.master_key_file.clone().unwrap_or_else(|| data_dir.join("master.key"));
        let refresh_token_ttl = raw.refresh_token_ttl.unwrap_or(30 * 86_400);
        let refresh_token_idle_ttl = raw.refresh_token_idle_ttl.unwrap_or(14 * 86_400);
        let refresh_token_grace_period = raw.refresh_token_grace_period.unwrap_or(10);
        let session_ttl = raw.session_ttl.unwrap_or(14 * 86_400);
        if refresh_token_ttl == 0 || refresh_token_idle_ttl == 0 || session_ttl == 0 {
            bail!("refresh_token_ttl, refresh_token_idle_ttl and session_ttl must be positive");
        }
        if refresh_token_grace_period > 300 {
            bail!("refresh_token_grace_period must be at most 300 seconds");
        }
        let tls = match (raw.tls_cert, raw.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => bail!("tls_cert and tls_key go together"),
        };
        if tls.is_some() && !issuer.as_str().starts_with("https://") {
            bail!("with TLS on the public listener the issuer must be an https URL");
        }
        let mut trusted_proxies = Vec::new();
        for entry in raw.trusted_proxies.unwrap_or_default() {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let net = match entry.parse::<ipnet::IpNet>() {
                Ok(net) => net,
                Err(_) => entry
                    .parse::<std::net::IpAddr>()
                    .map(ipnet::IpNet::from)
                    .with_context(|| format!("trusted proxy {entry:?} is not an address or CIDR network"))?,
            };
            trusted_proxies.push(net);
        }
        // Plain http only where nobody else can listen in, or behind a proxy that terminates TLS.
        if tls.is_none() && !listen.ip().is_loopback() && trusted_proxies.is_empty() {
            bail!(
                "the public listener {listen} is not on loopback: give it a certificate (tls_cert, tls_key), or name the TLS-terminating proxy in front of it (trusted_proxies)"
            );
        }
        let registration = match raw.registration.as_deref().unwrap_or("off") {
            "off" => Registration::Off,
            "token" => Registration::Token,
            "open" => Registration::Open,
            other => bail!("registration {other:?} is not `off`, `token` or `open`"),
        };
        let registration_scopes: Vec<String> = raw
            .registration_scopes
            .as_deref()
            .unwrap_or("openid profile email")
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect();
        if registration_scopes.iter().any(|s| s.starts_with("tessera:")) {
            bail!("registration_scopes: tessera: scopes are reserved and never given to self-registered clients");
        }
        let registration_audiences = raw.registration_audiences.unwrap_or_else(|| vec![issuer.as_str().to_owned()]);
        for aud in &registration_audiences {
            let url = url::Url::parse(aud).with_context(|| format!("registration_audiences: {aud:?} is not a URI"))?;
            if url.fragment().is_some() {
                bail!("registration_audiences: {aud:?} has a fragment");
            }
        }
        if registration_audiences.is_empty() {
            bail!("registration_audiences: name at least one audience");
        }
        Ok(Config {
            listen,
            admin_listen,
            data_dir,
            database_url,
            issuer,
            admin_url,
            log_format,
            templates_dir: raw.templates_dir,
            master_key_file,
            refresh_token_ttl,
            refresh_token_idle_ttl,
            refresh_token_grace_period,
            session_ttl,
            rate_limit_per_client: raw.rate_limit_per_client.unwrap_or(1000),
            rate_limit_per_ip: raw.rate_limit_per_ip.unwrap_or(2000),
            auth_failure_allowance: raw.auth_failure_allowance.unwrap_or(10).max(1),
            listener: {
                let default = tessera_listener::Limits::default();
                tessera_listener::Limits {
                    max_connections: raw.max_connections.unwrap_or(default.max_connections).max(1),
                    max_connections_per_ip: raw.max_connections_per_ip.unwrap_or(default.max_connections_per_ip).max(1),
                    header_read_timeout: raw
                        .header_read_timeout
                        .map_or(default.header_read_timeout, |s| std::time::Duration::from_secs(s.max(1))),
                }
            },
            postgres,
            tls,
            tls_client_ca: raw.tls_client_ca,
            trusted_proxies,
            registration,
            registration_expiry: raw.registration_expiry.unwrap_or(7 * 24 * 3600).max(60),
            registration_scopes,
            registration_audiences,
            client_id_metadata_documents: raw.client_id_metadata_documents.unwrap_or(true),
            cimd_allow_loopback: raw.cimd_allow_loopback.unwrap_or(false),
        })
    }

    /// A configuration for tests: listeners already bound by the harness, a fresh data directory.
    pub fn for_tests(public: SocketAddr, admin: SocketAddr, data_dir: &Path) -> Config {
        let raw = RawConfig {
            listen: Some(public.to_string()),
            admin_listen: Some(admin.to_string()),
            data_dir: Some(data_dir.to_owned()),
            issuer: Some(format!("http://{public}")),
            // Tests send many requests and deliberate failures from one address; the abuse
            // tests turn the limits back on.
            rate_limit_per_client: Some(0),
            rate_limit_per_ip: Some(0),
            auth_failure_allowance: Some(1000),
            ..RawConfig::default()
        };
        #[allow(clippy::expect_used)]
        Config::from_raw(raw).expect("test configuration is valid")
    }
}

fn parse_addr(s: &str, name: &str) -> anyhow::Result<SocketAddr> {
    s.parse().with_context(|| format!("{name} {s:?} is not an address such as 127.0.0.1:8080"))
}

/// Connection settings (`database_*` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// Connections per node.
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails with 503.
    pub acquire_timeout: Duration,
    /// Statement timeout set on every connection.
    pub statement_timeout: Duration,
}

impl Default for PostgresSettings {
    fn default() -> PostgresSettings {
        PostgresSettings {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Whether a `database_url` names PostgreSQL (else it is SQLite).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_rules() {
        assert_eq!(IssuerUrl::parse("http://127.0.0.1:8080/").unwrap().as_str(), "http://127.0.0.1:8080");
        assert!(IssuerUrl::parse("http://localhost:8080").is_ok());
        assert!(IssuerUrl::parse("https://id.example.com/tenant").is_ok());
        assert!(IssuerUrl::parse("http://id.example.com").is_err());
        assert!(IssuerUrl::parse("https://id.example.com?x=1").is_err());
        assert!(IssuerUrl::parse("https://id.example.com#f").is_err());
        assert!(IssuerUrl::parse("id.example.com").is_err());
    }

    #[test]
    fn later_layers_win() {
        let file = RawConfig {
            listen: Some("127.0.0.1:1".into()),
            issuer: Some("https://a.example".into()),
            ..RawConfig::default()
        };
        let flags = RawConfig { listen: Some("127.0.0.1:2".into()), ..RawConfig::default() };
        let config = Config::from_raw(file.overlay(flags)).unwrap();
        assert_eq!(config.listen.port(), 2);
        assert_eq!(config.issuer.as_str(), "https://a.example");
        assert_eq!(config.admin_url, "http://127.0.0.1:8081");
    }
}
