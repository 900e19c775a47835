//! JWS/JWT parsing and access-token verification (RFC 9068, RFC 8725) with a fixed ES256 key
//! set: any string, no panic; nothing unsigned by that key ever verifies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_proto::UnixTime;

/// RFC 7515 A.3's P-256 key (public part).
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

static VERIFIER: OnceLock<tessera_verify::Verifier> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let verifier = VERIFIER.get_or_init(|| {
        let jwks = serde_json::from_str(JWKS).expect("the fixed key set parses");
        tessera_verify::Verifier::new("https://issuer.example", "https://api.example", &jwks).expect("a verifier")
    });
    let Ok(token) = std::str::from_utf8(data) else { return };
    let now = UnixTime(1_700_000_000);
    assert!(verifier.verify(token, now).is_err(), "a fuzzed token verified: {token}");
    let _ = verifier.verify_reporting_binding(token, now);
});
