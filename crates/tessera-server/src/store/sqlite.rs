//! The embedded SQLite backend (one node).
//!
//! SQLite allows one writer at a time, and its busy handler waits by sleeping, so writes never
//! compete on many connections: reads use a pool of their own, security-critical writes
//! (clients, keys, revocations, sign-in state) one connection with `synchronous=FULL` (fsync
//! before the commit returns), and token issuance one connection fed by a group-commit task
//! with `synchronous=NORMAL`. Each round of the group commit appends its audit records (of
//! opaque tokens, of stateless JWTs, of refused clients) to the audit outbox (`outbox.rs`) in
//! one write, then commits its opaque tokens in one statement, each token naming the number of
//! its record (`opaque_tokens.outbox`); between rounds the task moves the outbox into the log in
//! batches, one row of `audit_segments` per batch (`store::audit`). Both writes are done before
//! the responses are sent, so they survive the process being killed. A power loss can keep
//! either without the other (two files, no fsync): start-up then deletes the tokens whose record
//! is not in the outbox (they fail closed, as a token lost with its commit does) and drops the
//! records whose token was not committed ([`reconcile`]), so every token has its record and
//! every record its token, while a revocation is never lost. A process that does not own the
//! outbox (a tool, a test), and an in-memory database, write each round's tokens and records
//! together in one statement through the `issuance` view instead, chained onto the audit head
//! the task keeps in memory.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{mpsc, oneshot};

use super::audit::outbox::Outbox;
use super::audit::{Head, WIDTH, append_segments, bind_chained, chain};
use super::rows::{column, column_u64};
use super::{OpaqueTokenRow, json_list, to_i64};
use crate::audit::Record;

/// The most tokens written by one group commit.
const MAX_BATCH: usize = 64;
/// The outbox is moved into the log once it holds this many records, or once its oldest is
/// [`DRAIN_AFTER`] old, or when the log is read.
const DRAIN_AT: usize = 512;
const DRAIN_AFTER: Duration = Duration::from_millis(100);
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
                const SQL: &str = "SELECT drained, database, token_floor FROM audit_outbox WHERE id = 1";
                let row = sqlx::query(SQL).fetch_one(&critical).await?;
                let drained = column_u64(&row, "drained")?;
                match Outbox::open(file, &column::<_, String>(&row, "database")?, drained)? {
                    Some(mut outbox) => {
                        reconcile(&critical, &mut outbox, drained, column_u64(&row, "token_floor")?).await?;
                        Some(outbox)
                    }
                    None => None,
                }
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
    /// resolves to its id once both are committed. Handed over at once ([`SqliteDb::group_commit`]).
    pub(crate) fn insert_opaque_token(
        &self,
        row: OpaqueTokenRow,
        audit: Record,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send + 'static {
        self.group_commit(Some(row), audit)
    }

    /// Appends an audit record through the group commit; resolves once it is committed.
    pub(crate) fn append_audit(&self, audit: Record) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
        let committed = self.group_commit(None, audit);
        async move { committed.await.map(|_| ()) }
    }

    /// Moves the records waiting in the outbox into the log; the log is complete once it returns.
    pub(crate) async fn flush_audit(&self) -> anyhow::Result<()> {
        let (done, wait) = oneshot::channel();
        self.batcher.send(Pending::Flush(done)).await.map_err(|_| anyhow!("the store is closed"))?;
        wait.await.map_err(|_| anyhow!("the store is closed"))?.map_err(|e| anyhow!("moving the audit outbox: {e}"))
    }

    /// Hands a token and its record to the group-commit task when called, not when first polled,
    /// and returns a future of the answer that holds only the receiving end of a channel: the row
    /// and the record (half a kilobyte) are moved once, into the queue, instead of being carried by
    /// every future of the request that awaits this one, each of which is moved whole as it is
    /// nested in the next (`memmove` was the largest single cost the audit log added to issuance,
    /// BENCHMARKS.md). Only a full queue makes it wait, in a future of its own on the heap.
    fn group_commit(
        &self,
        row: Option<OpaqueTokenRow>,
        audit: Record,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send + 'static {
        let (done, wait) = oneshot::channel();
        let queued: Option<std::pin::Pin<Box<dyn Future<Output = bool> + Send>>> =
            match self.batcher.try_send(Pending::Insert { row, audit, done }) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(pending)) => {
                    let batcher = self.batcher.clone();
                    Some(Box::pin(async move { batcher.send(pending).await.is_ok() }))
                }
                Err(mpsc::error::TrySendError::Closed(_)) => Some(Box::pin(std::future::ready(false))),
            };
        async move {
            if let Some(queued) = queued
                && !queued.await
            {
                anyhow::bail!("the store is closed");
            }
            wait.await.map_err(|_| anyhow!("the store is closed"))?.map_err(|e| anyhow!("storing a token: {e}"))
        }
    }
}

