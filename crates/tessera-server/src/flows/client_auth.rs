//! Client authentication at the token, PAR, introspection and revocation endpoints
//! (RFC 6749 §2.3.1): `client_secret_basic` and `client_secret_post`, exactly one per request,
//! and `none` for public clients, which only name themselves with `client_id`.

use base64::{Engine as _, engine::general_purpose::STANDARD};

use crate::AppState;
use crate::client::{AuthMethod, Client};
use crate::flows::error::OAuthError;
use crate::form::Form;
use crate::secret::{self, SecretString};

/// Credentials as presented, not yet checked.
#[derive(Debug)]
pub struct PresentedCredentials {
    client_id: String,
    secret: SecretString,
    method: AuthMethod,
}

/// Reads the credentials from the `Authorization` header or the form. Both at once is an
/// error (RFC 6749 §2.3); neither is `Ok(None)`.
pub fn presented(authorization: Option<&str>, form: &Form) -> Result<Option<PresentedCredentials>, OAuthError> {
    let in_body = form.get("client_secret").is_some();
    let Some(header) = authorization else {
        return Ok(match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => Some(PresentedCredentials {
                client_id: id.to_owned(),
                secret: SecretString::new(secret.to_owned()),
                method: AuthMethod::ClientSecretPost,
            }),
            (Some(id), None) => Some(PresentedCredentials {
                client_id: id.to_owned(),
                secret: SecretString::new(String::new()),
                method: AuthMethod::None,
            }),
            _ => None,
        });
    };
    if in_body {
        return Err(OAuthError::InvalidRequest("use exactly one client authentication method".into()));
    }
    let basic_failure = OAuthError::InvalidClient { basic: true };
    let (scheme, encoded) = header.split_once(' ').ok_or(OAuthError::InvalidClient { basic: true })?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(basic_failure);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let (id, secret) = decoded.split_once(':').ok_or(OAuthError::InvalidClient { basic: true })?;
    // RFC 6749 §2.3.1: both halves are form-urlencoded before base64.
    let (Some(id), Some(secret)) = (form_decode(id), form_decode(secret)) else {
        return Err(OAuthError::InvalidClient { basic: true });
    };
    if id.contains('\0') {
        return Err(OAuthError::InvalidClient { basic: true });
    }
    if form.get("client_id").is_some_and(|body_id| body_id != id) {
        return Err(OAuthError::InvalidRequest("client_id in the body differs from the authenticated client".into()));
    }
    Ok(Some(PresentedCredentials {
        client_id: id,
        secret: SecretString::new(secret),
        method: AuthMethod::ClientSecretBasic,
    }))
}

fn form_decode(s: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
    match pairs.as_slice() {
        [(_, v)] => Some(v.clone()),
        [] => Some(String::new()),
        _ => None,
    }
}

/// A hash compared against when the client does not exist, so that unknown clients and wrong
/// secrets take the same path.
const DUMMY_HASH: [u8; 32] = [0x5a; 32];

/// Checks presented credentials against the registered client. Unknown client, wrong secret
/// and wrong method are indistinguishable to the caller.
pub async fn authenticate(state: &AppState, credentials: PresentedCredentials) -> Result<Client, OAuthError> {
    let failure = OAuthError::InvalidClient { basic: credentials.method == AuthMethod::ClientSecretBasic };
    let found = state.store.client(&credentials.client_id).await?;
    let presented_hash = secret::hash(credentials.secret.expose());
    let (stored_hash, client) = match &found {
        Some(stored) => (stored.secret_hash.as_slice(), Some(&stored.client)),
        None => (&DUMMY_HASH[..], None),
    };
    let secret_ok = secret::hashes_equal(&presented_hash, stored_hash);
    match client {
        // A public client has no secret: naming it is all there is (RFC 6749 §2.1).
        Some(client) if credentials.method == AuthMethod::None && client.auth_method == AuthMethod::None => {
            Ok(client.clone())
        }
        Some(client) if secret_ok && client.auth_method == credentials.method => Ok(client.clone()),
        _ => {
            // The id is attacker-chosen: log it escaped (Debug) and bounded.
            let client_id: String = credentials.client_id.chars().take(128).collect();
            tracing::info!(client_id = ?client_id, method = credentials.method.as_str(), "client authentication failed");
            Err(failure)
        }
    }
}

/// Presented and checked in one step; missing credentials are `invalid_client`. Public
/// clients pass.
pub async fn require(state: &AppState, authorization: Option<&str>, form: &Form) -> Result<Client, OAuthError> {
    match presented(authorization, form)? {
        Some(credentials) => authenticate(state, credentials).await,
        None => Err(OAuthError::InvalidClient { basic: true }),
    }
}

/// [`require`] for endpoints that public clients may not use (introspection).
pub async fn require_confidential(
    state: &AppState,
    authorization: Option<&str>,
    form: &Form,
) -> Result<Client, OAuthError> {
    let client = require(state, authorization, form).await?;
    if client.is_public() {
        return Err(OAuthError::InvalidClient { basic: false });
    }
    Ok(client)
}
