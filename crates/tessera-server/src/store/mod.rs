//! Persistence. The only module with SQL. Every single-use or state-changing operation is
//! one statement (or one short write transaction), never read-then-write, so concurrent
//! requests cannot both win.
//!
//! SQLite allows one writer at a time, and its busy handler waits by sleeping, so writes never
//! compete on many connections: reads use a pool of their own, security-critical writes
//! (clients, keys, revocations) one connection with `synchronous=FULL` (fsync before the
//! commit returns), and opaque-token issuance one connection fed by a group-commit task that
//! writes every waiting token in one statement with `synchronous=NORMAL`: committed to the
//! WAL before the response is sent, so it survives the process being killed; a power loss can
//! lose the newest tokens, which then fail closed (the client gets `invalid_token` and asks
//! again), while a revocation is never lost.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, sqlite::SqliteRow};
use tokio::sync::{mpsc, oneshot};

use crate::cache::InvalidatingCache;
use crate::client::{Client, TokenFormat};
use crate::user::User;

mod sign_in;

pub use sign_in::*;

/// The most tokens written by one group commit.
const MAX_BATCH: usize = 64;

/// The store handle: cheap to clone.
#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    critical: SqlitePool,
    issuance: SqlitePool,
    batcher: mpsc::Sender<PendingInsert>,
    clients: InvalidatingCache<String, Arc<StoredClient>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// A client with the SHA-256 hash of its secret.
#[derive(Debug)]
pub struct StoredClient {
    pub client: Client,
    pub secret_hash: Vec<u8>,
}

