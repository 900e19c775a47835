//! SQLite's audit path: the statements that append to the log inside a transaction (a
//! multi-row `INSERT` after the head read under the write lock), the segments the group commit
//! moves the outbox in as ([`append_segments`], migration 0016), and the view every read merges
//! them through (`SQLITE_LOG`). The outbox itself is `outbox.rs`; records are encoded and chained
//! by `crate::audit`'s one encoder, here as on PostgreSQL.

use super::{AppendAudit, Head, bind_chained, chain, insert_statement};
use crate::audit::{Record, chain_hash_of, write_hashed};
use crate::store::to_i64;

/// SQLite: the head read under the write lock, and moved once the records are in.
const LOCK_HEAD: &str = "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash";
const MOVE_SQLITE_HEAD: &str = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1";

/// The row counts of SQLite's audit inserts, largest first.
const SQLITE_ROWS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// SQLite's insert of `SQLITE_ROWS[index]` records, built once.
fn sqlite_insert(index: usize) -> &'static str {
    static STATEMENTS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| SQLITE_ROWS.iter().map(|&rows| insert_statement(rows, false)).collect());
    &STATEMENTS[index]
}

impl AppendAudit for sqlx::Transaction<'_, sqlx::Sqlite> {
    async fn audit(&mut self, records: &[Record]) -> anyhow::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let head = Head::of_sqlite(&sqlx::query(LOCK_HEAD).fetch_one(&mut **self).await?)?;
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
pub(super) const SEGMENT: usize = 512;

/// SQLite: appends `records`, whose encodings ([`Record::encode`]) are `encoding(i)`, as
/// segments of up to [`SEGMENT`] records: one row each, holding the records as a JSON array whose
/// elements are the objects their hashes cover ([`write_hashed`]) and the hashes themselves. Each
/// record is hashed from the bytes stored, so it is serialized once on its way from the outbox.
pub(in crate::store) async fn append_segments<'e>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    records: &[Record],
    encoding: impl Fn(usize) -> &'e [u8],
) -> anyhow::Result<()> {
    const INSERT: &str =
        "INSERT INTO audit_segments (last, first, at_min, at_max, records, hashes) VALUES (?, ?, ?, ?, ?, ?)";
    if records.is_empty() {
        return Ok(());
    }
    let mut head = Head::of_sqlite(&sqlx::query(LOCK_HEAD).fetch_one(&mut **tx).await?)?;
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

/// SQLite's log: the rows of `audit_log` and the records of the segments (migration 0016) within
/// the window `seq > $1 AND seq <= $2`, with the columns of `audit_log`. `{segments}` is where
/// conditions on whole segments go. A segment spans at most [`SEGMENT`] (512) positions, so
/// `last <= $2 + 512` bounds the scan of the primary key; a forged longer one would hide some of
/// its records, which `verify` then reports missing.
pub(super) const SQLITE_LOG: &str =
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
pub(in crate::store) fn sqlite_log() -> String {
    SQLITE_LOG.replace("{segments}", "")
}
