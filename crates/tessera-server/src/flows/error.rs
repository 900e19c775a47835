//! Errors of the token, introspection and revocation endpoints (RFC 6749 §5.2, RFC 7009 §2.2.1,
//! RFC 8707 §2). `Display` is the wire code.

/// An OAuth error. `http/` maps each variant to a status code.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request")]
    InvalidRequest(String),
    /// Client authentication failed. `basic` is true when the client tried HTTP Basic, which
    /// requires a `WWW-Authenticate` challenge in the 401 response.
    #[error("invalid_client")]
    InvalidClient { basic: bool },
    #[error("invalid_grant")]
    InvalidGrant(&'static str),
    #[error("unauthorized_client")]
    UnauthorizedClient(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope")]
    InvalidScope(&'static str),
    #[error("invalid_target")]
    InvalidTarget(&'static str),
    #[error("unsupported_token_type")]
    UnsupportedTokenType,
    /// RFC 9449 §5: the DPoP proof is missing where required, malformed, or does not match.
    #[error("invalid_dpop_proof")]
    InvalidDpopProof(&'static str),
    /// RFC 9449 §8: the proof must carry the server's current nonce, which is attached.
    #[error("use_dpop_nonce")]
    UseDpopNonce(String),
    /// RFC 8628 §3.5: the person has not answered yet; poll again after the interval.
    #[error("authorization_pending")]
    AuthorizationPending,
    /// RFC 8628 §3.5: polled too soon; the interval grew by 5 s.
    #[error("slow_down")]
    SlowDown,
    /// RFC 8628 §3.5: the person denied the request.
    #[error("access_denied")]
    AccessDenied,
    /// RFC 8628 §3.5: the device code expired; start again.
    #[error("expired_token")]
    ExpiredToken,
    #[error("server_error")]
    Internal(#[from] anyhow::Error),
}

impl OAuthError {
    /// The `error_description`, never containing a secret.
    pub fn description(&self) -> Option<String> {
        match self {
            OAuthError::InvalidRequest(why) => Some(why.clone()),
            OAuthError::InvalidClient { .. } => Some("client authentication failed".into()),
            OAuthError::InvalidGrant(why)
            | OAuthError::UnauthorizedClient(why)
            | OAuthError::InvalidScope(why)
            | OAuthError::InvalidTarget(why)
            | OAuthError::InvalidDpopProof(why) => Some((*why).into()),
            OAuthError::UseDpopNonce(_) => Some("the authorization server requires a DPoP nonce".into()),
            OAuthError::UnsupportedGrantType => Some("this grant type is not supported".into()),
            OAuthError::UnsupportedTokenType => Some("this token type cannot be revoked here".into()),
            OAuthError::AuthorizationPending => Some("the person has not answered yet".into()),
            OAuthError::SlowDown => Some("polling too fast: wait 5 s more between requests".into()),
            OAuthError::AccessDenied => Some("the person denied the request".into()),
            OAuthError::ExpiredToken => Some("the device code has expired".into()),
            OAuthError::Internal(_) => None,
        }
    }
}
