//! `/device` (RFC 8628 §3.3): a signed-in person types the code their device shows, checks the
//! application and what it asks for, and allows or denies. Not signed in, the page sends them to
//! `/login`, which comes back here with the code kept. Wrong codes are throttled per address and
//! per account (`flows::device`).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use minijinja::context;

use super::{ClientIp, Cookies, current, describe, error_page, page_form, query_form, render, see_other, unavailable};
use crate::AppState;
use crate::client::Client;
use crate::flows::authorize::SignedIn;
use crate::flows::device::{self, DeviceError};
use crate::flows::session;
use crate::scope::Scope;
use crate::store::DeviceCodeRow;

/// `GET /device[?user_code=…]`.
pub(super) async fn page(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let now = state.clock.now();
    let form = match query_form(query.as_deref()) {
        Ok(form) => form,
        Err(message) => return error_page(&state, StatusCode::BAD_REQUEST, &message),
    };
    // Only a well-formed code travels through the login page.
    let typed = form.get("user_code").and_then(device::normalize);
    let signed_in = match current(&state, &Cookies::read(&state, &headers), now).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => {
            let request = typed.map_or_else(|| "device".to_owned(), |code| format!("device:{code}"));
            return see_other(&format!("/login?request={request}"));
        }
        Err(response) => return response,
    };
    match typed {
        // The code came in the link (`verification_uri_complete`): the person still compares it
        // with the device's screen on the confirmation page (§5.4).
        Some(code) => match device::pending(&state, &code, now).await {
            Ok((row, client)) => confirm(&state, &signed_in, &row, &client),
            Err(DeviceError::Unknown) => enter(&state, &signed_in, StatusCode::OK, Some(UNKNOWN)),
            Err(DeviceError::Internal(err)) => unavailable(&state, err),
        },
        None => enter(&state, &signed_in, StatusCode::OK, None),
    }
}

const UNKNOWN: &str = "That code is not valid. Check the code on your device; it may have expired.";

/// `POST /device`: the typed code.
pub(super) async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let (signed_in, form) = match signed_in_form(&state, &headers, &body, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let keys = [
        format!("user-code:{}", ip.map_or_else(|| "?".to_owned(), crate::abuse::address_key)),
        format!("user-code:user:{}", signed_in.user.id),
    ];
    if keys.iter().any(|k| state.abuse.user_code_guesses.blocked(k).is_some()) {
        let message = "Too many wrong codes. Please wait a moment and try again.";
        return enter(&state, &signed_in, StatusCode::TOO_MANY_REQUESTS, Some(message));
    }
    match device::pending(&state, form.get("user_code").unwrap_or(""), now).await {
        Ok((row, client)) => confirm(&state, &signed_in, &row, &client),
        Err(DeviceError::Unknown) => {
            for key in &keys {
                state.abuse.user_code_guesses.failed(key);
            }
            enter(&state, &signed_in, StatusCode::BAD_REQUEST, Some(UNKNOWN))
        }
        Err(DeviceError::Internal(err)) => unavailable(&state, err),
    }
}

/// `POST /device/decide`: allow or deny.
pub(super) async fn decide(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = state.clock.now();
    let (signed_in, form) = match signed_in_form(&state, &headers, &body, now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let allow = form.get("decision") == Some("allow");
    match device::decide(&state, form.get("user_code").unwrap_or(""), &signed_in, allow, now).await {
        Ok(client) => {
            let ctx = context! { step => "done", allowed => allow, client_name => client.display_name() };
            render(&state, StatusCode::OK, "device.html", ctx)
        }
        Err(DeviceError::Unknown) => enter(&state, &signed_in, StatusCode::BAD_REQUEST, Some(UNKNOWN)),
        Err(DeviceError::Internal(err)) => unavailable(&state, err),
    }
}

/// The signed-in person and a form whose CSRF token is bound to their session.
async fn signed_in_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    now: tessera_proto::UnixTime,
) -> Result<(SignedIn, crate::form::Form), Response> {
    let form = page_form(headers, body).map_err(|message| error_page(state, StatusCode::BAD_REQUEST, &message))?;
    let signed_in = current(state, &Cookies::read(state, headers), now)
        .await?
        .ok_or_else(|| error_page(state, StatusCode::FORBIDDEN, "You are not signed in."))?;
    if !session::csrf_ok(state, "device", &[&signed_in.session.id], form.get("csrf_token")) {
        return Err(error_page(state, StatusCode::FORBIDDEN, "The form expired. Please go back and try again."));
    }
    Ok((signed_in, form))
}

fn enter(state: &AppState, signed_in: &SignedIn, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = session::csrf_token(state, "device", &[&signed_in.session.id]);
    let ctx = context! { step => "enter", csrf_token => csrf, username => &signed_in.user.username, error => error };
    render(state, status, "device.html", ctx)
}

fn confirm(state: &AppState, signed_in: &SignedIn, row: &DeviceCodeRow, client: &Client) -> Response {
    let csrf = session::csrf_token(state, "device", &[&signed_in.session.id]);
    let scopes: Vec<minijinja::Value> = Scope::parse(&row.scope)
        .unwrap_or_default()
        .iter()
        .map(|s| context! { name => s, description => describe(s) })
        .collect();
    let ctx = context! {
        step => "confirm", csrf_token => csrf, username => &signed_in.user.username,
        user_code => device::display(&row.user_code), client_name => client.display_name(),
        unverified => client.origin.is_registered(), scopes => scopes,
    };
    render(state, StatusCode::OK, "device.html", ctx)
}
