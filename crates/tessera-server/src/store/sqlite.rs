//! The embedded SQLite backend (one node).
//!
//! SQLite allows one writer at a time, and its busy handler waits by sleeping, so writes never
//! compete on many connections: reads use a pool of their own, security-critical writes
//! (clients, keys, revocations, sign-in state) one connection with `synchronous=FULL` (fsync
//! before the commit returns), and token issuance one connection fed by a group-commit task
//! with `synchronous=NORMAL`. Each round of the group commit is one statement: every waiting
//! opaque token and every waiting audit record (of those tokens, of stateless JWTs, of refused
//! clients), inserted together through the `issuance` view, chained onto the audit head the task
//! keeps in memory. It is committed to the WAL before the responses are sent, so it survives
//! the process being killed; a power loss can lose the newest tokens, which then fail closed
//! (the client gets `invalid_token` and asks again), while a revocation is never lost. A round
//! without tokens (records alone) is appended to the audit outbox instead (`outbox.rs`), with the
//! same guarantee for a fraction of the cost, and the task moves the outbox into the log in
//! batches between rounds.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

use super::audit::{AppendAudit as _, Head, WIDTH, bind_chained, chain};
use super::outbox::Outbox;
use super::{OpaqueTokenRow, json_list, to_i64, to_u64};
use crate::audit::Record;

/// The most tokens written by one group commit.
const MAX_BATCH: usize = 64;
/// The outbox is moved into the log once it holds this many records, or once its oldest is
/// [`DRAIN_AFTER`] old, or when the log is read.
const DRAIN_AT: usize = 512;
const DRAIN_AFTER: Duration = Duration::from_millis(100);
/// Records per statement when the outbox is moved.
const DRAIN_CHUNK: usize = 512;
/// While the log cannot be written, the outbox takes this many records and then refuses more (the
/// requests fail closed) rather than growing without bound.
const OUTBOX_MAX: usize = 65_536;

#[derive(Clone)]
pub(crate) struct SqliteDb {
    pub(crate) read: SqlitePool,
    pub(crate) critical: SqlitePool,
    issuance: SqlitePool,
    batcher: mpsc::Sender<Pending>,
}

/// What the group-commit task is asked to do.
// Nearly every message is an `Insert`: boxing it would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Pending {
    /// Write an opaque token with the record of its issuance, or a record alone (an event that
    /// changes nothing else).
    Insert { row: Option<OpaqueTokenRow>, audit: Record, done: oneshot::Sender<Result<u64, String>> },
    /// Move the outbox into the log (before the log is read).
    Flush(oneshot::Sender<Result<(), String>>),
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
        // An in-memory database has no file to put an outbox beside.
        let outbox = match options.get_filename() {
            file if file.is_file() => {
                let row =
                    sqlx::query("SELECT drained, database FROM audit_outbox WHERE id = 1").fetch_one(&critical).await?;
                Outbox::open(file, &row.get::<String, _>("database"), to_u64(row.get("drained")))?
            }
            _ => None,
        };
        let read = pool(4, options).await?;
        let (batcher, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(group_commit(issuance.clone(), rx, outbox));
        tokio::spawn(checkpoint_regularly(critical.clone(), issuance.clone()));
        Ok(SqliteDb { read, critical, issuance, batcher })
    }

    pub(crate) async fn close(&self) {
        if let Err(err) = self.flush_audit().await {
            tracing::warn!(err = %err, "the audit outbox was not moved into the log; it will be at the next start");
        }
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

    /// Moves the records waiting in the outbox into the log; the log is complete once it returns.
    pub(crate) async fn flush_audit(&self) -> anyhow::Result<()> {
        let (done, wait) = oneshot::channel();
        self.batcher.send(Pending::Flush(done)).await.map_err(|_| anyhow!("the store is closed"))?;
        wait.await.map_err(|_| anyhow!("the store is closed"))?.map_err(|e| anyhow!("moving the audit outbox: {e}"))
    }

    async fn group_commit(&self, row: Option<OpaqueTokenRow>, audit: Record) -> anyhow::Result<u64> {
        let (done, wait) = oneshot::channel();
        self.batcher.send(Pending::Insert { row, audit, done }).await.map_err(|_| anyhow!("the store is closed"))?;
        wait.await.map_err(|_| anyhow!("the store is closed"))?.map_err(|e| anyhow!("storing a token: {e}"))
    }
}

