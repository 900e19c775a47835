//! The Tessera authorization server: `AppState` holds the store, keys, clock and config;
//! [`app`] and [`admin_app`] are the public and admin routers; [`run`] serves both until shutdown.

pub(crate) mod abuse;
pub mod active_tokens;
pub(crate) mod apikey;
pub mod audit;
pub(crate) mod cache;
pub(crate) mod client;
pub(crate) mod client_keys;
pub mod clock;
pub mod config;
pub(crate) mod dn;
pub mod flows;
pub mod form;
pub(crate) mod grants;
pub(crate) mod http;
pub(crate) mod keys;
pub(crate) mod metadata_documents;
pub(crate) mod metrics;
pub(crate) mod mtls;
pub(crate) mod outbound;
pub(crate) mod pages;
pub(crate) mod scope;
pub mod secret;
pub(crate) mod status_index;
pub mod store;
pub(crate) mod tls;
pub mod user;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tessera_proto::admin::{AdminConfig, ClientMetadata};
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::keys::{KeyRing, Sealer};
use crate::store::Store;

pub use crate::http::{admin_app, app};

/// The scope that grants the admin API.
pub const ADMIN_SCOPE: &str = "tessera:admin";
/// The setting that names the bootstrap admin client.
pub const BOOTSTRAP_CLIENT_SETTING: &str = "bootstrap_client_id";

