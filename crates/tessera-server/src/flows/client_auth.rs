//! Client authentication at the token, PAR, introspection and revocation endpoints, exactly one
//! method per request (RFC 6749 §2.3):
//!
//! - `client_secret_basic` and `client_secret_post` (RFC 6749 §2.3.1);
//! - `private_key_jwt` (RFC 7523 §2.2): a JWT signed with a key of the client's JWK Set,
//!   `iss` = `sub` = client id, `aud` exactly the issuer identifier as one string (rfc7523bis),
//!   a bounded `exp`, a `jti` used once across every node;
//! - `tls_client_auth` and `self_signed_tls_client_auth` (RFC 8705 §2): the request names the
//!   client with `client_id` and comes with a client certificate (`flows::mtls`);
//! - `none` for public clients, which only name themselves with `client_id`.
//!
//! Unknown client, wrong credential and wrong method are the same `invalid_client`.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::Value;
use tessera_proto::UnixTime;

use crate::AppState;
use crate::client::{AuthMethod, Client};
use crate::flows::error::OAuthError;
use crate::flows::metadata_document::{self, DocumentError};
use crate::form::Form;
use crate::mtls;
use crate::secret::{self, SecretString};
use crate::store::SingleUse;
use crate::tls::ClientCertificate;

/// RFC 7523 §2.2 `client_assertion_type`.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Algorithms a client assertion may be signed with (FAPI 2.0: PS256, ES256, EdDSA).
pub const ASSERTION_ALGS: [&str; 3] = ["PS256", "ES256", "EdDSA"];
/// The longest an assertion may live: `exp` at most this far ahead of now.
const ASSERTION_MAX_LIFETIME: u64 = 600;
/// Clock skew tolerated on `exp`, `nbf` and `iat` of an assertion.
const ASSERTION_LEEWAY: u64 = 60;

/// What a request carries besides its form that may authenticate its client.
#[derive(Debug, Clone, Copy)]
pub struct ClientRequest<'a> {
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The TLS client certificate (or a trusted proxy's `Client-Cert`).
    pub certificate: Option<&'a ClientCertificate>,
    /// The URL the request was sent to.
    pub endpoint: &'a str,
    /// The caller's address (behind trusted proxies, the forwarded one): a `client_id` that is a
    /// metadata document URL makes this address spend its fetch allowance.
    pub ip: Option<std::net::IpAddr>,
}

/// How the request offered to authenticate, not yet checked.
enum Offered {
    Secret(SecretString, AuthMethod),
    Assertion(String),
    /// Only `client_id`: a public client, or one authenticating with its TLS certificate.
    IdOnly,
}

/// Credentials as presented, not yet checked.
pub struct PresentedCredentials {
    client_id: String,
    offered: Offered,
}

impl PresentedCredentials {
    fn is_basic(&self) -> bool {
        matches!(self.offered, Offered::Secret(_, AuthMethod::ClientSecretBasic))
    }
}

/// Reads the credentials from the `Authorization` header or the form. Two methods at once is an
/// error (RFC 6749 §2.3); none is `Ok(None)`.
pub fn presented(authorization: Option<&str>, form: &Form) -> Result<Option<PresentedCredentials>, OAuthError> {
    let assertion = match (form.get("client_assertion_type"), form.get("client_assertion")) {
        (None, None) => None,
        (Some(ASSERTION_TYPE), Some(jwt)) => Some(jwt),
        _ => {
            return Err(OAuthError::InvalidRequest(format!(
                "client_assertion needs client_assertion_type {ASSERTION_TYPE}"
            )));
        }
    };
    let methods = [authorization.is_some(), form.get("client_secret").is_some(), assertion.is_some()];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(OAuthError::InvalidRequest("use exactly one client authentication method".into()));
    }
    if let Some(jwt) = assertion {
        // RFC 7523 §3: the client is the assertion's `sub`; a `client_id` beside it must agree.
        let client_id = unverified_subject(jwt).ok_or(OAuthError::InvalidClient { basic: false })?;
        if form.get("client_id").is_some_and(|id| id != client_id) {
            return Err(OAuthError::InvalidClient { basic: false });
        }
        return Ok(Some(PresentedCredentials { client_id, offered: Offered::Assertion(jwt.to_owned()) }));
    }
    let Some(header) = authorization else {
        return Ok(match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => Some(PresentedCredentials {
                client_id: id.to_owned(),
                offered: Offered::Secret(SecretString::new(secret.to_owned()), AuthMethod::ClientSecretPost),
            }),
            (Some(id), None) => Some(PresentedCredentials { client_id: id.to_owned(), offered: Offered::IdOnly }),
            _ => None,
        });
    };
    let basic_failure = || OAuthError::InvalidClient { basic: true };
    let (id, secret) = basic_credentials(header).ok_or_else(basic_failure)?;
    if id.contains('\0') {
        return Err(basic_failure());
    }
    if form.get("client_id").is_some_and(|body_id| body_id != id) {
        return Err(OAuthError::InvalidRequest("client_id in the body differs from the authenticated client".into()));
    }
    Ok(Some(PresentedCredentials { client_id: id, offered: Offered::Secret(secret, AuthMethod::ClientSecretBasic) }))
}