/// Writes each round of waiting requests (their tokens and audit records) in one multi-row
/// INSERT into the `issuance` view, atomic on its own: while one round is written, the next
/// requests queue up and share the following one. A round of records alone goes to the outbox
/// when there is one, and the outbox is moved into the log in batches between rounds.
async fn group_commit(pool: SqlitePool, mut rx: mpsc::Receiver<Pending>, mut outbox: Option<Outbox>) {
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
    let statements: Vec<String> = (0..=MAX_BATCH).map(issuance_statement).collect();
    // The chain head as this task last wrote or read it; `None` after an error.
    let mut head = None;
    // When the oldest record in the outbox was appended (records left by the last run first).
    let mut oldest = outbox.as_ref().filter(|o| !o.records.is_empty()).map(|_| Instant::now() - DRAIN_AFTER);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // `None`: nothing came before the outbox's oldest record was due; it is moved below.
        let received = match oldest {
            Some(since) => {
                tokio::time::timeout_at((since + DRAIN_AFTER).into(), rx.recv_many(&mut batch, MAX_BATCH)).await.ok()
            }
            None => Some(rx.recv_many(&mut batch, MAX_BATCH).await),
        };
        if received == Some(0) {
            break;
        }
        // Let request tasks that are already runnable join this round before it commits. It
        // cannot wait for requests still in socket buffers (tokio polls I/O only when it parks), so
        // measured rounds stay small (about 4 tokens at 64 connections, BENCHMARKS.md).
        while received.is_some() && batch.len() < MAX_BATCH {
            tokio::task::yield_now().await;
            let room = MAX_BATCH - batch.len();
            if rx.is_empty() || rx.recv_many(&mut batch, room).await == 0 {
                break;
            }
        }
        let mut tokens = Vec::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        let mut waiting = Vec::with_capacity(batch.len());
        let mut flushes = Vec::new();
        for pending in batch.drain(..) {
            let (row, audit, done) = match pending {
                Pending::Insert { row, audit, done } => (row, audit, done),
                Pending::Flush(done) => {
                    flushes.push(done);
                    continue;
                }
            };
            let id = row.as_ref().map(|_| {
                next_id += 1;
                next_id - 1
            });
            tokens.push(id.zip(row));
            records.push(audit);
            waiting.push((id.unwrap_or_default(), done));
        }
        let result = match outbox.as_mut() {
            _ if records.is_empty() => Ok(()),
            Some(outbox) if outbox.records.len() >= OUTBOX_MAX => {
                Err("the audit outbox is full: the audit log cannot be written".to_owned())
            }
            Some(outbox) if tokens.iter().all(Option::is_none) => {
                let appended = outbox.append(records).map_err(|e| format!("appending to the audit outbox: {e}"));
                if appended.is_ok() && oldest.is_none() {
                    oldest = Some(Instant::now());
                }
                appended
            }
            _ => {
                let round = Round { statement: &statements[records.len()], tokens: &tokens, records: &records };
                round.commit(&pool, &mut head).await.map_err(|e| e.to_string())
            }
        };
        for (id, done) in waiting {
            let _ = done.send(result.as_ref().map(|()| id).map_err(Clone::clone));
        }
        if let Some(outbox) = outbox.as_mut() {
            let due = !flushes.is_empty()
                || outbox.records.len() >= DRAIN_AT
                || oldest.is_some_and(|since| since.elapsed() >= DRAIN_AFTER);
            if due && !outbox.records.is_empty() {
                let moved = drain(&pool, outbox, &mut head).await.map_err(|e| e.to_string());
                if let Err(err) = &moved {
                    tracing::warn!(err = %err, "moving the audit outbox into the log failed; will try again");
                }
                // Try again after DRAIN_AFTER when it failed.
                oldest = if moved.is_ok() { None } else { Some(Instant::now()) };
                for done in flushes.drain(..) {
                    let _ = done.send(moved.clone());
                }
            }
        }
        for done in flushes {
            let _ = done.send(Ok(()));
        }
    }
}

