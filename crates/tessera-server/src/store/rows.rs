//! What a row of each table is ([`StoredClient`], [`KeyRow`], [`OpaqueTokenRow`], the sign-in
//! rows, [`ApiKeyRow`]) and its decoding, written once and implemented for both backends' row
//! types. The aggregates (`clients.rs`, `sign_in.rs`, …) use these; this module uses none of
//! them. The two schemas
//! use the same column names, and every column decodes to the same Rust type on both (BIGINT
//! and SQLite INTEGER to `i64`, BYTEA and BLOB to bytes, BOOLEAN and SQLite 0/1 to `bool`).

use anyhow::anyhow;
use sqlx::error::BoxDynError;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Database, FromRow, Row, Type};

use crate::client::{Client, TokenFormat};
use crate::scope::Scope;
use crate::user::User;

/// A client with the SHA-256 hash of its secret.
#[derive(Debug)]
pub struct StoredClient {
    pub client: Client,
    pub secret_hash: Vec<u8>,
    /// A self-registered client's RFC 7592 registration access token, as its SHA-256.
    pub registration_hash: Option<Vec<u8>>,
}

/// A signing key as stored: the private half sealed with the master key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub kid: String,
    pub alg: String,
    pub sealed_private_key: Vec<u8>,
    pub public_jwk: String,
    pub status: String,
    #[sqlx(try_from = "i64")]
    pub created_at: u64,
}

/// An opaque access token as stored; its secret part is only kept as its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpaqueTokenRow {
    /// Assigned by the store on insert.
    #[sqlx(try_from = "i64")]
    pub id: u64,
    #[sqlx(try_from = "Db<Vec<u8>>")]
    pub secret_hash: [u8; 32],
    pub jti: String,
    pub client_id: String,
    pub sub: String,
    #[sqlx(try_from = "Db<String>")]
    pub aud: Vec<String>,
    pub scope: String,
    #[sqlx(try_from = "i64")]
    pub iat: u64,
    #[sqlx(try_from = "i64")]
    pub exp: u64,
    #[sqlx(rename = "revoked_at", try_from = "Db<Option<i64>>")]
    pub revoked: bool,
    /// The grant (code redemption) the token was issued under, if any.
    pub grant_id: Option<String>,
    /// The confirmation (`cnf`) of a sender-constrained token, as JSON.
    pub cnf: Option<String>,
}

/// A browser session: what a login creates. The cookie carries `id` and a secret kept only
/// as its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    #[sqlx(try_from = "Db<Vec<u8>>")]
    pub secret_hash: [u8; 32],
    pub user_id: String,
    #[sqlx(try_from = "i64")]
    pub auth_time: u64,
    #[sqlx(try_from = "i64")]
    pub created_at: u64,
    #[sqlx(try_from = "i64")]
    pub last_used_at: u64,
    #[sqlx(try_from = "i64")]
    pub expires_at: u64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub ended_at: Option<u64>,
}

/// A pending authorization request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuthRequestRow {
    #[sqlx(try_from = "Db<Vec<u8>>")]
    pub handle_hash: [u8; 32],
    pub client_id: String,
    /// The validated request as JSON (`flows::authorize::AuthParams`).
    pub params: String,
    /// Pushed by the client (RFC 9126) rather than created for an interaction.
    pub par: bool,
    /// For an interaction that started from a pushed request: that request's hash, consumed
    /// together with this one.
    #[sqlx(try_from = "Db<Option<Vec<u8>>>")]
    pub par_hash: Option<[u8; 32]>,
    /// SHA-256 of the browser cookie the interaction is bound to.
    #[sqlx(try_from = "Db<Option<Vec<u8>>>")]
    pub browser_hash: Option<[u8; 32]>,
    /// The session created by a login during this interaction.
    pub login_session_id: Option<String>,
    #[sqlx(try_from = "i64")]
    pub created_at: u64,
    #[sqlx(try_from = "i64")]
    pub expires_at: u64,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub consumed_at: Option<u64>,
}

/// An authorization code, stored as its hash.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    #[sqlx(try_from = "Db<Vec<u8>>")]
    pub code_hash: [u8; 32],
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub scope: String,
    #[sqlx(try_from = "Db<String>")]
    pub resources: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    #[sqlx(try_from = "i64")]
    pub auth_time: u64,
    #[sqlx(try_from = "i64")]
    pub expires_at: u64,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub consumed_at: Option<u64>,
    pub grant_id: Option<String>,
    /// RFC 9449 §10: the DPoP key whose proof must accompany the redemption.
    pub dpop_jkt: Option<String>,
}

