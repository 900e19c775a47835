//! The admin API's operations: clients, signing keys, users and revocations, and the check that
//! a caller holds an active `client_credentials` access token of an admin client (scope
//! `tessera:admin`). Admin is an identity: a person's sign-in, an API key, or a client that is
//! not an admin client never reaches the admin API, whatever scope its token carries.

use tessera_proto::UnixTime;
use tessera_proto::admin::{
    ClientInfo, ClientList, ClientMetadata, CreateKey, CreateUser, KeyInfo, KeyList, RevocationRequest,
    RevocationResult, SetPassword, UserInfo, UserList,
};

use crate::audit::{Event, Record};
use crate::client::Client;
use crate::flows::{introspect, session};
use crate::keys::SigningAlg;
use crate::scope::Scope;
use crate::secret::{self, CLIENT_SECRET_PREFIX};
use crate::store::RevocationTarget;
use crate::user::{self, NewUser};
use crate::{ADMIN_SCOPE, AppState};

/// Admin API errors. `Display` is the wire code.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No bearer token, or one that is not an active access token of this server.
    #[error("invalid_token")]
    Unauthorized,
    /// An active token that is not an admin client's own `tessera:admin` token.
    #[error("insufficient_scope")]
    Forbidden,
    #[error("invalid_client_metadata")]
    InvalidClientMetadata(String),
    #[error("invalid_request")]
    InvalidRequest(String),
    #[error("not_found")]
    NotFound,
    /// The resource exists already (a taken username).
    #[error("conflict")]
    Conflict(String),
    #[error("server_error")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::flows::error::OAuthError> for AdminError {
    fn from(err: crate::flows::error::OAuthError) -> AdminError {
        AdminError::Internal(anyhow::anyhow!("{err}: {:?}", err.description()))
    }
}

/// RFC 6750 §2.1: `Authorization: Bearer <token>`, scheme case-insensitive. The caller, as the
/// audit log names it (`admin:<client id>`).
pub async fn authorize(state: &AppState, authorization: Option<&str>, now: UnixTime) -> Result<String, AdminError> {
    let token = introspect::bearer_token(authorization).ok_or(AdminError::Unauthorized)?;
    let active = introspect::resolve(state, token, now).await?.ok_or(AdminError::Unauthorized)?;
    // A sender-constrained token is no bearer token (RFC 9449 §7.1, RFC 8705 §3).
    if active.cnf.is_some() {
        return Err(AdminError::Unauthorized);
    }
    let scope = Scope::parse(&active.scope).unwrap_or_default();
    // The client's own token (client_credentials: `sub` is the client), not an API key's and not
    // a person's, of a client that is an admin client now.
    if !scope.contains(ADMIN_SCOPE) || active.api_key || active.sub != active.client_id {
        return Err(AdminError::Forbidden);
    }
    if !state.store.client(&active.client_id).await?.is_some_and(|stored| stored.client.is_admin()) {
        return Err(AdminError::Forbidden);
    }
    Ok(format!("admin:{}", active.client_id))
}

/// Registers a client and returns it with its secret, shown this once.
pub async fn create_client(
    state: &AppState,
    metadata: ClientMetadata,
    now: UnixTime,
) -> Result<ClientInfo, AdminError> {
    let client = Client::register(secret::random_b64(16), metadata, &state.config.issuer, now.secs())
        .map_err(|e| AdminError::InvalidClientMetadata(e.0))?;
    // Only clients that authenticate with a secret get one; for the others (public clients, keys,
    // certificates) the stored hash is of a random value nobody ever sees.
    let client_secret = secret::new_credential(CLIENT_SECRET_PREFIX);
    let record = Record::admin(now.secs(), "client.create")
        .client(&client.client_id)
        .detail("grant_types", &client.grant_types)
        .detail("scope", client.scope.to_string());
    state.store.insert_client(&client, &secret::hash(client_secret.expose()), None, record).await?;
    tracing::info!(client_id = %client.client_id, "client created");
    let shown = client.uses_secret().then(|| client_secret.expose().to_owned());
    Ok(client.info(shown))
}

/// The most registrations one initial access token may allow (the schema says so too).
const MAX_REGISTRATION_USES: u64 = 1_000_000;
/// The longest an initial access token may live: ten years.
const MAX_REGISTRATION_TOKEN_TTL: u64 = 315_360_000;