/// `Authorization: Basic …` decoded (`id:secret`, each half still form-urlencoded); `None` for
/// anything else. The one parser of HTTP Basic.
fn basic_decoded(header: &str) -> Option<zeroize::Zeroizing<String>> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some(zeroize::Zeroizing::new(String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?))
}

/// RFC 6749 §2.3.1: the client id and secret of `Authorization: Basic …`, both halves
/// form-urlencoded before base64.
pub fn basic_credentials(header: &str) -> Option<(String, SecretString)> {
    let decoded = basic_decoded(header)?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, SecretString::new(form_decode(secret)?)))
}

/// The client id of `Authorization: Basic …` alone, for the throttle's key: the secret half is
/// not decoded.
pub fn basic_client_id(header: &str) -> Option<String> {
    form_decode(basic_decoded(header)?.split_once(':')?.0)
}

/// The `sub` of a JWT, read without any check (the client it claims to be; verified next).
fn unverified_subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let sub = claims.get("sub")?.as_str()?;
    (!sub.is_empty() && sub.len() <= 256 && !sub.contains('\0')).then(|| sub.to_owned())
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

/// Checks presented credentials against the registered client. Unknown client, wrong
/// credential and wrong method are indistinguishable to the caller.
pub async fn authenticate(
    state: &AppState,
    credentials: PresentedCredentials,
    request: &ClientRequest<'_>,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let failure = OAuthError::InvalidClient { basic: credentials.is_basic() };
    match metadata_document::load(state, &credentials.client_id, request.ip, now).await {
        Ok(()) => {}
        Err(DocumentError::Internal(err)) => return Err(err.into()),
        Err(err) => {
            tracing::info!(client_id = %credentials.client_id, why = %err, "client metadata document not usable");
            return Err(failure);
        }
    }
    let found = state.store.client(&credentials.client_id).await?;
    let client = found.as_ref().map(|stored| &stored.client);
    let ok = match (&credentials.offered, client) {
        (Offered::Secret(secret, method), _) => {
            let presented_hash = secret::hash(secret.expose());
            let stored_hash = found.as_ref().map_or(&DUMMY_HASH[..], |stored| stored.secret_hash.as_slice());
            let secret_ok = secret::hashes_equal(&presented_hash, stored_hash);
            secret_ok && client.is_some_and(|c| c.auth_method == *method)
        }
        (Offered::Assertion(jwt), Some(client)) if client.auth_method == AuthMethod::PrivateKeyJwt => {
            assertion_ok(state, client, jwt, now).await?
        }
        (Offered::IdOnly, Some(client)) => match (client.auth_method, request.certificate) {
            // A public client has no secret: naming it is all there is (RFC 6749 §2.1).
            (AuthMethod::None, _) => true,
            (AuthMethod::TlsClientAuth, Some(certificate)) => {
                let chained = state.client_ca.as_ref().is_some_and(|ca| ca.verifies(certificate, now));
                chained && client.certificate_identity.as_ref().is_some_and(|id| mtls::carries(certificate.leaf(), id))
            }
            (AuthMethod::SelfSignedTlsClientAuth, Some(certificate)) => {
                let listed = |jwks: &Value| mtls::listed_in(certificate.leaf(), jwks, now);
                match state.client_keys.of(client, false, now).await {
                    Ok(jwks) if listed(&jwks) => true,
                    // The client may have added the certificate since: look again (rate-limited).
                    Ok(_) => state.client_keys.of(client, true, now).await.is_ok_and(|jwks| listed(&jwks)),
                    Err(err) => {
                        tracing::info!(client_id = %client.client_id, err = format!("{err:#}"), "client keys unavailable");
                        false
                    }
                }
            }
            _ => false,
        },
        _ => false,
    };
    match client {
        Some(client) if ok => {
            // A public client is authenticated by its name alone, which anyone can send: its
            // requests spend their address's budgets, not a client's.
            if client.auth_method != AuthMethod::None {
                crate::abuse::authenticated(&client.client_id, client.introspection);
            }
            Ok(client.clone())
        }
        _ => {
            // The id is attacker-chosen: log it escaped (Debug) and bounded.
            let client_id: String = credentials.client_id.chars().take(128).collect();
            tracing::info!(client_id = ?client_id, "client authentication failed");
            Err(failure)
        }
    }
}

