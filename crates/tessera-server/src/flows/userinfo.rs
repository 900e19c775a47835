//! `GET|POST /userinfo` (OpenID Connect Core §5.3): the signed-in user's claims, by scope, for an
//! access token presented with `Authorization: Bearer` (RFC 6750 §2.1).

use serde_json::{Map, Value, json};
use tessera_proto::UnixTime;

use crate::AppState;
use crate::flows::introspect;
use crate::scope::Scope;

/// RFC 6750 §3.1 errors.
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error("invalid_request")]
    NoToken,
    #[error("invalid_token")]
    InvalidToken,
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

pub async fn userinfo(state: &AppState, authorization: Option<&str>, now: UnixTime) -> Result<Value, UserinfoError> {
    let token = introspect::bearer_token(authorization).ok_or(UserinfoError::NoToken)?;
    let active = introspect::resolve(state, token, now).await?.ok_or(UserinfoError::InvalidToken)?;
    let scope = Scope::parse(&active.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return Err(UserinfoError::InsufficientScope);
    }
    // Client-credentials tokens have a client as subject: no user, no userinfo.
    let user = match state.store.user(&active.sub).await? {
        Some(user) if !user.disabled => user,
        _ => return Err(UserinfoError::InvalidToken),
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
