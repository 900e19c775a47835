//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592): what a client
//! sends to `POST /register` and `PUT /register/{client_id}`, and what it is answered.

use serde::{Deserialize, Serialize};

use crate::admin::ClientInfo;

/// A registration request as a client sends it (RFC 7591 §2). The members Tessera uses are
/// named; every other member is kept in `other`, where the server ignores what it does not know
/// (§2) and refuses its own privileged extensions (`admin`, `first_party`, …), which a client
/// registering itself may not set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationRequest {
    /// Redirect URIs, compared by exact string match (loopback ports aside, RFC 8252 §7.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// `none` (a public client), `private_key_jwt`, or with an initial access token also
    /// `client_secret_basic` and `client_secret_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Defaults to `["authorization_code"]` (RFC 7591 §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// Only `["code"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// The name shown on the consent page, marked as the client's own claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Space-separated scopes the client may ask for, within what the server offers
    /// self-registered clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client's public keys, for `private_key_jwt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its public keys (https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Where RP-initiated logout may return to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// RFC 9449 §5.2: every token request carries a DPoP proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    /// `RS256` or `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// Audiences the client's tokens may be for, within what the server offers self-registered
    /// clients (a Tessera extension; RFC 8707 `resource` picks one per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<String>>,
    /// RFC 7592 §2.2: an update names the client it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// RFC 7592 §2.2: an update may repeat the client's secret, which must then match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Every other member (`client_uri`, `logo_uri`, `contacts`, `software_id`, …).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The answer to a registration, a read or an update (RFC 7591 §3.2.1, RFC 7592 §3): the
/// client's registered metadata, where to manage it, and (when registered) the registration
/// access token, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    /// The registered metadata, with `client_id`, `client_id_issued_at` and, when the client has
    /// one, the `client_secret` (only in the answer to the registration).
    #[serde(flatten)]
    pub client: ClientInfo,
    /// `GET`, `PUT` and `DELETE` this URL with the registration access token (RFC 7592).
    pub registration_client_uri: String,
    /// The bearer token for `registration_client_uri`; only in the answer to the registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
}

/// An initial access token an administrator hands to a developer (RFC 7591 §3), shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationToken {
    /// The token's id (for the audit log; the token itself is stored only as its hash).
    pub id: String,
    /// The token: `Authorization: Bearer …` at `POST /register`.
    pub token: String,
    /// When it stops working, seconds since the epoch; none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// How many registrations it allows; none: any number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u64>,
}

/// The admin API's request for an initial access token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRegistrationToken {
    /// Seconds until it stops working (1 to ten years); none: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 315_360_000))]
    pub expires_in: Option<u64>,
    /// How many registrations it allows (1 to 1,000,000); none: any number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub uses: Option<u64>,
}
