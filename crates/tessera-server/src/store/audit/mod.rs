//! The audit log's storage (`audit_log`, `audit_segments`, `audit_head`). The records, their one
//! encoder and the chain are `crate::audit`; this folder is where they are written and read:
//! `mod.rs` (appending inside a transaction, PostgreSQL's path, reading and verifying for both),
//! `sqlite.rs` (SQLite's statements, segments and merged log) and `outbox.rs` (SQLite's outbox
//! file).
//!
//! [`AppendAudit::audit`] appends records inside the transaction of the change they describe,
//! as that transaction's last step. On PostgreSQL it bumps the one-row head (a row lock held to
//! commit, so appends from any connection or node are serialized and numbered without gaps),
//! chains the records onto the head's hash, and moves the head. On SQLite it reads the head
//! under the write lock, inserts after it and moves the head once (migration 0015; the primary
//! key refuses a position taken twice). A transaction that appends must take every other
//! lock first (on PostgreSQL the `changes` advisory lock, through `RecordChange::record`), so
//! that no two writers wait on each other.
//!
//! [`Store::audit`] writes records that change nothing else: in a transaction of their own on
//! PostgreSQL; on SQLite through the group commit (`store/sqlite.rs`), which appends them to the
//! outbox and moves it into the log as segments ([`append_segments`], migration 0016: one row per
//! batch of up to 512 records, holding the objects their hashes cover and the hashes). A process
//! that owns no outbox (a tool, an in-memory database) writes the group commit's records through
//! the `issuance` view instead. Every path chains with the same encoder, the one
//! [`Store::verify_audit`] recomputes. Every read of the log first moves the outbox in, so it sees
//! every acknowledged record; SQLite's log is the rows of `audit_log` and the records of
//! `audit_segments`, merged in `seq` order (`SQLITE_LOG`), a bounded window of positions at a time.

pub(super) mod outbox;
mod sqlite;

use super::rows::{column, column_u64};
use super::{Db, Store, to_i64};
use crate::audit::{Entry, Record, Verification, Verifier, chain_hash, hex};
use sqlite::SQLITE_LOG;
pub(super) use sqlite::append_segments;
#[cfg(test)]
pub(super) use sqlite::sqlite_log;

/// PostgreSQL: the head bumped by a whole transaction's records (a row lock held to commit), and
/// moved to the last hash once they are in.
const BUMP_HEAD: &str = "UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash";
const MOVE_HEAD: &str = "UPDATE audit_head SET hash = $1 WHERE id = 1";
const COLUMNS: &str = "INSERT INTO audit_log (seq, at, event, outcome, actor, subject, client_id, session_id, ip,
        request_id, details, hash) VALUES ";
/// Values per record.
pub(super) const WIDTH: usize = 12;

/// One multi-row INSERT for `rows` records, with `?` placeholders (SQLite: sqlx resolves `$N`
/// one by one, quadratic in their number) or numbered ones (PostgreSQL).
pub(super) fn insert_statement(rows: usize, numbered: bool) -> String {
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

/// Where the chain ends: the last position and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Head {
    pub(super) seq: u64,
    pub(super) hash: [u8; 32],
}

