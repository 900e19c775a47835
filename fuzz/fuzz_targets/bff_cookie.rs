//! The token handler's session cookie opener (AES-256-GCM through the `cookie` crate's private
//! jar): any cookie value, no panic, and nothing opens without the key.
#![no_main]

use libfuzzer_sys::fuzz_target;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    assert!(tessera_gateway::bff::open_session_cookie(KEY, value).is_none(), "a fuzzed cookie opened");
});
