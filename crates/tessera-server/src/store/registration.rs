//! Initial access tokens for dynamic client registration (RFC 7591 §3): created by an
//! administrator, stored only as their SHA-256, spent one use at a time by a conditional update
//! (so on every node the last use is spent once).

use super::rows::column;
use super::{Store, to_i64};
use crate::audit::Record;
use crate::store::audit::AppendAudit as _;

/// A new initial access token as stored.
pub struct NewRegistrationToken<'a> {
    pub id: &'a str,
    pub token_hash: &'a [u8; 32],
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub uses: Option<u64>,
}

impl Store {
    pub async fn insert_registration_token(
        &self,
        token: &NewRegistrationToken<'_>,
        audit: Record,
    ) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO registration_tokens (id, token_hash, created_at, expires_at, uses_left)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token.id)
            .bind(&token.token_hash[..])
            .bind(to_i64(token.created_at))
            .bind(token.expires_at.map(to_i64))
            .bind(token.uses.map(to_i64))
            .execute(&mut *tx)
            .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Spends one use of the initial access token with this hash, if it is in force at `now`;
    /// its id. One statement, so concurrent registrations never spend a last use twice.
    pub async fn spend_registration_token(&self, token_hash: &[u8; 32], now: u64) -> anyhow::Result<Option<String>> {
        on_pool!(self, write, |pool| {
            let row = sqlx::query(
                "UPDATE registration_tokens SET uses_left = uses_left - 1
                 WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
                   AND (uses_left IS NULL OR uses_left > 0)
                 RETURNING id",
            )
            .bind(&token_hash[..])
            .bind(to_i64(now))
            .fetch_optional(pool)
            .await?;
            row.map(|r| column(&r, "id")).transpose()
        })
    }

    /// Deletes initial access tokens that can no longer be used (expired before `now`, or with
    /// no use left); how many.
    pub async fn purge_registration_tokens(&self, now: u64) -> anyhow::Result<u64> {
        on_pool!(self, write, |pool| {
            let res = sqlx::query(
                "DELETE FROM registration_tokens WHERE (expires_at IS NOT NULL AND expires_at <= $1)
                   OR uses_left = 0 OR revoked_at IS NOT NULL",
            )
            .bind(to_i64(now))
            .execute(pool)
            .await?;
            Ok(res.rows_affected())
        })
    }
}
