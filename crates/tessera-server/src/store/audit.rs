//! The audit log's SQL (`audit_log`, `audit_head`; the records and the chain are `crate::audit`).
//!
//! [`AppendAudit::audit`] appends records inside the transaction of the change they describe,
//! as that transaction's last step. On PostgreSQL it bumps the one-row head (a row lock held to
//! commit, so appends from any connection or node are serialized and numbered without gaps),
//! chains the records onto the head's hash, and moves the head. On SQLite it reads the head
//! under the write lock, inserts after it and moves the head once (migration 0015; the primary
//! key refuses a position taken twice). A transaction that appends must take every other
//! lock first (on PostgreSQL the `changes` advisory lock, through `RecordChange::record`), so
//! that no two writers wait on each other. [`Store::audit`] writes records that change nothing
//! else: through the group commit on SQLite (`sqlite.rs`, which appends them to the audit outbox,
//! `outbox.rs`, and moves it into the log in batches), in a transaction of their own on
//! PostgreSQL. Every read of the log first moves the outbox in, so it sees every acknowledged
//! record.

use sqlx::Row;

use super::{Db, Store, to_i64, to_u64};
use crate::audit::{Entry, Record, Verification, Verifier, chain_hash, hex};

/// PostgreSQL: the head bumped by a whole transaction's records (a row lock held to commit), and
/// moved to the last hash once they are in.
const BUMP_HEAD: &str = "UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash";
const MOVE_HEAD: &str = "UPDATE audit_head SET hash = $1 WHERE id = 1";
/// SQLite: the head read under the write lock, and moved once the records are in.
const LOCK_HEAD: &str = "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash";
const MOVE_SQLITE_HEAD: &str = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1";
const COLUMNS: &str = "INSERT INTO audit_log (seq, at, event, outcome, actor, subject, client_id, session_id, ip,
        request_id, details, hash) VALUES ";
/// Values per record.
pub(super) const WIDTH: usize = 12;

/// One multi-row INSERT for `rows` records, with `?` placeholders (SQLite: sqlx resolves `$N`
/// one by one, quadratic in their number) or numbered ones (PostgreSQL).
fn insert_statement(rows: usize, numbered: bool) -> String {
    let mut sql = String::from(COLUMNS);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..WIDTH {
            if col > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push_str(&format!("${}", row * WIDTH + col + 1));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

/// The row counts of SQLite's audit inserts, largest first.
const SQLITE_ROWS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// SQLite's insert of `SQLITE_ROWS[index]` records, built once.
fn sqlite_insert(index: usize) -> &'static str {
    static STATEMENTS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| SQLITE_ROWS.iter().map(|&rows| insert_statement(rows, false)).collect());
    &STATEMENTS[index]
}

/// Where the chain ends: the last position and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) seq: u64,
    pub(super) hash: [u8; 32],
}

impl Head {
    /// The head from a SQLite row of `audit_head`'s `seq` and `hash`.
    pub(super) fn of_sqlite(row: &sqlx::sqlite::SqliteRow) -> Head {
        Head { seq: to_u64(row.get("seq")), hash: to_hash(&row.get::<Vec<u8>, _>("hash")) }
    }
}

/// A record placed on the chain: its position, its stored fields and its hash.
pub(super) struct Chained<'a> {
    pub(super) seq: u64,
    pub(super) fields: crate::audit::Stored<'a>,
    pub(super) hash: [u8; 32],
}

/// Places `records` after `head`; returns them and the new head.
pub(super) fn chain(head: Head, records: &[Record]) -> (Vec<Chained<'_>>, Head) {
    let mut prev = head;
    let chained = records
        .iter()
        .map(|record| {
            let fields = record.stored();
            let seq = prev.seq + 1;
            let hash = chain_hash(&prev.hash, seq, &fields);
            prev = Head { seq, hash };
            Chained { seq, fields, hash }
        })
        .collect();
    (chained, prev)
}

/// Binds a chained record's twelve `audit_log` values, in column order.
macro_rules! bind_chained {
    ($query:expr, $c:expr) => {{
        let c: &$crate::store::audit::Chained<'_> = $c;
        $query
            .bind(to_i64(c.seq))
            .bind(to_i64(c.fields.at))
            .bind(c.fields.event)
            .bind(c.fields.outcome)
            .bind(c.fields.actor)
            .bind(c.fields.subject)
            .bind(c.fields.client_id)
            .bind(c.fields.session_id)
            .bind(c.fields.ip)
            .bind(c.fields.request_id)
            .bind(c.fields.details)
            .bind(&c.hash[..])
    }};
}
pub(super) use bind_chained;

