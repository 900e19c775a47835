//! Browser sessions: password login, the session cookie's value, CSRF tokens for the pages,
//! the account page's view, revocation by user, session or client, and RP-initiated logout
//! (OpenID Connect RP-Initiated Logout 1.0).

use aws_lc_rs::hmac;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::Value;
use tessera_proto::UnixTime;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::Client;
use crate::flows::authorize::{SignedIn, redirect_with};
use crate::secret::{self, SecretString};
use crate::store::{RevocationTarget, SessionRow};
use crate::user;

/// The session cookie's value: `<session id>.<secret>`; only the secret's hash is stored.
pub async fn signed_in(state: &AppState, cookie: Option<&str>, now: UnixTime) -> anyhow::Result<Option<SignedIn>> {
    let Some((id, secret_part)) = cookie.and_then(|c| c.split_once('.')) else { return Ok(None) };
    if id.len() > 64 {
        return Ok(None);
    }
    let Some(session) = state.store.session(id).await? else { return Ok(None) };
    if !secret::hashes_equal(&secret::hash(secret_part), &session.secret_hash)
        || session.ended_at.is_some()
        || session.expires_at <= now.secs()
    {
        return Ok(None);
    }
    let Some(user) = state.store.user(&session.user_id).await? else { return Ok(None) };
    if user.disabled {
        return Ok(None);
    }
    Ok(Some(SignedIn { session, user }))
}

/// Where a login came from, for the account page.
pub struct Device<'a> {
    pub user_agent: Option<&'a str>,
    pub ip: Option<String>,
}

/// What a sign-in attempt came to.
pub enum LoginOutcome {
    SignedIn(Box<SignedIn>, SecretString),
    /// Wrong username or password (indistinguishable).
    Wrong,
    /// Locked out after repeated failures: the password was not checked; seconds left.
    Locked(u64),
}

