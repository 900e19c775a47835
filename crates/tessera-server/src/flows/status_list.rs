//! Token Status List (draft-ietf-oauth-status-list), for verifiers that can only pull: every
//! JWT access token carries `status.status_list = {idx, uri}`, and `GET /statuslists/{n}`
//! answers a signed `statuslist+jwt` whose `status_list.lst` is the ZLIB-compressed list of
//! one bit per token (1 = revoked, §4.1 `INVALID`).
//!
//! Indexes are global numbers cut into lists of [`LIST_SIZE`]. A node reserves
//! [`BLOCK_SIZE`](crate::status_index::BLOCK_SIZE) indexes at a time (one database write per block) and hands them out from
//! memory, so issuing a token writes nothing for its status. A revoked token's index rides on
//! its revocation event (`revocation_events.status_idx`, written in the revoking transaction),
//! so a list is exactly what the revocation feed says, and an expired token's bit returns to 0
//! when the janitor drops its event (an index is never handed out twice).
//!
//! What the list cannot show: the client-wide cut-off for tokens that are not under a grant
//! (client_credentials tokens of a deleted client); the revocation feed and introspection carry
//! those.

use std::io::Write as _;

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_proto::UnixTime;

use crate::AppState;

/// Entries per list: 2^17 tokens, 16 KiB of bits before compression.
pub const LIST_SIZE: u64 = 1 << 17;
/// Seconds a verifier may cache a list (`ttl`), and the `Cache-Control` max-age.
pub const TTL: u64 = 60;
/// A list token's lifetime (`exp - iat`).
const VALIDITY: u64 = 600;

fn lists_prefix(state: &AppState) -> String {
    format!("{}/statuslists/", state.config.issuer.as_str().trim_end_matches('/'))
}

fn list_uri(state: &AppState, list: u64) -> String {
    format!("{}{list}", lists_prefix(state))
}

/// The `status` claim for global index `index`.
pub fn claim(state: &AppState, index: u64) -> Value {
    json!({"status_list": {"idx": index % LIST_SIZE, "uri": list_uri(state, index / LIST_SIZE)}})
}

/// The global index a token's `status` claim names, when it names one of this issuer's lists.
pub fn index_of(state: &AppState, claims: &serde_json::Map<String, Value>) -> Option<u64> {
    let reference = claims.get("status")?.get("status_list")?;
    let idx = reference.get("idx")?.as_u64()?;
    let uri = reference.get("uri")?.as_str()?;
    let list: u64 = uri.strip_prefix(&lists_prefix(state))?.parse().ok()?;
    (idx < LIST_SIZE).then(|| list * LIST_SIZE + idx)
}

/// The signed status list token of list `list`; `None` for a list no index was handed out of.
pub async fn token(state: &AppState, list: u64, now: UnixTime) -> anyhow::Result<Option<String>> {
    let reserved = state.store.status_blocks().await?.saturating_mul(crate::status_index::BLOCK_SIZE);
    if list.saturating_mul(LIST_SIZE) >= reserved {
        return Ok(None);
    }
    let from = list * LIST_SIZE;
    let mut bits = vec![0u8; usize::try_from(LIST_SIZE / 8)?];
    for index in state.store.revoked_status_indexes(from, from + LIST_SIZE, now.secs()).await? {
        let offset = usize::try_from(index - from)?;
        // §4.1: one bit per token, the first token in the least significant bit of byte 0.
        bits[offset / 8] |= 1 << (offset % 8);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&bits)?;
    let lst = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(zlib.finish()?);
    let claims = json!({
        "iss": state.config.issuer.as_str(),
        "sub": list_uri(state, list),
        "iat": now.secs(),
        "exp": now.secs() + VALIDITY,
        "ttl": TTL,
        "status_list": {"bits": 1, "lst": lst},
    });
    let signed = state.keys.current().signing.sign_jws_typed("statuslist+jwt", &serde_json::to_vec(&claims)?)?;
    Ok(Some(signed))
}
