//! Users: registration, lookup by id and username, deletion (revoking their tokens), the
//! failed-login streak and lockout, and disabling.

use super::audit::AppendAudit as _;
use super::rows::decode;
use super::{Change, Db, RecordChange as _, Store, feed, to_i64, to_u64};
use crate::audit::Record;
use crate::user::User;

impl Store {
    /// Inserts a user; `Ok(false)` when the username is taken (case-insensitively).
    pub async fn insert_user(&self, user: &User, password_hash: &str, audit: Record) -> anyhow::Result<bool> {
        const SQL: &str =
            "INSERT INTO users (id, username, password_hash, email, name, email_verified, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query(SQL)
                .bind(&user.id)
                .bind(&user.username)
                .bind(password_hash)
                .bind(&user.email)
                .bind(&user.name)
                .bind(user.email_verified)
                .bind(user.disabled)
                .bind(to_i64(user.created_at))
                .execute(&mut *tx)
                .await?;
            let changed = tx.audit_if_one(res.rows_affected(), &audit).await?;
            tx.commit().await?;
            Ok(changed)
        })
    }

    pub async fn user(&self, id: &str) -> anyhow::Result<Option<User>> {
        on_pool!(self, read, |pool| {
            let row = sqlx::query("SELECT * FROM users WHERE id = $1").bind(id).fetch_optional(pool).await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// The user and their password hash, by username (case-insensitive: SQLite's column is
    /// `COLLATE NOCASE`, PostgreSQL's unique index is on `lower(username)`).
    pub async fn user_by_username(&self, username: &str) -> anyhow::Result<Option<(User, String)>> {
        let row = match &self.db {
            Db::Sqlite(db) => sqlx::query("SELECT * FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&db.read)
                .await?
                .map(|r| anyhow::Ok((decode::<_, User>(&r)?, super::rows::column(&r, "password_hash")?)))
                .transpose()?,
            Db::Postgres(db) => sqlx::query("SELECT * FROM users WHERE lower(username) = lower($1)")
                .bind(username)
                .fetch_optional(&db.pool)
                .await?
                .map(|r| anyhow::Ok((decode::<_, User>(&r)?, super::rows::column(&r, "password_hash")?)))
                .transpose()?,
        };
        Ok(row)
    }

    pub async fn users(&self) -> anyhow::Result<Vec<User>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query("SELECT * FROM users ORDER BY created_at, username").fetch_all(pool).await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Deletes a user; their sessions and grants go with them, so their tokens are revoked.
    pub async fn delete_user(&self, id: &str, now: u64, audit: Record) -> anyhow::Result<bool> {
        let now = to_i64(now);
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Revocation).await?;
            feed::feed_grant_tokens!(tx, feed::EVENTS_OF_USER, now, id);
            // Before the user's grants go with them.
            let aud = feed::audiences_of!(tx, feed::AUDIENCES_OF_USER, id);
            let res = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&mut *tx).await?;
            if res.rows_affected() == 1 {
                feed::feed_cutoff!(tx, "user", id, now, aud);
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(res.rows_affected() == 1)
        })
    }

    /// Counts a failed password for the user at `now`, with `audit` recording it (and the
    /// count); the number of consecutive failures. The first of a streak sets `failures_since`.
    pub async fn record_login_failure(&self, id: &str, now: u64, audit: Record) -> anyhow::Result<u64> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(
                "UPDATE users SET failed_logins = failed_logins + 1, \
                 failures_since = CASE WHEN failed_logins = 0 THEN $2 ELSE failures_since END \
                 WHERE id = $1 RETURNING failed_logins",
            )
            .bind(id)
            .bind(to_i64(now))
            .fetch_optional(&mut *tx)
            .await?;
            let failures = row.map_or(0, |r| to_u64(sqlx::Row::get(&r, "failed_logins")));
            let audit = audit.detail("consecutive_failures", failures);
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(failures)
        })
    }

    /// Locks the user out until `until` (never shortening a longer lock).
    pub async fn lock_user(&self, id: &str, until: u64, audit: Record) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2 AND locked_until < $1")
                .bind(to_i64(until))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Clears the failure count and any lock (a successful sign-in, or an admin's "enable").
    pub async fn reset_login_failures(&self, id: &str) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE users SET failed_logins = 0, locked_until = 0, failures_since = 0 WHERE id = $1 AND (failed_logins > 0 OR locked_until > 0)")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn set_user_disabled(&self, id: &str, disabled: bool, audit: Record) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(disabled)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let changed = tx.audit_if_one(res.rows_affected(), &audit).await?;
            tx.commit().await?;
            Ok(changed)
        })
    }
}
