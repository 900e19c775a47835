//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6): a code is redeemed once,
//! with its PKCE verifier, by the client it was issued to; the redemption consumes the code and
//! creates its grant in one transaction, and a replay that proves the verifier revokes that grant.

use tessera_proto::UnixTime;
use tessera_proto::token::TokenResponse;

use super::issue::{Binding, Issuing, active_user};
use super::start::{Approved, start};
use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::{Client, GrantType};
use crate::flows::authorize::{is_pkce_value, pkce_matches};
use crate::flows::error::OAuthError;
use crate::flows::session;
use crate::form::Form;
use crate::secret;
use crate::store::Redemption;

/// `grant_type=authorization_code`.
pub(crate) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let jkt = &binding.dpop_jkt;
    if !client.may_use(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the authorization code grant"));
    }
    let code = form.get("code").ok_or_else(|| OAuthError::InvalidRequest("code is required".into()))?;
    let code_hash = secret::hash(code);
    let invalid = OAuthError::InvalidGrant("the code is invalid, expired or used");
    let Some(row) = state.store.code(&code_hash).await? else { return Err(invalid) };
    // A code of another client is not evidence of theft from this one: refuse, revoke nothing.
    if row.client_id != client.client_id {
        return Err(invalid);
    }
    if row.consumed_at.is_some() {
        // RFC 6749 §4.1.2: a code used twice revokes what it granted, but only when the replay
        // proves it comes from whoever started the flow (the PKCE verifier). A code is not
        // secret from everyone (logs, referrers, a public client's id is public): without the
        // verifier, a third party could otherwise end the person's grant (#23, T-14).
        if form.get("code_verifier").is_some_and(|v| is_pkce_value(v) && pkce_matches(v, &row.code_challenge)) {
            replayed(state, client, row.grant_id.as_deref(), now).await?;
        }
        return Err(invalid);
    }
    if row.expires_at <= now.secs() {
        return Err(invalid);
    }
    // RFC 6749 §4.1.3: the redirect URI must be repeated exactly if the request named it.
    match form.get("redirect_uri") {
        Some(uri) if uri != row.redirect_uri => {
            return Err(OAuthError::InvalidGrant("redirect_uri differs from the authorization request"));
        }
        None if row.redirect_uri_sent => {
            return Err(OAuthError::InvalidGrant("redirect_uri is required: the authorization request had one"));
        }
        _ => {}
    }
    match form.get("code_verifier") {
        None => return Err(OAuthError::InvalidGrant("code_verifier is required")),
        Some(v) if !is_pkce_value(v) => return Err(OAuthError::InvalidGrant("code_verifier is malformed")),
        Some(v) if !pkce_matches(v, &row.code_challenge) => {
            return Err(OAuthError::InvalidGrant("code_verifier does not match the code_challenge"));
        }
        Some(_) => {}
    }
    // RFC 9449 §10: a code bound to a DPoP key is redeemed only with a proof of that key.
    if let Some(bound) = &row.dpop_jkt
        && jkt.as_deref() != Some(bound.as_str())
    {
        return Err(OAuthError::InvalidGrant("the code is bound to a DPoP key this request does not prove"));
    }
    // A code lives CODE_TTL seconds: it was created that long before it expires.
    active_user(state, &row.user_id, row.expires_at.saturating_sub(crate::flows::authorize::CODE_TTL), now).await?;
    match state.store.session(&row.session_id).await? {
        Some(session) if session.ended_at.is_none() => {}
        _ => return Err(OAuthError::InvalidGrant("the session that authorized this code has ended")),
    }
    let approved = Approved {
        user_id: row.user_id.clone(),
        session_id: row.session_id.clone(),
        scope: row.scope.clone(),
        resources: row.resources.clone(),
        auth_time: row.auth_time,
    };
    // Issued before the code is consumed (grants::start).
    let starting = start(state, Issuing::Code(row.nonce.as_deref()), client, approved, binding, now).await?;
    let record = starting.record(client, "authorization_code", now);
    // A self-registered client that completes an authorization is kept past
    // `registration_expiry` (flows::registration): noted in the redemption's transaction.
    let mark_used = client.origin.is_registered();
    let redemption =
        state.store.redeem_code(&code_hash, &starting.grant, starting.refresh, mark_used, now.secs(), record).await?;
    let refresh_id = match redemption {
        Redemption::Redeemed { refresh_id } => refresh_id,
        Redemption::AlreadyUsed { grant_id } => {
            replayed(state, client, grant_id.as_deref(), now).await?;
            return Err(invalid);
        }
    };
    tracing::info!(client_id = %client.client_id, grant_id = %starting.grant.id, "authorization code redeemed");
    Ok(starting.finish(refresh_id))
}

/// RFC 6749 §4.1.2, RFC 9700 §4.2.4: a code presented twice revokes what its first redemption issued.
async fn replayed(state: &AppState, client: &Client, grant_id: Option<&str>, now: UnixTime) -> Result<(), OAuthError> {
    if let Some(grant_id) = grant_id {
        let record = Record::new(Event::ReuseDetected, now.secs(), format!("client:{}", client.client_id))
            .failed()
            .client(&client.client_id)
            .detail("token", "authorization_code");
        session::revoke_grant(state, grant_id, now, record).await?;
        tracing::warn!(grant_id, "authorization code replayed: its grant is revoked");
    }
    Ok(())
}