/// An initial access token for dynamic client registration, shown once and stored as its hash.
pub async fn create_registration_token(
    state: &AppState,
    request: tessera_proto::registration::CreateRegistrationToken,
    now: UnixTime,
) -> Result<tessera_proto::registration::RegistrationToken, AdminError> {
    if !request.uses.is_none_or(|n| (1..=MAX_REGISTRATION_USES).contains(&n))
        || !request.expires_in.is_none_or(|s| (1..=MAX_REGISTRATION_TOKEN_TTL).contains(&s))
    {
        return Err(AdminError::InvalidRequest(format!(
            "uses: 1 to {MAX_REGISTRATION_USES}; expires_in: 1 to {MAX_REGISTRATION_TOKEN_TTL} seconds"
        )));
    }
    let id = secret::random_b64(9);
    let token = secret::new_credential("tri_");
    let expires_at = request.expires_in.map(|s| now.plus(s).secs());
    let record = Record::admin(now.secs(), "registration_token.create")
        .detail("registration_token", &id)
        .detail("expires_at", expires_at)
        .detail("uses", request.uses);
    let stored = crate::store::registration::NewRegistrationToken {
        id: &id,
        token_hash: &secret::hash(token.expose()),
        created_at: now.secs(),
        expires_at,
        uses: request.uses,
    };
    state.store.insert_registration_token(&stored, record).await?;
    if state.config.registration != crate::config::Registration::Token {
        tracing::warn!("an initial access token was created, but registration is not set to `token`");
    }
    Ok(tessera_proto::registration::RegistrationToken {
        id,
        token: token.expose().to_owned(),
        expires_at,
        uses: request.uses,
    })
}

pub async fn list_clients(state: &AppState) -> Result<ClientList, AdminError> {
    Ok(ClientList { clients: state.store.clients().await?.iter().map(|c| c.info(None)).collect() })
}

pub async fn client(state: &AppState, client_id: &str) -> Result<ClientInfo, AdminError> {
    let stored = state.store.client(client_id).await?.ok_or(AdminError::NotFound)?;
    Ok(stored.client.info(None))
}

/// Deletes a client; its tokens stop being active at once. The bootstrap admin client is kept
/// so the server can always be administered.
pub async fn delete_client(state: &AppState, client_id: &str, now: UnixTime) -> Result<(), AdminError> {
    if state.store.setting(crate::BOOTSTRAP_CLIENT_SETTING).await?.as_deref() == Some(client_id) {
        return Err(AdminError::InvalidRequest("the bootstrap admin client cannot be deleted".into()));
    }
    let record = Record::admin(now.secs(), "client.delete").client(client_id);
    if !state.store.delete_client(client_id, now.secs(), record).await? {
        return Err(AdminError::NotFound);
    }
    tracing::info!(%client_id, "client deleted");
    Ok(())
}

/// Replaces a client's secret; the old one stops working at once.
pub async fn rotate_secret(state: &AppState, client_id: &str, now: UnixTime) -> Result<ClientInfo, AdminError> {
    if state.store.client(client_id).await?.is_some_and(|c| !c.client.uses_secret()) {
        return Err(AdminError::InvalidRequest("this client authenticates without a secret".into()));
    }
    let client_secret = secret::new_credential(CLIENT_SECRET_PREFIX);
    // This node's own admin client (the one `admin.json` holds): the file is rewritten with the
    // new secret, so the CLI keeps working (#30).
    let own = state.admin_json_client().as_deref() == Some(client_id);
    let record = Record::admin(now.secs(), "client.rotate_secret").client(client_id).detail("admin_json", own);
    if !state.store.set_client_secret(client_id, &secret::hash(client_secret.expose()), record).await? {
        return Err(AdminError::NotFound);
    }
    // The answer carries the new secret whatever happens to the file: a failed rewrite is
    // logged, and the caller can still put the secret where it belongs.
    if own && let Err(err) = state.rewrite_admin_json_secret(client_id, client_secret.expose()) {
        tracing::error!(err = format!("{err:#}"), "admin.json could not be rewritten with the new secret");
    }
    tracing::info!(%client_id, admin_json = own, "client secret rotated");
    let stored = state.store.client(client_id).await?.ok_or(AdminError::NotFound)?;
    Ok(stored.client.info(Some(client_secret.expose().to_owned())))
}

pub async fn create_key(state: &AppState, request: CreateKey, now: UnixTime) -> Result<KeyInfo, AdminError> {
    let alg = SigningAlg::parse(&request.alg).ok_or_else(|| {
        AdminError::InvalidRequest(format!("alg {:?} is not ES256, EdDSA, RS256 or PS256", request.alg))
    })?;
    Ok(state.keys.create(&state.store, alg, now.secs()).await?)
}

pub fn list_keys(state: &AppState) -> KeyList {
    KeyList { keys: state.keys.current().infos.clone() }
}

/// Makes a published key the signing key. The previous key stays published, so tokens it
/// signed keep verifying.
pub async fn activate_key(state: &AppState, kid: &str, now: UnixTime) -> Result<KeyInfo, AdminError> {
    let record = Record::by_context(Event::KeyActivated, now.secs(), "admin").subject(format!("key:{kid}"));
    if !state.store.activate_key(kid, record).await? {
        return Err(AdminError::NotFound);
    }
    state.keys.reload(&state.store).await?;
    tracing::info!(%kid, "signing key activated");
    state.keys.current().infos.iter().find(|k| k.kid == kid).cloned().ok_or(AdminError::NotFound)
}