impl Head {
    /// The head from a SQLite row of `audit_head`'s `seq` and `hash`.
    pub(super) fn of_sqlite(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<Head> {
        Ok(Head { seq: column_u64(row, "seq")?, hash: to_hash(&column::<_, Vec<u8>>(row, "hash")?) })
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

    /// Appends `audit` if the statement it records changed exactly one row (`rows`, its count);
    /// whether it did. "Change one row; if it changed, record it" is this, once.
    async fn audit_if_one(&mut self, rows: u64, audit: &Record) -> anyhow::Result<bool> {
        let one = rows == 1;
        if one {
            self.audit(std::slice::from_ref(audit)).await?;
        }
        Ok(one)
    }
}

impl AppendAudit for sqlx::Transaction<'_, sqlx::Postgres> {
    async fn audit(&mut self, records: &[Record]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let count = i64::try_from(records.len()).unwrap_or(i64::MAX);
        let row = sqlx::query(BUMP_HEAD).bind(count).fetch_one(&mut **self).await?;
        let last = column_u64(&row, "seq")?;
        let head = Head { seq: last - records.len() as u64, hash: to_hash(&column::<_, Vec<u8>>(&row, "hash")?) };
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

pub(super) fn to_hash(bytes: &[u8]) -> [u8; 32] {
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

/// How many positions one query of SQLite's log covers: its segments' records are read from JSON,
/// with no index, so a query reads a bounded window rather than everything after a position.
const SQLITE_WINDOW: u64 = 4_096;

impl AuditFilter {
    /// The query of the records in the window `seq > $1 AND seq <= $2` that match, with a
    /// condition for each filter given (so that the database can use an index where it has one:
    /// `at` on both, subject and client on PostgreSQL; on SQLite the time range also passes over
    /// whole segments), and the values to bind after the window and before the limit (the last
    /// placeholder).
    fn sql(&self, sqlite: bool) -> (String, Vec<FilterValue<'_>>) {
        let mut conditions = String::new();
        let mut segments = String::new();
        let mut values = Vec::new();
        let mut push = |condition: &str, value| {
            values.push(value);
            let placeholder = format!("${}", values.len() + 2);
            conditions.push_str(&condition.replace('?', &placeholder));
            placeholder
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
            let placeholder = push(" AND at >= ?", FilterValue::Time(since));
            segments.push_str(&format!(" AND s.at_max >= {placeholder}"));
        }
        if let Some(until) = self.until {
            let placeholder = push(" AND at <= ?", FilterValue::Time(until));
            segments.push_str(&format!(" AND s.at_min <= {placeholder}"));
        }
        let limit = values.len() + 3;
        let log =
            if sqlite { format!("({})", SQLITE_LOG.replace("{segments}", &segments)) } else { "audit_log".to_owned() };
        let sql = format!("SELECT * FROM {log} WHERE seq > $1 AND seq <= $2{conditions} ORDER BY seq LIMIT ${limit}");
        (sql, values)
    }
}

impl Store {
    /// Appends a record of an event that changes nothing else; resolves once it is committed.
    ///
    /// Not an `async fn`: every request future that may write a record (the issuance path, the
    /// endpoint throttle) would carry the record, and is moved whole each time it is nested in the
    /// next. SQLite's group commit takes the record when this is called; PostgreSQL's work is
    /// boxed (sqlx's PostgreSQL futures are kilobytes).
    pub fn audit(&self, record: Record) -> impl Future<Output = anyhow::Result<()>> + Send + '_ {
        use futures_util::future::Either;
        match &self.db {
            Db::Sqlite(db) => Either::Left(db.append_audit(record)),
            Db::Postgres(db) => Either::Right(Box::pin(async move {
                let mut tx = db.pool.begin().await?;
                tx.audit(std::slice::from_ref(&record)).await?;
                tx.commit().await?;
                Ok(())
            })),
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
        let (head, _) = self.audit_head().await?;
        self.audit_entries_upto(filter, head, limit).await
    }

    /// [`Store::audit_entries`] up to position `head`: the window moves on until `limit` records
    /// are found or it passes `head`.
    async fn audit_entries_upto(&self, filter: &AuditFilter, head: u64, limit: u32) -> anyhow::Result<Vec<Entry>> {
        let window = match &self.db {
            Db::Sqlite(_) => SQLITE_WINDOW,
            Db::Postgres(_) => u64::MAX,
        };
        let mut entries = Vec::new();
        let mut after = filter.after;
        while after < head && entries.len() < limit as usize {
            let upto = after.saturating_add(window).min(head);
            let room = limit - u32::try_from(entries.len()).unwrap_or(limit);
            entries.extend(self.audit_window(filter, after, upto, room).await?);
            after = upto;
        }
        Ok(entries)
    }

    /// Records in the window `after < seq <= upto` matching `filter`, oldest first, at most `limit`.
    async fn audit_window(
        &self,
        filter: &AuditFilter,
        after: u64,
        upto: u64,
        limit: u32,
    ) -> anyhow::Result<Vec<Entry>> {
        let (sql, values) = filter.sql(matches!(self.db, Db::Sqlite(_)));
        on_pool!(self, read, |pool| {
            // The statement text is built only from placeholders; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(to_i64(after)).bind(to_i64(upto));
            for value in &values {
                query = match value {
                    FilterValue::Text(text) => query.bind(*text),
                    FilterValue::Time(time) => query.bind(to_i64(*time)),
                };
            }
            let rows = query.bind(i64::from(limit)).fetch_all(pool).await?;
            rows.iter().map(|r| r.audit_entry()).collect()
        })
    }

    /// The newest `limit` records, oldest first.
    pub async fn audit_tail(&self, limit: u32) -> anyhow::Result<Vec<Entry>> {
        let (head, _) = self.audit_head().await?;
        let filter = AuditFilter { after: head.saturating_sub(limit.into()), ..AuditFilter::default() };
        self.audit_entries_upto(&filter, head, limit).await
    }

    /// Checks the whole chain, a window at a time, against its head and an optional anchor
    /// (`seq`, hex hash) kept from an earlier check.
    pub async fn verify_audit(&self, anchor: Option<(u64, String)>) -> anyhow::Result<Verification> {
        const PAGE: u64 = 2_000;
        // The head first: records appended while we read lie beyond it and are left for later.
        let head = self.audit_head().await?;
        let mut verifier = Verifier::new(anchor);
        let all = AuditFilter::default();
        let mut after = 0u64;
        while after < head.0 {
            let upto = after.saturating_add(PAGE).min(head.0);
            // No limit: a forged log may hold more records than positions in a window.
            let page = self.audit_window(&all, after, upto, u32::MAX).await?;
            if !verifier.feed(&page) {
                break;
            }
            after = upto;
        }
        Ok(verifier.finish(head))
    }

    /// The chain's head: the last position and its hash (hex).
    pub async fn audit_head(&self) -> anyhow::Result<(u64, String)> {
        self.flush_audit().await?;
        on_pool!(self, write, |pool| {
            let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(pool).await?;
            Ok((column_u64(&row, "seq")?, hex(&column::<_, Vec<u8>>(&row, "hash")?)))
        })
    }
}

trait AuditRow {
    fn audit_entry(&self) -> anyhow::Result<Entry>;
}

macro_rules! audit_row {
    ($row:ty) => {
        impl AuditRow for $row {
            fn audit_entry(&self) -> anyhow::Result<Entry> {
                Ok(Entry {
                    seq: column_u64(self, "seq")?,
                    at: column_u64(self, "at")?,
                    event: column(self, "event")?,
                    outcome: column(self, "outcome")?,
                    actor: column(self, "actor")?,
                    subject: column(self, "subject")?,
                    client_id: column(self, "client_id")?,
                    session_id: column(self, "session_id")?,
                    ip: column(self, "ip")?,
                    request_id: column(self, "request_id")?,
                    details: column(self, "details")?,
                    hash: hex(&column::<_, Vec<u8>>(self, "hash")?),
                })
            }
        }
    };
}

audit_row!(sqlx::sqlite::SqliteRow);
audit_row!(sqlx::postgres::PgRow);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Event;

    /// A log of many segments and rows, longer than several windows: every read sees each record
    /// once, in order, and `verify` checks them all.
    #[tokio::test]
    async fn reads_cross_segments_rows_and_windows() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
        let store = Store::open(&url, &super::super::PostgresSettings::default()).await.unwrap();
        const N: u64 = 9_000;
        let record = |i: u64| Record::new(Event::TokenIssued, 1_700_000_000 + i / 1000, "server").detail("i", i);
        // In waves, so that the group commit moves the outbox in several times (several segments),
        // with a row written directly in between.
        let Db::Sqlite(db) = &store.db else { unreachable!() };
        for wave in 0..3 {
            let writes: Vec<_> = (wave * N / 3..(wave + 1) * N / 3).map(|i| store.audit(record(i))).collect();
            for write in writes {
                write.await.unwrap();
            }
            store.flush_audit().await.unwrap();
            if wave < 2 {
                let mut tx = db.critical.begin().await.unwrap();
                tx.audit(&[record(N + wave)]).await.unwrap();
                tx.commit().await.unwrap();
            }
        }
        let (head, _) = store.audit_head().await.unwrap();
        let total = N + 2;
        assert_eq!(head, total);
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(&db.read).await.unwrap();
        assert_eq!(rows, 2);
        let segments: i64 =
            sqlx::query_scalar("SELECT count(*) FROM audit_segments").fetch_one(&db.read).await.unwrap();
        assert!(segments as u64 >= N / sqlite::SEGMENT as u64, "{segments} segments");

        let verified = store.verify_audit(None).await.unwrap();
        assert_eq!((verified.verified, verified.first_break), (total, None));
        let all = AuditFilter::default();
        let page = store.audit_entries(&AuditFilter { after: 100, ..all.clone() }, 5_000).await.unwrap();
        let seqs: Vec<u64> = page.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (101..=5_100).collect::<Vec<_>>());
        let i_of = |e: &Entry| serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["i"].as_u64().unwrap();
        let mut is: Vec<u64> = page.iter().map(i_of).collect();
        is.sort_unstable();
        is.dedup();
        assert_eq!(is.len(), 5_000, "every record once");
        // A time range: the records of one second, found across windows.
        let second = AuditFilter { since: Some(1_700_000_004), until: Some(1_700_000_004), ..all.clone() };
        let found = store.audit_entries(&second, 10_000).await.unwrap();
        let mut is: Vec<u64> = found.iter().map(i_of).collect();
        is.sort_unstable();
        assert_eq!(is, (4_000..5_000).collect::<Vec<_>>());
        let tail: Vec<u64> = store.audit_tail(3).await.unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(tail, [total - 2, total - 1, total]);
        store.close().await;
    }
}