/// Checks a username and password. Unknown users are checked against a dummy hash and disabled
/// users fail like a wrong password, so neither timing nor the answer reveals which it was.
/// Consecutive failures lock the username out with exponential backoff (`crate::abuse`): a
/// known user's lock is stored (every node, and code and refresh redemption, honour it), an
/// unknown username's is kept in memory, so a lock does not reveal whether the user exists.
/// On success, creates a session and returns it with the cookie value.
pub async fn login(
    state: &AppState,
    username: &str,
    password: SecretString,
    device: Device<'_>,
    now: UnixTime,
) -> anyhow::Result<LoginOutcome> {
    let found =
        if username.is_empty() || username.len() > 256 { None } else { state.store.user_by_username(username).await? };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let unknown_key = username.chars().take(256).collect::<String>().to_lowercase();
    let locked_until = match &user {
        Some(user) => user.locked_until,
        None => state.abuse.unknown_users.get(&unknown_key).map_or(0, |(_, until)| until),
    };
    // The username is attacker-chosen: escaped and bounded.
    let shown: String = username.chars().take(64).collect();
    let failed = |reason: &str| {
        let record = Record::new(Event::LoginFailed, now.secs(), "anonymous").failed().detail("reason", reason);
        match &user {
            Some(user) => record.subject(&user.id),
            None => record.detail("username", &shown),
        }
    };
    if locked_until > now.secs() {
        state.store.audit(failed("locked_out").detail("locked_until", locked_until)).await?;
        return Ok(LoginOutcome::Locked(locked_until - now.secs()));
    }
    let matches = user::verify_password(hash, password).await?;
    let known_id = user.as_ref().map(|u| u.id.clone());
    let reason = match &user {
        None => "unknown_user",
        Some(_) if !matches => "wrong_password",
        Some(_) => "disabled",
    };
    let record = failed(reason);
    let Some(user) = user.filter(|u| matches && !u.disabled) else {
        let failures = match &known_id {
            Some(id) => state.store.record_login_failure(id, now.secs(), record).await?,
            None => {
                let failures = state.abuse.unknown_users.get(&unknown_key).map_or(0, |(n, _)| n) + 1;
                state.abuse.unknown_users.insert(unknown_key.clone(), (failures, 0));
                state.store.audit(record.detail("consecutive_failures", failures)).await?;
                failures
            }
        };
        let lock = crate::abuse::lock_seconds(failures);
        if lock > 0 {
            let until = now.plus(lock).secs();
            let record = Record::new(Event::Lockout, now.secs(), "server")
                .detail("locked_until", until)
                .detail("consecutive_failures", failures);
            match &known_id {
                Some(id) => state.store.lock_user(id, until, record.subject(id)).await?,
                None => {
                    state.abuse.unknown_users.insert(unknown_key, (failures, until));
                    state.store.audit(record.detail("username", &shown)).await?;
                }
            }
            tracing::warn!(username = ?shown, failures, lock_seconds = lock, event = "login_lockout", "user locked out after repeated failures");
        } else {
            tracing::info!(username = ?shown, "login failed");
        }
        return Ok(LoginOutcome::Wrong);
    };
    state.store.reset_login_failures(&user.id).await?;
    let secret_part = secret::random_b64(32);
    let session = SessionRow {
        id: secret::random_b64(16),
        secret_hash: secret::hash(&secret_part),
        user_id: user.id.clone(),
        auth_time: now.secs(),
        created_at: now.secs(),
        last_used_at: now.secs(),
        expires_at: now.plus(state.config.session_ttl).secs(),
        user_agent: device.user_agent.map(|ua| ua.chars().take(256).collect()),
        ip: device.ip,
        ended_at: None,
    };
    let record = Record::new(Event::Login, now.secs(), format!("user:{}", user.id))
        .subject(&user.id)
        .session(Some(&session.id))
        .detail("method", "password");
    state.store.insert_session(&session, record).await?;
    tracing::info!(user_id = %user.id, session_id = %session.id, "user signed in");
    let cookie = SecretString::new(format!("{}.{secret_part}", session.id));
    Ok(LoginOutcome::SignedIn(Box::new(SignedIn { session, user }), cookie))
}

/// A CSRF token: HMAC-SHA256 under a key derived from the master key, over the purpose and
/// what the form is bound to (the interaction, the browser, the session).
pub fn csrf_token(state: &AppState, purpose: &str, binding: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(&state.csrf_key, &csrf_input(purpose, binding)).as_ref())
}

/// Checks a presented CSRF token in constant time.
pub fn csrf_ok(state: &AppState, purpose: &str, binding: &[&str], presented: Option<&str>) -> bool {
    let Some(tag) = presented.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()) else { return false };
    hmac::verify(&state.csrf_key, &csrf_input(purpose, binding), &tag).is_ok()
}

fn csrf_input(purpose: &str, binding: &[&str]) -> Vec<u8> {
    let mut input = Vec::with_capacity(64);
    for part in std::iter::once(purpose).chain(binding.iter().copied()) {
        // Length-prefixed, so that no two bindings share an encoding.
        input.extend((part.len() as u64).to_be_bytes());
        input.extend(part.as_bytes());
    }
    input
}

/// Ends sessions and revokes grants under `target`; effective at introspection at once.
/// `record` describes it (the store adds the counts).
pub async fn revoke(
    state: &AppState,
    target: RevocationTarget<'_>,
    now: UnixTime,
    record: Record,
) -> anyhow::Result<(u64, u64)> {
    let (sessions, grants) = state.store.revoke(target, now.secs(), record).await?;
    state.active_tokens.clear();
    tracing::info!(target = ?target, sessions, grants, "revoked");
    Ok((sessions, grants))
}

/// Revokes one grant (a refresh family with its access tokens); effective at introspection at once.
pub async fn revoke_grant(state: &AppState, grant_id: &str, now: UnixTime, record: Record) -> anyhow::Result<()> {
    state.store.revoke_grant(grant_id, now.secs(), record.detail("grant_id", grant_id)).await?;
    state.active_tokens.clear();
    Ok(())
}

