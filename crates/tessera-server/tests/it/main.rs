//! Integration tests of the authorization server over real HTTP on loopback, with a fresh
//! SQLite database and a fixed clock per test. One binary, a module per area.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod abuse;
mod admin;
mod api_keys;
mod attacks;
mod audit;
mod client_assertion;
mod device;
mod discovery;
mod dpop;
mod fapi2;
mod introspect;
mod metadata_document;
mod mtls;
mod registration;
mod revocation_feed;
mod revoke;
mod robustness;
mod sign_in;
mod sign_in_attacks;
mod status_list;
mod token;
mod users;
