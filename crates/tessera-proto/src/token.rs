//! Token endpoint and introspection responses (RFC 6749 §5.1, RFC 7662 §2.2).

use serde::{Deserialize, Serialize};

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token itself.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a DPoP-bound token (RFC 9449 §5).
    pub token_type: String,
    /// Lifetime in seconds (RECOMMENDED by RFC 6749; Tessera always sends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The granted scope, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A refresh token (authorization code and refresh grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An OpenID Connect ID token, when the scope holds `openid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 §2.2.1: what a token exchange issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// A pushed authorization request's answer (RFC 9126 §2.2), sent with `201 Created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedAuthorizationResponse {
    /// `urn:ietf:params:oauth:request_uri:…`, for the authorization request.
    pub request_uri: String,
    /// Seconds the `request_uri` stays usable.
    pub expires_in: u64,
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

/// An introspection response (RFC 7662 §2.2). Every member but `active` is optional on the
/// wire; Tessera sends all of them for an active token and none for an inactive one, which
/// therefore serializes as exactly `{"active":false}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    /// Whether the token is currently active for this caller.
    pub active: bool,
    /// Granted scope, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The subject of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The audience(s) of the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// The issuer identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issuance time, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The token's unique identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `Bearer`, `DPoP` (RFC 9449 §6.2), or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// RFC 7800 confirmation of a sender-constrained token: `{"jkt": …}` (RFC 9449 §6.2) or
    /// `{"x5t#S256": …}` (RFC 8705 §3.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<serde_json::Value>,
}

impl IntrospectionResponse {
    /// `{"active":false}`.
    pub fn inactive() -> IntrospectionResponse {
        IntrospectionResponse::default()
    }
}

/// Prefix of a user's personal access token (an API key).
pub const USER_API_KEY_PREFIX: &str = "tessera_pat_";
/// Prefix of a client's service key (an API key).
pub const CLIENT_API_KEY_PREFIX: &str = "tessera_sak_";

/// Whether `token` carries an API key prefix (not whether it is a well-formed key).
pub fn looks_like_api_key(token: &str) -> bool {
    token.starts_with(USER_API_KEY_PREFIX) || token.starts_with(CLIENT_API_KEY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7662 §2.2 example: unknown members such as extension_field are ignored.
    #[test]
    fn rfc7662_examples_parse() {
        let active: IntrospectionResponse = serde_json::from_str(
            r#"{"active":true,"client_id":"l238j323ds-23ij4","username":"jdoe","scope":"read write dolphin","sub":"Z5O3upPC88QrAjx00dis","aud":"https://protected.example.net/resource","iss":"https://server.example.com/","exp":1419356238,"iat":1419350238,"extension_field":"twenty-seven"}"#,
        )
        .unwrap();
        assert!(active.active);
        assert_eq!(active.client_id.as_deref(), Some("l238j323ds-23ij4"));
        assert_eq!(active.aud, Some(Audience::One("https://protected.example.net/resource".into())));
        assert_eq!(active.exp, Some(1419356238));
        let inactive: IntrospectionResponse = serde_json::from_str(r#"{"active":false}"#).unwrap();
        assert_eq!(inactive, IntrospectionResponse::inactive());
        assert_eq!(serde_json::to_string(&IntrospectionResponse::inactive()).unwrap(), r#"{"active":false}"#);
    }

    #[test]
    fn audience_is_a_string_for_one_value_and_an_array_otherwise() {
        assert_eq!(serde_json::to_string(&Audience::from_list(vec!["a".into()])).unwrap(), r#""a""#);
        assert_eq!(serde_json::to_string(&Audience::from_list(vec!["a".into(), "b".into()])).unwrap(), r#"["a","b"]"#);
    }
}

/// The answer at the device authorization endpoint (RFC 8628 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    /// The device's secret, polled with at `/token`.
    pub device_code: String,
    /// What the person types at `verification_uri`: `XXXX-XXXX`.
    pub user_code: String,
    pub verification_uri: String,
    /// `verification_uri` with the user code filled in (for a QR code).
    pub verification_uri_complete: String,
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}
