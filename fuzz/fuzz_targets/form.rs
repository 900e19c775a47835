//! The form parser every token-endpoint request goes through (RFC 6749 §3.1: repeated
//! parameters refused): any bytes, no panic, and a parsed form answers every lookup.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = tessera_server::form::Form::parse(data) {
        for name in ["grant_type", "client_id", "code", "scope", "resource", ""] {
            let _ = form.get(name);
        }
        let _ = form.resources();
    }
});