/// What one code redemption granted: the refresh-token family and everything issued under it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub scope: String,
    #[sqlx(try_from = "Db<String>")]
    pub resources: Vec<String>,
    #[sqlx(try_from = "i64")]
    pub auth_time: u64,
    #[sqlx(try_from = "i64")]
    pub created_at: u64,
    /// The absolute end of the family.
    #[sqlx(try_from = "i64")]
    pub expires_at: u64,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub revoked_at: Option<u64>,
    /// The DPoP key every refresh of this family must prove (public clients, RFC 9449 §5).
    pub dpop_jkt: Option<String>,
}

/// A refresh token as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshRow {
    #[sqlx(try_from = "i64")]
    pub id: u64,
    pub grant_id: String,
    #[sqlx(try_from = "Db<Vec<u8>>")]
    pub secret_hash: [u8; 32],
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub parent_id: Option<u64>,
    #[sqlx(try_from = "i64")]
    pub created_at: u64,
    #[sqlx(try_from = "i64")]
    pub idle_expires_at: u64,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub rotated_at: Option<u64>,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub successor_id: Option<u64>,
}

/// One API key (its secret only as its hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    #[sqlx(try_from = "i64")]
    pub id: u64,
    #[sqlx(try_from = "Db<Vec<u8>>")]
    pub secret_hash: [u8; 32],
    /// The key's first characters (`tessera_pat_AAAA`).
    pub display: String,
    /// `user` or `client`.
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub scope: String,
    #[sqlx(try_from = "Db<String>")]
    pub audience: Vec<String>,
    #[sqlx(try_from = "i64")]
    pub created_at: u64,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub expires_at: Option<u64>,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub last_used_at: Option<u64>,
    pub last_used_ip: Option<String>,
    #[sqlx(try_from = "Db<Option<i64>>")]
    pub revoked_at: Option<u64>,
}

/// A column as the database stores it (`S`), converted into a row's field by `TryFrom`
/// (`#[sqlx(try_from = "Db<S>")]`): a value of the wrong type or shape is a decoding error,
/// never a panic.
pub(super) struct Db<S>(S);

impl<DB: Database, S: Type<DB>> Type<DB> for Db<S> {
    fn type_info() -> DB::TypeInfo {
        S::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        S::compatible(ty)
    }
}

impl<'r, DB: Database, S: sqlx::Decode<'r, DB>> sqlx::Decode<'r, DB> for Db<S> {
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        S::decode(value).map(Db)
    }
}

/// A nullable time or id column.
impl TryFrom<Db<Option<i64>>> for Option<u64> {
    type Error = std::num::TryFromIntError;

    fn try_from(value: Db<Option<i64>>) -> Result<Self, Self::Error> {
        value.0.map(u64::try_from).transpose()
    }
}

/// A nullable time column read as whether it is set (`revoked_at` as `revoked`).
impl From<Db<Option<i64>>> for bool {
    fn from(value: Db<Option<i64>>) -> Self {
        value.0.is_some()
    }
}

/// A list column: a JSON array of strings.
impl TryFrom<Db<String>> for Vec<String> {
    type Error = serde_json::Error;

    fn try_from(value: Db<String>) -> Result<Self, Self::Error> {
        serde_json::from_str(&value.0)
    }
}

/// A SHA-256 hash column.
impl TryFrom<Db<Vec<u8>>> for [u8; 32] {
    type Error = &'static str;

    fn try_from(value: Db<Vec<u8>>) -> Result<Self, Self::Error> {
        value.0.try_into().map_err(|_| "not a 32-byte hash")
    }
}

/// A nullable SHA-256 hash column.
impl TryFrom<Db<Option<Vec<u8>>>> for Option<[u8; 32]> {
    type Error = &'static str;

    fn try_from(value: Db<Option<Vec<u8>>>) -> Result<Self, Self::Error> {
        value.0.map(|bytes| <[u8; 32]>::try_from(Db(bytes))).transpose()
    }
}

/// A JSON column's value, if set.
fn json_column<T: serde::de::DeserializeOwned>(text: Option<&str>, column: &str) -> anyhow::Result<Option<T>> {
    text.map(serde_json::from_str).transpose().map_err(|_| anyhow!("corrupt {column} column"))
}

/// Decodes a row into `T`, the error carrying which column was corrupt.
pub(super) fn decode<'r, R: Row, T: FromRow<'r, R>>(row: &'r R) -> anyhow::Result<T> {
    T::from_row(row).map_err(anyhow::Error::from)
}

/// Reads a column, the error naming it (never the panic of `Row::get`).
pub(super) fn column<'r, R, T>(row: &'r R, name: &str) -> anyhow::Result<T>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name).map_err(anyhow::Error::from)
}

/// Reads a time or id column as `u64`.
pub(super) fn column_u64<R>(row: &R, name: &str) -> anyhow::Result<u64>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(u64::try_from(column::<R, i64>(row, name)?)?)
}

