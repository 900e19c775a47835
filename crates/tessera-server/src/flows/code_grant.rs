//! The authorization-code grant (RFC 6749 §4.1.3, RFC 7636 §4.6), refresh tokens with rotation
//! and reuse detection (RFC 6749 §6, RFC 9700 §4.14.2), and ID tokens (OpenID Connect Core §2).
//!
//! A redemption consumes the code and creates its grant in one transaction. A refresh rotates
//! with one conditional update; the successor's secret is derived from the presented token
//! (HMAC under a master-key-derived key), so a retry inside the grace window receives the very
//! same successor instead of forking the family, while the store keeps only hashes.

use aws_lc_rs::hmac;
use serde::Serialize;
use tessera_proto::UnixTime;
use tessera_proto::token::TokenResponse;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::Client;
use crate::flows::authorize::{is_pkce_value, pkce_matches};
use crate::flows::error::OAuthError;
use crate::flows::session;
use crate::flows::token::{self, Binding, Grant};
use crate::form::Form;
use crate::scope::Scope;
use crate::secret::{self, OpaqueToken, REFRESH_TOKEN_PREFIX};
use crate::store::{GrantRow, Redemption};
use crate::user::User;

/// ID-token lifetime.
pub const ID_TOKEN_TTL: u64 = 3600;

/// OpenID Connect Core §2 claims.
#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: u64,
    iat: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    sid: &'a str,
}

/// `at_hash` (Core §3.1.3.6): the left half of SHA-256 of the access token, base64url. Every
/// algorithm we sign ID tokens with (RS256, ES256) uses SHA-256.
fn at_hash(access_token: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&secret::hash(access_token)[..16])
}

fn id_token(
    state: &AppState,
    client: &Client,
    grant: &GrantRow,
    nonce: Option<&str>,
    access_token: &str,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let claims = IdTokenClaims {
        iss: state.config.issuer.as_str(),
        sub: &grant.user_id,
        aud: &client.client_id,
        azp: &client.client_id,
        exp: now.plus(ID_TOKEN_TTL).secs(),
        iat: now.secs(),
        auth_time: grant.auth_time,
        nonce,
        at_hash: at_hash(access_token),
        sid: &grant.session_id,
    };
    let keys = state.keys.current();
    let signer = keys
        .id_token_signer(&client.id_token_alg)
        .ok_or_else(|| anyhow::anyhow!("no {} key for ID tokens", client.id_token_alg))?;
    let payload = serde_json::to_vec(&claims).map_err(anyhow::Error::from)?;
    Ok(signer.sign_jws(&payload)?)
}

/// The grant's user, if they may still get tokens: not deleted, not disabled, and, while locked
/// out, only for a grant `created` before the streak of failures that locked them began. A
/// lockout protects, never punishes (#23): the sessions the person had before someone started
/// guessing keep working; a grant created during the streak (RT-14: through a session, since a
/// correct password would have ended the streak) waits for the lock to end.
async fn active_user(state: &AppState, user_id: &str, created: u64, now: UnixTime) -> Result<User, OAuthError> {
    match state.store.user(user_id).await? {
        Some(user) if user.locked_until > now.secs() && created >= user.failures_since => {
            Err(OAuthError::InvalidGrant("the user is locked out after repeated failed sign-ins"))
        }
        Some(user) if !user.disabled => Ok(user),
        _ => Err(OAuthError::InvalidGrant("the user is disabled or deleted")),
    }
}

/// Issues the access token (and ID token) of a grant, bound as `binding` says.
/// Which grant issues: a code redemption (with the authorization request's `nonce`) or a refresh.
enum Issuing<'a> {
    Code(Option<&'a str>),
    Refresh,
}

async fn respond(
    state: &AppState,
    issuing: Issuing<'_>,
    client: &Client,
    grant: &GrantRow,
    scope: Scope,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let (grant_type, nonce) = match issuing {
        Issuing::Code(nonce) => ("authorization_code", nonce),
        Issuing::Refresh => ("refresh_token", None),
    };
    let audience = token::select_audience(client, &grant.resources)?;
    let openid = scope.contains("openid");
    let cnf = binding.cnf();
    let issued = Grant {
        grant_type,
        client,
        sub: &grant.user_id,
        scope,
        audience,
        grant_id: Some(&grant.id),
        cnf,
        sid: Some(&grant.session_id),
    };
    let mut response = token::issue(state, issued, now).await?;
    if openid {
        response.id_token = Some(id_token(state, client, grant, nonce, &response.access_token, now)?);
    }
    Ok(response)
}

/// `grant_type=authorization_code`.
pub async fn redeem(
    state: &AppState,
    client: &Client,
    form: &Form,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let jkt = &binding.dpop_jkt;
    if !client.may_use("authorization_code") {
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
    let grant = GrantRow {
        id: secret::random_b64(16),
        client_id: client.client_id.clone(),
        user_id: row.user_id.clone(),
        session_id: row.session_id.clone(),
        scope: row.scope.clone(),
        resources: row.resources.clone(),
        auth_time: row.auth_time,
        created_at: now.secs(),
        expires_at: now.plus(state.config.refresh_token_ttl).secs(),
        revoked_at: None,
        // RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key.
        dpop_jkt: jkt.clone().filter(|_| client.is_public()),
    };
    let refresh_secret = client.may_use("refresh_token").then(OpaqueToken::secret);
    let idle = now.plus(state.config.refresh_token_idle_ttl).secs().min(grant.expires_at);
    let refresh = refresh_secret.map(|s| (secret::hash_bytes(&s), idle));
    let scope = Scope::parse(&grant.scope).map_err(|_| anyhow::anyhow!("stored scope is corrupt"))?;
    // Issue the tokens before the code is consumed: if the database fails in between, the code
    // is still unused and a retry works (an outage never looks like a replay). Tokens of a grant
    // that never comes into being read as revoked.
    let mut response = respond(state, Issuing::Code(row.nonce.as_deref()), client, &grant, scope, binding, now).await?;
    let record = Record::new(Event::TokenIssued, now.secs(), format!("client:{}", client.client_id))
        .subject(&grant.user_id)
        .client(&client.client_id)
        .session(Some(&grant.session_id))
        .detail("token", "refresh_token")
        .detail("grant_type", "authorization_code")
        .detail("grant_id", &grant.id)
        .detail("scope", &grant.scope)
        .detail("refresh_token", refresh.is_some());
    let refresh_id = match state.store.redeem_code(&code_hash, &grant, refresh, now.secs(), record).await? {
        Redemption::Redeemed { refresh_id } => refresh_id,
        Redemption::AlreadyUsed { grant_id } => {
            replayed(state, client, grant_id.as_deref(), now).await?;
            return Err(invalid);
        }
    };
    response.refresh_token = match (refresh_id, refresh_secret) {
        (Some(id), Some(secret)) => {
            Some(OpaqueToken { id, secret }.encode_as(REFRESH_TOKEN_PREFIX).expose().to_owned())
        }
        _ => None,
    };
    tracing::info!(client_id = %client.client_id, grant_id = %grant.id, "authorization code redeemed");
    Ok(response)
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
pub async fn refresh(
    state: &AppState,
    client: &Client,
    form: &Form,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let jkt = &binding.dpop_jkt;
    if !client.may_use("refresh_token") {
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
    let scope = token::narrowed_scope(form, &granted, "a refresh cannot widen the granted scope")?;
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
pub async fn active_refresh(
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