/// Registers a user; the password is hashed with argon2id before anything is stored.
pub async fn create_user(state: &AppState, request: CreateUser, now: UnixTime) -> Result<UserInfo, AdminError> {
    let new =
        NewUser::parse(secret::random_b64(16), request, now.secs()).map_err(|e| AdminError::InvalidRequest(e.0))?;
    let hash = user::hash_password(new.password).await?;
    let record = Record::admin(now.secs(), "user.create").subject(&new.user.id);
    if !state.store.insert_user(&new.user, &hash, record).await? {
        return Err(AdminError::Conflict(format!("username {:?} is taken", new.user.username)));
    }
    tracing::info!(user_id = %new.user.id, "user created");
    Ok(new.user.info())
}

pub async fn list_users(state: &AppState) -> Result<UserList, AdminError> {
    Ok(UserList { users: state.store.users().await?.iter().map(|u| u.info()).collect() })
}

pub async fn user(state: &AppState, id: &str) -> Result<UserInfo, AdminError> {
    Ok(state.store.user(id).await?.ok_or(AdminError::NotFound)?.info())
}

pub async fn delete_user(state: &AppState, id: &str, now: UnixTime) -> Result<(), AdminError> {
    let record = Record::admin(now.secs(), "user.delete").subject(id);
    if !state.store.delete_user(id, now.secs(), record).await? {
        return Err(AdminError::NotFound);
    }
    // Grants went with the user; tokens issued under them read as revoked from now on.
    state.active_tokens.clear();
    tracing::info!(user_id = %id, "user deleted");
    Ok(())
}

/// Disables or enables a user. A disabled user cannot sign in, and disabling ends every session
/// and revokes every grant and token of the user.
pub async fn set_user_disabled(
    state: &AppState,
    id: &str,
    disabled: bool,
    now: UnixTime,
) -> Result<UserInfo, AdminError> {
    let action = if disabled { "user.disable" } else { "user.enable" };
    let record = Record::admin(now.secs(), action).subject(id);
    if !state.store.set_user_disabled(id, disabled, record).await? {
        return Err(AdminError::NotFound);
    }
    if disabled {
        session::revoke(state, RevocationTarget::User(id), now, revocation_record(now, RevocationTarget::User(id)))
            .await?;
    } else {
        // Enabling also lifts a password lockout.
        state.store.reset_login_failures(id).await?;
    }
    tracing::info!(user_id = %id, disabled, "user updated");
    user(state, id).await
}

/// Sets a user's password; every session and grant of the user is revoked.
pub async fn set_password(
    state: &AppState,
    id: &str,
    request: SetPassword,
    now: UnixTime,
) -> Result<UserInfo, AdminError> {
    let password = user::check_password(request.password).map_err(|e| AdminError::InvalidRequest(e.0))?;
    let hash = user::hash_password(password).await?;
    let record = Record::admin(now.secs(), "user.set_password").subject(id);
    if !state.store.set_user_password(id, &hash, record).await? {
        return Err(AdminError::NotFound);
    }
    session::revoke(state, RevocationTarget::User(id), now, revocation_record(now, RevocationTarget::User(id))).await?;
    tracing::info!(user_id = %id, "password changed; sessions revoked");
    user(state, id).await
}

/// `POST /admin/revocations`: everything under one user, session or client.
pub async fn revoke(
    state: &AppState,
    request: RevocationRequest,
    now: UnixTime,
) -> Result<RevocationResult, AdminError> {
    let ids = [&request.user_id, &request.session_id, &request.client_id];
    if ids.iter().any(|id| id.as_ref().is_some_and(|id| id.contains('\0'))) {
        return Err(AdminError::NotFound);
    }
    let target = match (&request.user_id, &request.session_id, &request.client_id) {
        (Some(user_id), None, None) => {
            state.store.user(user_id).await?.ok_or(AdminError::NotFound)?;
            crate::metrics::revocation("user");
            RevocationTarget::User(user_id)
        }
        (None, Some(session_id), None) => {
            state.store.session(session_id).await?.ok_or(AdminError::NotFound)?;
            crate::metrics::revocation("session");
            RevocationTarget::Session(session_id)
        }
        (None, None, Some(client_id)) => {
            state.store.client(client_id).await?.ok_or(AdminError::NotFound)?;
            crate::metrics::revocation("client");
            RevocationTarget::Client(client_id)
        }
        _ => return Err(AdminError::InvalidRequest("give exactly one of user_id, session_id, client_id".into())),
    };
    let (sessions, grants) = session::revoke(state, target, now, revocation_record(now, target)).await?;
    Ok(RevocationResult { sessions, grants })
}

/// The record of an administrator's revocation of everything under `target`.
fn revocation_record(now: UnixTime, target: RevocationTarget<'_>) -> Record {
    let record = Record::by_context(Event::TokenRevoked, now.secs(), "admin");
    match target {
        RevocationTarget::User(id) => record.subject(id).detail("target", "user"),
        RevocationTarget::Session(id) => record.session(Some(id)).detail("target", "session"),
        RevocationTarget::Client(id) => record.client(id).detail("target", "client"),
    }
}
