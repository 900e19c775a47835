//! What a row of each table is ([`StoredClient`], [`KeyRow`], [`OpaqueTokenRow`], the sign-in
//! rows, [`ApiKeyRow`]) and its decoding, written once and implemented for both backends' row
//! types. The aggregates (`clients.rs`, `sign_in.rs`, …) use these; this module uses none of
//! them. The two schemas
//! use the same column names, and every column decodes to the same Rust type on both (BIGINT
//! and SQLite INTEGER to `i64`, BYTEA and BLOB to bytes, BOOLEAN and SQLite 0/1 to `bool`).

use anyhow::anyhow;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::{parse_list, to_u64};
use crate::client::{Client, TokenFormat};
use crate::scope::Scope;
use crate::user::User;

/// A client with the SHA-256 hash of its secret.
#[derive(Debug)]
pub struct StoredClient {
    pub client: Client,
    pub secret_hash: Vec<u8>,
}

/// A signing key as stored: the private half sealed with the master key.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: String,
    pub status: String,
    pub created_at: u64,
}

/// An opaque access token as stored; its secret part is only kept as its hash.
#[derive(Debug, Clone)]
pub struct OpaqueTokenRow {
    /// Assigned by the store on insert.
    pub id: u64,
    pub secret_hash: [u8; 32],
    pub jti: String,
    pub client_id: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
    pub revoked: bool,
    /// The grant (code redemption) the token was issued under, if any.
    pub grant_id: Option<String>,
    /// The confirmation (`cnf`) of a sender-constrained token, as JSON.
    pub cnf: Option<String>,
}

/// A browser session: what a login creates. The cookie carries `id` and a secret kept only
/// as its hash.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub secret_hash: [u8; 32],
    pub user_id: String,
    pub auth_time: u64,
    pub created_at: u64,
    pub last_used_at: u64,
    pub expires_at: u64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub ended_at: Option<u64>,
}

/// A pending authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequestRow {
    pub handle_hash: [u8; 32],
    pub client_id: String,
    /// The validated request as JSON (`flows::authorize::AuthParams`).
    pub params: String,
    /// Pushed by the client (RFC 9126) rather than created for an interaction.
    pub par: bool,
    /// For an interaction that started from a pushed request: that request's hash, consumed
    /// together with this one.
    pub par_hash: Option<[u8; 32]>,
    /// SHA-256 of the browser cookie the interaction is bound to.
    pub browser_hash: Option<[u8; 32]>,
    /// The session created by a login during this interaction.
    pub login_session_id: Option<String>,
    pub created_at: u64,
    pub expires_at: u64,
    pub consumed_at: Option<u64>,
}

/// An authorization code, stored as its hash.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code_hash: [u8; 32],
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: String,
    pub resources: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub auth_time: u64,
    pub expires_at: u64,
    pub consumed_at: Option<u64>,
    pub grant_id: Option<String>,
    /// RFC 9449 §10: the DPoP key whose proof must accompany the redemption.
    pub dpop_jkt: Option<String>,
}

/// What one code redemption granted: the refresh-token family and everything issued under it.
#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub scope: String,
    pub resources: Vec<String>,
    pub auth_time: u64,
    pub created_at: u64,
    /// The absolute end of the family.
    pub expires_at: u64,
    pub revoked_at: Option<u64>,
    /// The DPoP key every refresh of this family must prove (public clients, RFC 9449 §5).
    pub dpop_jkt: Option<String>,
}

/// A refresh token as stored.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub id: u64,
    pub grant_id: String,
    pub secret_hash: [u8; 32],
    pub parent_id: Option<u64>,
    pub created_at: u64,
    pub idle_expires_at: u64,
    pub rotated_at: Option<u64>,
    pub successor_id: Option<u64>,
}

/// One API key (its secret only as its hash).
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: u64,
    pub secret_hash: [u8; 32],
    /// The key's first characters (`tessera_pat_AAAA`).
    pub display: String,
    /// `user` or `client`.
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub scope: String,
    pub audience: Vec<String>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub last_used_at: Option<u64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<u64>,
}

