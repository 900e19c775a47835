//! `GET|POST /userinfo` (OpenID Connect Core §5.3): the signed-in user's claims, by scope, for an
//! access token presented with `Authorization: Bearer` (RFC 6750 §2.1), or a DPoP-bound one with
//! `Authorization: DPoP` and a proof of its key (RFC 9449 §7.1).

use serde_json::{Map, Value, json};
use tessera_proto::UnixTime;

use tessera_verify::Confirmation;
use tessera_verify::dpop::DpopRequest;

use crate::AppState;
use crate::flows::dpop::{self, PresentedProof};
use crate::flows::error::OAuthError;
use crate::flows::introspect::{self, TokenScheme};
use crate::scope::Scope;
use crate::tls::ClientCertificate;

/// RFC 6750 §3.1 errors.
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error("invalid_request")]
    NoToken,
    /// `dpop` says whether the challenge names the DPoP scheme: the token is DPoP-bound, or
    /// was presented as if it were.
    #[error("invalid_token")]
    InvalidToken { dpop: bool },
    /// RFC 9449 §7.1: the proof is missing, invalid, replayed or made with another key.
    #[error("invalid_dpop_proof")]
    InvalidDpopProof,
    #[error("insufficient_scope")]
    InsufficientScope,
    #[error("server_error")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::flows::error::OAuthError> for UserinfoError {
    fn from(err: crate::flows::error::OAuthError) -> UserinfoError {
        UserinfoError::Internal(anyhow::anyhow!("{err}: {:?}", err.description()))
    }
}

/// Claims per scope (Core §5.4).
pub const CLAIMS_SUPPORTED: [&str; 12] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "sid",
    "name",
    "preferred_username",
    "email",
    "email_verified",
];

pub async fn userinfo(
    state: &AppState,
    authorization: Option<&str>,
    proof: &PresentedProof<'_>,
    certificate: Option<&ClientCertificate>,
    now: UnixTime,
) -> Result<Value, UserinfoError> {
    let (scheme, token) = introspect::presented_token(authorization).ok_or(UserinfoError::NoToken)?;
    let invalid = UserinfoError::InvalidToken { dpop: scheme == TokenScheme::Dpop };
    let Some(active) = introspect::resolve(state, token, now).await? else { return Err(invalid) };
    match (&active.cnf, scheme) {
        (None, TokenScheme::Bearer) => {}
        (Some(Confirmation::Jkt(jkt)), TokenScheme::Dpop) => {
            let header = proof.proof.ok_or(UserinfoError::InvalidDpopProof)?;
            let client =
                state.store.client(&active.client_id).await?.ok_or(UserinfoError::InvalidToken { dpop: true })?;
            let request = DpopRequest { method: proof.method, url: proof.url, access_token: Some(token), nonce: None };
            let verified = match dpop::prove(state, header, &request, &dpop::policy(&client.client), now).await {
                Ok(verified) => verified,
                Err(OAuthError::Internal(err)) => return Err(UserinfoError::Internal(err)),
                Err(_) => return Err(UserinfoError::InvalidDpopProof),
            };
            if verified.jkt != *jkt {
                return Err(UserinfoError::InvalidDpopProof);
            }
        }
        // RFC 8705 §3: a certificate-bound token comes over a connection with that certificate.
        (Some(Confirmation::X5tS256(x5t)), TokenScheme::Bearer)
            if certificate.is_some_and(|c| tessera_verify::certificate_thumbprint(c.leaf()) == *x5t) => {}
        // A bound token as a bearer token, a bearer token as a bound one, or a certificate-bound
        // token without its certificate.
        (cnf, scheme) => {
            let dpop = scheme == TokenScheme::Dpop || matches!(cnf, Some(Confirmation::Jkt(_)));
            return Err(UserinfoError::InvalidToken { dpop });
        }
    }
    let scope = Scope::parse(&active.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return Err(UserinfoError::InsufficientScope);
    }
    // Client-credentials tokens have a client as subject: no user, no userinfo.
    let user = match state.store.user(&active.sub).await? {
        Some(user) if !user.disabled => user,
        _ => return Err(UserinfoError::InvalidToken { dpop: false }),
    };
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    if scope.contains("profile") {
        claims.insert("preferred_username".into(), json!(user.username));
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    Ok(Value::Object(claims))
}
