//! `grant_type=refresh_token` (RFC 6749 §6, RFC 9700 §4.14.2): rotation with reuse detection.
//! A refresh rotates with one conditional update; the successor's secret is derived from the
//! presented token (HMAC under a master-key-derived key), so a retry inside the grace window
//! receives the very same successor instead of forking the family, while the store keeps only
//! hashes. A rotated token presented again outside that window revokes the family.

use aws_lc_rs::hmac;
use tessera_proto::UnixTime;
use tessera_proto::token::TokenResponse;

use super::issue::{Binding, Issuing, active_user, narrowed_scope, respond};
use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::{Client, GrantType};
use crate::flows::error::OAuthError;
use crate::flows::session;
use crate::form::Form;
use crate::scope::Scope;
use crate::secret::{self, OpaqueToken, REFRESH_TOKEN_PREFIX};
use crate::store::GrantRow;

/// The successor of refresh token `id` with secret `secret`: derived, so that only a holder of
/// the presented token (and the server) can compute it, and a retry computes the same one.
fn successor_secret(state: &AppState, id: u64, secret: &[u8; 32]) -> [u8; 32] {
    let mut input = Vec::with_capacity(48);
    input.extend(b"refresh successor");
    input.extend(id.to_be_bytes());
    input.extend(secret);
    let tag = hmac::sign(&state.refresh_key, &input);
    let mut out = [0u8; 32];
    out.copy_from_slice(&tag.as_ref()[..32]);
    out
}

/// `grant_type=refresh_token`.
pub(crate) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let jkt = &binding.dpop_jkt;
    if !client.may_use(GrantType::RefreshToken) {
        return Err(OAuthError::UnauthorizedClient("this client may not use refresh tokens"));
    }
    let presented =
        form.get("refresh_token").ok_or_else(|| OAuthError::InvalidRequest("refresh_token is required".into()))?;
    let invalid = OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked");
    let Some((parsed, row, grant)) = lookup_refresh(state, presented).await? else { return Err(invalid) };
    // Another client's token: refuse without revoking (conformance `oidcc-refresh-token`).
    if grant.client_id != client.client_id {
        return Err(invalid);
    }
    if grant.revoked_at.is_some() || grant.expires_at <= now.secs() || row.idle_expires_at <= now.secs() {
        return Err(invalid);
    }
    // DP-12: a family bound to a DPoP key refreshes only with a proof of that key.
    if let Some(bound) = &grant.dpop_jkt
        && jkt.as_deref() != Some(bound.as_str())
    {
        return Err(OAuthError::InvalidGrant("the refresh token is bound to a DPoP key this request does not prove"));
    }
    active_user(state, &grant.user_id, grant.created_at, now).await?;
    let granted = Scope::parse(&grant.scope).map_err(|_| anyhow::anyhow!("stored scope is corrupt"))?;
    let scope = narrowed_scope(form, &granted, "a refresh cannot widen the granted scope")?;
    let idle = now.plus(state.config.refresh_token_idle_ttl).secs().min(grant.expires_at);
    state.store.touch_session(&grant.session_id, now.secs()).await?;
    if !client.refresh_rotation && !client.is_public() {
        state.store.touch_refresh_token(row.id, idle).await?;
        return respond(state, Issuing::Refresh, client, &grant, scope, binding, now).await;
    }
    let successor = successor_secret(state, row.id, &parsed.secret);
    if row.rotated_at.is_none() {
        // The access token first, the rotation last: a database failure before the rotation
        // commits leaves the presented token unused, so the retry works and is no reuse.
        let mut response = respond(state, Issuing::Refresh, client, &grant, scope.clone(), binding, now).await?;
        let successor_hash = secret::hash_bytes(&successor);
        let record = Record::new(Event::TokenRefreshed, now.secs(), format!("client:{}", client.client_id))
            .subject(&grant.user_id)
            .client(&client.client_id)
            .session(Some(&grant.session_id))
            .detail("grant_id", &grant.id)
            .detail("rotated", row.id);
        if let Some(id) =
            state.store.rotate_refresh_token(row.id, &grant.id, &successor_hash, idle, now.secs(), record).await?
        {
            let token = OpaqueToken { id, secret: successor }.encode_as(REFRESH_TOKEN_PREFIX).expose().to_owned();
            tracing::info!(client_id = %client.client_id, grant_id = %grant.id, "refresh token rotated");
            response.refresh_token = Some(token);
            return Ok(response);
        }
    }
    // Rotated before: by us a moment ago (a retry, a second tab, the loser of a race) or by a
    // thief. Inside the grace window, while the successor is unused, hand out that successor.
    let row = state.store.refresh_token(row.id).await?.ok_or(OAuthError::InvalidGrant("the refresh token is gone"))?;
    let grace = state.config.refresh_token_grace_period;
    let in_grace = grace > 0 && row.rotated_at.is_some_and(|at| now.secs() <= at.saturating_add(grace));
    if in_grace && let Some(successor_id) = row.successor_id {
        let unused = state.store.refresh_token(successor_id).await?.is_some_and(|s| s.rotated_at.is_none());
        if unused {
            let token =
                OpaqueToken { id: successor_id, secret: successor }.encode_as(REFRESH_TOKEN_PREFIX).expose().to_owned();
            tracing::info!(client_id = %client.client_id, grant_id = %grant.id, "refresh retried within the grace window");
            let mut response = respond(state, Issuing::Refresh, client, &grant, scope, binding, now).await?;
            response.refresh_token = Some(token);
            return Ok(response);
        }
    }
    let record = Record::new(Event::ReuseDetected, now.secs(), format!("client:{}", client.client_id))
        .failed()
        .subject(&grant.user_id)
        .client(&client.client_id)
        .session(Some(&grant.session_id))
        .detail("token", "refresh_token")
        .detail("refresh_token_id", row.id);
    session::revoke_grant(state, &grant.id, now, record).await?;
    crate::metrics::reuse_detected();
    tracing::warn!(client_id = %client.client_id, grant_id = %grant.id, event = "refresh_token_reuse_detected", "a rotated refresh token was presented again: the family is revoked");
    Err(invalid)
}

