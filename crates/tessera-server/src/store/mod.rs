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

use crate::audit::Record;
use crate::cache::InvalidatingCache;
use crate::client::Client;
use crate::user::User;

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
pub mod feed;
mod outbox;
mod postgres;
mod retention;
mod rows;
mod sign_in;
mod sqlite;

pub use postgres::PostgresSettings;
pub use retention::{MARGIN as RETENTION_MARGIN, Purged};
pub use sign_in::*;

use audit::AppendAudit as _;
use rows::Decode as _;

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

/// JWTs that may be presented once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleUse {
    /// A DPoP proof (RFC 9449 §11.1), by key thumbprint and `jti`.
    DpopProof,
    /// A `private_key_jwt` client assertion (RFC 7523 §3), by client and `jti`.
    ClientAssertion,
}

/// A client with the SHA-256 hash of its secret.
#[derive(Debug)]
pub struct StoredClient {
    pub client: Client,
    pub secret_hash: Vec<u8>,
}

/// A signing key as stored: the private half sealed with the master key.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: String,
    pub status: String,
    pub created_at: u64,
}

/// What is stored of an issued JWT access token (see [`Store::record_jwt`]).
#[derive(Debug, Clone, Copy)]
pub struct IssuedJwt<'a> {
    pub jti: &'a str,
    pub exp: u64,
    pub status_idx: Option<u64>,
    /// The grant it was issued under.
    pub grant_id: Option<&'a str>,
    /// For a split token: SHA-256 of its signature part, and its header and payload.
    pub split: Option<([u8; 32], &'a str)>,
}

