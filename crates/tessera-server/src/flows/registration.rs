//! Dynamic client registration (RFC 7591) and its management (RFC 7592) at `/register`.
//!
//! Who can reach it without credentials, and what they can make the server do:
//! - `registration = "off"` (the default): nothing; `/register` is 404 and not advertised.
//! - `"token"`: a request without a valid initial access token is 401 and stores nothing; each
//!   token allows as many registrations as its `uses`, spent by one conditional update.
//! - `"open"`: anyone may store a client, within the open-registration policy: a public client
//!   (`none`) or `private_key_jwt`, the `authorization_code` and `refresh_token` grants only,
//!   redirect URIs on https or loopback http, scopes within `registration_scopes` and never
//!   `tessera:*`, audiences within `registration_audiences`, none of Tessera's privileged
//!   extensions. Each address may register [`crate::abuse::REGISTRATIONS`] clients at once, then
//!   one a minute; at most [`MAX_UNUSED`] registrations that never completed an authorization
//!   exist at once; the janitor deletes those older than `registration_expiry` (7 days). The
//!   consent page shows such a client as not verified, with its redirect host, every time.
//!
//! A registration answers a `registration_access_token` (stored only as its SHA-256) for
//! `GET`/`PUT`/`DELETE /register/{client_id}`; a wrong one is 401 whether or not the client
//! exists, so client ids are not probed.

use std::sync::Arc;

use tessera_proto::UnixTime;
use tessera_proto::admin::ClientMetadata;
use tessera_proto::registration::{ClientRegistration, RegistrationRequest};

use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::{AuthMethod, Client, ClientOrigin, GrantType};
use crate::config::Registration;
use crate::secret::{self, CLIENT_SECRET_PREFIX};
use crate::store::StoredClient;

/// Self-registered clients that never completed an authorization, at most, under `"open"`.
pub(crate) const MAX_UNUSED: u64 = 10_000;
/// The prefix of registration access tokens (RFC 7592).
const REGISTRATION_TOKEN_PREFIX: &str = "trg_";
/// Tessera's client-metadata extensions a self-registered client may not set.
const PRIVILEGED: [&str; 14] = [
    "admin",
    "first_party",
    "introspection",
    "access_token_format",
    "access_token_ttl",
    "profile",
    "require_pushed_authorization_requests",
    "refresh_token_rotation",
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
    "dpop_nonce_required",
];

/// Why a registration request was refused (RFC 7591 §3.2.2, RFC 7592 §2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistrationError {
    /// Registration is off.
    #[error("not_found")]
    Disabled,
    /// A missing or wrong initial or registration access token.
    #[error("invalid_token")]
    InvalidToken,
    #[error("invalid_redirect_uri")]
    InvalidRedirectUri(String),
    #[error("invalid_client_metadata")]
    InvalidClientMetadata(String),
    /// Too many registrations from this address, or unused ones in all; seconds to wait.
    #[error("too_many_requests")]
    TooMany(u64),
    #[error("internal")]
    Internal(#[from] anyhow::Error),
}

impl RegistrationError {
    pub(crate) fn description(&self) -> Option<String> {
        match self {
            RegistrationError::Disabled => Some("client registration is not enabled".into()),
            RegistrationError::InvalidToken => Some("a valid access token for registration is required".into()),
            RegistrationError::InvalidRedirectUri(why) | RegistrationError::InvalidClientMetadata(why) => {
                Some(why.clone())
            }
            RegistrationError::TooMany(_) => Some("too many registrations; try again later".into()),
            RegistrationError::Internal(_) => None,
        }
    }
}

fn invalid(why: impl Into<String>) -> RegistrationError {
    let why = why.into();
    if why.starts_with("redirect_uris") {
        RegistrationError::InvalidRedirectUri(why)
    } else {
        RegistrationError::InvalidClientMetadata(why)
    }
}

