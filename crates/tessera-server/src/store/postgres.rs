//! The PostgreSQL backend: several stateless `tessera serve` nodes on one database.
//!
//! One pool for everything. Every commit is durable when it returns (PostgreSQL's default
//! `synchronous_commit`); single-use steps are conditional updates, atomic on any number of
//! nodes. Requests never wait long for a connection: when the database is unreachable they
//! fail after `acquire_timeout` with a 503, and the pool reconnects by itself when it is back.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::audit::AppendAudit as _;
use super::rows::{column, column_u64};
use super::{OpaqueTokenRow, json_list, to_i64};
use crate::audit::Record;
use crate::config::PostgresSettings;

#[derive(Clone)]
pub(crate) struct PgDb {
    pub(crate) pool: PgPool,
    /// The highest `changes.seq` this node has applied.
    pub(crate) applied: Arc<AtomicI64>,
    /// One catch-up at a time.
    pub(crate) catching_up: Arc<tokio::sync::Mutex<()>>,
}

impl PgDb {
    /// Connects and runs the migrations. TLS follows the URL's `sslmode` (`require`,
    /// `verify-ca`, `verify-full` with `sslrootcert`).
    pub(crate) async fn open(url: &str, settings: &PostgresSettings) -> anyhow::Result<PgDb> {
        let options = PgConnectOptions::from_str(url)
            .context("database URL is not a valid postgres:// URL")?
            .application_name("tessera")
            .options([("statement_timeout", format!("{}", settings.statement_timeout.as_millis()))]);
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .min_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.context("running migrations")?;
        // Caches start empty: nothing before now needs applying.
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS seq FROM changes").fetch_one(&pool).await?;
        let applied = Arc::new(AtomicI64::new(column(&row, "seq")?));
        Ok(PgDb { pool, applied, catching_up: Arc::default() })
    }

    /// Changes committed after `after`, in commit order.
    pub(crate) async fn changes_after(&self, after: i64) -> anyhow::Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query("SELECT seq, kind, key FROM changes WHERE seq > $1 ORDER BY seq")
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((column(r, "seq")?, column(r, "kind")?, column(r, "key")?))).collect()
    }

    /// Stores an opaque token and the record of its issuance in one transaction.
    pub(crate) async fn insert_opaque_token(&self, token: &OpaqueTokenRow, audit: Record) -> anyhow::Result<u64> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO opaque_tokens (secret_hash, jti, client_id, sub, aud, scope, iat, exp, grant_id, cnf)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(&token.secret_hash[..])
        .bind(&token.jti)
        .bind(&token.client_id)
        .bind(&token.sub)
        .bind(json_list(&token.aud))
        .bind(&token.scope)
        .bind(to_i64(token.iat))
        .bind(to_i64(token.exp))
        .bind(&token.grant_id)
        .bind(&token.cnf)
        .fetch_one(&mut *tx)
        .await?;
        tx.audit(std::slice::from_ref(&audit)).await?;
        tx.commit().await?;
        column_u64(&row, "id")
    }
}

/// The advisory lock held while a node creates the first keys and the bootstrap client.
pub(crate) const BOOTSTRAP_LOCK: i64 = 0x7465_7373_6572_6102;

/// The advisory lock that serializes writers of `changes`, so that `seq` order is commit order.
const CHANGES_LOCK: i64 = 0x7465_7373_6572_6101;

/// Appends a change in the writer's transaction and notifies the other nodes at commit.
pub(crate) async fn record_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    kind: &str,
    key: &str,
) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CHANGES_LOCK).execute(&mut **tx).await?;
    let row = sqlx::query(
        "INSERT INTO changes (kind, key, at) VALUES ($1, $2, extract(epoch FROM now())::bigint) RETURNING seq",
    )
    .bind(kind)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    let seq: i64 = column(&row, "seq")?;
    sqlx::query("SELECT pg_notify('tessera_changes', $1)").bind(seq.to_string()).execute(&mut **tx).await?;
    Ok(())
}