/// Moves the records waiting in `outbox` into the log in one transaction, with the number of
/// the last one (so that none is moved twice), then empties the outbox.
async fn drain(pool: &SqlitePool, outbox: &mut Outbox, head: &mut Option<Head>) -> anyhow::Result<()> {
    *head = None;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for records in outbox.records.chunks(DRAIN_CHUNK) {
        tx.audit(records).await?;
    }
    sqlx::query("UPDATE audit_outbox SET drained = ? WHERE id = 1")
        .bind(to_i64(outbox.last()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    // The records are in the log and `drained` says so: a file left unemptied is skipped at the
    // next start.
    if let Err(err) = outbox.moved() {
        tracing::warn!(err = %err, "cannot empty the audit outbox");
    }
    Ok(())
}

/// One round of the group commit: request `i` is `tokens[i]` (if it issues an opaque token)
/// and `records[i]`.
struct Round<'a> {
    statement: &'a str,
    tokens: &'a [Option<(u64, OpaqueTokenRow)>],
    records: &'a [Record],
}

impl Round<'_> {
    /// Writes the round after `head`, and moves `head` to its end. When another connection has
    /// appended since `head` was learnt, the view's trigger refuses the statement and the round
    /// is written again under the write lock, after the head read afresh.
    async fn commit(&self, pool: &SqlitePool, head: &mut Option<Head>) -> anyhow::Result<()> {
        let known = match *head {
            Some(known) => known,
            None => read_head(pool).await?,
        };
        *head = None;
        let end = match self.write(pool, known).await {
            Ok(end) => end,
            Err(err) if head_moved(&err) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let known = read_head(&mut *tx).await?;
                let end = self.write(&mut *tx, known).await?;
                tx.commit().await?;
                end
            }
            Err(err) => return Err(err.into()),
        };
        *head = Some(end);
        Ok(())
    }

    async fn write<'c>(&self, db: impl sqlx::SqliteExecutor<'c>, head: Head) -> Result<Head, sqlx::Error> {
        let (chained, end) = chain(head, self.records);
        // The statement text is built only from placeholders; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.statement.to_owned()));
        // Each record chains onto the previous one's hash, the first onto the head's.
        let prevs = std::iter::once(&head.hash).chain(chained.iter().map(|c| &c.hash));
        for ((token, c), prev) in self.tokens.iter().zip(&chained).zip(prevs) {
            let (id, token) = (token.as_ref().map(|(id, _)| to_i64(*id)), token.as_ref().map(|(_, row)| row));
            query = query
                .bind(id)
                .bind(token.map(|t| &t.secret_hash[..]))
                .bind(token.map(|t| &t.jti))
                .bind(token.map(|t| &t.client_id))
                .bind(token.map(|t| &t.sub))
                .bind(token.map(|t| json_list(&t.aud)))
                .bind(token.map(|t| &t.scope))
                .bind(token.map(|t| to_i64(t.iat)))
                .bind(token.map(|t| to_i64(t.exp)))
                .bind(token.and_then(|t| t.grant_id.as_ref()))
                .bind(token.and_then(|t| t.cnf.as_ref()))
                .bind(&prev[..]);
            query = bind_chained!(query, c);
        }
        query.execute(db).await?;
        Ok(end)
    }
}

async fn read_head<'c>(db: impl sqlx::SqliteExecutor<'c>) -> Result<Head, sqlx::Error> {
    Ok(Head::of_sqlite(&sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(db).await?))
}

/// Whether a write was refused because the chain had moved on (migration 0012's triggers).
fn head_moved(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|e| e.message().contains("audit chain head moved"))
}

/// Copies the WAL back into the database once a second without blocking writers (PASSIVE
/// checkpoints), in two steps so that the WAL is also restarted under steady issuance.
///
/// The first checkpoint runs on the critical connection and does the heavy part (fsync the
/// WAL, copy the pages, fsync the database) while rounds go on; but the rounds committed while
/// it ran lie beyond it, and SQLite restarts the WAL only when a checkpoint has copied all of
/// it. The second runs on the issuance connection, between two rounds, and copies only that
/// tail, so the next round restarts the WAL. Without it the WAL grew by every page written
/// (380 MB in ten seconds of issuance, BENCHMARKS.md).
async fn checkpoint_regularly(critical: SqlitePool, issuance: SqlitePool) {
    const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if critical.is_closed() || issuance.is_closed() {
            return;
        }
        let result = match sqlx::query(CHECKPOINT).execute(&critical).await {
            Ok(_) => sqlx::query(CHECKPOINT).execute(&issuance).await,
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            tracing::warn!(err = %err, "WAL checkpoint failed");
        }
    }
}

/// `INSERT INTO issuance … VALUES (?, …), …` for `rows` rows (a token's 11 columns, the hash
/// the record chains onto, the record's columns), with anonymous `?` placeholders: sqlx
/// resolves `$N` names one by one, which is quadratic in the number of parameters.
fn issuance_statement(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO issuance (token_id, secret_hash, jti, token_client_id, token_sub, aud, scope, iat, exp, grant_id, \
         cnf, prev, seq, at, event, outcome, actor, subject, client_id, session_id, ip, request_id, details, hash) VALUES ",
    );
    let row = format!("({})", vec!["?"; 12 + WIDTH].join(", "));
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&row);
    }
    sql
}
