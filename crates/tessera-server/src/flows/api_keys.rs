//! API keys as a first-class credential: creation (scopes and audiences within the owner's:
//! a client's registration, or what the user has been granted by any client), listing,
//! revocation (through the revocation feed, like any token), recognition wherever an access
//! token is introspected. The RFC 8693 exchange of a key for a short-lived access token is a grant
//! (`grants::token_exchange`).
//!
//! Tokens exchanged for a key carry `client_id` = the key's `jti` (`ak_<id>`), so revoking the
//! key is one `client` cut-off in the feed and takes them along at every gateway at once.

use tessera_proto::UnixTime;
use tessera_proto::admin::{ApiKeyInfo, CreateApiKey};

use crate::AppState;
use crate::active_tokens::ActiveAccessToken;
use crate::apikey::{ApiKey, DISPLAY_LEN, Owner, key_jti};
use crate::audit::{Event, Record};
use crate::client::is_resource_uri;
use crate::flows::error::OAuthError;
use crate::scope::Scope;
use crate::store::api_keys::{ApiKeyRow, NewApiKey};

/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = crate::client::GrantType::TokenExchange.as_str();
/// The `subject_token_type` of an API key.
pub const API_KEY_TOKEN_TYPE: &str = "urn:tessera:params:oauth:token-type:api-key";
/// RFC 8693 §3: what the exchange issues.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Longest key lifetime: five years.
const MAX_KEY_TTL: u64 = 5 * 365 * 86_400;
/// Lifetime of a token exchanged for a key.
pub(crate) const EXCHANGED_TTL: u64 = 300;

/// The owner's scopes and audiences, if the owner exists and may hold keys.
async fn owner_limits(
    state: &AppState,
    owner: Owner,
    id: &str,
    now: UnixTime,
) -> Result<(Scope, Vec<String>), OAuthError> {
    match owner {
        Owner::Client => {
            let client = state.store.client(id).await?.ok_or(OAuthError::InvalidRequest("no such client".into()))?;
            // An API key never carries admin rights (docs/threat-model.md, T-06).
            Ok((client.client.scope.clone().without(crate::ADMIN_SCOPE), client.client.audience.clone()))
        }
        Owner::User => {
            let user = state.store.user(id).await?.ok_or(OAuthError::InvalidRequest("no such user".into()))?;
            if user.disabled {
                return Err(OAuthError::InvalidRequest("the user is disabled".into()));
            }
            let (scopes, audiences) = state.store.granted_to_user(id, now.secs()).await?;
            let scope = Scope::parse(&scopes.join(" ")).map_err(|_| anyhow::anyhow!("stored scope is corrupt"))?;
            Ok((scope.without(crate::ADMIN_SCOPE), audiences))
        }
    }
}

/// Creates a key for `actor` (`user:<id>` on the account page, the admin API's caller); the key
/// itself (shown once) and its row.
pub async fn create(
    state: &AppState,
    request: CreateApiKey,
    actor: &str,
    now: UnixTime,
) -> Result<(String, ApiKeyRow), OAuthError> {
    let (owner, owner_id) = match (&request.user_id, &request.client_id) {
        (Some(user), None) => (Owner::User, user.as_str()),
        (None, Some(client)) => (Owner::Client, client.as_str()),
        _ => return Err(OAuthError::InvalidRequest("name exactly one owner: user_id or client_id".into())),
    };
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(OAuthError::InvalidRequest("name: 1 to 100 printable characters".into()));
    }
    let (allowed_scope, allowed_audience) = owner_limits(state, owner, owner_id, now).await?;
    let scope = match &request.scope {
        None => allowed_scope.clone(),
        Some(text) => Scope::parse(text).map_err(|_| OAuthError::InvalidScope("scope is malformed"))?,
    };
    if !scope.is_subset(&allowed_scope) {
        return Err(OAuthError::InvalidScope("a key's scope must be within its owner's"));
    }
    let audience = match &request.audience {
        None => allowed_audience.iter().take(1).cloned().collect::<Vec<_>>(),
        Some(list) => list.clone(),
    };
    if audience.is_empty() {
        return Err(OAuthError::InvalidTarget("the owner has no audience a key could address"));
    }
    if audience.iter().any(|a| !is_resource_uri(a) || !allowed_audience.contains(a)) {
        return Err(OAuthError::InvalidTarget("a key's audience must be within its owner's"));
    }
    let expires_at = match request.expires_in {
        None => None,
        Some(0) => return Err(OAuthError::InvalidRequest("expires_in must be positive".into())),
        Some(ttl) if ttl > MAX_KEY_TTL => {
            return Err(OAuthError::InvalidRequest("expires_in: at most five years".into()));
        }
        Some(ttl) => Some(now.plus(ttl).secs()),
    };
    let secret = ApiKey::secret();
    let secret_hash = crate::secret::hash_bytes(&secret);
    let record = Record::new(Event::ApiKeyCreated, now.secs(), actor)
        .detail("owner", format!("{}:{owner_id}", owner.as_str()))
        .detail("name", name)
        .detail("scope", scope.to_string())
        .detail("audience", &audience)
        .detail("expires_at", expires_at);
    let record = match owner {
        Owner::User => record.subject(owner_id),
        Owner::Client => record.client(owner_id),
    };
    let id = state
        .store
        .insert_api_key(
            NewApiKey {
                secret_hash: &secret_hash,
                owner_kind: owner.as_str(),
                owner_id,
                name,
                scope: &scope.to_string(),
                audience: &audience,
                created_at: now.secs(),
                expires_at,
            },
            record,
        )
        .await?;
    let key = ApiKey { owner, id, secret }.encode();
    let display = &key.expose()[..DISPLAY_LEN];
    state.store.set_api_key_display(id, display).await?;
    let row = state.store.api_key(id).await?.ok_or_else(|| anyhow::anyhow!("the new key is gone"))?;
    tracing::info!(key = %key_jti(id), owner = owner.as_str(), %owner_id, event = "api_key_created", "API key created");
    Ok((key.expose().to_owned(), row))
}

