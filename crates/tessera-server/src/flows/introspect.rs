//! `POST /introspect` (RFC 7662) and the token lookup it shares with revocation and the admin
//! API: a token is active only if known, unexpired, unrevoked and its client still exists.

use std::sync::Arc;

use tessera_proto::UnixTime;
use tessera_proto::token::{Audience, IntrospectionResponse};
use tessera_verify::Confirmation;

use crate::AppState;
use crate::active_tokens::ActiveAccessToken;
use crate::apikey::ApiKey;
use crate::client::Client;
use crate::flows::client_auth;
use crate::flows::error::OAuthError;
use crate::form::Form;
use crate::secret::{self, ACCESS_TOKEN_PREFIX, OpaqueToken, REFRESH_TOKEN_PREFIX};

/// Verified claims of one of our JWTs, ignoring revocation, the client's existence and the
/// sender constraint (`cnf`, left to the caller).
pub fn verified_jwt(state: &AppState, token: &str, now: UnixTime) -> Option<tessera_verify::Claims> {
    state.keys.current().verifier.verify_reporting_binding(token, now).ok()
}

/// How an access token was presented in `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScheme {
    /// RFC 6750 §2.1.
    Bearer,
    /// RFC 9449 §7.1, with a proof in the `DPoP` header.
    Dpop,
}

/// The scheme and token of `Authorization: Bearer <token>` or `Authorization: DPoP <token>`,
/// the scheme case-insensitive (RFC 9110 §11.1).
pub fn presented_token(authorization: Option<&str>) -> Option<(TokenScheme, &str)> {
    let (scheme, token) = authorization?.split_once(' ')?;
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((TokenScheme::Bearer, token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some((TokenScheme::Dpop, token))
    } else {
        None
    }
}

/// RFC 6750 §2.1: the token of `Authorization: Bearer <token>`, scheme case-insensitive.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    presented_token(authorization).filter(|(scheme, _)| *scheme == TokenScheme::Bearer).map(|(_, token)| token)
}

/// Looks a token up in every format (RFC 7662 §2.1: the hint is only an optimisation).
pub async fn resolve(
    state: &AppState,
    token: &str,
    now: UnixTime,
) -> Result<Option<Arc<ActiveAccessToken>>, OAuthError> {
    let token_hash = secret::hash(token);
    let cache = &state.active_tokens.0;
    let cached = cache.get(&token_hash);
    crate::metrics::cache("active_tokens", cached.is_some());
    let found = match cached {
        Some(cached) => cached,
        None => {
            let ticket = cache.ticket();
            let Some(found) = lookup(state, token, now).await? else { return Ok(None) };
            let found = Arc::new(found);
            cache.insert(ticket, token_hash, found.clone());
            found
        }
    };
    if found.exp <= now.secs() {
        return Ok(None);
    }
    // An API key, or a token exchanged for one: the key must still be active (its revocation,
    // expiry or owner's deletion ends it), cached or not.
    if found.api_key || found.client_id.starts_with("ak_") {
        let active = crate::flows::api_keys::key_of_token_active(state, &found.client_id, now).await?;
        return Ok(active.then_some(found));
    }
    // A deleted client and a client-wide revocation end a token at once, cached or not.
    let client = state.store.client(&found.client_id).await?;
    if client.is_none_or(|c| found.iat < c.client.tokens_not_before) {
        return Ok(None);
    }
    Ok(Some(found))
}

/// The whole JWT of a split token (its signature part, as the client holds it), if it is one.
pub async fn reassembled(state: &AppState, token: &str, now: UnixTime) -> Result<Option<String>, OAuthError> {
    if token.contains('.') || token.starts_with(ACCESS_TOKEN_PREFIX) || token.starts_with(REFRESH_TOKEN_PREFIX) {
        return Ok(None);
    }
    let Some(header_payload) = state.store.split_token(&secret::hash(token), now.secs()).await? else {
        return Ok(None);
    };
    Ok(Some(format!("{header_payload}.{token}")))
}

async fn lookup(state: &AppState, token: &str, now: UnixTime) -> Result<Option<ActiveAccessToken>, OAuthError> {
    if ApiKey::looks_like(token) {
        let key = crate::flows::api_keys::active_key(state, token, now).await?;
        if let Some(key) = &key {
            state.api_key_uses.record(key.id, now.secs(), None);
        }
        return Ok(key.as_ref().map(crate::flows::api_keys::as_active_token));
    }
    if let Some(whole) = reassembled(state, token, now).await? {
        return Box::pin(lookup(state, &whole, now)).await;
    }
    if token.starts_with(ACCESS_TOKEN_PREFIX) {
        let Some(presented) = OpaqueToken::parse(token) else { return Ok(None) };
        let Some(row) = state.store.opaque_token(presented.id).await? else { return Ok(None) };
        let genuine = secret::hashes_equal(&presented.secret_hash(), &row.secret_hash);
        if !genuine || row.revoked || row.exp <= now.secs() {
            return Ok(None);
        }
        if let Some(grant_id) = &row.grant_id
            && !state.store.grant_is_active(grant_id).await?
        {
            return Ok(None);
        }
        let cnf = match &row.cnf {
            None => None,
            Some(text) => {
                let value = serde_json::from_str(text).map_err(anyhow::Error::from)?;
                Some(Confirmation::from_json(&value).ok_or_else(|| anyhow::anyhow!("corrupt cnf column"))?)
            }
        };
        return Ok(Some(ActiveAccessToken {
            cnf,
            jti: row.jti,
            client_id: row.client_id,
            sub: row.sub,
            aud: row.aud,
            scope: row.scope,
            iat: row.iat,
            exp: row.exp,
            api_key: false,
        }));
    }
    let Some(claims) = verified_jwt(state, token, now) else { return Ok(None) };
    if state.store.is_jwt_revoked(&claims.jti).await? {
        return Ok(None);
    }
    Ok(Some(ActiveAccessToken {
        cnf: claims.cnf,
        jti: claims.jti,
        client_id: claims.client_id,
        sub: claims.sub,
        aud: claims.aud,
        scope: claims.scope.unwrap_or_default(),
        iat: claims.iat,
        exp: claims.exp,
        api_key: false,
    }))
}