/// Appends audit records inside a transaction (see the module header for the lock order).
pub(crate) trait AppendAudit {
    async fn audit(&mut self, records: &[Record]) -> anyhow::Result<()>;
}

impl AppendAudit for sqlx::Transaction<'_, sqlx::Sqlite> {
    async fn audit(&mut self, records: &[Record]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let head = Head::of_sqlite(&sqlx::query(LOCK_HEAD).fetch_one(&mut **self).await?);
        let (chained, new_head) = chain(head, records);
        // In statements of a power of two rows, so that a batch of any size (the outbox moves
        // hundreds) reuses a few prepared statements instead of preparing one of its own.
        let mut rest = &chained[..];
        while !rest.is_empty() {
            // The last size is 1, so one always fits.
            let index = SQLITE_ROWS.iter().position(|&rows| rows <= rest.len()).unwrap_or(SQLITE_ROWS.len() - 1);
            let (now, later) = rest.split_at(SQLITE_ROWS[index]);
            // The statement text is built only from placeholders; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sqlite_insert(index)));
            for c in now {
                query = bind_chained!(query, c);
            }
            query.execute(&mut **self).await?;
            rest = later;
        }
        sqlx::query(MOVE_SQLITE_HEAD).bind(to_i64(new_head.seq)).bind(&new_head.hash[..]).execute(&mut **self).await?;
        Ok(())
    }
}

impl AppendAudit for sqlx::Transaction<'_, sqlx::Postgres> {
    async fn audit(&mut self, records: &[Record]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
        let row = sqlx::query(BUMP_HEAD).bind(count).fetch_one(&mut **self).await?;
        let last = to_u64(row.get("seq"));
        let head = Head { seq: last - records.len() as u64, hash: to_hash(&row.get::<Vec<u8>, _>("hash")) };
        let (chained, new_head) = chain(head, records);
        // The statement text is built only from placeholders; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(insert_statement(records.len(), true)));
        for c in &chained {
            query = bind_chained!(query, c);
        }
        query.execute(&mut **self).await?;
        sqlx::query(MOVE_HEAD).bind(&new_head.hash[..]).execute(&mut **self).await?;
        Ok(())
    }
}

fn to_hash(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if bytes.len() == 32 {
        out.copy_from_slice(bytes);
    }
    out
}

/// What `tessera audit query` and `GET /admin/audit` select.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records after this position.
    pub after: u64,
    /// Records whose subject or actor is this user id.
    pub user: Option<String>,
    pub client: Option<String>,
    /// An event name (`token.issued`, …).
    pub event: Option<String>,
    /// `at` within `[since, until]` (seconds since the epoch).
    pub since: Option<u64>,
    pub until: Option<u64>,
}

/// A value a filter binds, in the order of its placeholders.
enum FilterValue<'a> {
    Text(&'a str),
    Time(u64),
}

impl AuditFilter {
    /// The query's text, with a condition for each filter given (so that the database can use an
    /// index where it has one: `at` on both, subject and client on PostgreSQL), and the values
    /// to bind after `after` (`$1`) and before the limit (the last placeholder).
    fn sql(&self) -> (String, Vec<FilterValue<'_>>) {
        let mut sql = String::from("SELECT * FROM audit_log WHERE seq > $1");
        let mut values = Vec::new();
        let mut push = |condition: &str, value| {
            values.push(value);
            sql.push_str(&condition.replace('?', &format!("${}", values.len() + 1)));
        };
        if let Some(user) = &self.user {
            push(" AND (subject = ? OR actor = 'user:' || ?)", FilterValue::Text(user));
        }
        if let Some(client) = &self.client {
            push(" AND client_id = ?", FilterValue::Text(client));
        }
        if let Some(event) = &self.event {
            push(" AND event = ?", FilterValue::Text(event));
        }
        if let Some(since) = self.since {
            push(" AND at >= ?", FilterValue::Time(since));
        }
        if let Some(until) = self.until {
            push(" AND at <= ?", FilterValue::Time(until));
        }
        let limit = values.len() + 2;
        sql.push_str(&format!(" ORDER BY seq LIMIT ${limit}"));
        (sql, values)
    }
}

