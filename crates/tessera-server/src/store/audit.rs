//! The audit log's SQL (`audit_log`, `audit_segments`, `audit_head`; the records and the chain are
//! `crate::audit`).
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
//!
//! On SQLite the outbox is moved in as segments ([`append_segments`], migration 0016): one row per
//! batch of up to 512 records, holding the objects their hashes cover and the hashes, instead of a
//! row per record, whose insert cost more than the rest of the audit path. So SQLite's log is the
//! rows of `audit_log` and the records of `audit_segments`, which every read merges in `seq` order
//! (`SQLITE_LOG`), a bounded window of positions at a time.

use sqlx::Row;

use super::{Db, Store, to_i64, to_u64};
use crate::audit::{Entry, Record, Verification, Verifier, chain_hash, chain_hash_of, hex, write_hashed};

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

/// The most records in one segment (`audit_segments`, migration 0016).
const SEGMENT: usize = 512;

/// SQLite: appends `records`, whose encodings ([`Record::encode`]) are `encoding(i)`, as
/// segments of up to [`SEGMENT`] records: one row each, holding the records as a JSON array whose
/// elements are the objects their hashes cover ([`write_hashed`]) and the hashes themselves. Each
/// record is hashed from the bytes stored, so it is serialized once on its way from the outbox.
pub(super) async fn append_segments<'e>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    records: &[Record],
    encoding: impl Fn(usize) -> &'e [u8],
) -> anyhow::Result<()> {
    const INSERT: &str =
        "INSERT INTO audit_segments (last, first, at_min, at_max, records, hashes) VALUES (?, ?, ?, ?, ?, ?)";
    if records.is_empty() {
        return Ok(());
    }
    let mut head = Head::of_sqlite(&sqlx::query(LOCK_HEAD).fetch_one(&mut **tx).await?);
    for (chunk, batch) in records.chunks(SEGMENT).enumerate() {
        let first = head.seq + 1;
        let mut text = Vec::with_capacity(batch.len() * 512);
        let mut hashes = Vec::with_capacity(batch.len() * 32);
        text.push(b'[');
        for index in 0..batch.len() {
            if index > 0 {
                text.push(b',');
            }
            let start = text.len();
            let seq = head.seq + 1;
            write_hashed(seq, encoding(chunk * SEGMENT + index), &mut text);
            head = Head { seq, hash: chain_hash_of(&head.hash, &text[start..]) };
            hashes.extend_from_slice(&head.hash);
        }
        text.push(b']');
        // serde_json writes UTF-8; a segment is stored as text, which SQLite's JSON functions read.
        let text = String::from_utf8(text)?;
        let at = batch.iter().map(|r| to_i64(r.at));
        let (at_min, at_max) = (at.clone().min().unwrap_or_default(), at.max().unwrap_or_default());
        sqlx::query(INSERT)
            .bind(to_i64(head.seq))
            .bind(to_i64(first))
            .bind(at_min)
            .bind(at_max)
            .bind(text)
            .bind(hashes)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(MOVE_SQLITE_HEAD).bind(to_i64(head.seq)).bind(&head.hash[..]).execute(&mut **tx).await?;
    Ok(())
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

/// SQLite's log: the rows of `audit_log` and the records of the segments (migration 0016) within
/// the window `seq > $1 AND seq <= $2`, with the columns of `audit_log`. `{segments}` is where
/// conditions on whole segments go. A segment spans at most [`SEGMENT`] (512) positions, so
/// `last <= $2 + 512` bounds the scan of the primary key; a forged longer one would hide some of
/// its records, which `verify` then reports missing.
const SQLITE_LOG: &str =
    "SELECT seq, at, event, outcome, actor, subject, client_id, session_id, ip, request_id, details, hash
    FROM audit_log WHERE seq > $1 AND seq <= $2
    UNION ALL
    SELECT r.value ->> 'seq', r.value ->> 'at', r.value ->> 'event', r.value ->> 'outcome', r.value ->> 'actor',
        r.value ->> 'subject', r.value ->> 'client_id', r.value ->> 'session_id', r.value ->> 'ip',
        r.value ->> 'request_id', r.value ->> 'details', substr(s.hashes, 32 * r.key + 1, 32)
    FROM audit_segments s, json_each(s.records) r
    WHERE s.last > $1 AND s.last <= $2 + 512 AND s.first <= $2{segments}";

// `SQLITE_LOG` bounds its scan of segments by their length.
const _: () = assert!(SEGMENT == 512, "SQLITE_LOG's `$2 + 512` is the longest segment");

/// SQLite's log in the window `$1`, `$2` (its tests read it with their own conditions).
#[cfg(test)]
pub(super) fn sqlite_log() -> String {
    SQLITE_LOG.replace("{segments}", "")
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
            Ok(rows.iter().map(|r| r.audit_entry()).collect())
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
        assert!(segments as u64 >= N / SEGMENT as u64, "{segments} segments");

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
