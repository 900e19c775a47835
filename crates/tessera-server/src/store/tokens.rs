//! Access tokens: opaque tokens (stored only as their hash), the record of issued JWTs and split
//! tokens, and revocation of either.

use super::audit::AppendAudit as _;
use super::rows::OpaqueTokenRow;
use super::rows::decode;
use super::{Change, Db, RecordChange as _, Store, json_list, to_i64};
use crate::audit::Record;

/// What is stored of an issued JWT access token (see [`Store::record_jwt`]).
#[derive(Debug, Clone, Copy)]
pub struct IssuedJwt<'a> {
    pub jti: &'a str,
    pub exp: u64,
    pub status_idx: Option<u64>,
    /// The grant it was issued under.
    pub grant_id: Option<&'a str>,
    /// For a split token: SHA-256 of its signature part, and its header and payload.
    pub split: Option<([u8; 32], &'a str)>,
}

impl Store {
    /// Stores an opaque token and returns its id once it is committed: on SQLite through the
    /// group commit, on PostgreSQL with one insert whose id comes from the table's identity.
    /// `audit` is the record of its issuance, committed with it.
    /// Not an `async fn`, so that the request future does not carry `row` and `audit`: SQLite's
    /// group commit takes them when called, and PostgreSQL's work is boxed (see `Store::audit`).
    pub fn insert_opaque_token(
        &self,
        row: OpaqueTokenRow,
        audit: Record,
    ) -> impl Future<Output = anyhow::Result<u64>> + Send + '_ {
        use futures_util::future::Either;
        match &self.db {
            Db::Sqlite(db) => Either::Left(db.insert_opaque_token(row, audit)),
            Db::Postgres(db) => Either::Right(Box::pin(async move { db.insert_opaque_token(&row, audit).await })),
        }
    }

    pub async fn opaque_token(&self, id: u64) -> anyhow::Result<Option<OpaqueTokenRow>> {
        on_pool!(self, read, |pool| {
            let row =
                sqlx::query("SELECT * FROM opaque_tokens WHERE id = $1").bind(to_i64(id)).fetch_optional(pool).await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Marks an opaque token revoked; the caller has checked its secret and owner.
    pub async fn revoke_opaque_token(&self, id: u64, now: u64, audit: Record) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Revocation).await?;
            let res = sqlx::query("UPDATE opaque_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(to_i64(now))
                .bind(to_i64(id))
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO revocation_events (kind, value, at, exp, aud)
                     SELECT 'jti', jti, $1, exp, aud FROM opaque_tokens WHERE id = $2",
                )
                .bind(to_i64(now))
                .bind(to_i64(id))
                .execute(&mut *tx)
                .await?;
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a JWT access token (with its token-status index, if it has one, and its `aud`
    /// for the feed's readers) as revoked until it expires.
    #[allow(clippy::too_many_arguments)]
    pub async fn revoke_jwt(
        &self,
        jti: &str,
        client_id: &str,
        aud: &[String],
        exp: u64,
        status_idx: Option<u64>,
        now: u64,
        audit: Record,
    ) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO revoked_jwts (jti, client_id, exp, revoked_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (jti) DO NOTHING";
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Revocation).await?;
            let res = sqlx::query(SQL)
                .bind(jti)
                .bind(client_id)
                .bind(to_i64(exp))
                .bind(to_i64(now))
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO revocation_events (kind, value, at, exp, status_idx, aud) VALUES ('jti', $1, $2, $3, $4, $5)",
                )
                .bind(jti)
                .bind(to_i64(now))
                .bind(to_i64(exp))
                .bind(status_idx.map(to_i64))
                .bind(json_list(aud))
                .execute(&mut *tx)
                .await?;
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records an issued JWT access token with the record of its issuance, in one
    /// transaction: under a grant (`grant_jwts`, so that revoking the grant revokes it, with its
    /// token-status index), and for a split token its header and payload by SHA-256 of its
    /// signature part. A stateless JWT (neither) has only its record, through [`Store::audit`].
    pub fn record_jwt<'a>(
        &'a self,
        jwt: IssuedJwt<'a>,
        audit: Record,
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'a {
        use futures_util::future::Either;
        if jwt.grant_id.is_none() && jwt.split.is_none() {
            return Either::Left(self.audit(audit));
        }
        // Boxed, as in `Store::audit`: the request future stays small.
        Either::Right(Box::pin(self.record_jwt_in_transaction(jwt, audit)))
    }

    /// [`Store::record_jwt`] of a JWT with more to store than its record.
    async fn record_jwt_in_transaction(&self, jwt: IssuedJwt<'_>, audit: Record) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(grant_id) = jwt.grant_id {
                sqlx::query("INSERT INTO grant_jwts (jti, grant_id, exp, status_idx) VALUES ($1, $2, $3, $4)")
                    .bind(jwt.jti)
                    .bind(grant_id)
                    .bind(to_i64(jwt.exp))
                    .bind(jwt.status_idx.map(to_i64))
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((signature_hash, header_payload)) = jwt.split {
                sqlx::query("INSERT INTO split_tokens (signature_hash, header_payload, exp) VALUES ($1, $2, $3)")
                    .bind(&signature_hash[..])
                    .bind(header_payload)
                    .bind(to_i64(jwt.exp))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// A split token's header and payload, unless unknown or expired at `now`.
    pub async fn split_token(&self, signature_hash: &[u8; 32], now: u64) -> anyhow::Result<Option<String>> {
        const SQL: &str = "SELECT header_payload FROM split_tokens WHERE signature_hash = $1 AND exp > $2";
        on_pool!(self, read, |pool| {
            let row = sqlx::query(SQL).bind(&signature_hash[..]).bind(to_i64(now)).fetch_optional(pool).await?;
            Ok(row.map(|r| sqlx::Row::get(&r, "header_payload")))
        })
    }

    /// Whether a JWT access token was revoked by `jti`, or was issued under a grant that has
    /// since been revoked or deleted.
    pub async fn is_jwt_revoked(&self, jti: &str) -> anyhow::Result<bool> {
        const SQL: &str = "SELECT 1 AS revoked FROM revoked_jwts WHERE jti = $1
             UNION ALL
             SELECT 1 AS revoked FROM grant_jwts j LEFT JOIN grants g ON g.id = j.grant_id
             WHERE j.jti = $1 AND (g.id IS NULL OR g.revoked_at IS NOT NULL)
             LIMIT 1";
        on_pool!(self, read, |pool| Ok(sqlx::query(SQL).bind(jti).fetch_optional(pool).await?.is_some()))
    }
}
