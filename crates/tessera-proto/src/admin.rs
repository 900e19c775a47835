//! Admin API bodies: client registration (RFC 7591 field names plus Tessera extensions),
//! signing keys, and the `admin.json` file the CLI reads.

use serde::{Deserialize, Serialize};

/// A client registration request: RFC 7591 §2 metadata plus Tessera's extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientMetadata {
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Grant types; defaults to `["client_credentials"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// Space-separated scopes the client may request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Redirect URIs, compared by exact string match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// `jwt` (default), `opaque`, or `split` (the client receives only the JWT's signature part;
    /// gateways reassemble the JWT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_format: Option<String>,
    /// Access-token lifetime in seconds; defaults to 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_ttl: Option<u64>,
    /// Audiences this client may obtain tokens for; the first is the default. Defaults to the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<String>>,
    /// Whether this client is a resource server that may introspect tokens addressed to its audiences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection: Option<bool>,
    /// An admin client: its `client_credentials` tokens carry `tessera:admin` and are accepted by
    /// the admin API. Only a confidential client whose one grant type is `client_credentials`
    /// may be one; `tessera:admin` in `scope` means the same. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
    /// Response types; only `["code"]` is supported (the default for code-flow clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// Where RP-initiated logout may return to, compared by exact string match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// RFC 9126 §6: authorization requests must come through `/par`. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    /// A first-party client skips the consent page. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_party: Option<bool>,
    /// Rotate refresh tokens on every use, with reuse detection. Defaults to true; always on for
    /// public clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_rotation: Option<bool>,
    /// `RS256` (default, OpenID Connect Core §2) or `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof, so every access token is
    /// DPoP-bound. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens: Option<bool>,
    /// RFC 9449 §8: DPoP proofs at the token and PAR endpoints must carry a server nonce
    /// (`use_dpop_nonce` with a `DPoP-Nonce` header tells the client the current one).
    /// Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_nonce_required: Option<bool>,
    /// The client's public keys, inline (RFC 7591 §2): for `private_key_jwt` assertions and,
    /// with `x5c`, the certificates of `self_signed_tls_client_auth`. Not with `jwks_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK Set (https; fetched with a timeout and a size limit,
    /// cached, never from a private address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// RFC 8705 §2.1.2: `tls_client_auth` matches the certificate's subject DN (RFC 4514).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    /// RFC 8705 §2.1.2: … or a dNSName SAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    /// RFC 8705 §2.1.2: … or a uniformResourceIdentifier SAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    /// RFC 8705 §2.1.2: … or an iPAddress SAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    /// RFC 8705 §2.1.2: … or an rfc822Name SAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    /// RFC 8705 §3: access tokens are bound to the client certificate (`cnf.x5t#S256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// `default`, or `fapi2` for the FAPI 2.0 Security Profile: PAR, PKCE S256,
    /// sender-constrained tokens, `private_key_jwt` or mTLS, no RS256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

fn admin_origin() -> String {
    "admin".to_owned()
}

/// A registered client as the admin API shows it. `client_secret` appears only in the
/// response that created or rotated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientInfo {
    /// The server-assigned client identifier.
    pub client_id: String,
    /// The secret, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the client was created, seconds since the epoch.
    /// How the client came to be: `admin`, `open_registration` or `token_registration`.
    #[serde(default = "admin_origin")]
    pub origin: String,
    pub client_id_issued_at: u64,
    /// `0`: the secret does not expire (RFC 7591 §3.2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<u64>,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Grant types.
    pub grant_types: Vec<String>,
    /// Space-separated scopes.
    pub scope: String,
    /// Client authentication method at the token endpoint.
    pub token_endpoint_auth_method: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// `jwt` or `opaque`.
    pub access_token_format: String,
    /// Access-token lifetime in seconds.
    pub access_token_ttl: u64,
    /// Allowed audiences; the first is the default.
    pub audience: Vec<String>,
    /// Whether the client may introspect tokens addressed to its audiences.
    pub introspection: bool,
    /// Whether the client is an admin client (its `client_credentials` tokens may use the admin API).
    #[serde(default)]
    pub admin: bool,
    /// Response types.
    pub response_types: Vec<String>,
    /// Where RP-initiated logout may return to.
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether authorization requests must be pushed (RFC 9126).
    pub require_pushed_authorization_requests: bool,
    /// Whether the client skips the consent page.
    pub first_party: bool,
    /// Whether refresh tokens rotate on use.
    pub refresh_token_rotation: bool,
    /// The ID-token signing algorithm.
    pub id_token_signed_response_alg: String,
    /// Whether every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// Whether DPoP proofs must carry a server nonce (RFC 9449 §8).
    pub dpop_nonce_required: bool,
    /// The client's inline JWK Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `tls_client_auth`: the subject DN the certificate must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    /// `tls_client_auth`: the dNSName SAN the certificate must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    /// `tls_client_auth`: the URI SAN the certificate must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_uri: Option<String>,
    /// `tls_client_auth`: the IP address SAN the certificate must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_ip: Option<String>,
    /// `tls_client_auth`: the e-mail SAN the certificate must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_email: Option<String>,
    /// Whether access tokens are bound to the client certificate (RFC 8705 §3).
    pub tls_client_certificate_bound_access_tokens: bool,
    /// `default` or `fapi2`.
    pub profile: String,
}

