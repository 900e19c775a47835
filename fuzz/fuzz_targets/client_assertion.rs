//! `private_key_jwt` client assertions (RFC 7523): signature checking against a client's JWK
//! Set; any string, no panic, nothing verifies without the client's key.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

static JWKS: OnceLock<serde_json::Value> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let jwks = JWKS.get_or_init(|| {
        serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})
    });
    let Ok(token) = std::str::from_utf8(data) else { return };
    let verified = tessera_verify::client_assertion::verify_signature(token, jwks, &["ES256", "PS256", "EdDSA"]);
    assert!(verified.is_err(), "a fuzzed assertion verified: {token}");
});
