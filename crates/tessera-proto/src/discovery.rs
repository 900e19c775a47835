//! Authorization server metadata (RFC 8414 §2, OpenID Connect Discovery 1.0 §3).

use serde::{Deserialize, Serialize};

/// The metadata document served at both well-known locations. Only what works is advertised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// `POST /token`.
    pub token_endpoint: String,
    /// `GET /jwks.json`.
    pub jwks_uri: String,
    /// `POST /introspect` (RFC 7662).
    pub introspection_endpoint: String,
    /// `POST /revoke` (RFC 7009).
    pub revocation_endpoint: String,
    /// Grant types the token endpoint accepts.
    pub grant_types_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication methods at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication methods at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Scopes known to this server.
    pub scopes_supported: Vec<String>,
    /// Empty until the authorization endpoint exists.
    pub response_types_supported: Vec<String>,
}
