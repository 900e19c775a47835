//! Persistence of sign-in state: browser sessions, pending authorization requests, codes,
//! grants (refresh families), refresh tokens and consents. Every single-use step is one
//! conditional `UPDATE … WHERE consumed_at IS NULL` (or `rotated_at IS NULL`) inside a short
//! write transaction on the critical connection, so two concurrent requests cannot both win.

use super::audit::AppendAudit as _;
use super::feed::{self, audiences_of, feed_cutoff, feed_grant_tokens};
use super::rows::decode;
use super::rows::{AuthRequestRow, CodeRow, GrantRow, RefreshRow, SessionRow};
use super::rows::{column, column_u64};
use super::{Change, RecordChange as _, Store, to_i64};
use crate::audit::Record;

/// The outcome of presenting a code for redemption.
#[derive(Debug)]
pub enum Redemption {
    /// This request consumed the code; the grant and its first refresh token (if any) exist.
    Redeemed { refresh_id: Option<u64> },
    /// The code was consumed before: a replay, or the loser of a race. Carries the grant the
    /// first redemption created.
    AlreadyUsed { grant_id: Option<String> },
}

/// What a revocation targets.
#[derive(Debug, Clone, Copy)]
pub enum RevocationTarget<'a> {
    User(&'a str),
    Session(&'a str),
    Client(&'a str),
}

/// Creates a grant and, when `refresh` is given, its first refresh token, inside transaction
/// `$tx`; evaluates to the refresh token's id. Shared by every redemption that starts a grant
/// (authorization codes, device codes).
macro_rules! insert_grant {
    ($tx:ident, $grant:expr, $refresh:expr, $now:expr) => {{
        let grant: &$crate::store::GrantRow = $grant;
        let refresh: Option<([u8; 32], u64)> = $refresh;
        let now: u64 = $now;
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, session_id, scope, resources, auth_time, created_at, expires_at, dpop_jkt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&grant.id)
        .bind(&grant.client_id)
        .bind(&grant.user_id)
        .bind(&grant.session_id)
        .bind(&grant.scope)
        .bind($crate::store::json_list(&grant.resources))
        .bind($crate::store::to_i64(grant.auth_time))
        .bind($crate::store::to_i64(grant.created_at))
        .bind($crate::store::to_i64(grant.expires_at))
        .bind(&grant.dpop_jkt)
        .execute(&mut *$tx)
        .await?;
        let refresh_id = match refresh {
            None => None,
            Some((secret_hash, idle_expires_at)) => {
                let row = sqlx::query(
                    "INSERT INTO refresh_tokens (grant_id, secret_hash, created_at, idle_expires_at)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&grant.id)
                .bind(&secret_hash[..])
                .bind($crate::store::to_i64(now))
                .bind($crate::store::to_i64(idle_expires_at))
                .fetch_one(&mut *$tx)
                .await?;
                Some($crate::store::rows::column_u64(&row, "id")?)
            }
        };
        refresh_id
    }};
}
pub(crate) use insert_grant;

impl Store {
    // Sessions.

    /// A new session (a sign-in), with `audit` recording it.
    pub async fn insert_session(&self, session: &SessionRow, audit: Record) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, last_used_at, expires_at, user_agent, ip)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&session.id)
            .bind(&session.secret_hash[..])
            .bind(&session.user_id)
            .bind(to_i64(session.auth_time))
            .bind(to_i64(session.created_at))
            .bind(to_i64(session.last_used_at))
            .bind(to_i64(session.expires_at))
            .bind(&session.user_agent)
            .bind(&session.ip)
            .execute(&mut *tx)
            .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn session(&self, id: &str) -> anyhow::Result<Option<SessionRow>> {
        on_pool!(self, read, |pool| {
            let row = sqlx::query("SELECT * FROM sessions WHERE id = $1").bind(id).fetch_optional(pool).await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Records that the session was used (a silent authorization or a refresh).
    pub async fn touch_session(&self, id: &str, now: u64) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1")
                .bind(to_i64(now))
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The user's sessions that have neither ended nor expired, newest first.
    pub async fn active_sessions(&self, user_id: &str, now: u64) -> anyhow::Result<Vec<SessionRow>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT * FROM sessions WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2
                 ORDER BY created_at DESC, id",
            )
            .bind(user_id)
            .bind(to_i64(now))
            .fetch_all(pool)
            .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// `(session_id, client_id)` of the user's unrevoked grants.
    pub async fn session_clients(&self, user_id: &str) -> anyhow::Result<Vec<(String, String)>> {
        on_pool!(self, read, |pool| {
            let rows = sqlx::query(
                "SELECT DISTINCT session_id, client_id FROM grants WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok((column(r, "session_id")?, column(r, "client_id")?))).collect()
        })
    }

    /// Ends sessions and revokes grants under `target` in one transaction; returns
    /// `(sessions ended, grants revoked)`. A client-wide revocation also makes every token the
    /// client holds inactive, including client-credentials tokens, through `tokens_not_before`.
    /// `audit` records it, with the counts added.
    pub async fn revoke(&self, target: RevocationTarget<'_>, now: u64, audit: Record) -> anyhow::Result<(u64, u64)> {
        on_pool!(self, write, |pool| {
            let now = to_i64(now);
            let mut tx = pool.begin().await?;
            // First: on PostgreSQL this takes the lock that keeps feed events in commit order.
            tx.record(&Change::Revocation).await?;
            let (sessions, grants) = match target {
                RevocationTarget::User(user_id) => {
                    let s = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL")
                        .bind(now)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    feed_grant_tokens!(tx, feed::EVENTS_OF_USER, now, user_id);
                    let g = sqlx::query("UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                        .bind(now)
                        .bind(user_id)
                        .execute(&mut *tx)
                        .await?;
                    let aud = audiences_of!(tx, feed::AUDIENCES_OF_USER, user_id);
                    feed_cutoff!(tx, "user", user_id, now, aud);
                    (s.rows_affected(), g.rows_affected())
                }
                RevocationTarget::Session(session_id) => {
                    let s = sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
                        .bind(now)
                        .bind(session_id)
                        .execute(&mut *tx)
                        .await?;
                    feed_grant_tokens!(tx, feed::EVENTS_OF_SESSION, now, session_id);
                    let g =
                        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL")
                            .bind(now)
                            .bind(session_id)
                            .execute(&mut *tx)
                            .await?;
                    let aud = audiences_of!(tx, feed::AUDIENCES_OF_SESSION, session_id);
                    feed_cutoff!(tx, "session", session_id, now, aud);
                    (s.rows_affected(), g.rows_affected())
                }
                RevocationTarget::Client(client_id) => {
                    feed_grant_tokens!(tx, feed::EVENTS_OF_CLIENT, now, client_id);
                    let g =
                        sqlx::query("UPDATE grants SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL")
                            .bind(now)
                            .bind(client_id)
                            .execute(&mut *tx)
                            .await?;
                    // Tokens carry whole-second `iat`: those of this very second go too.
                    sqlx::query("UPDATE clients SET tokens_not_before = $1 WHERE client_id = $2")
                        .bind(now + 1)
                        .bind(client_id)
                        .execute(&mut *tx)
                        .await?;
                    tx.record(&Change::Client(client_id.to_owned())).await?;
                    let aud = audiences_of!(tx, feed::AUDIENCES_OF_CLIENT, client_id);
                    feed_cutoff!(tx, "client", client_id, now, aud);
                    (0, g.rows_affected())
                }
            };
            // Revocation means everything (#23, docs/threat-model.md T-10): a user's personal
            // access tokens and a client's service keys go with the user's or client's tokens.
            let owner = match target {
                RevocationTarget::User(id) => Some(("user", id)),
                RevocationTarget::Client(id) => Some(("client", id)),
                RevocationTarget::Session(_) => None,
            };
            let keys = match owner {
                Some((kind, id)) => super::api_keys::revoke_keys_of!(tx, kind, id, now),
                None => 0,
            };
            let audit = audit
                .detail("sessions_ended", sessions)
                .detail("grants_revoked", grants)
                .detail("api_keys_revoked", keys);
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            if let RevocationTarget::Client(client_id) = target {
                self.client_changed(client_id);
            }
            Ok((sessions, grants))
        })
    }

    // Authorization requests.

    pub async fn insert_auth_request(&self, request: &AuthRequestRow) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query(
                "INSERT INTO auth_requests (handle_hash, client_id, params, par, par_hash, browser_hash, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&request.handle_hash[..])
            .bind(&request.client_id)
            .bind(&request.params)
            .bind(request.par)
            .bind(request.par_hash.as_ref().map(|h| h.to_vec()))
            .bind(request.browser_hash.as_ref().map(|h| h.to_vec()))
            .bind(to_i64(request.created_at))
            .bind(to_i64(request.expires_at))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A pending request as stored; the caller checks expiry, consumption and binding. Reads
    /// from the write connection: an interaction reads what its previous step just wrote.
    pub async fn auth_request(&self, handle_hash: &[u8; 32]) -> anyhow::Result<Option<AuthRequestRow>> {
        on_pool!(self, write, |pool| {
            let row = sqlx::query("SELECT * FROM auth_requests WHERE handle_hash = $1")
                .bind(&handle_hash[..])
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Consumes one pending request; `false` if it was consumed already.
    pub async fn consume_auth_request(&self, handle_hash: &[u8; 32], now: u64) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let res =
                sqlx::query("UPDATE auth_requests SET consumed_at = $1 WHERE handle_hash = $2 AND consumed_at IS NULL")
                    .bind(to_i64(now))
                    .bind(&handle_hash[..])
                    .execute(pool)
                    .await?;
            Ok(res.rows_affected() == 1)
        })
    }

    /// Records the session a login inside this interaction created.
    pub async fn set_login_session(&self, handle_hash: &[u8; 32], session_id: &str) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE auth_requests SET login_session_id = $1 WHERE handle_hash = $2")
                .bind(session_id)
                .bind(&handle_hash[..])
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Consumes the given pending requests and stores the code, all or nothing. `false` when any
    /// of the requests was consumed already (a replayed consent, a second completion).
    pub async fn complete_authorization(&self, consume: &[[u8; 32]], code: &CodeRow, now: u64) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            for handle_hash in consume {
                let res = sqlx::query(
                    "UPDATE auth_requests SET consumed_at = $1 WHERE handle_hash = $2 AND consumed_at IS NULL AND expires_at > $1",
                )
                .bind(to_i64(now))
                .bind(&handle_hash[..])
                .execute(&mut *tx)
                .await?;
                if res.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            sqlx::query(
                "INSERT INTO authorization_codes (code_hash, client_id, user_id, session_id, redirect_uri, redirect_uri_sent,
                    scope, resources, nonce, code_challenge, auth_time, expires_at, dpop_jkt)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(&code.code_hash[..])
            .bind(&code.client_id)
            .bind(&code.user_id)
            .bind(&code.session_id)
            .bind(&code.redirect_uri)
            .bind(code.redirect_uri_sent)
            .bind(&code.scope)
            .bind(super::json_list(&code.resources))
            .bind(&code.nonce)
            .bind(&code.code_challenge)
            .bind(to_i64(code.auth_time))
            .bind(to_i64(code.expires_at))
            .bind(&code.dpop_jkt)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    // Consents.

    /// The scope the user has granted the client so far.
    pub async fn consent(&self, user_id: &str, client_id: &str) -> anyhow::Result<Option<String>> {
        on_pool!(self, write, |pool| {
            let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(pool)
                .await?;
            row.map(|r| column(&r, "scope")).transpose()
        })
    }

    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: u64,
        audit: Record,
    ) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(scope)
            .bind(to_i64(now))
            .execute(&mut *tx)
            .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    // Codes and grants.

    pub async fn code(&self, code_hash: &[u8; 32]) -> anyhow::Result<Option<CodeRow>> {
        on_pool!(self, write, |pool| {
            let row = sqlx::query("SELECT * FROM authorization_codes WHERE code_hash = $1")
                .bind(&code_hash[..])
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Consumes the code and creates its grant (and first refresh token, given its secret hash
    /// and idle expiry) in one transaction. Exactly one of any number of concurrent callers
    /// gets [`Redemption::Redeemed`].
    /// Consumes a code and creates its grant in one transaction. A self-registered client
    /// (`mark_used`) is noted as used in the same transaction (it then outlives
    /// `registration_expiry`).
    pub async fn redeem_code(
        &self,
        code_hash: &[u8; 32],
        grant: &GrantRow,
        refresh: Option<([u8; 32], u64)>,
        mark_used: bool,
        now: u64,
        audit: Record,
    ) -> anyhow::Result<Redemption> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let consumed = sqlx::query(
                "UPDATE authorization_codes SET consumed_at = $1, grant_id = $2
                 WHERE code_hash = $3 AND consumed_at IS NULL AND expires_at > $1",
            )
            .bind(to_i64(now))
            .bind(&grant.id)
            .bind(&code_hash[..])
            .execute(&mut *tx)
            .await?;
            if consumed.rows_affected() != 1 {
                let previous = sqlx::query("SELECT grant_id FROM authorization_codes WHERE code_hash = $1")
                    .bind(&code_hash[..])
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Ok(Redemption::AlreadyUsed {
                    grant_id: previous.map(|r| column(&r, "grant_id")).transpose()?.flatten(),
                });
            }
            let refresh_id = insert_grant!(tx, grant, refresh, now);
            if mark_used {
                sqlx::query(
                    "UPDATE clients SET used_at = $1 WHERE client_id = $2 AND used_at IS NULL AND origin <> 'admin'",
                )
                .bind(to_i64(now))
                .bind(&grant.client_id)
                .execute(&mut *tx)
                .await?;
            }
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(Redemption::Redeemed { refresh_id })
        })
    }

    pub async fn grant(&self, id: &str) -> anyhow::Result<Option<GrantRow>> {
        on_pool!(self, write, |pool| {
            let row = sqlx::query("SELECT * FROM grants WHERE id = $1").bind(id).fetch_optional(pool).await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Whether a grant exists and is not revoked (for access tokens issued under it).
    pub async fn grant_is_active(&self, id: &str) -> anyhow::Result<bool> {
        on_pool!(self, read, |pool| {
            let row = sqlx::query("SELECT 1 FROM grants WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Revokes a grant: its refresh tokens and every access token issued under it.
    pub async fn revoke_grant(&self, id: &str, now: u64, audit: Record) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            tx.record(&Change::Revocation).await?;
            feed_grant_tokens!(tx, feed::EVENTS_OF_GRANT, to_i64(now), id);
            let res = sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(to_i64(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(res.rows_affected() == 1)
        })
    }

    // Refresh tokens.

    pub async fn refresh_token(&self, id: u64) -> anyhow::Result<Option<RefreshRow>> {
        on_pool!(self, write, |pool| {
            let row =
                sqlx::query("SELECT * FROM refresh_tokens WHERE id = $1").bind(to_i64(id)).fetch_optional(pool).await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// Marks refresh token `id` rotated and stores its successor, in one transaction. `None`
    /// when `id` was rotated already (another request won).
    pub async fn rotate_refresh_token(
        &self,
        id: u64,
        grant_id: &str,
        successor_hash: &[u8; 32],
        idle_expires_at: u64,
        now: u64,
        audit: Record,
    ) -> anyhow::Result<Option<u64>> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query("UPDATE refresh_tokens SET rotated_at = $1 WHERE id = $2 AND rotated_at IS NULL")
                .bind(to_i64(now))
                .bind(to_i64(id))
                .execute(&mut *tx)
                .await?;
            if res.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            let row = sqlx::query(
                "INSERT INTO refresh_tokens (grant_id, secret_hash, parent_id, created_at, idle_expires_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(grant_id)
            .bind(&successor_hash[..])
            .bind(to_i64(id))
            .bind(to_i64(now))
            .bind(to_i64(idle_expires_at))
            .fetch_one(&mut *tx)
            .await?;
            let successor = column_u64(&row, "id")?;
            sqlx::query("UPDATE refresh_tokens SET successor_id = $1 WHERE id = $2")
                .bind(to_i64(successor))
                .bind(to_i64(id))
                .execute(&mut *tx)
                .await?;
            let audit = audit.detail("refresh_token_id", successor);
            tx.audit(std::slice::from_ref(&audit)).await?;
            tx.commit().await?;
            Ok(Some(successor))
        })
    }

    /// Extends a non-rotating refresh token's idle expiry.
    pub async fn touch_refresh_token(&self, id: u64, idle_expires_at: u64) -> anyhow::Result<()> {
        on_pool!(self, write, |pool| {
            sqlx::query("UPDATE refresh_tokens SET idle_expires_at = $1 WHERE id = $2 AND idle_expires_at < $1")
                .bind(to_i64(idle_expires_at))
                .bind(to_i64(id))
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    // Users.

    pub async fn set_user_password(&self, id: &str, password_hash: &str, audit: Record) -> anyhow::Result<bool> {
        on_pool!(self, write, |pool| {
            let mut tx = pool.begin().await?;
            let res = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let changed = tx.audit_if_one(res.rows_affected(), &audit).await?;
            tx.commit().await?;
            Ok(changed)
        })
    }
}