struct PendingInsert {
    row: OpaqueTokenRow,
    done: oneshot::Sender<Result<u64, String>>,
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
    /// Opens (creating if needed) the SQLite database at `url` in WAL mode and runs migrations.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("database URL {url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = |size: u32, options: SqliteConnectOptions| {
            SqlitePoolOptions::new()
                .max_connections(size)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
        };
        let critical = pool(1, options.clone()).await.with_context(|| format!("opening {url}"))?;
        sqlx::migrate!("./migrations/sqlite").run(&critical).await.context("running migrations")?;
        // The issuance connection never checkpoints: a checkpoint inside its commit would stall
        // every request in that round. A background task checkpoints instead (below).
        let issuance =
            pool(1, options.clone().synchronous(SqliteSynchronous::Normal).pragma("wal_autocheckpoint", "0")).await?;
        let read = pool(4, options).await?;
        let (batcher, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(group_commit(issuance.clone(), rx));
        tokio::spawn(checkpoint_regularly(critical.clone()));
        let clients = InvalidatingCache::new(10_000, Duration::from_secs(300));
        Ok(Store { read, critical, issuance, batcher, clients })
    }

    /// The path of a SQLite URL, for creating its directory.
    pub fn sqlite_path(url: &str) -> Option<&Path> {
        url.strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|p| Path::new(p.split('?').next().unwrap_or(p)))
    }

    /// Closes every connection after in-flight statements finish.
    pub async fn close(&self) {
        self.issuance.close().await;
        self.critical.close().await;
        self.read.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }

    pub async fn setting(&self, name: &str) -> anyhow::Result<Option<String>> {
        let row =
            sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_optional(&self.read).await?;
        Ok(row.map(|r| r.get("value")))
    }

    pub async fn set_setting(&self, name: &str, value: &str) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.critical)
            .await?;
        Ok(())
    }

    // Clients.

    pub async fn insert_client(&self, client: &Client, secret_hash: &[u8; 32]) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, client_name, grant_types, scope, token_endpoint_auth_method,
                redirect_uris, access_token_format, access_token_ttl, audience, introspection, created_at,
                post_logout_redirect_uris, require_pushed_authorization_requests, first_party,
                refresh_token_rotation, id_token_signed_response_alg, tokens_not_before)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
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
        .execute(&self.critical)
        .await?;
        Ok(())
    }

    /// The client and its secret hash, from a cache that every client change on this node
    /// invalidates.
    pub async fn client(&self, client_id: &str) -> anyhow::Result<Option<Arc<StoredClient>>> {
        if let Some(found) = self.clients.get(client_id) {
            return Ok(Some(found));
        }
        let ticket = self.clients.ticket();
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored = Arc::new(StoredClient { client: client_from_row(&row)?, secret_hash: row.get("secret_hash") });
        self.clients.insert(ticket, client_id.to_owned(), stored.clone());
        Ok(Some(stored))
    }

    pub(crate) fn client_changed(&self, client_id: &str) {
        self.clients.invalidate(client_id);
    }

    pub async fn clients(&self) -> anyhow::Result<Vec<Client>> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id").fetch_all(&self.read).await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Deletes a client; its opaque tokens go with it (foreign key cascade).
    pub async fn delete_client(&self, client_id: &str) -> anyhow::Result<bool> {
        let res =
            sqlx::query("DELETE FROM clients WHERE client_id = $1").bind(client_id).execute(&self.critical).await?;
        self.client_changed(client_id);
        Ok(res.rows_affected() == 1)
    }

    pub async fn set_client_secret(&self, client_id: &str, secret_hash: &[u8; 32]) -> anyhow::Result<bool> {
        let res = sqlx::query("UPDATE clients SET secret_hash = $1 WHERE client_id = $2")
            .bind(&secret_hash[..])
            .bind(client_id)
            .execute(&self.critical)
            .await?;
        self.client_changed(client_id);
        Ok(res.rows_affected() == 1)
    }

    // Users.

    /// Inserts a user; `Ok(false)` when the username is taken.
    pub async fn insert_user(&self, user: &User, password_hash: &str) -> anyhow::Result<bool> {
        let res = sqlx::query(
            "INSERT INTO users (id, username, password_hash, email, name, email_verified, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username) DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(password_hash)
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.email_verified)
        .bind(user.disabled)
        .bind(to_i64(user.created_at))
        .execute(&self.critical)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn user(&self, id: &str) -> anyhow::Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(id).fetch_optional(&self.read).await?;
        Ok(row.as_ref().map(user_from_row))
    }

    /// The user and their password hash, by username (case-insensitive).
    pub async fn user_by_username(&self, username: &str) -> anyhow::Result<Option<(User, String)>> {
        let row =
            sqlx::query("SELECT * FROM users WHERE username = $1").bind(username).fetch_optional(&self.read).await?;
        Ok(row.map(|row| (user_from_row(&row), row.get("password_hash"))))
    }

    pub async fn users(&self) -> anyhow::Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, username").fetch_all(&self.read).await?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    pub async fn delete_user(&self, id: &str) -> anyhow::Result<bool> {
        let res = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&self.critical).await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn set_user_disabled(&self, id: &str, disabled: bool) -> anyhow::Result<bool> {
        let res = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(id)
            .execute(&self.critical)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    // Signing keys.

    pub async fn insert_key(&self, key: &KeyRow) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, sealed_private_key, public_jwk, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(&key.sealed_private_key)
        .bind(&key.public_jwk)
        .bind(&key.status)
        .bind(to_i64(key.created_at))
        .execute(&self.critical)
        .await?;
        Ok(())
    }

    pub async fn keys(&self) -> anyhow::Result<Vec<KeyRow>> {
        let rows =
            sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid").fetch_all(&self.read).await?;
        Ok(rows
            .iter()
            .map(|row| KeyRow {
                kid: row.get("kid"),
                alg: row.get("alg"),
                sealed_private_key: row.get("sealed_private_key"),
                public_jwk: row.get("public_jwk"),
                status: row.get("status"),
                created_at: to_u64(row.get("created_at")),
            })
            .collect())
    }

    /// Makes `kid` the one active signing key; the previous one stays published.
    pub async fn activate_key(&self, kid: &str) -> anyhow::Result<bool> {
        let mut tx = self.critical.begin().await?;
        sqlx::query("UPDATE signing_keys SET status = 'published' WHERE status = 'active' AND kid <> $1")
            .bind(kid)
            .execute(&mut *tx)
            .await?;
        let res =
            sqlx::query("UPDATE signing_keys SET status = 'active' WHERE kid = $1").bind(kid).execute(&mut *tx).await?;
        if res.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    // Access tokens.

    /// Stores an opaque token through the group commit; returns its id once it is committed.
    pub async fn insert_opaque_token(&self, row: OpaqueTokenRow) -> anyhow::Result<u64> {
        let (done, wait) = oneshot::channel();
        self.batcher.send(PendingInsert { row, done }).await.map_err(|_| anyhow!("the store is closed"))?;
        wait.await.map_err(|_| anyhow!("the store is closed"))?.map_err(|e| anyhow!("storing a token: {e}"))
    }

    pub async fn opaque_token(&self, id: u64) -> anyhow::Result<Option<OpaqueTokenRow>> {
        let row = sqlx::query("SELECT * FROM opaque_tokens WHERE id = $1")
            .bind(to_i64(id))
            .fetch_optional(&self.read)
            .await?;
        row.map(|row: SqliteRow| {
            let stored: &[u8] = row.get("secret_hash");
            let secret_hash: [u8; 32] = stored.try_into().map_err(|_| anyhow!("corrupt secret_hash for token {id}"))?;
            Ok(OpaqueTokenRow {
                id,
                secret_hash,
                jti: row.get("jti"),
                client_id: row.get("client_id"),
                sub: row.get("sub"),
                aud: parse_list(row.get("aud"))?,
                scope: row.get("scope"),
                iat: to_u64(row.get("iat")),
                exp: to_u64(row.get("exp")),
                revoked: row.get::<Option<i64>, _>("revoked_at").is_some(),
                grant_id: row.get("grant_id"),
            })
        })
        .transpose()
    }

    /// Marks an opaque token revoked; the caller has checked its secret and owner.
    pub async fn revoke_opaque_token(&self, id: u64, now: u64) -> anyhow::Result<()> {
        sqlx::query("UPDATE opaque_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(to_i64(now))
            .bind(to_i64(id))
            .execute(&self.critical)
            .await?;
        Ok(())
    }

    /// Records a JWT access token as revoked until it expires.
    pub async fn revoke_jwt(&self, jti: &str, client_id: &str, exp: u64, now: u64) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO revoked_jwts (jti, client_id, exp, revoked_at) VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(client_id)
            .bind(to_i64(exp))
            .bind(to_i64(now))
            .execute(&self.critical)
            .await?;
        Ok(())
    }

    /// Whether a JWT access token was revoked by `jti`, or was issued under a grant that has
    /// since been revoked or deleted.
    pub async fn is_jwt_revoked(&self, jti: &str) -> anyhow::Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM revoked_jwts WHERE jti = ?1
             UNION ALL
             SELECT 1 FROM grant_jwts j LEFT JOIN grants g ON g.id = j.grant_id
             WHERE j.jti = ?1 AND (g.id IS NULL OR g.revoked_at IS NOT NULL)
             LIMIT 1",
        )
        .bind(jti)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }
}