/// RFC 7662 §2.1 with our caller rule: the token was issued to the caller, or the caller is a
/// resource server (`introspection: true`) and the token is addressed to one of its audiences.
fn may_see(caller: &Client, token: &ActiveAccessToken) -> bool {
    token.client_id == caller.client_id
        || (caller.introspection && token.aud.iter().any(|a| caller.audience.contains(a)))
}

/// `Accept: application/jwt`, for gateways (the phantom-token pattern): an active access token's
/// introspection as a JWT access token (RFC 9068, signed by the active key) with the same `jti`,
/// subject, client, audience, scope, times and binding, so the revocation feed covers both.
/// `None` for an inactive token (and for a refresh token, which is no access token).
pub async fn introspect_as_jwt(
    state: &AppState,
    request: &client_auth::ClientRequest<'_>,
    form: &Form,
    now: UnixTime,
) -> Result<Option<String>, OAuthError> {
    let caller = client_auth::require_confidential(state, request, form, now).await?;
    let token = form.get("token").ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    let Some(active) = resolve(state, token, now).await?.filter(|t| may_see(&caller, t)) else { return Ok(None) };
    // An API key lives long: its JWT stands for it five minutes at a time (then the gateway
    // asks again), issued now so that verifiers' lifetime limits hold.
    let (iat, exp) =
        if active.api_key { (now.secs(), active.exp.min(now.plus(300).secs())) } else { (active.iat, active.exp) };
    let claims = serde_json::json!({
        "iss": state.config.issuer.as_str(),
        "sub": active.sub,
        "aud": Audience::from_list(active.aud.clone()),
        "client_id": active.client_id,
        "scope": active.scope,
        "iat": iat,
        "exp": exp,
        "jti": active.jti,
    });
    let mut claims = claims;
    if let Some(cnf) = &active.cnf {
        claims["cnf"] = cnf.to_json();
    }
    let payload = serde_json::to_vec(&claims).map_err(anyhow::Error::from)?;
    Ok(Some(state.keys.current().signing.sign_jws(&payload)?))
}

pub async fn introspect(
    state: &AppState,
    request: &client_auth::ClientRequest<'_>,
    form: &Form,
    now: UnixTime,
) -> Result<IntrospectionResponse, OAuthError> {
    let caller = client_auth::require_confidential(state, request, form, now).await?;
    answer(state, &caller, form, now).await
}

/// RFC 9701: the introspection response as a JWT (`typ: token-introspection+jwt`) signed by the
/// active key, addressed to the caller, with the RFC 7662 answer in `token_introspection`.
pub async fn introspect_rfc9701(
    state: &AppState,
    request: &client_auth::ClientRequest<'_>,
    form: &Form,
    now: UnixTime,
) -> Result<String, OAuthError> {
    let caller = client_auth::require_confidential(state, request, form, now).await?;
    let answer = answer(state, &caller, form, now).await?;
    let claims = serde_json::json!({
        "iss": state.config.issuer.as_str(),
        "aud": caller.client_id,
        "iat": now.secs(),
        "token_introspection": answer,
    });
    let payload = serde_json::to_vec(&claims).map_err(anyhow::Error::from)?;
    Ok(state.keys.current().signing.sign_jws_typed("token-introspection+jwt", &payload)?)
}

/// The RFC 7662 answer about the form's `token` for an authenticated `caller`.
async fn answer(
    state: &AppState,
    caller: &Client,
    form: &Form,
    now: UnixTime,
) -> Result<IntrospectionResponse, OAuthError> {
    let token = form.get("token").ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    // RFC 7662 §2.1: the hint only orders the search; refresh tokens are found whatever it says.
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        let Some((grant, row)) = crate::grants::refresh_token::active_refresh(state, token, now)
            .await?
            .filter(|(g, _)| g.client_id == caller.client_id)
        else {
            return Ok(IntrospectionResponse::inactive());
        };
        return Ok(IntrospectionResponse {
            active: true,
            scope: Some(grant.scope.clone()),
            client_id: Some(grant.client_id.clone()),
            sub: Some(grant.user_id.clone()),
            aud: None,
            iss: Some(state.config.issuer.as_str().to_owned()),
            exp: Some(row.idle_expires_at.min(grant.expires_at)),
            iat: Some(row.created_at),
            jti: None,
            token_type: Some("refresh_token".into()),
            cnf: grant.dpop_jkt.as_ref().map(|jkt| Confirmation::Jkt(jkt.clone()).to_json()),
        });
    }
    let Some(active) = resolve(state, token, now).await?.filter(|t| may_see(caller, t)) else {
        return Ok(IntrospectionResponse::inactive());
    };
    Ok(IntrospectionResponse {
        active: true,
        scope: Some(active.scope.clone()),
        client_id: Some(active.client_id.clone()),
        sub: Some(active.sub.clone()),
        aud: Some(Audience::from_list(active.aud.clone())),
        iss: Some(state.config.issuer.as_str().to_owned()),
        exp: Some(active.exp),
        iat: Some(active.iat),
        jti: Some(active.jti.clone()),
        token_type: Some(active.token_type().into()),
        cnf: active.cnf.as_ref().map(Confirmation::to_json),
    })
}