/// Writes each round of waiting requests (their tokens and audit records): the records to the
/// outbox and then the tokens in one multi-row INSERT, or, without an outbox, both in one
/// INSERT into the `issuance` view. While one round is written, the next requests queue up and
/// share the following one. The outbox is moved into the log in batches between rounds.
async fn group_commit(pool: SqlitePool, mut rx: mpsc::Receiver<Pending>, mut outbox: Option<Outbox>) {
    // This task is the only writer of opaque_tokens, so it hands out ids itself and needs no
    // RETURNING round trip. An id used by a failed batch is simply never used again.
    let max_id = sqlx::query("SELECT COALESCE(MAX(id), 0) AS max_id FROM opaque_tokens")
        .fetch_one(&pool)
        .await
        .map_err(anyhow::Error::from)
        .and_then(|row| column_u64(&row, "max_id"));
    let mut next_id: u64 = match max_id {
        Ok(max_id) => max_id + 1,
        Err(err) => {
            tracing::error!(err = %err, "cannot read the opaque token sequence; issuance disabled");
            return;
        }
    };
    let statements: Vec<String> = (0..=MAX_BATCH).map(issuance_statement).collect();
    let token_statements: Vec<String> = (0..=MAX_BATCH).map(token_statement).collect();
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
        // rounds stay small: 11.4 tokens on average at 64 connections, 3.6 at 4 (counted in a
        // throwaway build, 2026-12-07).
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
            // The records first, then the tokens that name them: a token is never committed
            // before its record is in the outbox.
            Some(outbox) => {
                let first = outbox.next();
                let ids: Vec<Option<u64>> = tokens.iter().map(|t| t.as_ref().map(|(id, _)| *id)).collect();
                match outbox.append(records, &ids) {
                    Err(err) => Err(format!("appending to the audit outbox: {err}")),
                    Ok(()) => {
                        oldest.get_or_insert_with(Instant::now);
                        let committed = insert_tokens(&pool, &token_statements, &tokens, first).await;
                        if committed.is_err() {
                            outbox.forget_last(ids.len());
                        }
                        committed.map_err(|e| format!("storing a token: {e}"))
                    }
                }
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
            if due && outbox.records.is_empty() {
                // Only records whose tokens were not committed were left: nothing to move.
                oldest = None;
            } else if due {
                let moved = drain(&pool, outbox, &mut head, next_id).await.map_err(|e| e.to_string());
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
/// the last one (so that none is moved twice) and the next token id (every token before it now
/// has its record in the log), then empties the outbox.
async fn drain(pool: &SqlitePool, outbox: &mut Outbox, head: &mut Option<Head>, next_token: u64) -> anyhow::Result<()> {
    *head = None;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    // As segments of many records a row, each stored and chained from the encoding the outbox
    // wrote, not serialized again.
    append_segments(&mut tx, &outbox.records, |index| outbox.encoding(index)).await?;
    sqlx::query("UPDATE audit_outbox SET drained = ?, token_floor = ? WHERE id = 1")
        .bind(to_i64(outbox.last()))
        .bind(to_i64(next_token))
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

/// Start-up after a crash: a round appends its records to the outbox and then commits its tokens,
/// and a power loss can keep either write without the other. Deletes the tokens whose record is
/// not in the outbox (they fail closed, as a token lost with its commit does) and drops the
/// records whose token was not committed, so that every token has its record and every record
/// its token. Only tokens from `floor` on (issued since the outbox was last moved) whose record
/// is numbered after `drained` can be either.
async fn reconcile(critical: &SqlitePool, outbox: &mut Outbox, drained: u64, floor: u64) -> anyhow::Result<()> {
    const SQL: &str = "SELECT id, outbox FROM opaque_tokens WHERE id >= ? AND outbox > ?";
    let rows = sqlx::query(SQL).bind(to_i64(floor)).bind(to_i64(drained)).fetch_all(critical).await?;
    let committed: HashSet<(u64, u64)> =
        rows.iter().map(|r| anyhow::Ok((column_u64(r, "id")?, column_u64(r, "outbox")?))).collect::<Result<_, _>>()?;
    let recorded: HashSet<(u64, u64)> = outbox.tokens().collect();
    let orphans: Vec<u64> = committed.difference(&recorded).map(|&(id, _)| id).collect();
    if !orphans.is_empty() {
        let mut tx = critical.begin().await?;
        for id in &orphans {
            sqlx::query("DELETE FROM opaque_tokens WHERE id = ?").bind(to_i64(*id)).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::warn!(
            tokens = orphans.len(),
            "deleted opaque tokens whose issuance record was lost (a power loss): they fail closed"
        );
    }
    let dropped = outbox.retain(|token, n| committed.contains(&(token, n)));
    if dropped > 0 {
        tracing::warn!(records = dropped, "dropped audit outbox records of tokens that were never committed");
    }
    Ok(())
}

/// Commits the opaque tokens of a round whose records were appended to the outbox from number
/// `first` on (request `i`'s record is `first + i`), each naming its record.
async fn insert_tokens(
    pool: &SqlitePool,
    statements: &[String],
    tokens: &[Option<(u64, OpaqueTokenRow)>],
    first: u64,
) -> Result<(), sqlx::Error> {
    let rows: Vec<(u64, &(u64, OpaqueTokenRow))> =
        (first..).zip(tokens).filter_map(|(n, t)| Some((n, t.as_ref()?))).collect();
    if rows.is_empty() {
        return Ok(());
    }
    // The statement text is built only from placeholders; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statements[rows.len()].clone()));
    for (n, (id, t)) in rows {
        query = query
            .bind(to_i64(*id))
            .bind(&t.secret_hash[..])
            .bind(&t.jti)
            .bind(&t.client_id)
            .bind(&t.sub)
            .bind(json_list(&t.aud))
            .bind(&t.scope)
            .bind(to_i64(t.iat))
            .bind(to_i64(t.exp))
            .bind(t.grant_id.as_ref())
            .bind(t.cnf.as_ref())
            .bind(to_i64(n));
    }
    query.execute(pool).await?;
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

async fn read_head<'c>(db: impl sqlx::SqliteExecutor<'c>) -> anyhow::Result<Head> {
    Head::of_sqlite(&sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(db).await?)
}

/// Whether a write was refused because the chain had moved on (the `issuance` view's trigger,
/// migration 0015).
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

/// `INSERT INTO opaque_tokens … VALUES (?, …), …` for `rows` tokens, each naming its record in
/// the outbox.
fn token_statement(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO opaque_tokens (id, secret_hash, jti, client_id, sub, aud, scope, iat, exp, grant_id, cnf, outbox) \
         VALUES ",
    );
    for i in 0..rows {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        });
    }
    sql
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Event;

    fn token(jti: &str) -> OpaqueTokenRow {
        OpaqueTokenRow {
            id: 0,
            secret_hash: [7; 32],
            jti: jti.to_owned(),
            client_id: "c".to_owned(),
            sub: "c".to_owned(),
            aud: vec!["api".to_owned()],
            scope: "read".to_owned(),
            iat: 1_700_000_000,
            exp: 1_700_003_600,
            revoked: false,
            grant_id: None,
            cnf: None,
        }
    }

    fn issued(jti: &str) -> Record {
        Record::new(Event::TokenIssued, 1_700_000_000, "client:c").client("c").detail("jti", jti)
    }

    async fn ids(db: &SqliteDb) -> Vec<i64> {
        let rows = sqlx::query("SELECT id FROM opaque_tokens ORDER BY id").fetch_all(&db.read).await.unwrap();
        rows.iter().map(|r| column(r, "id").unwrap()).collect()
    }

    async fn logged_jtis(db: &SqliteDb) -> Vec<String> {
        db.flush_audit().await.unwrap();
        let log = super::super::audit::sqlite_log();
        let sql = format!("SELECT details ->> 'jti' AS jti FROM ({log}) WHERE event = 'token.issued' ORDER BY seq");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(0).bind(i64::MAX).fetch_all(&db.read).await.unwrap();
        rows.iter().map(|r| column(r, "jti").unwrap()).collect()
    }

    /// Closes `db` and waits until its group-commit task has let go of the outbox (it ends once
    /// the last sender is gone), so that the next open owns it.
    async fn shut(db: SqliteDb, file: &std::path::Path) {
        db.close().await;
        drop(db);
        let mut path = file.as_os_str().to_owned();
        path.push("-outbox");
        for _ in 0..100_000 {
            tokio::task::yield_now().await;
            if std::fs::File::open(&path).unwrap().try_lock().is_ok() {
                return;
            }
        }
        panic!("the group-commit task kept the outbox");
    }

    /// What a power loss can leave (the outbox line and the token's commit are two writes):
    /// start-up deletes a token whose record is not in the outbox and drops a record whose
    /// token is not in the database, and keeps a token and record that match.
    #[tokio::test]
    async fn start_up_matches_opaque_tokens_with_their_outbox_records() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tessera.db");
        let url = format!("sqlite://{}", file.display());
        let db = SqliteDb::open(&url).await.unwrap();
        let first = db.insert_opaque_token(token("first"), issued("first")).await.unwrap();
        assert_eq!(logged_jtis(&db).await, ["first"]);
        shut(db, &file).await;

        let options = SqliteConnectOptions::from_str(&url).unwrap();
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        let row =
            sqlx::query("SELECT drained, database FROM audit_outbox WHERE id = 1").fetch_one(&pool).await.unwrap();
        let drained = column_u64(&row, "drained").unwrap();
        let mut outbox =
            Outbox::open(&file, &column::<_, String>(&row, "database").unwrap(), drained).unwrap().unwrap();
        let n = outbox.next();
        // Record n: its token was committed. Record n + 1: its token never was.
        outbox.append(vec![issued("kept"), issued("token lost")], &[Some(first + 1), Some(first + 2)]).unwrap();
        drop(outbox);
        let insert = "INSERT INTO opaque_tokens (id, secret_hash, jti, client_id, sub, aud, scope, iat, exp, outbox)
             VALUES (?, x'00', ?, 'c', 'c', '[]', '', 0, 0, ?)";
        for (id, jti, outbox) in [(first + 1, "kept", n), (first + 3, "record lost", n + 2)] {
            sqlx::query(insert).bind(to_i64(id)).bind(jti).bind(to_i64(outbox)).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let db = SqliteDb::open(&url).await.unwrap();
        let [first, kept] = [first, first + 1].map(to_i64);
        assert_eq!(ids(&db).await, [first, kept], "the token whose record was lost is deleted");
        assert_eq!(logged_jtis(&db).await, ["first", "kept"], "the record whose token was lost is dropped");
        // Issuance goes on after them, and a second start finds nothing more to do.
        db.insert_opaque_token(token("after"), issued("after")).await.unwrap();
        shut(db, &file).await;
        let db = SqliteDb::open(&url).await.unwrap();
        assert_eq!(ids(&db).await.len(), 3);
        assert_eq!(logged_jtis(&db).await, ["first", "kept", "after"]);
        db.close().await;
    }
}
