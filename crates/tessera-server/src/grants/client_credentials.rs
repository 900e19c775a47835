//! `grant_type=client_credentials` (RFC 6749 §4.4): the client acts on its own behalf.

use tessera_proto::UnixTime;
use tessera_proto::token::TokenResponse;

use super::issue::{Binding, Grant, issue, narrowed_scope, select_audience};
use crate::AppState;
use crate::client::{Client, GrantType};
use crate::flows::error::OAuthError;
use crate::form::Form;

/// RFC 6749 §4.4: the client acts on its own behalf; `sub` is its client id.
pub(crate) async fn grant(
    state: &AppState,
    client: &Client,
    form: &Form,
    binding: &Binding,
    now: UnixTime,
) -> Result<TokenResponse, OAuthError> {
    if !client.may_use(GrantType::ClientCredentials) {
        return Err(OAuthError::UnauthorizedClient("this client may not use client_credentials"));
    }
    let scope = narrowed_scope(form, &client.scope, "the requested scope exceeds what the client was granted")?;
    let audience = select_audience(client, form.resources())?;
    let cnf = binding.cnf();
    issue(
        state,
        Grant {
            grant_type: "client_credentials",
            client,
            sub: &client.client_id,
            scope,
            audience,
            grant_id: None,
            cnf,
            sid: None,
        },
        now,
    )
    .await
}
