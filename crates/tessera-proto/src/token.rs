//! Token endpoint and introspection responses (RFC 6749 §5.1, RFC 7662 §2.2).

use serde::{Deserialize, Serialize};

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token itself.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The granted scope, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// The `aud` claim: a single string or an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience, serialized as a string.
    One(String),
    /// Several audiences, serialized as an array.
    Many(Vec<String>),
}

impl Audience {
    /// Builds the claim from a list: a string for one value, an array otherwise.
    pub fn from_list(mut list: Vec<String>) -> Audience {
        if list.len() == 1 { Audience::One(list.remove(0)) } else { Audience::Many(list) }
    }

    /// Every audience value.
    pub fn values(&self) -> &[String] {
        match self {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        }
    }
}

/// An introspection response (RFC 7662 §2.2). An inactive token serializes as exactly
/// `{"active":false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    /// Whether the token is currently active for this caller.
    pub active: bool,
    /// The remaining members; absent for inactive tokens.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ActiveToken>,
}

/// The members of an active introspection response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveToken {
    /// Granted scope, space separated.
    pub scope: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The subject of the token.
    pub sub: String,
    /// The audience(s) of the token.
    pub aud: Audience,
    /// The issuer identifier.
    pub iss: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issuance time, seconds since the epoch.
    pub iat: u64,
    /// The token's unique identifier.
    pub jti: String,
    /// `Bearer`.
    pub token_type: String,
}

impl IntrospectionResponse {
    /// `{"active":false}`.
    pub fn inactive() -> IntrospectionResponse {
        IntrospectionResponse { active: false, details: None }
    }
}
