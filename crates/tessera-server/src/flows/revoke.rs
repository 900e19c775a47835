//! `POST /revoke` (RFC 7009): a client revokes its own tokens. JWTs are revoked by `jti` until
//! they expire; opaque tokens are marked revoked in place; a refresh token takes its whole
//! grant (refresh family and access tokens) with it.

use tessera_proto::UnixTime;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::flows::error::OAuthError;
use crate::flows::introspect::verified_jwt;
use crate::flows::{client_auth, session};
use crate::form::Form;
use crate::secret::{self, ACCESS_TOKEN_PREFIX, CLIENT_SECRET_PREFIX, OpaqueToken, REFRESH_TOKEN_PREFIX};

pub async fn revoke(
    state: &AppState,
    request: &client_auth::ClientRequest<'_>,
    form: &Form,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let caller = client_auth::require(state, request, form, now).await?;
    let token = form.get("token").ok_or_else(|| OAuthError::InvalidRequest("token is required".into()))?;
    // RFC 7009 §2.1: an unknown token_type_hint is ignored; the search covers every type.
    if token.starts_with(CLIENT_SECRET_PREFIX) {
        return Err(OAuthError::UnsupportedTokenType);
    }
    let not_yours = OAuthError::UnauthorizedClient("the token was not issued to this client");
    if token.starts_with(REFRESH_TOKEN_PREFIX) {
        // RFC 7009 §2.1: revoking a refresh token revokes its grant and the grant's access tokens.
        let Some((grant, _)) = crate::grants::refresh_token::active_refresh(state, token, now).await? else {
            return Ok(());
        };
        if grant.client_id != caller.client_id {
            return Err(not_yours);
        }
        let record = revoked(&caller.client_id, now).subject(&grant.user_id).detail("token", "refresh_token");
        session::revoke_grant(state, &grant.id, now, record).await?;
        crate::metrics::revocation("refresh_token");
        tracing::info!(client_id = %caller.client_id, grant_id = %grant.id, "refresh token revoked with its grant");
        return Ok(());
    }
    if token.starts_with(ACCESS_TOKEN_PREFIX) {
        // RFC 7009 §2.2: an invalid or unknown token is answered with 200.
        let Some(presented) = OpaqueToken::parse(token) else { return Ok(()) };
        let Some(row) = state.store.opaque_token(presented.id).await? else { return Ok(()) };
        if !secret::hashes_equal(&presented.secret_hash(), &row.secret_hash) {
            return Ok(());
        }
        if row.client_id != caller.client_id {
            return Err(not_yours);
        }
        let record =
            revoked(&caller.client_id, now).subject(&row.sub).detail("token", "access_token").detail("jti", &row.jti);
        state.store.revoke_opaque_token(row.id, now.secs(), record).await?;
        state.active_tokens.revoked(token);
        crate::metrics::revocation("access_token");
        tracing::info!(client_id = %caller.client_id, jti = %row.jti, "opaque access token revoked");
        return Ok(());
    }
    // RFC 7009 §2.2: an invalid, expired or unknown token is answered with 200.
    let whole = crate::flows::introspect::reassembled(state, token, now).await?;
    let Some(claims) = verified_jwt(state, whole.as_deref().unwrap_or(token), now) else { return Ok(()) };
    if claims.client_id != caller.client_id {
        return Err(not_yours);
    }
    let status_idx = crate::flows::status_list::index_of(state, claims.as_json());
    let record =
        revoked(&caller.client_id, now).subject(&claims.sub).detail("token", "access_token").detail("jti", &claims.jti);
    state
        .store
        .revoke_jwt(&claims.jti, &claims.client_id, &claims.aud, claims.exp, status_idx, now.secs(), record)
        .await?;
    state.active_tokens.revoked(token);
    crate::metrics::revocation("access_token");
    tracing::info!(client_id = %caller.client_id, jti = %claims.jti, "JWT access token revoked");
    Ok(())
}

/// The record of a client's revocation of its own token.
fn revoked(client_id: &str, now: UnixTime) -> Record {
    Record::new(Event::TokenRevoked, now.secs(), format!("client:{client_id}")).client(client_id)
}