impl Store {
    /// Appends records that change nothing else, once committed.
    pub async fn audit(&self, record: Record) -> anyhow::Result<()> {
        match &self.db {
            Db::Sqlite(db) => db.append_audit(record).await,
            // Boxed: sqlx's PostgreSQL futures are kilobytes, and every request future that may
            // write a record (the issuance path, the endpoint throttle) would carry and copy them.
            Db::Postgres(db) => {
                Box::pin(async move {
                    let mut tx = db.pool.begin().await?;
                    tx.audit(std::slice::from_ref(&record)).await?;
                    tx.commit().await?;
                    Ok(())
                })
                .await
            }
        }
    }

    /// Makes every acknowledged record readable: on SQLite, moves the records waiting in the
    /// outbox (`outbox.rs`) into the log. Every read of the log starts with it.
    async fn flush_audit(&self) -> anyhow::Result<()> {
        match &self.db {
            Db::Sqlite(db) => db.flush_audit().await,
            Db::Postgres(_) => Ok(()),
        }
    }

    /// Records matching `filter`, oldest first, at most `limit`.
    pub async fn audit_entries(&self, filter: &AuditFilter, limit: u32) -> anyhow::Result<Vec<Entry>> {
        self.flush_audit().await?;
        let (sql, values) = filter.sql();
        on_pool!(self, read, |pool| {
            // The statement text is built only from placeholders; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(to_i64(filter.after));
            for value in &values {
                query = match value {
                    FilterValue::Text(text) => query.bind(*text),
                    FilterValue::Time(time) => query.bind(to_i64(*time)),
                };
            }
            let rows = query.bind(i64::from(limit)).fetch_all(pool).await?;
            Ok(rows.iter().map(|r| r.audit_entry()).collect())
        })
    }

    /// The newest `limit` records, oldest first.
    pub async fn audit_tail(&self, limit: u32) -> anyhow::Result<Vec<Entry>> {
        const SQL: &str = "SELECT * FROM (SELECT * FROM audit_log ORDER BY seq DESC LIMIT $1) t ORDER BY seq";
        self.flush_audit().await?;
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(SQL).bind(i64::from(limit)).fetch_all(pool).await?;
            Ok(rows.iter().map(|r| r.audit_entry()).collect())
        })
    }

    /// Checks the whole chain, a page at a time, against its head and an optional anchor
    /// (`seq`, hex hash) kept from an earlier check.
    pub async fn verify_audit(&self, anchor: Option<(u64, String)>) -> anyhow::Result<Verification> {
        const PAGE: u32 = 2_000;
        const SQL: &str = "SELECT * FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3";
        // The head first: records appended while we read lie beyond it and are left for later.
        let head = self.audit_head().await?;
        let mut verifier = Verifier::new(anchor);
        let mut after = 0u64;
        loop {
            let page: Vec<Entry> = on_pool!(self, read, |pool| {
                let rows = sqlx::query(SQL)
                    .bind(to_i64(after))
                    .bind(to_i64(head.0))
                    .bind(i64::from(PAGE))
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(|r| r.audit_entry()).collect()
            });
            let Some(last) = page.last().map(|e| e.seq) else { break };
            if !verifier.feed(&page) {
                break;
            }
            after = last;
        }
        Ok(verifier.finish(head))
    }

    /// The chain's head: the last position and its hash (hex).
    pub async fn audit_head(&self) -> anyhow::Result<(u64, String)> {
        self.flush_audit().await?;
        on_pool!(self, write, |pool| {
            let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(pool).await?;
            Ok((to_u64(row.get("seq")), hex(&row.get::<Vec<u8>, _>("hash"))))
        })
    }
}

trait AuditRow {
    fn audit_entry(&self) -> Entry;
}

macro_rules! audit_row {
    ($row:ty) => {
        impl AuditRow for $row {
            fn audit_entry(&self) -> Entry {
                Entry {
                    seq: to_u64(self.get("seq")),
                    at: to_u64(self.get("at")),
                    event: self.get("event"),
                    outcome: self.get("outcome"),
                    actor: self.get("actor"),
                    subject: self.get("subject"),
                    client_id: self.get("client_id"),
                    session_id: self.get("session_id"),
                    ip: self.get("ip"),
                    request_id: self.get("request_id"),
                    details: self.get("details"),
                    hash: hex(&self.get::<Vec<u8>, _>("hash")),
                }
            }
        }
    };
}

audit_row!(sqlx::sqlite::SqliteRow);
audit_row!(sqlx::postgres::PgRow);