// `Client` and `User` are the domain's types, not the store's: their decoding is written out
// here (with `try_get`) instead of deriving it on them.
macro_rules! impl_from_row {
    ($row:ty) => {
        impl FromRow<'_, $row> for User {
            fn from_row(row: &$row) -> Result<Self, sqlx::Error> {
                let u64_of = |name: &str| {
                    row.try_get::<i64, _>(name).and_then(|v| {
                        u64::try_from(v)
                            .map_err(|e| sqlx::Error::ColumnDecode { index: name.to_owned(), source: Box::new(e) })
                    })
                };
                Ok(User {
                    id: row.try_get("id")?,
                    username: row.try_get("username")?,
                    email: row.try_get("email")?,
                    name: row.try_get("name")?,
                    email_verified: row.try_get("email_verified")?,
                    disabled: row.try_get("disabled")?,
                    created_at: u64_of("created_at")?,
                    locked_until: u64_of("locked_until")?,
                    failures_since: u64_of("failures_since")?,
                })
            }
        }

        impl FromRow<'_, $row> for StoredClient {
            fn from_row(row: &$row) -> Result<Self, sqlx::Error> {
                client_from_row(row).map_err(|e| sqlx::Error::Decode(e.into()))
            }
        }
    };
}

impl_from_row!(SqliteRow);
impl_from_row!(PgRow);

fn client_from_row<R>(row: &R) -> anyhow::Result<StoredClient>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<&'r str>: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + Type<R::Database>,
{
    let list = |name: &str| -> anyhow::Result<Vec<String>> {
        serde_json::from_str(column::<R, &str>(row, name)?).map_err(|_| anyhow!("corrupt {name} column"))
    };
    let client = Client {
        client_id: column(row, "client_id")?,
        client_name: column(row, "client_name")?,
        grant_types: list("grant_types")?,
        scope: Scope::parse(column(row, "scope")?).map_err(|_| anyhow!("corrupt scope column"))?,
        auth_method: column::<R, &str>(row, "token_endpoint_auth_method")?.parse()?,
        redirect_uris: list("redirect_uris")?,
        token_format: column::<R, &str>(row, "access_token_format")?.parse::<TokenFormat>()?,
        access_token_ttl: column_u64(row, "access_token_ttl")?,
        audience: list("audience")?,
        introspection: column(row, "introspection")?,
        post_logout_redirect_uris: list("post_logout_redirect_uris")?,
        require_par: column(row, "require_pushed_authorization_requests")?,
        first_party: column(row, "first_party")?,
        refresh_rotation: column(row, "refresh_token_rotation")?,
        id_token_alg: column(row, "id_token_signed_response_alg")?,
        dpop_bound: column(row, "dpop_bound_access_tokens")?,
        dpop_nonce_required: column(row, "dpop_nonce_required")?,
        jwks: json_column(column(row, "jwks")?, "jwks")?,
        jwks_uri: column(row, "jwks_uri")?,
        certificate_identity: json_column(column(row, "certificate_identity")?, "certificate_identity")?,
        certificate_bound: column(row, "tls_client_certificate_bound_access_tokens")?,
        profile: column::<R, &str>(row, "profile")?.parse()?,
        tokens_not_before: column_u64(row, "tokens_not_before")?,
        created_at: column_u64(row, "created_at")?,
        origin: column::<R, &str>(row, "origin")?.parse()?,
    };
    Ok(StoredClient {
        client,
        secret_hash: column(row, "secret_hash")?,
        registration_hash: column(row, "registration_token_hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refresh-token row read from `select`, a query of literal columns.
    async fn refresh_row(select: &str) -> anyhow::Result<RefreshRow> {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let row = sqlx::query(sqlx::AssertSqlSafe(select.to_owned())).fetch_one(&pool).await.unwrap();
        decode::<_, RefreshRow>(&row)
    }

    /// A corrupt column (a hash of the wrong length, a negative time, text where a number
    /// belongs) is an error naming the column, never a panic (`Row::get` panicked on these).
    #[tokio::test]
    async fn corrupt_columns_are_errors_never_panics() {
        let row = |hash: &str, created: &str| {
            format!(
                "SELECT 7 AS id, 'g1' AS grant_id, {hash} AS secret_hash, NULL AS parent_id, {created} AS created_at, \
                 9 AS idle_expires_at, NULL AS rotated_at, 8 AS successor_id"
            )
        };
        let good = refresh_row(&row("zeroblob(32)", "5")).await.unwrap();
        assert_eq!((good.id, good.created_at, good.successor_id, good.parent_id), (7, 5, Some(8), None));
        for (hash, created, column) in [
            ("zeroblob(31)", "5", "secret_hash"),
            ("zeroblob(32)", "-1", "created_at"),
            ("zeroblob(32)", "'soon'", "created_at"),
            ("'text'", "5", "secret_hash"),
        ] {
            let err = refresh_row(&row(hash, created)).await.unwrap_err();
            assert!(format!("{err:#}").contains(column), "{hash} {created}: {err:#}");
        }
    }
}
