//! The revocation feed for resource servers and gateways (`store::feed` holds the events):
//! `GET /revocations?after=N` returns the events after position `N`; `GET /revocations/stream`
//! is the same as Server-Sent Events that stay open, resumable with `Last-Event-ID`.
//!
//! Readers are confidential clients registered with `introspection: true`, and each reads only
//! the events that concern its audiences (`store::feed`'s `aud`). Events are read
//! from the database, so a stream on any node carries revocations made on every node; a stream
//! looks for new events every 200 ms, which keeps revocation-to-gateway latency well under a
//! second.

use std::time::Duration;

use tessera_proto::UnixTime;
use tessera_proto::feed::FeedPage;

use crate::AppState;
use crate::client::Client;
use crate::flows::client_auth::{self, ClientRequest};
use crate::flows::error::OAuthError;
use crate::form::Form;

/// Most events in one answer (or one read of a stream).
pub const PAGE: u32 = 500;
/// How often a stream looks for new events.
pub const POLL: Duration = Duration::from_millis(200);

/// Authenticates a reader of the feed: a confidential client registered as a resource server.
pub async fn reader(state: &AppState, request: &ClientRequest<'_>, now: UnixTime) -> Result<Client, OAuthError> {
    let form = Form::parse(b"").map_err(|e| OAuthError::InvalidRequest(e.0))?;
    let client = client_auth::require_confidential(state, request, &form, now).await?;
    if !client.introspection {
        return Err(OAuthError::UnauthorizedClient(
            "only resource servers (introspection: true) read the revocation feed",
        ));
    }
    Ok(client)
}

/// The events after `after` that concern `audiences` (the reader's). `last` is the last event
/// read, shown or not, so a reader never reads past others' events twice.
pub async fn page(state: &AppState, after: u64, audiences: &[String]) -> Result<FeedPage, OAuthError> {
    let events = state.store.revocation_events(after, PAGE).await?;
    let last = events.last().map_or(after, |e| e.seq);
    let more = events.len() == PAGE as usize;
    let events = events.iter().filter(|e| e.concerns(audiences)).map(|e| e.wire()).collect();
    Ok(FeedPage { events, last, more })
}

/// Where a stream without `Last-Event-ID` or `after` starts: the current head (new events only).
pub async fn head(state: &AppState) -> Result<u64, OAuthError> {
    Ok(state.store.revocation_head().await?)
}
