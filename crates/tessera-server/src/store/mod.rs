//! Persistence. The only module with SQL. Every single-use or state-changing operation is
//! one statement (or one short write transaction), never read-then-write, so concurrent
//! requests cannot both win.
//!
//! Two backends behind one `Store`: embedded SQLite (`sqlite.rs`, the default) and PostgreSQL
//! (`postgres.rs`, for several nodes on one database). Both schemas have the same tables and
//! column names, so almost every statement is written once and compiled for both through
//! [`on_pool!`]; rows decode through one implementation for both (`rows.rs`). Where the SQL
//! must differ (case-insensitive usernames, opaque-token ids) the method says so.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cache::InvalidatingCache;

/// Runs `$body` with `$pool` bound to the store's pool for reads (`read`) or for writes and
/// read-your-writes (`write`): on SQLite the read pool or the `synchronous=FULL` writer
/// connection, on PostgreSQL the one pool. The body is compiled once per backend.
macro_rules! on_pool {
    ($store:expr, read, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite(db) => {
                let $pool = &db.read;
                $body
            }
            $crate::store::Db::Postgres(db) => {
                let $pool = &db.pool;
                $body
            }
        }
    };
    ($store:expr, write, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite(db) => {
                let $pool = &db.critical;
                $body
            }
            $crate::store::Db::Postgres(db) => {
                let $pool = &db.pool;
                $body
            }
        }
    };
}

pub mod api_keys;
pub mod audit;
mod clients;
mod device_codes;
pub mod feed;
mod keys;
mod postgres;
pub(crate) mod registration;
mod retention;
mod rows;
mod sign_in;
mod single_use;
mod sqlite;
mod tokens;
mod users;

pub use crate::config::PostgresSettings;
pub use device_codes::{Approval, DeviceCodeRow};
pub use retention::{MARGIN as RETENTION_MARGIN, Purged};
pub use rows::{AuthRequestRow, CodeRow, GrantRow, KeyRow, OpaqueTokenRow, RefreshRow, SessionRow, StoredClient};
pub use sign_in::{Redemption, RevocationTarget};
pub use single_use::SingleUse;
pub use tokens::IssuedJwt;

/// Which database a [`Store`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, one node.
    Sqlite,
    /// PostgreSQL, any number of nodes.
    Postgres,
}

/// A change another node may have cached, recorded with the change itself (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A client was changed or deleted.
    Client(String),
    /// Signing keys were added or activated.
    Keys,
    /// Tokens were revoked (one, a grant, a session, a user's or a client's).
    Revocation,
}

impl Change {
    fn kind_and_key(&self) -> (&'static str, &str) {
        match self {
            Change::Client(id) => ("client", id),
            Change::Keys => ("keys", ""),
            Change::Revocation => ("revocation", ""),
        }
    }

    fn parse(kind: &str, key: String) -> Option<Change> {
        match kind {
            "client" => Some(Change::Client(key)),
            "keys" => Some(Change::Keys),
            "revocation" => Some(Change::Revocation),
            _ => None,
        }
    }
}

/// Records a change inside the transaction that makes it: on PostgreSQL a row in `changes` and
/// a notification at commit; nothing on SQLite, which has one node.
pub(crate) trait RecordChange {
    async fn record(&mut self, change: &Change) -> anyhow::Result<()>;
}

impl RecordChange for sqlx::Transaction<'_, sqlx::Sqlite> {
    async fn record(&mut self, _: &Change) -> anyhow::Result<()> {
        Ok(())
    }
}

impl RecordChange for sqlx::Transaction<'_, sqlx::Postgres> {
    async fn record(&mut self, change: &Change) -> anyhow::Result<()> {
        let (kind, key) = change.kind_and_key();
        postgres::record_change(self, kind, key).await
    }
}

/// The store handle: cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    clients: InvalidatingCache<String, Arc<StoredClient>>,
}

#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PgDb),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn json_list(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_list(text: &str) -> anyhow::Result<Vec<String>> {
    serde_json::from_str(text).context("corrupt list column")
}

impl Store {
    /// Opens the database at `url` and runs its migrations: `sqlite:…` (created if missing, WAL)
    /// or `postgres://…` / `postgresql://…`.
    pub async fn open(url: &str, settings: &PostgresSettings) -> anyhow::Result<Store> {
        let db = if Store::is_postgres(url) {
            Db::Postgres(postgres::PgDb::open(url, settings).await?)
        } else {
            Db::Sqlite(sqlite::SqliteDb::open(url).await?)
        };
        let clients = InvalidatingCache::new(10_000, Duration::from_secs(300));
        Ok(Store { db, clients })
    }

