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

use super::{OpaqueTokenRow, json_list, to_i64, to_u64};

/// The most tokens written by one group commit.
const MAX_BATCH: usize = 64;

#[derive(Clone)]
pub(crate) struct SqliteDb {
    pub(crate) read: SqlitePool,
    pub(crate) critical: SqlitePool,
    issuance: SqlitePool,
    batcher: mpsc::Sender<PendingInsert>,
}

struct PendingInsert {
    row: OpaqueTokenRow,
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

    /// Stores an opaque token through the group commit; returns its id once it is committed.
    pub(crate) async fn insert_opaque_token(&self, row: OpaqueTokenRow) -> anyhow::Result<u64> {
        let (done, wait) = oneshot::channel();
        self.batcher.send(PendingInsert { row, done }).await.map_err(|_| anyhow!("the store is closed"))?;
        wait.await.map_err(|_| anyhow!("the store is closed"))?.map_err(|e| anyhow!("storing a token: {e}"))
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
                .bind(&token.grant_id)
                .bind(&token.cnf);
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
        "INSERT INTO opaque_tokens (id, secret_hash, jti, client_id, sub, aud, scope, iat, exp, grant_id, cnf) VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 { "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" } else { ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" });
    }
    sql
}
