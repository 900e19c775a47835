//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4–3.5): the device
//! polls with its device code until the person answers at `/device`. Polling sooner than the
//! interval is `slow_down` and grows the interval by 5 s; a denied code is `access_denied`, an
//! expired one `expired_token`; an approved code is redeemed once, on whichever node the poll
//! lands, by one conditional update that also creates the grant.

use tessera_proto::UnixTime;
use tessera_proto::token::TokenResponse;

use super::issue::{Binding, Issuing, active_user};
use super::start::{Approved, start};
use crate::AppState;
use crate::client::{Client, GrantType};
use crate::flows::error::OAuthError;
use crate::form::Form;
use crate::secret;

/// How much `slow_down` adds to the interval (RFC 8628 §3.5).
const SLOW_DOWN_STEP: u64 = 5;

pub(crate) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    if !client.may_use(GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the device authorization grant"));
    }
    let code = form.get("device_code").ok_or_else(|| OAuthError::InvalidRequest("device_code is required".into()))?;
    let hash = secret::hash(code);
    let invalid = OAuthError::InvalidGrant("the device code is invalid or was used");
    let Some(row) = state.store.device_code(&hash).await? else { return Err(invalid) };
    if row.client_id != client.client_id {
        return Err(invalid);
    }
    if row.expires_at <= now.secs() {
        return Err(OAuthError::ExpiredToken);
    }
    match row.status.as_str() {
        "pending" => {
            let too_soon = row.polled_at.is_some_and(|at| now.secs().saturating_sub(at) < row.interval_secs);
            let interval = if too_soon { row.interval_secs + SLOW_DOWN_STEP } else { row.interval_secs };
            state.store.poll_device_code(&hash, now.secs(), interval).await?;
            return Err(if too_soon { OAuthError::SlowDown } else { OAuthError::AuthorizationPending });
        }
        "denied" => return Err(OAuthError::AccessDenied),
        "approved" => {}
        _ => return Err(invalid),
    }
    let (Some(user_id), Some(session_id), Some(auth_time)) = (row.user_id, row.session_id, row.auth_time) else {
        return Err(invalid);
    };
    active_user(state, &user_id, row.created_at, now).await?;
    match state.store.session(&session_id).await? {
        Some(session) if session.ended_at.is_none() => {}
        _ => return Err(OAuthError::InvalidGrant("the session that approved this device code has ended")),
    }
    let approved = Approved { user_id, session_id, scope: row.scope, resources: row.resources, auth_time };
    let starting = start(state, Issuing::Device, client, approved, binding, now).await?;
    let record = starting.record(client, GrantType::DeviceCode.as_str(), now);
    let redeemed = state.store.redeem_device_code(&hash, &starting.grant, starting.refresh, now.secs(), record).await?;
    let Some(refresh_id) = redeemed else { return Err(invalid) };
    tracing::info!(client_id = %client.client_id, grant_id = %starting.grant.id, "device code redeemed");
    Ok(starting.finish(refresh_id))
}