/// One row of the account page.
pub struct SessionView {
    pub id: String,
    pub current: bool,
    pub clients: Vec<String>,
    pub user_agent: String,
    pub ip: String,
    pub created_at: u64,
    pub last_used_at: u64,
}

/// The user's active sessions with the applications signed in through each.
pub async fn account_sessions(state: &AppState, me: &SignedIn, now: UnixTime) -> anyhow::Result<Vec<SessionView>> {
    let sessions = state.store.active_sessions(&me.user.id, now.secs()).await?;
    let grants = state.store.session_clients(&me.user.id).await?;
    let mut views = Vec::with_capacity(sessions.len());
    for session in sessions {
        let mut clients = Vec::new();
        for (_, client_id) in grants.iter().filter(|(sid, _)| *sid == session.id) {
            let name = match state.store.client(client_id).await? {
                Some(stored) => stored.client.display_name(),
                None => continue,
            };
            if !clients.contains(&name) {
                clients.push(name);
            }
        }
        views.push(SessionView {
            current: session.id == me.session.id,
            id: session.id,
            clients,
            user_agent: session.user_agent.unwrap_or_default(),
            ip: session.ip.unwrap_or_default(),
            created_at: session.created_at,
            last_used_at: session.last_used_at,
        });
    }
    Ok(views)
}

/// A validated RP-initiated logout request.
pub struct LogoutRequest {
    /// The session named by `id_token_hint` (its `sid`).
    pub hinted_session: Option<String>,
    /// Where to send the browser afterwards, with `state` already appended.
    pub redirect: Option<String>,
}

/// Validates `/logout` parameters: `id_token_hint` must be an ID token we signed for the
/// client (expired is fine); `post_logout_redirect_uri` must be registered by that client,
/// exactly. Errors are messages for an error page: logout never redirects anywhere unverified.
pub async fn logout_request(
    state: &AppState,
    id_token_hint: Option<&str>,
    client_id: Option<&str>,
    post_logout_redirect_uri: Option<&str>,
    logout_state: Option<&str>,
) -> Result<LogoutRequest, String> {
    let mut hinted_session = None;
    let mut hinted_client: Option<String> = None;
    if let Some(hint) = id_token_hint {
        let keys = state.keys.current();
        let claims = keys.published.verify_signature(hint, "JWT").map_err(|_| "The id_token_hint is not valid.")?;
        if claims.get("iss").and_then(Value::as_str) != Some(state.config.issuer.as_str()) {
            return Err("The id_token_hint was not issued here.".into());
        }
        let aud = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        let Some(first) = aud.first() else { return Err("The id_token_hint has no audience.".into()) };
        if client_id.is_some_and(|id| !aud.iter().any(|a| a == id)) {
            return Err("The id_token_hint was issued to another application.".into());
        }
        hinted_client = Some(client_id.map(str::to_owned).unwrap_or_else(|| first.clone()));
        hinted_session = claims.get("sid").and_then(Value::as_str).map(str::to_owned);
    }
    let redirect = match post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let Some(client_id) = hinted_client.as_deref().or(client_id) else {
                return Err("post_logout_redirect_uri needs id_token_hint or client_id.".into());
            };
            let client: Option<Client> = state
                .store
                .client(client_id)
                .await
                .map_err(|_| "The server is unavailable.".to_owned())?
                .map(|s| s.client.clone());
            let Some(client) = client else { return Err("The application is not registered here.".into()) };
            if !client.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err("The post_logout_redirect_uri is not registered for this application.".into());
            }
            let pairs: Vec<(&str, &str)> = logout_state.map(|s| ("state", s)).into_iter().collect();
            Some(if pairs.is_empty() { uri.to_owned() } else { redirect_with(uri, &pairs) })
        }
    };
    Ok(LogoutRequest { hinted_session, redirect })
}
