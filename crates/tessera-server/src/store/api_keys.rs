//! `api_keys`: API keys by id, their secret only as SHA-256. Revocation writes the key's
//! revocation events in the same transaction (the key's `jti`, and a `client` cut-off for the
//! access tokens exchanged for it), like every other revocation.

use sqlx::Row;

use super::audit::AppendAudit as _;
pub use super::rows::ApiKeyRow;
use super::rows::decode;
use super::{Change, RecordChange as _, Store, json_list, to_i64, to_u64};
use crate::audit::Record;
use crate::store::feed::{CUTOFF_TTL, feed_cutoff, feed_event};

/// What a new key is.
pub struct NewApiKey<'a> {
    pub secret_hash: &'a [u8],
    pub owner_kind: &'a str,
    pub owner_id: &'a str,
    pub name: &'a str,
    pub scope: &'a str,
    pub audience: &'a [String],
    pub created_at: u64,
    pub expires_at: Option<u64>,
}

/// Revokes every live key of an owner (`"user"` or `"client"`, and its id) in `$tx` at `$now`
/// (`i64`), with each key's revocation events; the number revoked. Revocation means everything
/// (#23, docs/threat-model.md T-10): a user's or a client's revocation takes its keys along.
macro_rules! revoke_keys_of {
    ($tx:expr, $kind:expr, $id:expr, $now:expr) => {{
        let revoked = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE owner_kind = $2 AND owner_id = $3 AND revoked_at IS NULL \
             RETURNING id, audience",
        )
        .bind($now)
        .bind($kind)
        .bind($id)
        .fetch_all(&mut *$tx)
        .await?;
        for row in &revoked {
            let jti = format!("ak_{}", sqlx::Row::try_get::<i64, _>(row, "id")?);
            let aud = sqlx::Row::try_get::<String, _>(row, "audience")?;
            $crate::store::feed::feed_event!(
                $tx,
                "jti",
                jti.as_str(),
                $now,
                $now.saturating_add($crate::store::to_i64($crate::store::feed::CUTOFF_TTL)),
                aud.as_str()
            );
            $crate::store::feed::feed_cutoff!($tx, "client", jti.as_str(), $now, aud.as_str());
        }
        u64::try_from(revoked.len()).unwrap_or(u64::MAX)
    }};
}
pub(crate) use revoke_keys_of;

impl Store {
    /// Stores a key; its id. The display prefix is set once the key is encoded ([`Store::set_api_key_display`]).
    /// `audit` records the creation (the key's id added).
    pub async fn insert_api_key(&self, key: NewApiKey<'_>, audit: Record) -> anyhow::Result<u64> {
        const SQL: &str = "INSERT INTO api_keys (secret_hash, display, owner_kind, owner_id, name, scope, audience,
             created_at, expires_at) VALUES ($1, '', $2, $3, $4, $5, $6, $7, $8) RETURNING id";
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(SQL)
                .bind(key.secret_hash)
                .bind(key.owner_kind)
                .bind(key.owner_id)
                .bind(key.name)
                .bind(key.scope)
                .bind(json_list(key.audience))
                .bind(to_i64(key.created_at))
                .bind(key.expires_at.map(to_i64))
                .fetch_one(&mut *tx)
                .await?;
            let id = to_u64(row.try_get("id")?);
            let audit = audit.detail("api_key", format!("ak_{id}"));
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn set_api_key_display(&self, id: u64, display: &str) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE api_keys SET display = $1 WHERE id = $2")
                .bind(display)
                .bind(to_i64(id))
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn api_key(&self, id: u64) -> anyhow::Result<Option<ApiKeyRow>> {
        on_pool!(self, read, |pool| {
            let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1").bind(to_i64(id)).fetch_optional(pool).await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Keys, newest first: all, or one owner's.
    pub async fn api_keys(&self, owner: Option<(&str, &str)>) -> anyhow::Result<Vec<ApiKeyRow>> {
        on_pool!(self, read, |pool| {
            let rows = match owner {
                Some((kind, id)) => {
                    sqlx::query("SELECT * FROM api_keys WHERE owner_kind = $1 AND owner_id = $2 ORDER BY id DESC")
                        .bind(kind)
                        .bind(id)
                        .fetch_all(pool)
                        .await?
                }
                None => sqlx::query("SELECT * FROM api_keys ORDER BY id DESC").fetch_all(pool).await?,
            };
            rows.iter().map(decode).collect()
        })
    }

    /// Revokes a key and, through the feed, the tokens exchanged for it. `false` when it was
    /// already revoked or does not exist.
    pub async fn revoke_api_key(&self, id: u64, jti: &str, now: u64, audit: Record) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Revocation).await?;
            let row = sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING audience",
            )
            .bind(to_i64(now))
            .bind(to_i64(id))
            .fetch_optional(&mut *tx)
            .await?;
            let revoked = row.is_some();
            if let Some(row) = row {
                let now = to_i64(now);
                let aud: String = row.try_get("audience")?;
                feed_event!(tx, "jti", jti, now, now.saturating_add(to_i64(CUTOFF_TTL)), aud.as_str());
                feed_cutoff!(tx, "client", jti, now, aud.as_str());
                tx.audit(std::slice::from_ref(&audit)).await?;
            }
            tx.commit().await?;
            Ok(revoked)
        })
    }

    /// Records when (and from where) keys were last used: one statement per key, batched by
    /// the caller (never a write per request).
    pub async fn touch_api_keys(&self, uses: &[(u64, u64, Option<String>)]) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            for (id, at, ip) in uses {
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = $1, last_used_ip = COALESCE($2, last_used_ip) WHERE id = $3",
                )
                .bind(to_i64(*at))
                .bind(ip.as_deref())
                .bind(to_i64(*id))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The scopes and resources of the user's live grants at `now` (not revoked, not expired):
    /// what a personal access token may carry at most. A revoked grant gives nothing (#23).
    pub async fn granted_to_user(&self, user_id: &str, now: u64) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT g.scope AS scope, c.audience AS audience FROM grants g JOIN clients c ON c.client_id = g.client_id
                 WHERE g.user_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2",
            )
            .bind(user_id)
            .bind(to_i64(now))
            .fetch_all(pool)
            .await?;
            let mut scopes: Vec<String> = Vec::new();
            let mut audiences: Vec<String> = Vec::new();
            for row in rows {
                let scope: String = row.try_get("scope")?;
                scopes.extend(scope.split(' ').filter(|s| !s.is_empty()).map(str::to_owned));
                let audience: String = row.try_get("audience")?;
                audiences.extend(serde_json::from_str::<Vec<String>>(&audience).unwrap_or_default());
            }
            scopes.sort();
            scopes.dedup();
            audiences.sort();
            audiences.dedup();
            Ok((scopes, audiences))
        })
    }
}