/// Decodes our tables' rows.
pub(super) trait Decode {
    fn hash32(&self, column: &str) -> anyhow::Result<[u8; 32]>;
    fn opt_hash32(&self, column: &str) -> anyhow::Result<Option<[u8; 32]>>;
    fn opt_u64(&self, column: &str) -> Option<u64>;
    fn user(&self) -> User;
    fn password_hash(&self) -> String;
    fn stored_client(&self) -> anyhow::Result<StoredClient>;
    fn key(&self) -> KeyRow;
    fn opaque_token(&self) -> anyhow::Result<OpaqueTokenRow>;
    fn session(&self) -> anyhow::Result<SessionRow>;
    fn auth_request(&self) -> anyhow::Result<AuthRequestRow>;
    fn code(&self) -> anyhow::Result<CodeRow>;
    fn grant(&self) -> anyhow::Result<GrantRow>;
    fn refresh(&self) -> anyhow::Result<RefreshRow>;
    fn api_key(&self) -> anyhow::Result<ApiKeyRow>;
}

macro_rules! impl_decode {
    ($row:ty) => {
        impl Decode for $row {
            fn hash32(&self, column: &str) -> anyhow::Result<[u8; 32]> {
                let bytes: &[u8] = self.get(column);
                bytes.try_into().map_err(|_| anyhow!("corrupt {column}"))
            }

            fn opt_hash32(&self, column: &str) -> anyhow::Result<Option<[u8; 32]>> {
                let bytes: Option<&[u8]> = self.get(column);
                bytes.map(|b| b.try_into().map_err(|_| anyhow!("corrupt {column}"))).transpose()
            }

            fn opt_u64(&self, column: &str) -> Option<u64> {
                self.get::<Option<i64>, _>(column).map(to_u64)
            }

            fn user(&self) -> User {
                User {
                    id: self.get("id"),
                    username: self.get("username"),
                    email: self.get("email"),
                    name: self.get("name"),
                    email_verified: self.get("email_verified"),
                    disabled: self.get("disabled"),
                    created_at: to_u64(self.get("created_at")),
                    locked_until: to_u64(self.get("locked_until")),
                    failures_since: to_u64(self.get("failures_since")),
                }
            }

            fn password_hash(&self) -> String {
                self.get("password_hash")
            }

            fn stored_client(&self) -> anyhow::Result<StoredClient> {
                let client = Client {
                    client_id: self.get("client_id"),
                    client_name: self.get("client_name"),
                    grant_types: parse_list(self.get("grant_types"))?,
                    scope: Scope::parse(self.get("scope")).map_err(|_| anyhow!("corrupt scope column"))?,
                    auth_method: self.get::<&str, _>("token_endpoint_auth_method").parse()?,
                    redirect_uris: parse_list(self.get("redirect_uris"))?,
                    token_format: self.get::<&str, _>("access_token_format").parse::<TokenFormat>()?,
                    access_token_ttl: to_u64(self.get("access_token_ttl")),
                    audience: parse_list(self.get("audience"))?,
                    introspection: self.get("introspection"),
                    post_logout_redirect_uris: parse_list(self.get("post_logout_redirect_uris"))?,
                    require_par: self.get("require_pushed_authorization_requests"),
                    first_party: self.get("first_party"),
                    refresh_rotation: self.get("refresh_token_rotation"),
                    id_token_alg: self.get("id_token_signed_response_alg"),
                    dpop_bound: self.get("dpop_bound_access_tokens"),
                    dpop_nonce_required: self.get("dpop_nonce_required"),
                    jwks: self
                        .get::<Option<&str>, _>("jwks")
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|_| anyhow!("corrupt jwks column"))?,
                    jwks_uri: self.get("jwks_uri"),
                    certificate_identity: self
                        .get::<Option<&str>, _>("certificate_identity")
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|_| anyhow!("corrupt certificate_identity column"))?,
                    certificate_bound: self.get("tls_client_certificate_bound_access_tokens"),
                    profile: self.get::<&str, _>("profile").parse()?,
                    tokens_not_before: to_u64(self.get("tokens_not_before")),
                    created_at: to_u64(self.get("created_at")),
                };
                Ok(StoredClient { client, secret_hash: self.get("secret_hash") })
            }

            fn key(&self) -> KeyRow {
                KeyRow {
                    kid: self.get("kid"),
                    alg: self.get("alg"),
                    sealed_private_key: self.get("sealed_private_key"),
                    public_jwk: self.get("public_jwk"),
                    status: self.get("status"),
                    created_at: to_u64(self.get("created_at")),
                }
            }

            fn opaque_token(&self) -> anyhow::Result<OpaqueTokenRow> {
                Ok(OpaqueTokenRow {
                    id: to_u64(self.get("id")),
                    secret_hash: self.hash32("secret_hash")?,
                    jti: self.get("jti"),
                    client_id: self.get("client_id"),
                    sub: self.get("sub"),
                    aud: parse_list(self.get("aud"))?,
                    scope: self.get("scope"),
                    iat: to_u64(self.get("iat")),
                    exp: to_u64(self.get("exp")),
                    revoked: self.get::<Option<i64>, _>("revoked_at").is_some(),
                    grant_id: self.get("grant_id"),
                    cnf: self.get("cnf"),
                })
            }

            fn session(&self) -> anyhow::Result<SessionRow> {
                Ok(SessionRow {
                    id: self.get("id"),
                    secret_hash: self.hash32("secret_hash")?,
                    user_id: self.get("user_id"),
                    auth_time: to_u64(self.get("auth_time")),
                    created_at: to_u64(self.get("created_at")),
                    last_used_at: to_u64(self.get("last_used_at")),
                    expires_at: to_u64(self.get("expires_at")),
                    user_agent: self.get("user_agent"),
                    ip: self.get("ip"),
                    ended_at: self.opt_u64("ended_at"),
                })
            }

            fn auth_request(&self) -> anyhow::Result<AuthRequestRow> {
                Ok(AuthRequestRow {
                    handle_hash: self.hash32("handle_hash")?,
                    client_id: self.get("client_id"),
                    params: self.get("params"),
                    par: self.get("par"),
                    par_hash: self.opt_hash32("par_hash")?,
                    browser_hash: self.opt_hash32("browser_hash")?,
                    login_session_id: self.get("login_session_id"),
                    created_at: to_u64(self.get("created_at")),
                    expires_at: to_u64(self.get("expires_at")),
                    consumed_at: self.opt_u64("consumed_at"),
                })
            }

            fn code(&self) -> anyhow::Result<CodeRow> {
                Ok(CodeRow {
                    code_hash: self.hash32("code_hash")?,
                    client_id: self.get("client_id"),
                    user_id: self.get("user_id"),
                    session_id: self.get("session_id"),
                    redirect_uri: self.get("redirect_uri"),
                    redirect_uri_sent: self.get("redirect_uri_sent"),
                    scope: self.get("scope"),
                    resources: parse_list(self.get("resources"))?,
                    nonce: self.get("nonce"),
                    code_challenge: self.get("code_challenge"),
                    auth_time: to_u64(self.get("auth_time")),
                    expires_at: to_u64(self.get("expires_at")),
                    consumed_at: self.opt_u64("consumed_at"),
                    grant_id: self.get("grant_id"),
                    dpop_jkt: self.get("dpop_jkt"),
                })
            }

            fn grant(&self) -> anyhow::Result<GrantRow> {
                Ok(GrantRow {
                    id: self.get("id"),
                    client_id: self.get("client_id"),
                    user_id: self.get("user_id"),
                    session_id: self.get("session_id"),
                    scope: self.get("scope"),
                    resources: parse_list(self.get("resources"))?,
                    auth_time: to_u64(self.get("auth_time")),
                    created_at: to_u64(self.get("created_at")),
                    expires_at: to_u64(self.get("expires_at")),
                    revoked_at: self.opt_u64("revoked_at"),
                    dpop_jkt: self.get("dpop_jkt"),
                })
            }

            fn api_key(&self) -> anyhow::Result<ApiKeyRow> {
                Ok(ApiKeyRow {
                    id: to_u64(self.get("id")),
                    secret_hash: self.hash32("secret_hash")?,
                    display: self.get("display"),
                    owner_kind: self.get("owner_kind"),
                    owner_id: self.get("owner_id"),
                    name: self.get("name"),
                    scope: self.get("scope"),
                    audience: parse_list(self.get("audience"))?,
                    created_at: to_u64(self.get("created_at")),
                    expires_at: self.opt_u64("expires_at"),
                    last_used_at: self.opt_u64("last_used_at"),
                    last_used_ip: self.get("last_used_ip"),
                    revoked_at: self.opt_u64("revoked_at"),
                })
            }

            fn refresh(&self) -> anyhow::Result<RefreshRow> {
                Ok(RefreshRow {
                    id: to_u64(self.get("id")),
                    grant_id: self.get("grant_id"),
                    secret_hash: self.hash32("secret_hash")?,
                    parent_id: self.opt_u64("parent_id"),
                    created_at: to_u64(self.get("created_at")),
                    idle_expires_at: to_u64(self.get("idle_expires_at")),
                    rotated_at: self.opt_u64("rotated_at"),
                    successor_id: self.opt_u64("successor_id"),
                })
            }
        }
    };
}

impl_decode!(SqliteRow);
impl_decode!(PgRow);