/// Shared state of every request: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub keys: KeyRing,
    pub clock: Arc<dyn Clock>,
    pub active_tokens: active_tokens::ActiveTokenCache,
    /// Hands out token-status indexes (draft-ietf-oauth-status-list) from reserved blocks.
    pub status_lists: status_index::Allocator,
    /// Throttles and rate limits (`abuse`).
    pub abuse: abuse::Abuse,
    /// API keys' last uses, written in batches by the janitor.
    pub api_key_uses: apikey::LastUsed,
    /// Signs CSRF tokens of the HTML forms (derived from the master key).
    pub csrf_key: aws_lc_rs::hmac::Key,
    /// Derives refresh-token successors (derived from the master key).
    pub refresh_key: aws_lc_rs::hmac::Key,
    /// Makes and checks DPoP nonces (derived from the master key, so every node accepts them).
    pub dpop_nonce_key: aws_lc_rs::hmac::Key,
    /// Seals the pending authorization requests of browsers nobody is signed in to (derived
    /// from the master key; `flows::pending`).
    pub pending_key: aws_lc_rs::aead::LessSafeKey,
    /// Clients' JWK Sets (inline or fetched from `jwks_uri`).
    pub client_keys: client_keys::ClientKeys,
    /// Freshness and failures of client ID metadata documents (`flows::metadata_document`).
    pub(crate) metadata_documents: metadata_documents::MetadataDocuments,
    /// Verifies `tls_client_auth` certificate chains against `tls_client_ca`, if configured.
    pub client_ca: Option<mtls::ChainVerifier>,
    /// Login, consent, account and error pages.
    pub pages: pages::Pages,
    /// Set when the server stops, so that open streams (the revocation feed) end.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Responses with a 5xx status (other than a not-ready `/readyz`) and caught panics since start.
    pub server_errors: std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// Opens the data directory and store, loads (or on first start creates) the signing keys
    /// and the bootstrap admin client, and writes `admin.json`.
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
        if !config.data_dir.exists() {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
            // The directory holds the master key and the database: owner only.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        if let Some(parent) = Store::sqlite_path(&config.database_url).and_then(|p| p.parent()) {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let store = Store::open(&config.database_url, &config.postgres).await?;
        let sealer = Sealer::load_or_create(&config.master_key_file)?;
        let csrf_key = sealer.derive_hmac_key("tessera csrf v1")?;
        let refresh_key = sealer.derive_hmac_key("tessera refresh successor v1")?;
        let dpop_nonce_key = sealer.derive_hmac_key("tessera dpop nonce v1")?;
        let pending_key = sealer.derive_aead_key("tessera pending authorization request v1")?;
        let pages = pages::Pages::load(config.templates_dir.as_deref())?;
        let client_keys = client_keys::ClientKeys::new(config.issuer.is_loopback())?;
        let metadata_documents = metadata_documents::MetadataDocuments::new(config.cimd_allow_loopback);
        let client_ca = config.tls_client_ca.as_deref().map(mtls::ChainVerifier::load).transpose()?;
        // Nodes starting together on an empty shared database must not both create the first
        // keys and the bootstrap client.
        let lock = store.lock_bootstrap().await?;
        let keys = match KeyRing::load(&store, sealer, config.issuer.as_str(), clock.now().secs()).await {
            Ok(keys) => keys,
            Err(err) => {
                store.unlock_bootstrap(lock).await;
                return Err(err);
            }
        };
        let abuse =
            abuse::Abuse::new(config.rate_limit_per_client, config.rate_limit_per_ip, config.auth_failure_allowance);
        let state = AppState {
            inner: Arc::new(Inner {
                config,
                store,
                keys,
                clock,
                active_tokens: Default::default(),
                status_lists: Default::default(),
                api_key_uses: Default::default(),
                abuse,
                csrf_key,
                refresh_key,
                dpop_nonce_key,
                pending_key,
                client_keys,
                metadata_documents,
                client_ca,
                pages,
                server_errors: Default::default(),
                stopping: tokio::sync::watch::channel(false).0,
            }),
        };
        let bootstrapped = state.bootstrap().await;
        state.store.unlock_bootstrap(lock).await;
        bootstrapped?;
        state.listen_for_changes();
        state.purge_regularly();
        Ok(state)
    }

    /// Applies what other nodes changed since this node last looked (PostgreSQL): client cache
    /// entries, the key ring, cached active tokens. Runs before every request and on every
    /// notification, so a change committed on any node is in force here at once. A database
    /// that cannot be reached is logged; the request then meets the same failure itself.
    pub async fn catch_up(&self) {
        let result = self
            .store
            .catch_up(|change| async move {
                match change {
                    store::Change::Keys => {
                        if let Err(err) = self.keys.reload(&self.store).await {
                            tracing::error!(err = format!("{err:#}"), "reloading keys changed on another node");
                        }
                    }
                    store::Change::Revocation | store::Change::Client(_) => self.active_tokens.clear(),
                }
            })
            .await;
        if let Err(err) = result {
            tracing::debug!(err = format!("{err:#}"), "catching up with other nodes failed");
        }
    }

    /// Listens for other nodes' changes (PostgreSQL `LISTEN tessera_changes`) and catches up on
    /// every notification, after every reconnect (notifications sent while disconnected are
    /// lost, the change rows are not) and at least once a second. Ends when the store closes.
    fn listen_for_changes(&self) {
        let Some(pool) = self.store.postgres_pool() else { return };
        let state = self.clone();
        tokio::spawn(async move {
            let mut listener = None;
            while !pool.is_closed() {
                if listener.is_none() {
                    match sqlx::postgres::PgListener::connect_with(&pool).await {
                        Ok(mut l) => match l.listen("tessera_changes").await {
                            Ok(()) => listener = Some(l),
                            Err(err) => tracing::warn!(err = %err, "LISTEN tessera_changes failed"),
                        },
                        Err(err) => tracing::debug!(err = %err, "change listener cannot connect"),
                    }
                }
                let wait = std::time::Duration::from_secs(1);
                match listener.as_mut() {
                    Some(l) => match tokio::time::timeout(wait, l.try_recv()).await {
                        // A notification, or `None`: the connection dropped and will be redone.
                        Ok(Ok(_)) | Err(_) => {}
                        Ok(Err(err)) => {
                            tracing::debug!(err = %err, "change listener lost its connection");
                            listener = None;
                        }
                    },
                    None => tokio::time::sleep(wait).await,
                }
                state.catch_up().await;
            }
        });
    }

    /// The retention janitor: once a minute, deletes what expired more than a day ago
    /// (`store/retention.rs`). Safe on every node at once. Ends when the store closes.
    fn purge_regularly(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(std::time::Duration::from_secs(60));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if state.store.is_closed() {
                    return;
                }
                state.janitor_round().await;
            }
        });
    }

    /// One round of the janitor (once a minute on every node): idle throttle keys dropped, API
    /// keys' last uses written, expired rows purged, self-registered clients never used within
    /// `registration_expiry` deleted, spent initial access tokens dropped. Errors are logged.
    pub async fn janitor_round(&self) {
        self.abuse.forget_old();
        if let Err(err) = self.api_key_uses.flush(&self.store).await {
            tracing::warn!(err = format!("{err:#}"), "recording API keys' last use failed");
        }
        let now = self.clock.now();
        match self.store.purge_expired(now.secs()).await {
            Ok(purged) if purged.rows > 0 => tracing::info!(rows = purged.rows, "expired rows purged"),
            Ok(_) => {}
            Err(err) => tracing::warn!(err = format!("{err:#}"), "purging expired rows failed"),
        }
        match flows::registration::expire_unused(self, now).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "unused self-registered clients deleted"),
            Err(err) => tracing::warn!(err = format!("{err:#}"), "expiring unused registrations failed"),
        }
        if let Err(err) = self.store.purge_registration_tokens(now.secs()).await {
            tracing::warn!(err = format!("{err:#}"), "purging initial access tokens failed");
        }
    }

    fn admin_json_path(&self) -> std::path::PathBuf {
        self.config.data_dir.join("admin.json")
    }

    /// The admin client `admin.json` names, if the file is readable.
    pub(crate) fn admin_json_client(&self) -> Option<String> {
        let bytes = std::fs::read(self.admin_json_path()).ok()?;
        serde_json::from_slice::<AdminConfig>(&bytes).ok().map(|file| file.client_id)
    }

    /// Rewrites `admin.json` (0600, atomically) with `client_id`'s new secret, when the file
    /// names that client.
    pub(crate) fn rewrite_admin_json_secret(&self, client_id: &str, secret: &str) -> anyhow::Result<()> {
        let path = self.admin_json_path();
        let file: AdminConfig = serde_json::from_slice(&std::fs::read(&path)?)?;
        if file.client_id == client_id {
            let updated = AdminConfig { client_secret: secret.to_owned(), ..file };
            keys::write_private_file(&path, &serde_json::to_vec_pretty(&updated)?)?;
        }
        Ok(())
    }

    /// Makes sure the bootstrap admin client exists and `admin.json` describes it.
    async fn bootstrap(&self) -> anyhow::Result<()> {
        let path = self.admin_json_path();
        let existing: Option<AdminConfig> =
            std::fs::read(&path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let bootstrap_id = self.store.setting(BOOTSTRAP_CLIENT_SETTING).await?;
        let bootstrap_exists = match &bootstrap_id {
            Some(id) => self.store.client(id).await?.is_some(),
            None => false,
        };
        // This node's admin.json names an admin client that still exists: the bootstrap client,
        // or (on a node that joined a shared database later) that node's own admin client.
        let file_client_exists = match &existing {
            Some(file) => self.store.client(&file.client_id).await?.is_some_and(|c| c.client.is_admin()),
            None => false,
        };
        if let Some(file) = existing.as_ref().filter(|_| file_client_exists) {
            if file.issuer != self.config.issuer.as_str() || file.admin_url != self.config.admin_url {
                let updated = AdminConfig {
                    issuer: self.config.issuer.as_str().to_owned(),
                    token_endpoint: self.config.issuer.join("/token"),
                    admin_url: self.config.admin_url.clone(),
                    ..file.clone()
                };
                keys::write_private_file(&path, &serde_json::to_vec_pretty(&updated)?)?;
            }
            return Ok(());
        }
        // The first node creates the bootstrap client; a node joining a database that has one
        // gets an admin client of its own, since the bootstrap secret exists only as a hash.
        let name = if bootstrap_exists {
            format!("Tessera admin ({})", self.config.data_dir.display())
        } else {
            "Tessera bootstrap admin".to_owned()
        };
        let metadata = ClientMetadata {
            client_name: Some(name),
            grant_types: Some(vec!["client_credentials".into()]),
            admin: Some(true),
            ..ClientMetadata::default()
        };
        let now = self.clock.now();
        let created = flows::admin::create_client(self, metadata, now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if !bootstrap_exists {
            self.store.set_setting(BOOTSTRAP_CLIENT_SETTING, &created.client_id).await?;
        }
        let admin = AdminConfig {
            issuer: self.config.issuer.as_str().to_owned(),
            token_endpoint: self.config.issuer.join("/token"),
            admin_url: self.config.admin_url.clone(),
            client_id: created.client_id.clone(),
            client_secret: created.client_secret.clone().unwrap_or_default(),
        };
        keys::write_private_file(&path, &serde_json::to_vec_pretty(&admin)?)?;
        tracing::info!(client_id = %admin.client_id, path = %path.display(), "bootstrap admin client created");
        Ok(())
    }
}

/// Serves the public and admin routers on the given listeners until `shutdown` resolves, then
/// stops accepting, lets in-flight requests finish and closes the store.
pub async fn run(
    state: AppState,
    public: TcpListener,
    admin: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    tracing::info!(public = %public.local_addr()?, admin = %admin.local_addr()?, issuer = %state.config.issuer.as_str(), "tessera serving");
    let limits = state.config.listener;
    let tls = match &state.config.tls {
        Some((cert, key)) => {
            let certificate = Arc::new(tls::ServerCertificate::load(cert, key)?);
            let config = tls::server_config(certificate.clone())?;
            tls::reload_on_change(certificate, wait(rx.clone()));
            Some(tls::listener_tls(config))
        }
        None => None,
    };
    let public_server = tessera_listener::serve(public, tls, app(state.clone()), limits, wait(rx.clone()));
    // With the peer's address: the audit log names where admin changes came from.
    let admin_server = tessera_listener::serve(admin, None, admin_app(state.clone()), limits, wait(rx));
    let stopping = state.stopping.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = tx.send(true);
        stopping.send_replace(true);
    });
    let (public_result, admin_result) = tokio::join!(public_server, admin_server);
    public_result.context("public listener")?;
    admin_result.context("admin listener")?;
    state.store.close().await;
    tracing::info!("store closed; bye");
    Ok(())
}
