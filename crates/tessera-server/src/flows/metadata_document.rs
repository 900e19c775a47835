//! Clients described by a client ID metadata document (draft-ietf-oauth-client-id-metadata-
//! document): when `/authorize`, `/par`, `/token` (or any endpoint that authenticates a client)
//! sees a `client_id` that is an https URL, [`load`] makes sure a current copy of that document
//! is stored as a client (origin `metadata_document`) before the client is looked up; from there
//! on it is a client like any other (grants, tokens, sessions, revocation, audit).
//!
//! Who can reach it without credentials, and what they can make the server do:
//! - fetch a URL they name, through `crate::outbound` (https, no special-purpose address, no
//!   redirect, 5 KB, 5 s): only on a cache miss, and each address at most
//!   [`crate::abuse::DOCUMENT_FETCHES`] times at once, then one every six seconds; a failed URL
//!   is not fetched again for a minute;
//! - store a client: only from a document that passes the open-registration policy
//!   (`flows::registration::client_of`), its `client_id` equal to the URL, no `client_secret`,
//!   never over [`crate::flows::registration::MAX_UNUSED`] unused self-described or
//!   self-registered clients, and deleted by the janitor when never used within
//!   `registration_expiry`;
//! - nothing else: a document never replaces a client the administrator or a registration made.
//!
//! A document is used for its `Cache-Control: max-age` (5 minutes to 24 hours), then fetched
//! again and the stored client updated when it changed.

use std::net::IpAddr;

use tessera_proto::UnixTime;

use crate::AppState;
use crate::audit::{Event, Record};
use crate::client::ClientOrigin;
use crate::flows::registration::{self, MAX_UNUSED};
use crate::metadata_documents::ClientIdUrl;
use crate::secret;

/// Why a client id URL's document cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DocumentError {
    /// The URL, the fetch or the document was refused; the reason is safe to show.
    #[error("{0}")]
    Refused(String),
    /// This address fetched too many documents; seconds to wait.
    #[error("too many client metadata documents fetched from this address")]
    TooMany(u64),
    #[error("internal")]
    Internal(#[from] anyhow::Error),
}

/// Makes sure the client named by `client_id`, when it is a metadata document URL, is stored
/// and current. Any other client id passes untouched (and is looked up as usual).
pub(crate) async fn load(
    state: &AppState,
    client_id: &str,
    ip: Option<IpAddr>,
    now: UnixTime,
) -> Result<(), DocumentError> {
    if !state.config.client_id_metadata_documents {
        return Ok(());
    }
    let documents = &state.metadata_documents;
    let url = match documents.classify(client_id) {
        ClientIdUrl::NotAUrl => return Ok(()),
        ClientIdUrl::Invalid(why) => return Err(DocumentError::Refused(why.into())),
        ClientIdUrl::Valid(url) => url,
    };
    let stored = state.store.client(client_id).await?;
    match &stored {
        // Made by the administrator or a registration under this id: never from a document.
        Some(s) if s.client.origin != ClientOrigin::MetadataDocument => return Ok(()),
        Some(_) if documents.is_fresh(client_id, now.secs()) => return Ok(()),
        _ => {}
    }
    if let Some(why) = documents.recent_failure(client_id, now.secs()) {
        return Err(DocumentError::Refused(why.to_string()));
    }
    let key = format!("cimd:{}", ip.map_or_else(|| "?".to_owned(), crate::abuse::address_key));
    if let Some(wait) = state.abuse.document_fetches.blocked(&key) {
        return Err(DocumentError::TooMany(wait));
    }
    state.abuse.document_fetches.failed(&key);
    let (document, ttl) = match documents.fetch(&url).await {
        Ok(fetched) => fetched,
        Err(err) => {
            let why = format!("the client metadata document could not be fetched: {err:#}");
            tracing::info!(client_id, why, "client metadata document refused");
            documents.remember_failure(client_id, now.secs(), &why);
            return Err(DocumentError::Refused(why));
        }
    };
    let client = match checked(state, client_id, document, now) {
        Ok(client) => client,
        Err(why) => {
            let why = format!("the client metadata document is not acceptable: {why}");
            tracing::info!(client_id, why, "client metadata document refused");
            documents.remember_failure(client_id, now.secs(), &why);
            return Err(DocumentError::Refused(why));
        }
    };
    let record = |event| {
        let mut record = Record::new(event, now.secs(), "anonymous")
            .client(client_id)
            .detail("origin", ClientOrigin::MetadataDocument.as_str())
            .detail("redirect_uris", &client.redirect_uris)
            .detail("scope", client.scope.to_string());
        record.ip = ip.map(|ip| ip.to_string());
        record
    };
    match stored {
        Some(stored) => {
            let mut client = client.clone();
            client.created_at = stored.client.created_at;
            if client.info(None) != stored.client.info(None) {
                let record = record(Event::ClientRegistrationManaged).detail("action", "document_changed");
                state.store.replace_client(&client, record).await?;
            }
        }
        None => {
            if state.store.unused_registrations().await? >= MAX_UNUSED {
                tracing::warn!(limit = MAX_UNUSED, "client metadata document refused: too many unused clients");
                return Err(DocumentError::TooMany(60));
            }
            let unused_secret = secret::hash(&secret::random_b64(32));
            if let Err(err) =
                state.store.insert_client(&client, &unused_secret, None, record(Event::ClientRegistered)).await
            {
                // Another request stored the same document first.
                if state.store.client(client_id).await?.is_none() {
                    return Err(err.into());
                }
            }
            tracing::info!(client_id, "client described by its metadata document");
        }
    }
    documents.remember_fresh(client_id, now.secs().saturating_add(ttl));
    Ok(())
}

/// The client a document describes, under the open-registration policy; why not.
fn checked(
    state: &AppState,
    client_id: &str,
    document: tessera_proto::registration::RegistrationRequest,
    now: UnixTime,
) -> Result<crate::client::Client, String> {
    if document.client_id.as_deref() != Some(client_id) {
        return Err("its client_id is not the URL it was fetched from".into());
    }
    if document.client_secret.is_some() || document.other.contains_key("client_secret_expires_at") {
        return Err("a client metadata document has no client_secret".into());
    }
    if document.token_endpoint_auth_method.as_deref().is_some_and(|m| m.starts_with("client_secret")) {
        return Err("token_endpoint_auth_method: none or private_key_jwt".into());
    }
    if document.redirect_uris.as_ref().is_none_or(Vec::is_empty) {
        return Err("redirect_uris: at least one".into());
    }
    registration::client_of(state, client_id.to_owned(), ClientOrigin::MetadataDocument, document, now)
        .map_err(|err| err.description().unwrap_or_default())
}