/// Writes waiting tokens in one multi-row INSERT per round: while one commit runs, the next
/// requests queue up and share the following one.
async fn group_commit(pool: SqlitePool, mut rx: mpsc::Receiver<PendingInsert>) {
    // This task is the only writer of opaque_tokens, so it hands out ids itself and needs no
    // RETURNING round trip. An id used by a failed batch is simply never used again.
    let mut next_id: u64 =
        match sqlx::query("SELECT COALESCE(MAX(id), 0) AS max_id FROM opaque_tokens").fetch_one(&pool).await {
            Ok(row) => to_u64(row.get("max_id")) + 1,
            Err(err) => {
                tracing::error!(err = %err, "cannot read the opaque token sequence; issuance disabled");
                return;
            }
        };
    let statements: Vec<String> = (0..=MAX_BATCH).map(insert_statement).collect();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Let request tasks that are already runnable join this round before it commits. It
        // cannot wait for requests still in socket buffers (tokio polls I/O only when it parks), so
        // measured rounds stay small (about 4 tokens at 64 connections, BENCHMARKS.md).
        while batch.len() < MAX_BATCH {
            tokio::task::yield_now().await;
            let room = MAX_BATCH - batch.len();
            if rx.is_empty() || rx.recv_many(&mut batch, room).await == 0 {
                break;
            }
        }
        let first = next_id;
        next_id += batch.len() as u64;
        // The statement text is built only from placeholders; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statements[batch.len()].clone()));
        for (i, pending) in batch.iter().enumerate() {
            let token = &pending.row;
            query = query
                .bind(to_i64(first + i as u64))
                .bind(&token.secret_hash[..])
                .bind(&token.jti)
                .bind(&token.client_id)
                .bind(&token.sub)
                .bind(json_list(&token.aud))
                .bind(&token.scope)
                .bind(to_i64(token.iat))
                .bind(to_i64(token.exp))
                .bind(&token.grant_id);
        }
        let result = query.execute(&pool).await.map_err(|e| e.to_string());
        for (i, pending) in batch.drain(..).enumerate() {
            let _ = pending.done.send(result.as_ref().map(|_| first + i as u64).map_err(Clone::clone));
        }
    }
}

