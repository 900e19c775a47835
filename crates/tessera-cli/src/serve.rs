//! `tessera serve`: layers defaults < `tessera.toml` < `TESSERA_*` < flags, sets up logging,
//! and runs until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tessera_server::clock::SystemClock;
use tessera_server::config::{Config, LogFormat, RawConfig};
use tessera_server::{AppState, run as run_server};
use tokio::net::TcpListener;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// Configuration file (TOML); settings in it are overridden by TESSERA_* variables and flags.
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./tessera-data].
    #[arg(long, env = "TESSERA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Public listener [default: 127.0.0.1:8080].
    #[arg(long, env = "TESSERA_LISTEN")]
    listen: Option<String>,
    /// Admin listener [default: 127.0.0.1:8081].
    #[arg(long, env = "TESSERA_ADMIN_LISTEN")]
    admin_listen: Option<String>,
    /// Issuer identifier [default: http://127.0.0.1:8080]; must be https unless on loopback.
    #[arg(long, env = "TESSERA_ISSUER")]
    issuer: Option<String>,
    /// Database URL [default: sqlite://<data-dir>/tessera.db].
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    database_url: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "TESSERA_LOG_FORMAT")]
    log_format: Option<String>,
    /// Master key file; every node on one database needs the same one [default: <data-dir>/master.key].
    #[arg(long, env = "TESSERA_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// Directory of page templates overriding the built-in ones.
    #[arg(long, env = "TESSERA_TEMPLATES_DIR")]
    templates_dir: Option<PathBuf>,
    /// Absolute refresh-token lifetime in seconds [default: 2592000].
    #[arg(long, env = "TESSERA_REFRESH_TOKEN_TTL")]
    refresh_token_ttl: Option<u64>,
    /// Refresh-token inactivity lifetime in seconds [default: 1209600].
    #[arg(long, env = "TESSERA_REFRESH_TOKEN_IDLE_TTL")]
    refresh_token_idle_ttl: Option<u64>,
    /// Refresh rotation grace window in seconds, 0 for none [default: 10].
    #[arg(long, env = "TESSERA_REFRESH_TOKEN_GRACE_PERIOD")]
    refresh_token_grace_period: Option<u64>,
    /// Browser session lifetime in seconds [default: 1209600].
    #[arg(long, env = "TESSERA_SESSION_TTL")]
    session_ttl: Option<u64>,
    /// Requests per second one client may make to /token, /introspect, /revoke, /par; 0: no limit [default: 1000].
    #[arg(long, env = "TESSERA_RATE_LIMIT_PER_CLIENT")]
    rate_limit_per_client: Option<u32>,
    /// Requests per second one IP address may make to those endpoints; 0: no limit [default: 2000].
    #[arg(long, env = "TESSERA_RATE_LIMIT_PER_IP")]
    rate_limit_per_ip: Option<u32>,
    /// Failed client authentications allowed per client id and per address before 429 [default: 10].
    #[arg(long, env = "TESSERA_AUTH_FAILURE_ALLOWANCE")]
    auth_failure_allowance: Option<u32>,
    /// Open connections per listener [default: 10000].
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Open connections per client address (IPv6: per /64) on each listener [default: 512].
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Seconds a connection may take to send a request's headers, and may sit idle between requests [default: 10].
    #[arg(long, env = "TESSERA_HEADER_READ_TIMEOUT")]
    header_read_timeout: Option<u64>,
    /// PostgreSQL: connections per node [default: 16].
    #[arg(long, env = "TESSERA_DATABASE_MAX_CONNECTIONS")]
    database_max_connections: Option<u32>,
    /// PostgreSQL: seconds a request waits for a connection before it fails with 503 [default: 2].
    #[arg(long, env = "TESSERA_DATABASE_ACQUIRE_TIMEOUT")]
    database_acquire_timeout: Option<u64>,
    /// PostgreSQL: statement timeout in seconds [default: 5].
    #[arg(long, env = "TESSERA_DATABASE_STATEMENT_TIMEOUT")]
    database_statement_timeout: Option<u64>,
    /// HTTPS on the public listener: certificate chain (PEM); reloaded when the file changes or on SIGHUP.
    #[arg(long, env = "TESSERA_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// HTTPS on the public listener: private key (PEM).
    #[arg(long, env = "TESSERA_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificates (PEM) for clients using tls_client_auth.
    #[arg(long, env = "TESSERA_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
    /// TLS-terminating proxies (addresses or CIDR networks, comma-separated) whose RFC 9440
    /// Client-Cert header is believed; from anyone else it is removed.
    #[arg(long, env = "TESSERA_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Option<Vec<String>>,
    /// Dynamic client registration at /register (RFC 7591): off (default), token (an initial
    /// access token is required) or open (anyone, within the open-registration policy).
    #[arg(long, env = "TESSERA_REGISTRATION", value_parser = ["off", "token", "open"])]
    registration: Option<String>,
    /// Seconds after which a self-registered client never used is deleted (default 604800).
    #[arg(long, env = "TESSERA_REGISTRATION_EXPIRY")]
    registration_expiry: Option<u64>,
    /// Accept https URLs as client ids naming a client ID metadata document (default true).
    #[arg(long, env = "TESSERA_CLIENT_ID_METADATA_DOCUMENTS", action = clap::ArgAction::Set)]
    client_id_metadata_documents: Option<bool>,
    /// INSECURE, development and tests only: also fetch client ID metadata documents over http
    /// from loopback addresses.
    #[arg(long, env = "TESSERA_CIMD_ALLOW_LOOPBACK", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    cimd_allow_loopback: Option<bool>,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => RawConfig::from_file(path)?,
        None => RawConfig::default(),
    };
    let overrides = RawConfig {
        listen: args.listen,
        admin_listen: args.admin_listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        issuer: args.issuer,
        log_format: args.log_format,
        templates_dir: args.templates_dir,
        master_key_file: args.master_key_file,
        refresh_token_ttl: args.refresh_token_ttl,
        refresh_token_idle_ttl: args.refresh_token_idle_ttl,
        refresh_token_grace_period: args.refresh_token_grace_period,
        rate_limit_per_client: args.rate_limit_per_client,
        rate_limit_per_ip: args.rate_limit_per_ip,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        header_read_timeout: args.header_read_timeout,
        auth_failure_allowance: args.auth_failure_allowance,
        session_ttl: args.session_ttl,
        database_max_connections: args.database_max_connections,
        database_acquire_timeout: args.database_acquire_timeout,
        database_statement_timeout: args.database_statement_timeout,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_client_ca: args.tls_client_ca,
        trusted_proxies: args.trusted_proxies,
        registration: args.registration,
        registration_expiry: args.registration_expiry,
        client_id_metadata_documents: args.client_id_metadata_documents,
        cimd_allow_loopback: args.cimd_allow_loopback,
        ..RawConfig::default()
    };
    let config = Config::from_raw(file.overlay(overrides))?;
    init_logging(config.log_format);
    let public = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let admin =
        TcpListener::bind(config.admin_listen).await.with_context(|| format!("binding {}", config.admin_listen))?;
    let state = AppState::open(config, Arc::new(SystemClock)).await?;
    run_server(state, public, admin, shutdown_signal()).await
}

pub(crate) fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives as soon as the server answers is never the
/// default action (an abrupt exit) instead of a graceful shutdown.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
