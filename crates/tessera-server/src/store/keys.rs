//! Signing keys as stored: the private half sealed with the master key; at most one active.

use super::audit::AppendAudit as _;
use super::rows::KeyRow;
use super::rows::decode;
use super::{Change, RecordChange as _, Store, to_i64};
use crate::audit::Record;

impl Store {
    pub async fn insert_key(&self, key: &KeyRow, audit: Record) -> anyhow::Result<()> {
        const SQL: &str = "INSERT INTO signing_keys (kid, alg, sealed_private_key, public_jwk, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)";
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(SQL)
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(&key.sealed_private_key)
                .bind(&key.public_jwk)
                .bind(&key.status)
                .bind(to_i64(key.created_at))
                .execute(&mut *tx)
                .await?;
            tx.record(&Change::Keys).await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn keys(&self) -> anyhow::Result<Vec<KeyRow>> {
        on_pool!(self, write, |pool| {
            let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid").fetch_all(pool).await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Makes `kid` the one active signing key; the previous one stays published.
    pub async fn activate_key(&self, kid: &str, audit: Record) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE signing_keys SET status = 'published' WHERE status = 'active' AND kid <> $1")
                .bind(kid)
                .execute(&mut *tx)
                .await?;
            let res = sqlx::query("UPDATE signing_keys SET status = 'active' WHERE kid = $1")
                .bind(kid)
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            tx.record(&Change::Keys).await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(true)
        })
    }
}
