//! Test harness for Tessera: `spawn_app` starts a real server on ephemeral loopback ports with
//! a fresh database and a fixed clock; `TestApp` has one method per endpoint and returns the raw
//! response so that assertions stay in the tests.
//!
//! The database is a fresh SQLite file, or, when `TESSERA_TEST_POSTGRES` names a PostgreSQL
//! database (`postgres://postgres@127.0.0.1:5432/test`), a fresh schema in it, dropped when the
//! test ends. `scripts/test` runs the server suite both ways.

mod app;
mod browser;
mod dpop;
mod pki;
mod postgres;
mod sse;

pub use app::{
    FixedClock, T0, TestApp, TestClient, basic, http_from, install_crypto_provider, spawn_app, spawn_app_at,
    spawn_app_with, spawn_tls_app, spawn_tls_app_at, wall_clock_now,
};
pub use browser::{
    Browser, CHALLENGE, PASSWORD, REDIRECT_URI, VERIFIER, code_request, hidden_field, location, query_param,
};
pub use dpop::{DpopKey, jwt_claims};
pub use pki::{TestCert, TestPki};
pub use postgres::PostgresSchema;
pub use sse::{SseEvent, SseReader};