/// `POST /register`: registers a client; `initial_token` is the request's bearer token.
pub(crate) async fn register(
    state: &AppState,
    initial_token: Option<&str>,
    request: RegistrationRequest,
    ip: Option<String>,
    now: UnixTime,
) -> Result<ClientRegistration, RegistrationError> {
    let origin = match state.config.registration {
        Registration::Off => return Err(RegistrationError::Disabled),
        Registration::Token if initial_token.is_none() => return Err(RegistrationError::InvalidToken),
        Registration::Token => ClientOrigin::TokenRegistration,
        Registration::Open => ClientOrigin::OpenRegistration,
    };
    if request.client_id.is_some() || request.client_secret.is_some() {
        return Err(invalid("client_id: the server assigns it"));
    }
    let client = client_of(state, secret::random_b64(16), origin, request, now)?;
    // Validated before anything is spent or stored.
    let token_id = match initial_token {
        Some(token) if origin == ClientOrigin::TokenRegistration => Some(
            state
                .store
                .spend_registration_token(&secret::hash(token), now.secs())
                .await?
                .ok_or(RegistrationError::InvalidToken)?,
        ),
        _ => None,
    };
    if origin == ClientOrigin::OpenRegistration && state.store.unused_registrations().await? >= MAX_UNUSED {
        tracing::warn!(limit = MAX_UNUSED, "open registration refused: too many unused registrations");
        return Err(RegistrationError::TooMany(60));
    }
    let client_secret = secret::new_credential(CLIENT_SECRET_PREFIX);
    let registration_token = secret::new_credential(REGISTRATION_TOKEN_PREFIX);
    let mut record = Record::new(Event::ClientRegistered, now.secs(), "anonymous")
        .client(&client.client_id)
        .detail("origin", client.origin.as_str())
        .detail("grant_types", &client.grant_types)
        .detail("redirect_uris", &client.redirect_uris)
        .detail("scope", client.scope.to_string());
    if let Some(id) = &token_id {
        record = record.detail("registration_token", id);
    }
    record.ip = ip;
    state
        .store
        .insert_client(
            &client,
            &secret::hash(client_secret.expose()),
            Some(&secret::hash(registration_token.expose())),
            record,
        )
        .await?;
    tracing::info!(client_id = %client.client_id, origin = client.origin.as_str(), "client registered");
    let shown = client.uses_secret().then(|| client_secret.expose().to_owned());
    Ok(ClientRegistration {
        client: client.info(shown),
        registration_client_uri: registration_client_uri(state, &client.client_id),
        registration_access_token: Some(registration_token.expose().to_owned()),
    })
}