/// `GET /admin/clients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientList {
    /// Every registered client, oldest first.
    pub clients: Vec<ClientInfo>,
}

/// `POST /admin/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// `ES256`, `EdDSA`, `RS256` or `PS256`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^(ES256|EdDSA|RS256|PS256)$", example = "ES256"))]
    pub alg: String,
}

/// A signing key as the admin API shows it. The private half never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// Key id (the RFC 7638 thumbprint of the public key).
    pub kid: String,
    /// The JWS algorithm the key signs with.
    pub alg: String,
    /// `active` (signs new tokens) or `published` (in JWKS, verifies only).
    pub status: String,
    /// When the key was generated, seconds since the epoch.
    pub created_at: u64,
}

/// `GET /admin/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyList {
    /// Every key, newest first.
    pub keys: Vec<KeyInfo>,
}

/// `<data-dir>/admin.json`: what the CLI needs to reach the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The issuer identifier.
    pub issuer: String,
    /// Where the admin client gets its token.
    pub token_endpoint: String,
    /// Base URL of the admin listener.
    pub admin_url: String,
    /// The bootstrap admin client's id.
    pub client_id: String,
    /// The bootstrap admin client's secret.
    pub client_secret: String,
}

/// `POST /admin/users`. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique, compared case-insensitively; 1 to 64 characters without spaces or control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$")
    )]
    pub username: String,
    /// At least 8 characters (NIST SP 800-63B), at most 1024; stored only as an argon2id
    /// hash.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    /// Email address: at most 254 characters, an `@`, no spaces or control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 254, pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]*@[^\\s\\x00-\\x1f\\x7f-\\x9f]*$")
    )]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the email address is known to belong to the user. Defaults to false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("email_verified", &self.email_verified)
            .finish()
    }
}

/// A user as the admin API shows it. The password hash never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// Server-assigned, stable identifier: the `sub` of the user's tokens.
    pub id: String,
    /// The login name.
    pub username: String,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the email address is verified.
    pub email_verified: bool,
    /// A disabled user cannot sign in.
    pub disabled: bool,
    /// When the user was created, seconds since the epoch.
    pub created_at: u64,
}

/// `GET /admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserList {
    /// Every user, oldest first.
    pub users: Vec<UserInfo>,
}

/// `POST /admin/users/{id}/password`. `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// At least 8 characters, at most 1024; stored only as an argon2id hash.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
}

impl std::fmt::Debug for SetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPassword").field("password", &"[redacted]").finish()
    }
}

/// `POST /admin/revocations`: exactly one of the three members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// Every session, refresh family and access token of this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// One session with its refresh families and access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Every refresh family and access token of this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// What a revocation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevocationResult {
    /// Sessions ended.
    pub sessions: u64,
    /// Grants (refresh families with their access tokens) revoked.
    pub grants: u64,
}

/// `POST /admin/api-keys`: a new API key for exactly one owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// The owner: a user (a personal access token, `tessera_pat_…`) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// … or a client (a service key, `tessera_sak_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// What the key is for: 1 to 100 printable characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
    /// Space-separated scopes, within the owner's (a client's registered scope; what the user
    /// has been granted by any client) [default: all of the owner's].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Audiences, within the owner's [default: the owner's first].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Vec<String>>,
    /// Seconds until the key expires (at most five years) [default: never].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 157_680_000))]
    pub expires_in: Option<u64>,
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyInfo {
    /// `ak_<n>`: the key's id, its `jti` at introspection and in the revocation feed.
    pub id: String,
    /// The key's first characters, to recognise it.
    pub display: String,
    /// `user` or `client`.
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub scope: String,
    pub audience: Vec<String>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    /// When the key was last used (recorded in batches: up to a minute late).
    pub last_used_at: Option<u64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<u64>,
}

/// `POST /admin/api-keys` answered: the key itself, shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    /// The key: store it now, it is never shown again.
    pub key: String,
    #[serde(flatten)]
    pub info: ApiKeyInfo,
}

/// `GET /admin/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyInfo>,
}

/// One audit-log record (`GET /admin/audit`, `tessera audit query`; one JSON line each in an
/// export). `hash` chains it to the record before (see the server's `audit` module).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Position in the log: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// Seconds since the epoch.
    pub at: u64,
    /// `token.issued`, `token.revoked`, `user.login`, … (see the README).
    pub event: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Who acted: `client:<id>`, `user:<id>`, `admin:<client id>`, `server` or `anonymous`.
    pub actor: String,
    /// Whom it concerns: a user id, `key:<kid>`, `ak_<n>`.
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub session_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// A JSON object, as text: further facts (never a secret); hashed byte for byte.
    pub details: String,
    /// This record's chain hash, hex.
    pub hash: String,
}

/// `GET /admin/audit`: records oldest first; ask again with `after=next_after` for more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The last position in this page (the `after` given when it is empty).
    pub next_after: u64,
}

/// Where the audit chain breaks first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditBreak {
    /// The position of the first record that does not verify, or that is missing.
    pub seq: u64,
    pub reason: String,
}

/// `GET /admin/audit/verify`, `tessera audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    /// Records that verified (all of them when there is no break).
    pub verified: u64,
    /// The last verified record's position and hash (hex): an anchor to keep elsewhere and pass
    /// to later checks, so that even a rewritten log is caught.
    pub head_seq: u64,
    pub head_hash: String,
    pub first_break: Option<AuditBreak>,
}