/// Copies the WAL back into the database once a second without blocking writers (a PASSIVE
/// checkpoint), so the WAL stays small although the issuance connection never checkpoints.
async fn checkpoint_regularly(pool: SqlitePool) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if pool.is_closed() {
            return;
        }
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::warn!(err = %err, "WAL checkpoint failed");
        }
    }
}

/// `INSERT … VALUES (?, …), …` for `rows` rows, with anonymous `?` placeholders: sqlx
/// resolves `$N` names one by one, which is quadratic in the number of parameters.
fn insert_statement(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO opaque_tokens (id, secret_hash, jti, client_id, sub, aud, scope, iat, exp, grant_id) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 { "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" });
    }
    sql
}

fn user_from_row(row: &SqliteRow) -> User {
    User {
        id: row.get("id"),
        username: row.get("username"),
        email: row.get("email"),
        name: row.get("name"),
        email_verified: row.get("email_verified"),
        disabled: row.get("disabled"),
        created_at: to_u64(row.get("created_at")),
    }
}

fn client_from_row(row: &SqliteRow) -> anyhow::Result<Client> {
    Ok(Client {
        client_id: row.get("client_id"),
        client_name: row.get("client_name"),
        grant_types: parse_list(row.get("grant_types"))?,
        scope: crate::scope::Scope::parse(row.get("scope")).map_err(|_| anyhow::anyhow!("corrupt scope column"))?,
        auth_method: row.get::<&str, _>("token_endpoint_auth_method").parse()?,
        redirect_uris: parse_list(row.get("redirect_uris"))?,
        token_format: TokenFormat::from_str(row.get("access_token_format"))?,
        access_token_ttl: to_u64(row.get("access_token_ttl")),
        audience: parse_list(row.get("audience"))?,
        introspection: row.get("introspection"),
        post_logout_redirect_uris: parse_list(row.get("post_logout_redirect_uris"))?,
        require_par: row.get("require_pushed_authorization_requests"),
        first_party: row.get("first_party"),
        refresh_rotation: row.get("refresh_token_rotation"),
        id_token_alg: row.get("id_token_signed_response_alg"),
        tokens_not_before: to_u64(row.get("tokens_not_before")),
        created_at: to_u64(row.get("created_at")),
    })
}
