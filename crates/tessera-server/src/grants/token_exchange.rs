//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693), for API keys
//! today: the key is the subject token and the credential, and the answer is a short-lived JWT
//! access token with the key's subject and at most its scope and audience.

use tessera_proto::UnixTime;
use tessera_proto::token::TokenResponse;

use super::issue::{Grant, issue, narrowed_scope};
use crate::AppState;
use crate::apikey::key_jti;
use crate::client::MAX_ACCESS_TOKEN_TTL;
use crate::flows::api_keys::{ACCESS_TOKEN_TYPE, API_KEY_TOKEN_TYPE, EXCHANGED_TTL, active_key};
use crate::flows::dpop::{self, PresentedProof};
use crate::flows::error::OAuthError;
use crate::form::Form;
use crate::scope::Scope;

/// RFC 8693: an API key (`subject_token`, `subject_token_type` [`API_KEY_TOKEN_TYPE`]) for a
/// short-lived JWT access token with the key's subject and at most its scope and audience,
/// bound to a DPoP key if the request carries a proof. The key is the credential: no client
/// authentication is needed (RFC 8693 §2.1 leaves it to the server).
pub(crate) async fn grant(
    state: &AppState,
    form: &Form,
    proof: &PresentedProof<'_>,
    ip: Option<String>,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    let subject = form.get("subject_token").ok_or(OAuthError::InvalidRequest("subject_token is required".into()))?;
    if form.get("subject_token_type") != Some(API_KEY_TOKEN_TYPE) {
        return Err(OAuthError::InvalidRequest(format!("subject_token_type must be {API_KEY_TOKEN_TYPE}")));
    }
    if form.get("actor_token").is_some() {
        return Err(OAuthError::InvalidRequest("actor_token is not supported".into()));
    }
    if form.get("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::InvalidRequest(format!("requested_token_type must be {ACCESS_TOKEN_TYPE}")));
    }
    let Some(row) = active_key(state, subject, now).await? else {
        return Err(OAuthError::InvalidGrant("the API key is invalid, expired or revoked"));
    };
    let granted = Scope::parse(&row.scope).map_err(|_| anyhow::anyhow!("stored scope is corrupt"))?;
    let scope = narrowed_scope(form, &granted, "the requested scope exceeds the key's")?;
    let requested: Vec<String> =
        form.resources().iter().cloned().chain(form.get("audience").map(str::to_owned)).collect();
    let audience = if requested.is_empty() {
        row.audience.iter().take(1).cloned().collect()
    } else if requested.iter().all(|a| row.audience.contains(a)) {
        requested
    } else {
        return Err(OAuthError::InvalidTarget("the key may not address this audience"));
    };
    let jkt = dpop::unauthenticated_proof_key(state, proof, now).await?;
    let cnf = jkt.map(tessera_verify::Confirmation::Jkt);
    state.api_key_uses.record(row.id, now.secs(), ip);
    let jti = key_jti(row.id);
    let client = crate::client::Client::for_api_key(&jti, EXCHANGED_TTL.min(MAX_ACCESS_TOKEN_TTL));
    let mut response = issue(
        state,
        Grant {
            grant_type: "token_exchange",
            client: &client,
            sub: &row.owner_id,
            scope,
            audience,
            grant_id: None,
            cnf,
            sid: None,
        },
        now,
    )
    .await?;
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE.into());
    tracing::info!(key = %jti, event = "api_key_exchanged", "API key exchanged for an access token");
    Ok(response)
}