/// A presented refresh token that exists and is genuine (its secret matches), with its row and
/// grant; whether it may still be used is for the caller to decide.
async fn lookup_refresh(
    state: &AppState,
    token: &str,
) -> Result<Option<(OpaqueToken, crate::store::RefreshRow, GrantRow)>, OAuthError> {
    let Some(parsed) = OpaqueToken::parse_as(token, REFRESH_TOKEN_PREFIX) else { return Ok(None) };
    let Some(row) = state.store.refresh_token(parsed.id).await? else { return Ok(None) };
    if !secret::hashes_equal(&parsed.secret_hash(), &row.secret_hash) {
        return Ok(None);
    }
    let Some(grant) = state.store.grant(&row.grant_id).await? else { return Ok(None) };
    Ok(Some((parsed, row, grant)))
}

/// What introspection says about a refresh token: `(grant, row)` if active.
pub(crate) async fn active_refresh(
    state: &AppState,
    token: &str,
    now: UnixTime,
) -> Result<Option<(GrantRow, crate::store::RefreshRow)>, OAuthError> {
    let Some((_, row, grant)) = lookup_refresh(state, token).await? else { return Ok(None) };
    let client = state.store.client(&grant.client_id).await?;
    let rotating = client.as_ref().is_some_and(|c| c.client.refresh_rotation || c.client.is_public());
    if client.is_none()
        || grant.revoked_at.is_some()
        || grant.expires_at <= now.secs()
        || row.idle_expires_at <= now.secs()
        || (rotating && row.rotated_at.is_some())
    {
        return Ok(None);
    }
    Ok(Some((grant, row)))
}
