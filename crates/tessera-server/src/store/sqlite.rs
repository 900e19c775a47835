//! The embedded SQLite backend (one node).
//!
//! SQLite allows one writer at a time, and its busy handler waits by sleeping, so writes never
//! compete on many connections: reads use a pool of their own, security-critical writes
//! (clients, keys, revocations, sign-in state) one connection with `synchronous=FULL` (fsync
//! before the commit returns), and opaque-token issuance one connection fed by a group-commit
//! task that writes every waiting token in one statement with `synchronous=NORMAL`: committed to
//! the WAL before the response is sent, so it survives the process being killed; a power loss
//! can lose the newest tokens, which then fail closed (the client gets `invalid_token` and asks
//! again), while a revocation is never lost.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

use super::audit::AppendAudit as _;
use super::{OpaqueTokenRow, json_list, to_i64, to_u64};
use crate::audit::Record;

/// The most tokens written by one group commit.
const MAX_BATCH: usize = 64;

#[derive(Clone)]
pub(crate) struct SqliteDb {
    pub(crate) read: SqlitePool,
    pub(crate) critical: SqlitePool,
    issuance: SqlitePool,
    batcher: mpsc::Sender<PendingInsert>,
}

/// A write for the group commit: an opaque token with the record of its issuance, or a record
/// alone (an event that changes nothing else).
struct PendingInsert {
    row: Option<OpaqueTokenRow>,
    audit: Record,
    done: oneshot::Sender<Result<u64, String>>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `url` in WAL mode and runs migrations.
    pub(crate) async fn open(url: &str) -> anyhow::Result<SqliteDb> {
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
        Ok(SqliteDb { read, critical, issuance, batcher })
    }

    pub(crate) async fn close(&self) {
        self.issuance.close().await;
        self.critical.close().await;
        self.read.close().await;
    }

    /// Stores an opaque token and the record of its issuance through the group commit;
    /// returns its id once both are committed.
    pub(crate) async fn insert_opaque_token(&self, row: OpaqueTokenRow, audit: Record) -> anyhow::Result<u64> {
        self.group_commit(Some(row), audit).await
    }

    /// Appends an audit record through the group commit; returns once it is committed.
    pub(crate) async fn append_audit(&self, audit: Record) -> anyhow::Result<()> {
        self.group_commit(None, audit).await.map(|_| ())
    }

    async fn group_commit(&self, row: Option<OpaqueTokenRow>, audit: Record) -> anyhow::Result<u64> {
        let (done, wait) = oneshot::channel();
        self.batcher.send(PendingInsert { row, audit, done }).await.map_err(|_| anyhow!("the store is closed"))?;
        wait.await.map_err(|_| anyhow!("the store is closed"))?.map_err(|e| anyhow!("storing a token: {e}"))
    }
}

/// Writes waiting tokens in one multi-row INSERT per round, with their audit records, in one
/// transaction: while one commit runs, the next requests queue up and share the following one.
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
        let mut rows = Vec::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        for pending in batch.drain(..) {
            let id = pending.row.as_ref().map(|_| {
                next_id += 1;
                next_id - 1
            });
            rows.extend(pending.row.map(|row| (id.unwrap_or_default(), row)));
            records.push(pending.audit);
            waiting.push((id.unwrap_or_default(), pending.done));
        }
        let result = commit_round(&pool, &statements[rows.len()], &rows, &records).await.map_err(|e| e.to_string());
        for (id, done) in waiting {
            let _ = done.send(result.as_ref().map(|()| id).map_err(Clone::clone));
        }
    }
}

/// One round of the group commit: the tokens, then their records, in one transaction.
async fn commit_round(
    pool: &SqlitePool,
    statement: &str,
    rows: &[(u64, OpaqueTokenRow)],
    records: &[Record],
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    if !rows.is_empty() {
        // The statement text is built only from placeholders; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()));
        for (id, token) in rows {
            query = query
                .bind(to_i64(*id))
                .bind(&token.secret_hash[..])
                .bind(&token.jti)
                .bind(&token.client_id)
                .bind(&token.sub)
                .bind(json_list(&token.aud))
                .bind(&token.scope)
                .bind(to_i64(token.iat))
                .bind(to_i64(token.exp))
                .bind(&token.grant_id)
                .bind(&token.cnf);
        }
        query.execute(&mut *tx).await?;
    }
    tx.audit(records).await?;
    tx.commit().await?;
    Ok(())
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
        "INSERT INTO opaque_tokens (id, secret_hash, jti, client_id, sub, aud, scope, iat, exp, grant_id, cnf) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 { "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" });
    }
    sql
}