/// The listed form of a key.
pub fn info(row: &ApiKeyRow) -> ApiKeyInfo {
    ApiKeyInfo {
        id: key_jti(row.id),
        display: row.display.clone(),
        owner_kind: row.owner_kind.clone(),
        owner_id: row.owner_id.clone(),
        name: row.name.clone(),
        scope: row.scope.clone(),
        audience: row.audience.clone(),
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
        last_used_ip: row.last_used_ip.clone(),
        revoked_at: row.revoked_at,
    }
}

/// Parses `ak_<n>`.
pub fn parse_key_id(id: &str) -> Option<u64> {
    id.strip_prefix("ak_")?.parse().ok()
}

/// Revokes key `id`; `false` if there is no such key or it was revoked before.
pub async fn revoke(state: &AppState, id: u64, actor: &str, now: UnixTime) -> Result<bool, OAuthError> {
    let record = Record::new(Event::ApiKeyRevoked, now.secs(), actor).subject(key_jti(id));
    let revoked = state.store.revoke_api_key(id, &key_jti(id), now.secs(), record).await?;
    if revoked {
        crate::metrics::revocation("api_key");
        state.active_tokens.clear();
        tracing::info!(key = %key_jti(id), event = "api_key_revoked", "API key revoked");
    }
    Ok(revoked)
}

/// Whether the key's owner still exists and may act.
async fn owner_active(state: &AppState, row: &ApiKeyRow) -> anyhow::Result<bool> {
    Ok(match Owner::parse(&row.owner_kind) {
        Some(Owner::Client) => state.store.client(&row.owner_id).await?.is_some(),
        Some(Owner::User) => state.store.user(&row.owner_id).await?.is_some_and(|u| !u.disabled),
        None => false,
    })
}

/// The key's row if `token` is a genuine, unrevoked, unexpired key whose owner is active.
pub async fn active_key(state: &AppState, token: &str, now: UnixTime) -> anyhow::Result<Option<ApiKeyRow>> {
    let Some(key) = ApiKey::parse(token) else { return Ok(None) };
    let Some(row) = state.store.api_key(key.id).await? else { return Ok(None) };
    let genuine = crate::secret::hashes_equal(&key.secret_hash(), &row.secret_hash);
    if !genuine || row.owner_kind != key.owner.as_str() || !in_force(state, &row, now).await? {
        return Ok(None);
    }
    Ok(Some(row))
}

/// Not revoked, not expired, and its owner still exists and may act.
async fn in_force(state: &AppState, row: &ApiKeyRow, now: UnixTime) -> anyhow::Result<bool> {
    if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now.secs()) {
        return Ok(false);
    }
    owner_active(state, row).await
}

/// Whether the key behind a token exchanged for it (`client_id` `ak_<id>`) is still active.
pub async fn key_of_token_active(state: &AppState, client_id: &str, now: UnixTime) -> anyhow::Result<bool> {
    let Some(id) = parse_key_id(client_id) else { return Ok(false) };
    let Some(row) = state.store.api_key(id).await? else { return Ok(false) };
    in_force(state, &row, now).await
}

/// An active key as introspection sees it (`token_type` `api_key`).
pub fn as_active_token(row: &ApiKeyRow) -> ActiveAccessToken {
    ActiveAccessToken {
        jti: key_jti(row.id),
        client_id: key_jti(row.id),
        sub: row.owner_id.clone(),
        aud: row.audience.clone(),
        scope: row.scope.clone(),
        iat: row.created_at,
        exp: row.expires_at.unwrap_or(u64::MAX / 2),
        cnf: None,
        api_key: true,
    }
}
