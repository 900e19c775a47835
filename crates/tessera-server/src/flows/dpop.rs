//! DPoP at the authorization server (RFC 9449): proofs at the token and PAR endpoints and at
//! `/userinfo`, server nonces, and single use of every proof across the whole cluster.
//!
//! `tessera_verify::dpop::verify_proof` makes the §4.3 checks of one proof; this module adds
//! what only the server knows: which algorithms its clients may use, whether the client must
//! send a proof and a nonce, and whether the proof was seen before (a row in `dpop_proofs`,
//! inserted once by whichever node sees the proof first).
//!
//! Nonces are stateless, so every node that shares the master key accepts every other node's:
//! `base64url(window ‖ HMAC(key, window)[..16])` for the current 60-second window, accepted for
//! five windows.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tessera_proto::UnixTime;
use tessera_verify::VerifyError;
use tessera_verify::dpop::{DpopPolicy, DpopRequest, VerifiedProof};

use crate::AppState;
use crate::client::{Client, Profile};
use crate::flows::error::OAuthError;
use crate::secret;
use crate::store::SingleUse;

/// Algorithms a DPoP proof may use (`dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 4] = ["ES256", "EdDSA", "PS256", "RS256"];

/// Length of one nonce window, in seconds.
const NONCE_WINDOW: u64 = 60;
/// How many windows a nonce stays good for (the current one and the ones before it).
const NONCE_WINDOWS: u64 = 5;

/// A request's `DPoP` header and what its proof must match.
#[derive(Debug, Clone, Copy)]
pub struct PresentedProof<'a> {
    /// The request's one `DPoP` header, if it has one.
    pub proof: Option<&'a str>,
    /// The request method.
    pub method: &'a str,
    /// The URL the client addressed: the issuer joined with the endpoint's path.
    pub url: &'a str,
}

/// The proof policy for `client`: FAPI 2.0 clients may not use RS256 (DP-13).
pub fn policy(client: &Client) -> DpopPolicy {
    match client.profile {
        Profile::Fapi2 => DpopPolicy::fapi2(),
        Profile::Default => DpopPolicy { algorithms: ALGS.to_vec(), ..DpopPolicy::default() },
    }
}

/// The nonce to send in `DPoP-Nonce` now.
pub fn current_nonce(state: &AppState, now: UnixTime) -> String {
    nonce_for_window(&state.dpop_nonce_key, now.secs() / NONCE_WINDOW)
}