/// RFC 7523 §3 checks of a `private_key_jwt` assertion for `client`; the `jti` is spent only
/// when everything else holds.
async fn assertion_ok(state: &AppState, client: &Client, jwt: &str, now: UnixTime) -> Result<bool, OAuthError> {
    let verify = |jwks: &Value| tessera_verify::client_assertion::verify_signature(jwt, jwks, &ASSERTION_ALGS);
    let claims = match state.client_keys.of(client, false, now).await.map(|jwks| verify(&jwks)) {
        Ok(Ok(claims)) => claims,
        Ok(Err(tessera_verify::VerifyError::UnknownKey | tessera_verify::VerifyError::InvalidSignature)) => {
            // A key the client added since the set was fetched: look again (rate-limited).
            match state.client_keys.of(client, true, now).await.map(|jwks| verify(&jwks)) {
                Ok(Ok(claims)) => claims,
                _ => return Ok(false),
            }
        }
        Ok(Err(_)) => return Ok(false),
        Err(err) => {
            tracing::info!(client_id = %client.client_id, err = format!("{err:#}"), "client keys unavailable");
            return Ok(false);
        }
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let number = |name: &str| claims.get(name).map(|v| v.as_u64());
    if text("iss") != Some(&client.client_id) || text("sub") != Some(&client.client_id) {
        return Ok(false);
    }
    let issuer = state.config.issuer.as_str();
    // draft-ietf-oauth-rfc7523bis §5 (CVE-2025-27370/27371): the audience is exactly the
    // issuer identifier, as a single string, for every profile. An endpoint URL or an array
    // would let an assertion made for another server (or another endpoint) be replayed here.
    let aud_ok = matches!(claims.get("aud"), Some(Value::String(aud)) if aud == issuer);
    if !aud_ok {
        return Ok(false);
    }
    let now_secs = now.secs();
    let Some(Some(exp)) = number("exp") else { return Ok(false) };
    if exp.saturating_add(ASSERTION_LEEWAY) <= now_secs || exp > now_secs + ASSERTION_MAX_LIFETIME {
        return Ok(false);
    }
    for name in ["nbf", "iat"] {
        match number(name) {
            None => {}
            Some(Some(t)) if t <= now_secs + ASSERTION_LEEWAY => {}
            Some(_) => return Ok(false),
        }
    }
    let Some(jti) = text("jti").filter(|j| !j.is_empty() && j.len() <= 256) else { return Ok(false) };
    let id = secret::hash(&format!("{}.{jti}", client.client_id));
    if !state.store.spend(SingleUse::ClientAssertion, &id, exp.saturating_add(ASSERTION_LEEWAY)).await? {
        tracing::warn!(client_id = %client.client_id, "client assertion replayed");
        return Ok(false);
    }
    Ok(true)
}

/// Presented and checked in one step; missing credentials are `invalid_client`. Public
/// clients pass.
pub async fn require(
    state: &AppState,
    request: &ClientRequest<'_>,
    form: &Form,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    match presented(request.authorization, form)? {
        Some(credentials) => authenticate(state, credentials, request, now).await,
        None => Err(OAuthError::InvalidClient { basic: true }),
    }
}

/// [`require`] for endpoints that public clients may not use (introspection).
pub async fn require_confidential(
    state: &AppState,
    request: &ClientRequest<'_>,
    form: &Form,
    now: UnixTime,
) -> Result<Client, OAuthError> {
    let client = require(state, request, form, now).await?;
    if client.is_public() {
        return Err(OAuthError::InvalidClient { basic: false });
    }
    Ok(client)
}
