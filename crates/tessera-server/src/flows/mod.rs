//! Protocol flows: plain functions of `(state, request, now)`. No HTTP types, no status codes.

pub mod admin;
pub mod api_keys;
pub mod authorize;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod introspect;
pub(crate) mod metadata_document;
pub mod pending;
pub(crate) mod registration;
pub mod revocation_feed;
pub mod revoke;
pub mod session;
pub mod status_list;
pub mod userinfo;