fn nonce_for_window(key: &hmac::Key, window: u64) -> String {
    let tag = hmac::sign(key, &window.to_be_bytes());
    let mut bytes = window.to_be_bytes().to_vec();
    bytes.extend_from_slice(&tag.as_ref()[..16]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `nonce` is one this cluster issued within the last [`NONCE_WINDOWS`] windows.
fn nonce_is_current(state: &AppState, nonce: &str, now: UnixTime) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else { return false };
    let Ok(window) = <[u8; 8]>::try_from(&bytes[..bytes.len().min(8)]) else { return false };
    let window = u64::from_be_bytes(window);
    let current = now.secs() / NONCE_WINDOW;
    if bytes.len() != 24 || window > current || current - window >= NONCE_WINDOWS {
        return false;
    }
    // Recompute and compare in constant time.
    secret::hashes_equal(nonce_for_window(&state.dpop_nonce_key, window).as_bytes(), nonce.as_bytes())
}

/// The checks of RFC 9449 §4.3 on one proof, without spending it.
fn check(
    state: &AppState,
    proof: &str,
    request: &DpopRequest<'_>,
    policy: &DpopPolicy,
    now: UnixTime,
) -> Result<VerifiedProof, OAuthError> {
    tessera_verify::dpop::verify_proof(proof, request, policy, now).map_err(|err| match err {
        VerifyError::InvalidDpopProof(why) => OAuthError::InvalidDpopProof(why),
        VerifyError::UseDpopNonce => OAuthError::UseDpopNonce(current_nonce(state, now)),
        _ => OAuthError::InvalidDpopProof("the proof is invalid"),
    })
}

/// Checks one proof for one request (RFC 9449 §4.3) and records its `jti` as used, so the same
/// proof is refused on every node afterwards.
pub async fn prove(
    state: &AppState,
    proof: &str,
    request: &DpopRequest<'_>,
    policy: &DpopPolicy,
    now: UnixTime,
) -> Result<VerifiedProof, OAuthError> {
    let verified = check(state, proof, request, policy, now)?;
    let mut id = Vec::with_capacity(verified.jkt.len() + verified.jti.len() + 1);
    id.extend(verified.jkt.as_bytes());
    id.push(b'.');
    id.extend(verified.jti.as_bytes());
    let until = verified.iat.saturating_add(policy.max_age).saturating_add(policy.leeway).max(now.secs());
    if !state.store.spend(SingleUse::DpopProof, &secret::hash_bytes(&id), until).await? {
        return Err(OAuthError::InvalidDpopProof("the proof was used before"));
    }
    Ok(verified)
}

/// The DPoP key of a token or PAR request from `client`: `None` without a proof (refused for a
/// client registered with `dpop_bound_access_tokens`), otherwise the thumbprint of the key the
/// proof was made with. A client registered with `dpop_nonce_required` must include the
/// current nonce.
pub async fn client_key(
    state: &AppState,
    client: &Client,
    presented: &PresentedProof<'_>,
    now: UnixTime,
) -> Result<Option<String>, OAuthError> {
    if presented.proof.is_none() && client.dpop_bound {
        return Err(OAuthError::InvalidDpopProof("this client must send a DPoP proof"));
    }
    proof_key(state, client, presented, now).await
}

/// The key of an optional proof (PAR, RFC 9449 §10.1): `None` without one; with one, the same
/// checks as [`client_key`].
pub async fn proof_key(
    state: &AppState,
    client: &Client,
    presented: &PresentedProof<'_>,
    now: UnixTime,
) -> Result<Option<String>, OAuthError> {
    let Some(proof) = presented.proof else { return Ok(None) };
    let request = DpopRequest { method: presented.method, url: presented.url, access_token: None, nonce: None };
    let policy = policy(client);
    // The nonce first: a proof without it must not be spent, or the client's retry would be a replay.
    if client.dpop_nonce_required {
        let nonce = peek_nonce(proof);
        if !nonce.is_some_and(|n| nonce_is_current(state, &n, now)) {
            // Still refuse a proof that is bad for other reasons as such.
            check(state, proof, &request, &policy, now)?;
            return Err(OAuthError::UseDpopNonce(current_nonce(state, now)));
        }
    }
    Ok(Some(prove(state, proof, &request, &policy, now).await?.jkt))
}

/// The key of an optional proof sent without client authentication (an API key's token
/// exchange): the default policy, no nonce; the `jti` is spent like any proof's.
pub async fn unauthenticated_proof_key(
    state: &AppState,
    presented: &PresentedProof<'_>,
    now: UnixTime,
) -> Result<Option<String>, OAuthError> {
    let Some(proof) = presented.proof else { return Ok(None) };
    let request = DpopRequest { method: presented.method, url: presented.url, access_token: None, nonce: None };
    let policy = DpopPolicy { algorithms: ALGS.to_vec(), ..DpopPolicy::default() };
    Ok(Some(prove(state, proof, &request, &policy, now).await?.jkt))
}

/// The `nonce` claim of a proof, read without verifying anything (the proof is verified next).
fn peek_nonce(proof: &str) -> Option<String> {
    let payload = proof.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

/// `dpop_jkt` (RFC 9449 §10): an RFC 7638 SHA-256 thumbprint, 43 base64url characters.
pub fn is_thumbprint(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_roll_over_windows() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
        let a = nonce_for_window(&key, 10);
        assert_eq!(a, nonce_for_window(&key, 10));
        assert_ne!(a, nonce_for_window(&key, 11));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 24);
    }

    #[test]
    fn thumbprints_are_43_base64url_characters() {
        assert!(is_thumbprint("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
        assert!(!is_thumbprint("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4"));
        assert!(!is_thumbprint("0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
    }
}
