//! The device authorization grant (RFC 8628), the device's and the person's sides: `POST
//! /device_authorization` hands a device a device code and a user code; at `/device` a
//! signed-in person types the user code, sees the client and its scopes, and allows or denies.
//! The device then polls `/token` (`grants::device_code`).
//!
//! Who can reach it without credentials, and what they can make the server do:
//! - `/device_authorization`: anyone may name a public client that may use the grant; each
//!   address may start [`crate::abuse::DEVICE_AUTHORIZATIONS`] at once, then one every three
//!   seconds; each code is a row that lives [`DEVICE_CODE_TTL`] and is deleted when it expires.
//! - `/device`: nothing without signing in. Signed in, a wrong user code counts against the
//!   address and the account ([`crate::abuse::USER_CODE_GUESSES`] at once, then one every 30 s):
//!   with 20^8 codes and at most a few thousand live ones, a guess succeeds about once in ten
//!   million tries. A found code only lets the guesser approve someone else's device for their
//!   *own* account (the person who approves is who the tokens are for), never take over the
//!   device owner's account.

use tessera_proto::UnixTime;
use tessera_proto::token::DeviceAuthorizationResponse;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::{Client, GrantType};
use crate::flows::authorize::SignedIn;
use crate::flows::client_auth::{self, ClientRequest};
use crate::flows::error::OAuthError;
use crate::form::Form;
use crate::grants::issue::select_audience;
use crate::scope::Scope;
use crate::secret::{self, USER_CODE_ALPHABET};
use crate::store::{Approval, DeviceCodeRow};

/// Seconds a device code lives (RFC 8628 §3.2 `expires_in`).
pub const DEVICE_CODE_TTL: u64 = 600;
/// The first polling interval, in seconds.
pub const INTERVAL: u64 = 5;
/// The prefix of device codes.
const DEVICE_CODE_PREFIX: &str = "tdc_";

/// `POST /device_authorization` (RFC 8628 §3.1–3.2).
pub async fn start(
    state: &AppState,
    request: &ClientRequest<'_>,
    form: &Form,
    ip: Option<String>,
    now: UnixTime,
) -> Result<DeviceAuthorizationResponse, OAuthError> {
    let client = client_auth::require(state, request, form, now).await?;
    if !client.may_use(GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the device authorization grant"));
    }
    let scope = Scope::parse(form.get("scope").unwrap_or(""))
        .map_err(|_| OAuthError::InvalidScope("scope is not a space-separated list of scope tokens"))?;
    if !scope.is_subset(&client.scope) {
        return Err(OAuthError::InvalidScope("the requested scope exceeds what the client may request"));
    }
    select_audience(&client, form.resources())?;
    let mut resources: Vec<String> = Vec::new();
    for resource in form.resources() {
        if !resources.contains(resource) {
            resources.push(resource.clone());
        }
    }
    let device_code = secret::new_credential(DEVICE_CODE_PREFIX);
    let mut row = DeviceCodeRow {
        device_code_hash: secret::hash(device_code.expose()),
        user_code: String::new(),
        client_id: client.client_id.clone(),
        scope: scope.to_string(),
        resources,
        created_at: now.secs(),
        expires_at: now.plus(DEVICE_CODE_TTL).secs(),
        interval_secs: INTERVAL,
        polled_at: None,
        status: "pending".into(),
        user_id: None,
        session_id: None,
        auth_time: None,
    };
    // A user code is unique among stored ones; a collision (about one in ten million per live
    // code) draws again.
    let mut attempts = 0;
    loop {
        row.user_code = secret::user_code();
        let mut record = Record::new(Event::DeviceCodeIssued, now.secs(), format!("client:{}", client.client_id))
            .client(&client.client_id)
            .detail("scope", &row.scope);
        record.ip = ip.clone();
        match state.store.insert_device_code(&row, record).await {
            Ok(()) => break,
            Err(_) if attempts < 3 && state.store.device_code_by_user_code(&row.user_code).await?.is_some() => {
                attempts += 1;
            }
            Err(err) => return Err(err.into()),
        }
    }
    let user_code = display(&row.user_code);
    let verification_uri = state.config.issuer.join("/device");
    Ok(DeviceAuthorizationResponse {
        device_code: device_code.expose().to_owned(),
        verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
        user_code,
        verification_uri,
        expires_in: DEVICE_CODE_TTL,
        interval: INTERVAL,
    })
}

/// `XXXX-XXXX`.
pub fn display(user_code: &str) -> String {
    format!("{}-{}", &user_code[..4.min(user_code.len())], &user_code[4.min(user_code.len())..])
}

/// The user code as stored, from what a person typed: case, dashes and spaces do not matter;
/// `None` when it cannot be a user code at all.
pub fn normalize(typed: &str) -> Option<String> {
    let code: String = typed.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == 8 && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

/// Why a typed user code leads nowhere.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Unknown, used, expired, or not a user code: the page says so, the same for all.
    #[error("unknown user code")]
    Unknown,
    #[error("internal")]
    Internal(#[from] anyhow::Error),
}

/// The pending request a typed user code names, with its client.
pub async fn pending(state: &AppState, typed: &str, now: UnixTime) -> Result<(DeviceCodeRow, Client), DeviceError> {
    let code = normalize(typed).ok_or(DeviceError::Unknown)?;
    let row = state.store.device_code_by_user_code(&code).await?.ok_or(DeviceError::Unknown)?;
    if row.status != "pending" || row.expires_at <= now.secs() {
        return Err(DeviceError::Unknown);
    }
    let client = state.store.client(&row.client_id).await?.ok_or(DeviceError::Unknown)?.client.clone();
    Ok((row, client))
}

/// The person's answer: `allow` approves the code for them (the device's tokens will be theirs),
/// otherwise it is denied. `Unknown` when the code was answered, or expired, meanwhile.
pub async fn decide(
    state: &AppState,
    typed: &str,
    signed_in: &SignedIn,
    allow: bool,
    now: UnixTime,
) -> Result<Client, DeviceError> {
    let (row, client) = pending(state, typed, now).await?;
    let record = Record::new(Event::DeviceCodeDecided, now.secs(), format!("user:{}", signed_in.user.id))
        .subject(&signed_in.user.id)
        .client(&client.client_id)
        .session(Some(&signed_in.session.id))
        .detail("decision", if allow { "allow" } else { "deny" })
        .detail("scope", &row.scope);
    let approval = allow.then(|| Approval {
        user_id: &signed_in.user.id,
        session_id: &signed_in.session.id,
        auth_time: signed_in.session.auth_time,
    });
    if !state.store.decide_device_code(&row.user_code, approval, now.secs(), record).await? {
        return Err(DeviceError::Unknown);
    }
    tracing::info!(client_id = %client.client_id, allow, "device code answered");
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_consonants_and_typing_is_forgiving() {
        for _ in 0..1000 {
            let code = secret::user_code();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)), "{code}");
            assert_eq!(normalize(&display(&code)).as_deref(), Some(code.as_str()));
            assert_eq!(normalize(&display(&code).to_lowercase()).as_deref(), Some(code.as_str()));
        }
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "BCDF-GHJA", "BCDF GHJ1", "ÄBCD-FGHJ"] {
            assert!(normalize(bad).is_none(), "{bad}");
        }
    }
}