/// An opaque access token as stored; its secret part is only kept as its hash.
#[derive(Debug, Clone)]
pub struct OpaqueTokenRow {
    /// Assigned by the store on insert.
    pub id: u64,
    pub secret_hash: [u8; 32],
    pub jti: String,
    pub client_id: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
    pub revoked: bool,
    /// The grant (code redemption) the token was issued under, if any.
    pub grant_id: Option<String>,
    /// The confirmation (`cnf`) of a sender-constrained token, as JSON.
    pub cnf: Option<String>,
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
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    /// The path of a SQLite URL, for creating its directory.
    pub fn sqlite_path(url: &str) -> Option<&Path> {
        url.strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|p| Path::new(p.split('?').next().unwrap_or(p)))
    }

    /// Which backend this is: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match &self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
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

    pub async fn insert_client(&self, client: &Client, secret_hash: &[u8; 32], audit: Record) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO clients (client_id, secret_hash, client_name, grant_types, scope,
                token_endpoint_auth_method, redirect_uris, access_token_format, access_token_ttl, audience,
                introspection, created_at, post_logout_redirect_uris, require_pushed_authorization_requests,
                first_party, refresh_token_rotation, id_token_signed_response_alg, tokens_not_before,
                dpop_bound_access_tokens, dpop_nonce_required, jwks, jwks_uri, certificate_identity,
                tls_client_certificate_bound_access_tokens, profile)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                $21, $22, $23, $24, $25)";
        let certificate_identity = client
            .certificate_identity
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .context("certificate identity")?;
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(SQL)
                .bind(&client.client_id)
                .bind(&secret_hash[..])
                .bind(&client.client_name)
                .bind(json_list(&client.grant_types))
                .bind(client.scope.to_string())
                .bind(client.auth_method.as_str())
                .bind(json_list(&client.redirect_uris))
                .bind(client.token_format.as_str())
                .bind(to_i64(client.access_token_ttl))
                .bind(json_list(&client.audience))
                .bind(client.introspection)
                .bind(to_i64(client.created_at))
                .bind(json_list(&client.post_logout_redirect_uris))
                .bind(client.require_par)
                .bind(client.first_party)
                .bind(client.refresh_rotation)
                .bind(&client.id_token_alg)
                .bind(to_i64(client.tokens_not_before))
                .bind(client.dpop_bound)
                .bind(client.dpop_nonce_required)
                .bind(client.jwks.as_ref().map(|j| j.to_string()))
                .bind(&client.jwks_uri)
                .bind(&certificate_identity)
                .bind(client.certificate_bound)
                .bind(client.profile.as_str())
                .execute(&mut *tx)
                .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The client and its secret hash, from a cache that every client change on this node
    /// invalidates.
    pub async fn client(&self, client_id: &str) -> anyhow::Result<Option<Arc<StoredClient>>> {
        if let Some(found) = self.clients.get(client_id) {
            return Ok(Some(found));
        }
        let ticket = self.clients.ticket();
        let stored = on_pool!(self, read, |pool| {
            let row =
                sqlx::query("SELECT * FROM clients WHERE client_id = $1").bind(client_id).fetch_optional(pool).await?;
            row.as_ref().map(|r| r.stored_client()).transpose()?
        });
        let Some(stored) = stored else { return Ok(None) };
        let stored = Arc::new(stored);
        self.clients.insert(ticket, client_id.to_owned(), stored.clone());
        Ok(Some(stored))
    }

    pub(crate) fn client_changed(&self, client_id: &str) {
        self.clients.invalidate(client_id);
    }

    pub async fn clients(&self) -> anyhow::Result<Vec<Client>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id").fetch_all(pool).await?;
            rows.iter().map(|r| r.stored_client().map(|s| s.client)).collect()
        })
    }

    /// Deletes a client; its grants, codes and pending requests go with it, and its tokens are
    /// inactive at once through the client check (and leave through the revocation feed).
    pub async fn delete_client(&self, client_id: &str, now: u64, audit: Record) -> anyhow::Result<bool> {
        let now = to_i64(now);
        let res = on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Client(client_id.to_owned())).await?;
            tx.record(&Change::Revocation).await?;
            feed::feed_grant_tokens!(tx, feed::EVENTS_OF_CLIENT, now, client_id);
            let aud = feed::audiences_of!(tx, feed::AUDIENCES_OF_CLIENT, client_id);
            let res = sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(client_id).execute(&mut *tx).await?;
            if res.rows_affected() == 1 {
                feed::feed_cutoff!(tx, "client", client_id, now, aud);
                let keys = api_keys::revoke_keys_of!(tx, "client", client_id, now);
                tx.audit(std::slice::from_ref(&audit.clone().detail("api_keys_revoked", keys))).await?;
            }
            tx.commit().await?;
            res.rows_affected()
        });
        self.client_changed(client_id);
        Ok(res == 1)
    }

    pub async fn set_client_secret(
        &self,
        client_id: &str,
        secret_hash: &[u8; 32],
        audit: Record,
    ) -> anyhow::Result<bool> {
        let res = on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE client_id = $2")
                .bind(&secret_hash[..])
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
            tx.record(&Change::Client(client_id.to_owned())).await?;
            if res.rows_affected() == 1 {
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            res.rows_affected()
        });
        self.client_changed(client_id);
        Ok(res == 1)
    }

    // Users.

    /// Inserts a user; `Ok(false)` when the username is taken (case-insensitively).
    pub async fn insert_user(&self, user: &User, password_hash: &str, audit: Record) -> anyhow::Result<bool> {
        const SQL: &str =
            "INSERT INTO users (id, username, password_hash, email, name, email_verified, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query(SQL)
                .bind(&user.id)
                .bind(&user.username)
                .bind(password_hash)
                .bind(&user.email)
                .bind(&user.name)
                .bind(user.email_verified)
                .bind(user.disabled)
                .bind(to_i64(user.created_at))
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() == 1 {
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(res.rows_affected() == 1)
        })
    }

    pub async fn user(&self, id: &str) -> anyhow::Result<Option<User>> {
        on_pool!(self, read, |pool| {
            let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(id).fetch_optional(pool).await?;
            Ok(row.as_ref().map(|r| r.user()))
        })
    }

    /// The user and their password hash, by username (case-insensitive: SQLite's column is
    /// `COLLATE NOCASE`, PostgreSQL's unique index is on `lower(username)`).
    pub async fn user_by_username(&self, username: &str) -> anyhow::Result<Option<(User, String)>> {
        let row = match &self.db {
            Db::Sqlite(db) => sqlx::query("SELECT * FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&db.read)
                .await?
                .map(|r| (r.user(), r.password_hash())),
            Db::Postgres(db) => sqlx::query("SELECT * FROM users WHERE lower(username) = lower($1)")
                .bind(username)
                .fetch_optional(&db.pool)
                .await?
                .map(|r| (r.user(), r.password_hash())),
        };
        Ok(row)
    }

    pub async fn users(&self) -> anyhow::Result<Vec<User>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, username").fetch_all(pool).await?;
            Ok(rows.iter().map(|r| r.user()).collect())
        })
    }

    /// Deletes a user; their sessions and grants go with them, so their tokens are revoked.
    pub async fn delete_user(&self, id: &str, now: u64, audit: Record) -> anyhow::Result<bool> {
        let now = to_i64(now);
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Revocation).await?;
            feed::feed_grant_tokens!(tx, feed::EVENTS_OF_USER, now, id);
            // Before the user's grants go with them.
            let aud = feed::audiences_of!(tx, feed::AUDIENCES_OF_USER, id);
            let res = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if res.rows_affected() == 1 {
                feed::feed_cutoff!(tx, "user", id, now, aud);
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(res.rows_affected() == 1)
        })
    }

    /// Counts a failed password for the user at `now`, with `audit` recording it (and the
    /// count); the number of consecutive failures. The first of a streak sets `failures_since`.
    pub async fn record_login_failure(&self, id: &str, now: u64, audit: Record) -> anyhow::Result<u64> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(
                "UPDATE users SET failed_logins = failed_logins + 1, \
                 failures_since = CASE WHEN failed_logins = 0 THEN $2 ELSE failures_since END \
                 WHERE id = $1 RETURNING failed_logins",
            )
            .bind(id)
            .bind(to_i64(now))
            .fetch_optional(&mut *tx)
            .await?;
            let failures = row.map_or(0, |r| to_u64(sqlx::Row::get(&r, "failed_logins")));
            let audit = audit.detail("consecutive_failures", failures);
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(failures)
        })
    }

    /// Locks the user out until `until` (never shortening a longer lock).
    pub async fn lock_user(&self, id: &str, until: u64, audit: Record) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2 AND locked_until < $1")
                .bind(to_i64(until))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Clears the failure count and any lock (a successful sign-in, or an admin's "enable").
    pub async fn reset_login_failures(&self, id: &str) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0, failures_since = 0 WHERE id = $1 AND (failed_logins > 0 OR locked_until > 0)")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn set_user_disabled(&self, id: &str, disabled: bool, audit: Record) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(disabled)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() == 1 {
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(res.rows_affected() == 1)
        })
    }

    // Signing keys.

    pub async fn insert_key(&self, key: &KeyRow, audit: Record) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO signing_keys (kid, alg, sealed_private_key, public_jwk, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(SQL)
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.sealed_private_key)
                .bind(&key.public_jwk)
                .bind(&key.status)
                .bind(to_i64(key.created_at))
                .execute(&mut *tx)
                .await?;
            tx.record(&Change::Keys).await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn keys(&self) -> anyhow::Result<Vec<KeyRow>> {
        on_pool!(self, write, |pool| {
            let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid").fetch_all(pool).await?;
            Ok(rows.iter().map(|r| r.key()).collect())
        })
    }

    /// Makes `kid` the one active signing key; the previous one stays published.
    pub async fn activate_key(&self, kid: &str, audit: Record) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE signing_keys SET status = 'published' WHERE status = 'active' AND kid <> $1")
                .bind(kid)
                .execute(&mut *tx)
                .await?;
            let res = sqlx::query("UPDATE signing_keys SET status = 'active' WHERE kid = $1")
                .bind(kid)
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            tx.record(&Change::Keys).await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    // Access tokens.

    /// Stores an opaque token and returns its id once it is committed: on SQLite through the
    /// group commit, on PostgreSQL with one insert whose id comes from the table's identity.
    /// `audit` is the record of its issuance, committed with it.
    /// Not an `async fn`, so that the request future does not carry `row` and `audit`: SQLite's
    /// group commit takes them when called, and PostgreSQL's work is boxed (see `Store::audit`).
    pub fn insert_opaque_token(
        &self,
        row: OpaqueTokenRow,
        audit: Record,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send + '_ {
        use futures_util::future::Either;
        match &self.db {
            Db::Sqlite(db) => Either::Left(db.insert_opaque_token(row, audit)),
            Db::Postgres(db) => Either::Right(Box::pin(async move { db.insert_opaque_token(&row, audit).await })),
        }
    }

    pub async fn opaque_token(&self, id: u64) -> anyhow::Result<Option<OpaqueTokenRow>> {
        on_pool!(self, read, |pool| {
            let row =
                sqlx::query("SELECT * FROM opaque_tokens WHERE id = $1").bind(to_i64(id)).fetch_optional(pool).await?;
            row.as_ref().map(|r| r.opaque_token()).transpose()
        })
    }

    /// Marks an opaque token revoked; the caller has checked its secret and owner.
    pub async fn revoke_opaque_token(&self, id: u64, now: u64, audit: Record) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Revocation).await?;
            let res = sqlx::query("UPDATE opaque_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(to_i64(now))
                .bind(to_i64(id))
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO revocation_events (kind, value, at, exp, aud)
                     SELECT 'jti', jti, $1, exp, aud FROM opaque_tokens WHERE id = $2",
                )
                .bind(to_i64(now))
                .bind(to_i64(id))
                .execute(&mut *tx)
                .await?;
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a JWT access token (with its token-status index, if it has one, and its `aud`
    /// for the feed's readers) as revoked until it expires.
    #[allow(clippy::too_many_arguments)]
    pub async fn revoke_jwt(
        &self,
        jti: &str,
        client_id: &str,
        aud: &[String],
        exp: u64,
        status_idx: Option<u64>,
        now: u64,
        audit: Record,
    ) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO revoked_jwts (jti, client_id, exp, revoked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (jti) DO NOTHING";
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Revocation).await?;
            let res = sqlx::query(SQL)
                .bind(jti)
                .bind(client_id)
                .bind(to_i64(exp))
                .bind(to_i64(now))
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO revocation_events (kind, value, at, exp, status_idx, aud) VALUES ('jti', $1, $2, $3, $4, $5)",
                )
                .bind(jti)
                .bind(to_i64(now))
                .bind(to_i64(exp))
                .bind(status_idx.map(to_i64))
                .bind(json_list(aud))
                .execute(&mut *tx)
                .await?;
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a single-use JWT (by SHA-256 of its issuer and `jti`) as used until
    /// `expires_at`. `false` when it was recorded before, by whatever node: a replay.
    pub async fn spend(&self, kind: SingleUse, id_hash: &[u8; 32], expires_at: u64) -> anyhow::Result<bool> {
        let sql = match kind {
            SingleUse::DpopProof => {
                "INSERT INTO dpop_proofs (proof_hash, expires_at) VALUES ($1, $2) ON CONFLICT (proof_hash) DO NOTHING"
            }
            SingleUse::ClientAssertion => {
                "INSERT INTO client_assertions (assertion_hash, expires_at) VALUES ($1, $2) ON CONFLICT (assertion_hash) DO NOTHING"
            }
        };
        on_pool!(self, write, |pool| {
            let res = sqlx::query(sql).bind(&id_hash[..]).bind(to_i64(expires_at)).execute(pool).await?;
            Ok(res.rows_affected() == 1)
        })
    }

    /// Records an issued JWT access token with the record of its issuance, in one
    /// transaction: under a grant (`grant_jwts`, so that revoking the grant revokes it, with its
    /// token-status index), and for a split token its header and payload by SHA-256 of its
    /// signature part. A stateless JWT (neither) has only its record, through [`Store::audit`].
    pub fn record_jwt<'a>(
        &'a self,
        jwt: IssuedJwt<'a>,
        audit: Record,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'a {
        use futures_util::future::Either;
        if jwt.grant_id.is_none() && jwt.split.is_none() {
            return Either::Left(self.audit(audit));
        }
        // Boxed, as in `Store::audit`: the request future stays small.
        Either::Right(Box::pin(self.record_jwt_in_transaction(jwt, audit)))
    }

    /// [`Store::record_jwt`] of a JWT with more to store than its record.
    async fn record_jwt_in_transaction(&self, jwt: IssuedJwt<'_>, audit: Record) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(grant_id) = jwt.grant_id {
                sqlx::query("INSERT INTO grant_jwts (jti, grant_id, exp, status_idx) VALUES ($1, $2, $3, $4)")
                    .bind(jwt.jti)
                    .bind(grant_id)
                    .bind(to_i64(jwt.exp))
                    .bind(jwt.status_idx.map(to_i64))
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((signature_hash, header_payload)) = jwt.split {
                sqlx::query("INSERT INTO split_tokens (signature_hash, header_payload, exp) VALUES ($1, $2, $3)")
                    .bind(&signature_hash[..])
                    .bind(header_payload)
                    .bind(to_i64(jwt.exp))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// A split token's header and payload, unless unknown or expired at `now`.
    pub async fn split_token(&self, signature_hash: &[u8; 32], now: u64) -> anyhow::Result<Option<String>> {
        const SQL: &str = "SELECT header_payload FROM split_tokens WHERE signature_hash = $1 AND exp > $2";
        on_pool!(self, read, |pool| {
            let row = sqlx::query(SQL).bind(&signature_hash[..]).bind(to_i64(now)).fetch_optional(pool).await?;
            Ok(row.map(|r| sqlx::Row::get(&r, "header_payload")))
        })
    }

    /// Whether a JWT access token was revoked by `jti`, or was issued under a grant that has
    /// since been revoked or deleted.
    pub async fn is_jwt_revoked(&self, jti: &str) -> anyhow::Result<bool> {
        const SQL: &str = "SELECT 1 AS revoked FROM revoked_jwts WHERE jti = $1
             UNION ALL
             SELECT 1 AS revoked FROM grant_jwts j LEFT JOIN grants g ON g.id = j.grant_id
             WHERE j.jti = $1 AND (g.id IS NULL OR g.revoked_at IS NOT NULL)
             LIMIT 1";
        on_pool!(self, read, |pool| Ok(sqlx::query(SQL).bind(jti).fetch_optional(pool).await?.is_some()))
    }
}