/// The client a registration access token manages, or 401 (for a wrong token and an unknown
/// client alike).
async fn managed(
    state: &AppState,
    client_id: &str,
    token: Option<&str>,
) -> Result<Arc<StoredClient>, RegistrationError> {
    if state.config.registration == Registration::Off {
        return Err(RegistrationError::Disabled);
    }
    let token = token.ok_or(RegistrationError::InvalidToken)?;
    let stored = state.store.client(client_id).await?;
    // Hashed first, then compared in constant time; an unknown client compares against zeros.
    let expected = stored.as_ref().and_then(|s| s.registration_hash.as_deref()).unwrap_or(&[0; 32]);
    let matches = secret::hashes_equal(&secret::hash(token), expected);
    match stored {
        Some(stored) if matches && stored.registration_hash.is_some() => Ok(stored),
        _ => Err(RegistrationError::InvalidToken),
    }
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub(crate) async fn read(
    state: &AppState,
    client_id: &str,
    token: Option<&str>,
) -> Result<ClientRegistration, RegistrationError> {
    let stored = managed(state, client_id, token).await?;
    Ok(ClientRegistration {
        registration_client_uri: registration_client_uri(state, client_id),
        client: stored.client.info(None),
        registration_access_token: None,
    })
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the request replaces the whole registration.
pub(crate) async fn update(
    state: &AppState,
    client_id: &str,
    token: Option<&str>,
    request: RegistrationRequest,
    now: UnixTime,
) -> Result<ClientRegistration, RegistrationError> {
    let stored = managed(state, client_id, token).await?;
    let current = &stored.client;
    if request.client_id.as_deref() != Some(client_id) {
        return Err(invalid("client_id: must be the client's own"));
    }
    if let Some(presented) = &request.client_secret
        && !secret::hashes_equal(&secret::hash(presented), &stored.secret_hash)
    {
        return Err(invalid("client_secret: not the client's secret"));
    }
    let mut client = client_of(state, client_id.to_owned(), current.origin, request, now)?;
    client.created_at = current.created_at;
    if client.uses_secret() != current.uses_secret() {
        return Err(invalid("token_endpoint_auth_method: a client cannot change between secret and no secret"));
    }
    let record = Record::new(Event::ClientRegistrationManaged, now.secs(), format!("client:{client_id}"))
        .client(client_id)
        .detail("action", "update")
        .detail("redirect_uris", &client.redirect_uris);
    if !state.store.replace_client(&client, record).await? {
        return Err(RegistrationError::InvalidToken);
    }
    Ok(ClientRegistration {
        registration_client_uri: registration_client_uri(state, client_id),
        client: client.info(None),
        registration_access_token: None,
    })
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client and its tokens are gone.
pub(crate) async fn delete(
    state: &AppState,
    client_id: &str,
    token: Option<&str>,
    now: UnixTime,
) -> Result<(), RegistrationError> {
    managed(state, client_id, token).await?;
    let record = Record::new(Event::ClientRegistrationManaged, now.secs(), format!("client:{client_id}"))
        .client(client_id)
        .detail("action", "delete");
    state.store.delete_client(client_id, now.secs(), record).await?;
    Ok(())
}

/// Deletes self-registered clients never used within `registration_expiry`; how many.
pub(crate) async fn expire_unused(state: &AppState, now: UnixTime) -> anyhow::Result<u64> {
    let before = now.secs().saturating_sub(state.config.registration_expiry);
    let mut deleted = 0;
    for client_id in state.store.stale_registrations(before, 1000).await? {
        let record = Record::new(Event::ClientRegistrationExpired, now.secs(), "server").client(&client_id);
        if state.store.delete_client(&client_id, now.secs(), record).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

fn registration_client_uri(state: &AppState, client_id: &str) -> String {
    state.config.issuer.join(&format!("/register/{client_id}"))
}

/// Validates a registration request into a client, under the policy of its origin (a metadata
/// document's is the open registration's).
pub(crate) fn client_of(
    state: &AppState,
    client_id: String,
    origin: ClientOrigin,
    request: RegistrationRequest,
    now: UnixTime,
) -> Result<Client, RegistrationError> {
    if let Some(privileged) = PRIVILEGED.iter().find(|name| request.other.contains_key(**name)) {
        return Err(invalid(format!("{privileged}: not for clients that register themselves")));
    }
    let open = origin.is_unverified();
    let config = &state.config;
    // RFC 7591 §2: grant_types defaults to authorization_code; an open registration is a public
    // client unless it names private_key_jwt.
    let grant_types = request.grant_types.unwrap_or_else(|| vec![GrantType::AuthorizationCode.as_str().to_owned()]);
    let auth_method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| if open { AuthMethod::None } else { AuthMethod::ClientSecretBasic }.as_str().to_owned());
    if open {
        if !matches!(auth_method.as_str(), "none" | "private_key_jwt") {
            return Err(invalid(
                "token_endpoint_auth_method: an open registration is a public client (none) or uses private_key_jwt",
            ));
        }
        let allowed = [GrantType::AuthorizationCode.as_str(), GrantType::RefreshToken.as_str()];
        if let Some(grant) = grant_types.iter().find(|g| !allowed.contains(&g.as_str())) {
            return Err(invalid(format!(
                "grant_types: {grant:?} is not open to registration (authorization_code, refresh_token)"
            )));
        }
        // RP-initiated logout redirects with no consent page in between: an open redirector.
        if request.post_logout_redirect_uris.as_ref().is_some_and(|uris| !uris.is_empty()) {
            return Err(invalid("post_logout_redirect_uris: not for open registrations"));
        }
        for uri in request.redirect_uris.iter().flatten() {
            if !https_or_loopback(uri) {
                return Err(invalid(format!(
                    "redirect_uris: {uri:?} is neither https nor http on a loopback address (RFC 8252)"
                )));
            }
        }
    }
    let scope = match request.scope {
        Some(scope) => {
            if let Some(refused) =
                scope.split_ascii_whitespace().find(|s| !config.registration_scopes.iter().any(|allowed| allowed == s))
            {
                return Err(invalid(format!("scope: {refused:?} is not offered to clients that register themselves")));
            }
            scope
        }
        None => config.registration_scopes.join(" "),
    };
    let audience = match request.audience {
        Some(audience) => {
            if let Some(refused) = audience.iter().find(|a| !config.registration_audiences.contains(a)) {
                return Err(invalid(format!(
                    "audience: {refused:?} is not offered to clients that register themselves"
                )));
            }
            audience
        }
        None => config.registration_audiences.clone(),
    };
    let metadata = ClientMetadata {
        client_name: request.client_name,
        grant_types: Some(grant_types),
        scope: Some(scope),
        token_endpoint_auth_method: Some(auth_method),
        redirect_uris: request.redirect_uris,
        audience: Some(audience),
        response_types: request.response_types,
        post_logout_redirect_uris: request.post_logout_redirect_uris,
        id_token_signed_response_alg: request.id_token_signed_response_alg,
        dpop_bound_access_tokens: request.dpop_bound_access_tokens,
        jwks: request.jwks,
        jwks_uri: request.jwks_uri,
        admin: Some(false),
        ..ClientMetadata::default()
    };
    let mut client = Client::register(client_id, metadata, &config.issuer, now.secs()).map_err(|err| invalid(err.0))?;
    client.origin = origin;
    Ok(client)
}

/// RFC 8252 §7.3 and §8.3: https, or http on a loopback address (any port); no fragment.
fn https_or_loopback(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else { return false };
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(domain)) => domain == "localhost",
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::https_or_loopback;

    #[test]
    fn open_redirect_uris_are_https_or_loopback_http() {
        for good in
            ["https://app.example/cb", "http://127.0.0.1:33418/cb", "http://[::1]/cb", "http://localhost:6274/x"]
        {
            assert!(https_or_loopback(good), "{good}");
        }
        for bad in [
            "http://app.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "com.example.app:/cb",
            "javascript:alert(1)",
            "https://app.example/cb#frag",
            "https://user@app.example/cb",
            "http://10.0.0.1/cb",
            "not a url",
        ] {
            assert!(!https_or_loopback(bad), "{bad}");
        }
    }
}
