//! Device codes (RFC 8628): created at `/device_authorization`, approved or denied by a signed-in
//! person at `/device`, polled and redeemed at `/token`. Every change of state is one conditional
//! update, so a code is approved once and redeemed once across all nodes.

use super::audit::AppendAudit as _;
use super::rows::decode;
use super::sign_in::insert_grant;
use super::{GrantRow, Store, json_list, to_i64};
use crate::audit::Record;

/// A device code, stored as its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceCodeRow {
    #[sqlx(try_from = "super::rows::Db<Vec<u8>>")]
    pub device_code_hash: [u8; 32],
    /// The 8 letters, without the dash.
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    #[sqlx(try_from = "super::rows::Db<String>")]
    pub resources: Vec<String>,
    #[sqlx(try_from = "i64")]
    pub created_at: u64,
    #[sqlx(try_from = "i64")]
    pub expires_at: u64,
    #[sqlx(try_from = "i64")]
    pub interval_secs: u64,
    #[sqlx(try_from = "super::rows::Db<Option<i64>>")]
    pub polled_at: Option<u64>,
    /// `pending`, `approved`, `denied` or `redeemed`.
    pub status: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    #[sqlx(try_from = "super::rows::Db<Option<i64>>")]
    pub auth_time: Option<u64>,
}

/// Who approved a device code.
pub struct Approval<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub auth_time: u64,
}

impl Store {
    pub async fn insert_device_code(&self, row: &DeviceCodeRow, audit: Record) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO device_codes (device_code_hash, user_code, client_id, scope, resources, created_at,
                    expires_at, interval_secs)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&row.device_code_hash[..])
            .bind(&row.user_code)
            .bind(&row.client_id)
            .bind(&row.scope)
            .bind(json_list(&row.resources))
            .bind(to_i64(row.created_at))
            .bind(to_i64(row.expires_at))
            .bind(to_i64(row.interval_secs))
            .execute(&mut *tx)
            .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn device_code(&self, hash: &[u8; 32]) -> anyhow::Result<Option<DeviceCodeRow>> {
        on_pool!(self, write, |pool| {
            let row = sqlx::query("SELECT * FROM device_codes WHERE device_code_hash = $1")
                .bind(&hash[..])
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    pub async fn device_code_by_user_code(&self, user_code: &str) -> anyhow::Result<Option<DeviceCodeRow>> {
        on_pool!(self, write, |pool| {
            let row = sqlx::query("SELECT * FROM device_codes WHERE user_code = $1")
                .bind(user_code)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Records a poll at `now`; `interval` is the code's interval from now on (grown on
    /// `slow_down`). Whether the code still exists.
    pub async fn poll_device_code(&self, hash: &[u8; 32], now: u64, interval: u64) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let res =
                sqlx::query("UPDATE device_codes SET polled_at = $1, interval_secs = $2 WHERE device_code_hash = $3")
                    .bind(to_i64(now))
                    .bind(to_i64(interval))
                    .bind(&hash[..])
                    .execute(pool)
                    .await?;
            Ok(res.rows_affected() == 1)
        })
    }

    /// Approves (`Some`) or denies (`None`) a pending, unexpired code. Whether it was pending.
    pub async fn decide_device_code(
        &self,
        user_code: &str,
        approval: Option<Approval<'_>>,
        now: u64,
        audit: Record,
    ) -> anyhow::Result<bool> {
        let status = if approval.is_some() { "approved" } else { "denied" };
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query(
                "UPDATE device_codes SET status = $1, user_id = $2, session_id = $3, auth_time = $4
                 WHERE user_code = $5 AND status = 'pending' AND expires_at > $6",
            )
            .bind(status)
            .bind(approval.as_ref().map(|a| a.user_id))
            .bind(approval.as_ref().map(|a| a.session_id))
            .bind(approval.as_ref().map(|a| to_i64(a.auth_time)))
            .bind(user_code)
            .bind(to_i64(now))
            .execute(&mut *tx)
            .await?;
            tx.audit_if_one(res.rows_affected(), &audit).await?;
            tx.commit().await?;
            Ok(res.rows_affected() == 1)
        })
    }

    /// Redeems an approved code: marks it redeemed and creates its grant (and first refresh
    /// token) in one transaction. `None` when it was not approved and unredeemed any more
    /// (another poll, on any node, redeemed it first).
    pub async fn redeem_device_code(
        &self,
        hash: &[u8; 32],
        grant: &GrantRow,
        refresh: Option<([u8; 32], u64)>,
        now: u64,
        audit: Record,
    ) -> anyhow::Result<Option<Option<u64>>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let redeemed = sqlx::query(
                "UPDATE device_codes SET status = 'redeemed', grant_id = $1
                 WHERE device_code_hash = $2 AND status = 'approved' AND expires_at > $3",
            )
            .bind(&grant.id)
            .bind(&hash[..])
            .bind(to_i64(now))
            .execute(&mut *tx)
            .await?;
            if redeemed.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            let refresh_id = insert_grant!(tx, grant, refresh, now);
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(Some(refresh_id))
        })
    }
}