    /// Whether a database URL names PostgreSQL.
    pub fn is_postgres(url: &str) -> bool {
        crate::config::is_postgres_url(url)
    }

    /// The path of a SQLite URL, for creating its directory.
    pub fn sqlite_path(url: &str) -> Option<&Path> {
        url.strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|p| Path::new(p.split('?').next().unwrap_or(p)))
    }

    /// Which backend this is: `sqlite` or `postgres`.
    pub fn backend(&self) -> Backend {
        match &self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every change that any node committed since this node last looked, in commit
    /// order, one catch-up at a time: client changes here (the client cache), the rest through
    /// `apply`. Cheap when there is nothing new (one indexed query); a no-op on SQLite.
    pub async fn catch_up<F, Fut>(&self, mut apply: F) -> anyhow::Result<()>
    where
        F: FnMut(Change) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let Db::Postgres(db) = &self.db else { return Ok(()) };
        let seen = db.applied.load(std::sync::atomic::Ordering::Acquire);
        if db.changes_after(seen).await?.is_empty() {
            return Ok(());
        }
        // Another request may be applying the same changes: wait for it, then look again, so
        // that nobody proceeds before what it saw has been applied.
        let _one_at_a_time = db.catching_up.lock().await;
        let seen = db.applied.load(std::sync::atomic::Ordering::Acquire);
        let changes = db.changes_after(seen).await?;
        let Some(&(last, _, _)) = changes.last() else { return Ok(()) };
        for (_, kind, key) in changes {
            match Change::parse(&kind, key) {
                Some(Change::Client(id)) => self.client_changed(&id),
                Some(change) => apply(change).await,
                None => tracing::warn!(kind, "unknown change kind"),
            }
        }
        db.applied.store(last, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Takes the cluster-wide bootstrap lock (a PostgreSQL session advisory lock on a connection
    /// of its own); `None` on SQLite, which has one node.
    pub async fn lock_bootstrap(&self) -> anyhow::Result<Option<sqlx::pool::PoolConnection<sqlx::Postgres>>> {
        let Db::Postgres(db) = &self.db else { return Ok(None) };
        let mut conn = db.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)").bind(postgres::BOOTSTRAP_LOCK).execute(&mut *conn).await?;
        Ok(Some(conn))
    }

    /// Releases what [`Store::lock_bootstrap`] took.
    pub async fn unlock_bootstrap(&self, lock: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>) {
        if let Some(mut conn) = lock {
            let unlocked =
                sqlx::query("SELECT pg_advisory_unlock($1)").bind(postgres::BOOTSTRAP_LOCK).execute(&mut *conn).await;
            if unlocked.is_err() {
                // Closing the session releases the lock too.
                let _ = conn.detach();
            }
        }
    }

    /// The PostgreSQL pool, for the change listener; `None` on SQLite.
    pub fn postgres_pool(&self) -> Option<sqlx::PgPool> {
        match &self.db {
            Db::Postgres(db) => Some(db.pool.clone()),
            Db::Sqlite(_) => None,
        }
    }

    /// Connections open and idle in the pool that serves writes and most reads.
    pub fn pool_stats(&self) -> (u32, usize) {
        match &self.db {
            Db::Sqlite(db) => (db.read.size() + db.critical.size(), db.read.num_idle() + db.critical.num_idle()),
            Db::Postgres(db) => (db.pool.size(), db.pool.num_idle()),
        }
    }

    /// Whether [`Store::close`] has run.
    pub fn is_closed(&self) -> bool {
        match &self.db {
            Db::Sqlite(db) => db.critical.is_closed(),
            Db::Postgres(db) => db.pool.is_closed(),
        }
    }

    /// Closes every connection after in-flight statements finish.
    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(db) => db.close().await,
            Db::Postgres(db) => db.pool.close().await,
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        on_pool!(self, read, |pool| sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    pub async fn setting(&self, name: &str) -> anyhow::Result<Option<String>> {
        const SQL: &str = "SELECT value FROM settings WHERE name = $1";
        on_pool!(self, read, |pool| {
            let row = sqlx::query(SQL).bind(name).fetch_optional(pool).await?;
            Ok(row.map(|r| sqlx::Row::get(&r, "value")))
        })
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value";
        on_pool!(self, write, |pool| {
            sqlx::query(SQL).bind(name).bind(value).execute(pool).await?;
            Ok(())
        })
    }

    // Clients.

    pub(crate) fn client_changed(&self, client_id: &str) {
        self.clients.invalidate(client_id);
    }

    // Users.

    // Signing keys.

    // Access tokens.
}
