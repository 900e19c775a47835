//! Pending authorization requests of browsers nobody is signed in to live in the browser, not
//! in the database (#23, docs/threat-model.md T-08). Such a request's interaction handle (the
//! `request` of `/login?request=…`) is the request itself, sealed: AES-256-GCM under a key
//! derived from the master key (so any node opens it), bound to the browser cookie's hash and
//! expiring with the interaction. A stranger's `GET /authorize` therefore writes nothing. Once
//! the person has signed in, [`crate::flows::authorize::after_login`] writes the row (with the
//! new session) under a fresh stored handle, and the interaction goes on from there.
//!
//! A sealed handle is not single-use: replaying it in the same browser only shows the login
//! page again, like revisiting the client's `/authorize` link; codes stay single-use because
//! they are issued from stored rows only.

use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::secret;
use crate::store::AuthRequestRow;

/// What every sealed handle starts with; stored handles (random base64url) never contain a dot.
const PREFIX: &str = "s.";
/// Binds the ciphertext to this use of the key.
const AAD: &[u8] = b"tessera pending authorization request v1";
/// The longest sealed handle accepted (a request's parameters are a few hundred bytes).
const MAX_LEN: usize = 8 * 1024;

/// The sealed part of a pending request.
#[derive(Serialize, Deserialize)]
struct Sealed {
    client_id: String,
    params: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    par_hash: Option<String>,
    browser_hash: String,
    created_at: u64,
    expires_at: u64,
}

/// Whether `handle` is a sealed request (else it names a stored row).
pub fn is_sealed(handle: &str) -> bool {
    handle.starts_with(PREFIX)
}

/// Seals a pending interaction's row (which must be bound to a browser) into a handle.
pub fn seal(state: &AppState, row: &AuthRequestRow) -> anyhow::Result<String> {
    let browser_hash = row.browser_hash.ok_or_else(|| anyhow::anyhow!("a sealed request needs a browser"))?;
    let sealed = Sealed {
        client_id: row.client_id.clone(),
        params: row.params.clone(),
        par_hash: row.par_hash.map(|h| URL_SAFE_NO_PAD.encode(h)),
        browser_hash: URL_SAFE_NO_PAD.encode(browser_hash),
        created_at: row.created_at,
        expires_at: row.expires_at,
    };
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| anyhow::anyhow!("random number generator failed"))?;
    let mut bytes = serde_json::to_vec(&sealed)?;
    state
        .pending_key
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut bytes)
        .map_err(|_| anyhow::anyhow!("sealing failed"))?;
    let mut handle = String::with_capacity(PREFIX.len() + (NONCE_LEN + bytes.len()) * 4 / 3 + 4);
    handle.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string([nonce.as_slice(), &bytes].concat(), &mut handle);
    Ok(handle)
}

/// Opens a sealed handle: the row it stands for (not yet stored, so never PAR, consumed or
/// signed in), or `None` for anything this server did not seal. Expiry and the browser binding
/// are the caller's to check, as for a stored row.
pub fn open(state: &AppState, handle: &str) -> Option<AuthRequestRow> {
    let encoded = handle.strip_prefix(PREFIX)?;
    if handle.len() > MAX_LEN {
        return None;
    }
    let mut bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&bytes[..NONCE_LEN]).ok()?;
    let plain = state.pending_key.open_within(nonce, Aad::from(AAD), &mut bytes, NONCE_LEN..).ok()?;
    let sealed: Sealed = serde_json::from_slice(plain).ok()?;
    let hash32 = |text: &str| -> Option<[u8; 32]> { URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok() };
    Some(AuthRequestRow {
        handle_hash: secret::hash(handle),
        client_id: sealed.client_id,
        params: sealed.params,
        par: false,
        par_hash: match &sealed.par_hash {
            Some(text) => Some(hash32(text)?),
            None => None,
        },
        browser_hash: Some(hash32(&sealed.browser_hash)?),
        login_session_id: None,
        created_at: sealed.created_at,
        expires_at: sealed.expires_at,
        consumed_at: None,
    })
}
