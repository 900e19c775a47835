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
    /// `["code"]`.
    pub response_types_supported: Vec<String>,
    /// `GET|POST /authorize`.
    pub authorization_endpoint: String,
    /// `POST /par` (RFC 9126).
    pub pushed_authorization_request_endpoint: String,
    /// `GET|POST /userinfo`.
    pub userinfo_endpoint: String,
    /// RP-initiated logout.
    pub end_session_endpoint: String,
    /// `["query"]`.
    pub response_modes_supported: Vec<String>,
    /// `["S256"]`.
    pub code_challenge_methods_supported: Vec<String>,
    /// `["public"]`.
    pub subject_types_supported: Vec<String>,
    /// ID-token algorithms, RS256 first.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Claims the server can supply.
    pub claims_supported: Vec<String>,
    /// RFC 9207: `iss` is in every authorization response.
    pub authorization_response_iss_parameter_supported: bool,
    /// Request objects are not supported.
    pub request_parameter_supported: bool,
    /// `request_uri` works only with values from the PAR endpoint.
    pub request_uri_parameter_supported: bool,
    /// The `claims` request parameter is not supported.
    pub claims_parameter_supported: bool,
    /// Authentication methods at the PAR endpoint.
    pub pushed_authorization_request_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 9449 §5.1: algorithms a DPoP proof may be signed with.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// RFC 7523 / OpenID Connect: algorithms a `private_key_jwt` assertion may use.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// RFC 8705 §3.3: certificate-bound access tokens are supported.
    pub tls_client_certificate_bound_access_tokens: bool,
    /// RFC 8705 §5: where clients authenticating with certificates send their requests.
    pub mtls_endpoint_aliases: MtlsEndpointAliases,
    /// RFC 7591 §3: `POST /register`, only while registration is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// draft-ietf-oauth-client-id-metadata-document: an https URL may be a `client_id`.
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// RFC 8628 §4: `POST /device_authorization`.
    #[serde(default)]
    pub device_authorization_endpoint: String,
}

/// What a client or resource server reads of an issuer's metadata (RFC 8414 §2, OpenID Connect
/// Discovery 1.0 §3): the members Tessera's gateway and `tessera-verify` use, every one but
/// `issuer` optional and unknown members ignored, so that it reads any conforming issuer's
/// document, not only the one [`ProviderMetadata`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerMetadata {
    /// The issuer identifier, to compare with the one configured.
    pub issuer: String,
    /// Where a browser is sent to log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// Where codes and refresh tokens are redeemed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The issuer's signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// RFC 7662 introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// RFC 7009 revocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// OpenID Connect userinfo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// RP-initiated logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
}

/// RFC 8705 §5 `mtls_endpoint_aliases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtlsEndpointAliases {
    /// The token endpoint for mTLS clients.
    pub token_endpoint: String,
    /// The PAR endpoint for mTLS clients.
    pub pushed_authorization_request_endpoint: String,
    /// The introspection endpoint for mTLS clients.
    pub introspection_endpoint: String,
    /// The revocation endpoint for mTLS clients.
    pub revocation_endpoint: String,
    /// The userinfo endpoint for certificate-bound tokens.
    pub userinfo_endpoint: String,
}
