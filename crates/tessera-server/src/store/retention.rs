//! Retention: expired rows are deleted in small batches, oldest first, so that tables stay
//! bounded under constant load. Every statement is idempotent, so the janitor may run on every
//! node at once. A row is kept for its lifetime plus [`MARGIN`]: long enough that every access
//! token issued under a purged grant has expired (access tokens live at most one day), so a
//! purge never turns a revoked token into an unknown one that still verifies.

use super::{Store, to_i64};

/// Seconds a row outlives its own expiry.
pub const MARGIN: u64 = 86_400;
/// Rows deleted per statement.
pub(super) const BATCH: i64 = 500;

/// What one purge deleted, table by table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Purged {
    pub rows: u64,
}

/// `(table, statement)`: each deletes at most `$2` rows whose expiry is before `$1`.
const STATEMENTS: [(&str, &str); 14] = [
    (
        "opaque_tokens",
        "DELETE FROM opaque_tokens WHERE id IN (SELECT id FROM (SELECT id, exp FROM opaque_tokens ORDER BY id LIMIT $2) AS oldest WHERE exp < $1)",
    ),
    ("revoked_jwts", "DELETE FROM revoked_jwts WHERE jti IN (SELECT jti FROM revoked_jwts WHERE exp < $1 LIMIT $2)"),
    ("grant_jwts", "DELETE FROM grant_jwts WHERE jti IN (SELECT jti FROM grant_jwts WHERE exp < $1 LIMIT $2)"),
    (
        "authorization_codes",
        "DELETE FROM authorization_codes WHERE code_hash IN (SELECT code_hash FROM authorization_codes WHERE expires_at < $1 LIMIT $2)",
    ),
    // A device code is useless after it expires and nothing refers to it: gone at once, not
    // after the margin (anyone can create one for a public device client).
    (
        "device_codes",
        "DELETE FROM device_codes WHERE device_code_hash IN (SELECT device_code_hash FROM device_codes WHERE expires_at < $1 + 86400 LIMIT $2)",
    ),
    (
        "auth_requests",
        "DELETE FROM auth_requests WHERE handle_hash IN (SELECT handle_hash FROM auth_requests WHERE expires_at < $1 LIMIT $2)",
    ),
    (
        "refresh_tokens",
        "DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens WHERE idle_expires_at < $1 LIMIT $2)",
    ),
    (
        "grants",
        "DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2)",
    ),
    (
        "sessions",
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 OR ended_at < $1 LIMIT $2)",
    ),
    (
        "dpop_proofs",
        "DELETE FROM dpop_proofs WHERE proof_hash IN (SELECT proof_hash FROM dpop_proofs WHERE expires_at < $1 LIMIT $2)",
    ),
    (
        "client_assertions",
        "DELETE FROM client_assertions WHERE assertion_hash IN (SELECT assertion_hash FROM client_assertions WHERE expires_at < $1 LIMIT $2)",
    ),
    (
        "revocation_events",
        "DELETE FROM revocation_events WHERE seq IN (SELECT seq FROM revocation_events WHERE exp < $1 LIMIT $2)",
    ),
    (
        "split_tokens",
        "DELETE FROM split_tokens WHERE signature_hash IN (SELECT signature_hash FROM split_tokens WHERE exp < $1 LIMIT $2)",
    ),
    ("changes", "DELETE FROM changes WHERE seq IN (SELECT seq FROM changes WHERE at < $1 LIMIT $2)"),
];

impl Store {
    /// Deletes what expired more than [`MARGIN`] before `now`, in batches, until a batch comes
    /// back short.
    pub async fn purge_expired(&self, now: u64) -> anyhow::Result<Purged> {
        let cutoff = to_i64(now.saturating_sub(MARGIN));
        let mut purged = Purged::default();
        for (table, sql) in STATEMENTS {
            // `changes` exists only on PostgreSQL; its `at` is the database's own clock.
            if table == "changes" && self.backend() != super::Backend::Postgres {
                continue;
            }
            loop {
                let deleted = on_pool!(self, write, |pool| sqlx::query(sql)
                    .bind(cutoff)
                    .bind(BATCH)
                    .execute(pool)
                    .await?
                    .rows_affected());
                purged.rows += deleted;
                if deleted < BATCH as u64 {
                    break;
                }
                // Let other writers in between batches.
                tokio::task::yield_now().await;
            }
        }
        Ok(purged)
    }

    /// Rows in a table of ours (for tests and operators).
    pub async fn count_rows(&self, table: &str) -> anyhow::Result<u64> {
        if !STATEMENTS.iter().any(|(t, _)| *t == table) && !["clients", "users", "consents"].contains(&table) {
            anyhow::bail!("unknown table {table}");
        }
        // The name comes from the fixed list above, never from input.
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        on_pool!(self, write, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await?;
            Ok(super::to_u64(sqlx::Row::get(&row, "n")))
        })
    }
}
