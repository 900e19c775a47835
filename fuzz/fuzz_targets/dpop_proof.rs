//! DPoP proof validation (RFC 9449 §4.3): any string as the `DPoP` header, with and without an
//! access token and a nonce; no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_proto::UnixTime;
use tessera_verify::dpop::{DpopPolicy, DpopRequest, verify_proof};

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = std::str::from_utf8(data) else { return };
    let policy = DpopPolicy::default();
    for (access_token, nonce) in [(None, None), (Some("tat_x"), Some("n-1"))] {
        let request = DpopRequest { method: "POST", url: "https://server.example.com/token", access_token, nonce };
        let _ = verify_proof(proof, &request, &policy, UnixTime(1_562_262_616));
    }
});
