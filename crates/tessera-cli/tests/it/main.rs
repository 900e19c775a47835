//! End-to-end tests of the `tessera` binary: real processes, real ports, the README quick start.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod admin_secret;
mod bff;
mod browser;
mod durability;
mod e2e;
mod gateway;
mod gateway_attacks;
mod gateway_edges;
mod https;
mod interop;
mod mcp;
mod multinode;
mod outage;
