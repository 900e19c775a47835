//! `GET /revocations` and `GET /revocations/stream` (Server-Sent Events): the revocation feed
//! (`flows::revocation_feed`) over HTTP.

use std::collections::VecDeque;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Certificate, client_request, no_store};
use crate::AppState;
use crate::flows::error::OAuthError;
use crate::flows::revocation_feed::{self, POLL};
use tessera_proto::feed::RevocationEvent;

#[derive(Deserialize)]
pub(crate) struct After {
    after: Option<u64>,
}

/// Authenticates the reader of a feed request at `path`: a resource server, with its audiences.
async fn reader(
    state: &AppState,
    certificate: &Certificate,
    headers: &HeaderMap,
    path: &str,
) -> Result<Vec<String>, OAuthError> {
    let url = state.config.issuer.join(path);
    let client =
        revocation_feed::reader(state, &client_request(headers, certificate, &url)?, state.clock.now()).await?;
    Ok(client.audience)
}

/// Whether a JWT's header and payload (`header.payload`, as stored for a split token) name an
/// audience among `audiences`: a resource server gets only the tokens addressed to it (#23).
fn addressed_to(header_payload: &str, audiences: &[String]) -> bool {
    use base64::Engine as _;
    let Some(payload) = header_payload.split('.').nth(1) else { return false };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else { return false };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return false };
    match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => audiences.contains(aud),
        Some(serde_json::Value::Array(auds)) => {
            auds.iter().any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|b| b == a)))
        }
        _ => false,
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    certificate: Certificate,
    headers: HeaderMap,
    Query(query): Query<After>,
) -> Response {
    let result = async {
        let audiences = reader(&state, &certificate, &headers, "/revocations").await?;
        revocation_feed::page(&state, query.after.unwrap_or(0), &audiences).await
    }
    .await;
    no_store(match result {
        Ok(page) => Json(page).into_response(),
        Err(err) => err.into_response(),
    })
}

/// `GET /split-tokens/{hash}`: the header and payload of a split token, by base64url SHA-256 of
/// its signature part, for resource servers (gateways) to reassemble and verify the JWT.
pub(crate) async fn split_token(
    State(state): State<AppState>,
    certificate: Certificate,
    headers: HeaderMap,
    axum::extract::Path(hash): axum::extract::Path<String>,
) -> Response {
    use base64::Engine as _;
    let result = async {
        let audiences = reader(&state, &certificate, &headers, "/split-tokens").await?;
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&hash)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| OAuthError::InvalidRequest("not a base64url SHA-256".into()))?;
        let found = state.store.split_token(&hash, state.clock.now().secs()).await?;
        // Another audience's token is as unknown to this caller as no token at all.
        Ok::<_, OAuthError>(found.filter(|header_payload| addressed_to(header_payload, &audiences)))
    }
    .await;
    no_store(match result {
        Ok(Some(header_payload)) => Json(tessera_proto::feed::SplitToken { header_payload }).into_response(),
        Ok(None) => {
            super::error::json_error(axum::http::StatusCode::NOT_FOUND, "not_found", Some("unknown or expired"))
        }
        Err(err) => err.into_response(),
    })
}

/// What a stream still has to send, and where it is.
struct Cursor {
    state: AppState,
    last: u64,
    /// The reader's audiences: it is sent only the events that concern them.
    audiences: Vec<String>,
    pending: VecDeque<RevocationEvent>,
    /// Whether the `caught-up` event (sent once, after the backlog) is still due.
    announce: bool,
    stopping: tokio::sync::watch::Receiver<bool>,
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    certificate: Certificate,
    headers: HeaderMap,
    Query(query): Query<After>,
) -> Response {
    let start = async {
        let audiences = reader(&state, &certificate, &headers, "/revocations/stream").await?;
        // Where to resume: Last-Event-ID (an EventSource reconnecting), `after`, or the head.
        let resume = match headers.get("last-event-id").map(|v| v.to_str().map(str::parse::<u64>)) {
            Some(Ok(Ok(seq))) => Some(seq),
            Some(_) => return Err(OAuthError::InvalidRequest("Last-Event-ID is not an event position".into())),
            None => query.after,
        };
        let last = match resume {
            Some(seq) => seq,
            None => revocation_feed::head(&state).await?,
        };
        Ok::<_, OAuthError>((last, audiences))
    }
    .await;
    let (last, audiences) = match start {
        Ok(start) => start,
        Err(err) => return no_store(err.into_response()),
    };
    let cursor = Cursor {
        stopping: state.stopping.subscribe(),
        state,
        last,
        audiences,
        pending: VecDeque::new(),
        announce: true,
    };
    let events = futures_util::stream::unfold(cursor, |mut cursor| async move {
        loop {
            if let Some(event) = cursor.pending.pop_front() {
                let sse = Event::default()
                    .id(event.seq.to_string())
                    .event("revocation")
                    .json_data(&event)
                    .unwrap_or_else(|_| Event::default().comment("unencodable event"));
                return Some((Ok::<_, std::convert::Infallible>(sse), cursor));
            }
            match cursor.state.store.revocation_events(cursor.last, revocation_feed::PAGE).await {
                Ok(events) if !events.is_empty() => {
                    cursor.last = events.last().map_or(cursor.last, |e| e.seq);
                    let audiences = &cursor.audiences;
                    cursor.pending.extend(events.iter().filter(|e| e.concerns(audiences)).map(|e| e.wire()));
                    continue;
                }
                Ok(_) if cursor.announce => {
                    cursor.announce = false;
                    let ready = Event::default().event("caught-up").data(cursor.last.to_string());
                    return Some((Ok(ready), cursor));
                }
                Ok(_) => {}
                Err(err) => tracing::debug!(err = format!("{err:#}"), "revocation stream cannot read the feed"),
            }
            // Nothing new: look again shortly, or end when the server stops.
            if *cursor.stopping.borrow() {
                return None;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = cursor.stopping.changed() => return None,
            }
        }
    });
    // A comment every 5 s lets readers tell a quiet feed from a dead connection.
    let keep_alive = KeepAlive::new().interval(std::time::Duration::from_secs(5));
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
