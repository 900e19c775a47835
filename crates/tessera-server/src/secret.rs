//! High-entropy secrets: generation, readable prefixes, SHA-256 hashing for storage and
//! constant-time comparison. Argon2 is deliberately not used for these (DEPENDENCIES.md).

use aws_lc_rs::{digest, rand};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;

/// Prefix of opaque access tokens.
pub const ACCESS_TOKEN_PREFIX: &str = "tat_";
/// Prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";
/// Prefix of refresh tokens (same selector/verifier layout as opaque access tokens).
pub const REFRESH_TOKEN_PREFIX: &str = "trt_";
/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = "tac_";

/// `n` bytes from the system CSPRNG, base64url without padding.
pub fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Fills `bytes` from the system CSPRNG. Each call costs more than the bytes it makes (a hardware
/// draw and a DRBG step), so a caller that needs several random values draws them at once.
/// The letters of RFC 8628 user codes: 20 consonants (§6.1: no vowels, so no words; no
/// characters that look alike). 8 of them: 20^8 ≈ 2^34.6 codes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A fresh 8-letter user code (RFC 8628 §6.1), uniformly drawn (bytes ≥ 240 are redrawn).
pub fn user_code() -> String {
    let mut code = String::with_capacity(8);
    while code.len() < 8 {
        let mut bytes = [0u8; 16];
        fill_random(&mut bytes);
        for b in bytes.into_iter().filter(|b| *b < 240) {
            if code.len() < 8 {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
            }
        }
    }
    code
}

pub fn fill_random(bytes: &mut [u8]) {
    // aws-lc's RNG only fails if the OS entropy source is gone, where nothing can go on safely.
    #[allow(clippy::expect_used)]
    rand::fill(bytes).expect("system random number generator failed");
}

/// A fresh identifier that is unique but not secret (a request id): 16 base64url characters, a
/// prefix drawn at random once per process and a counter, so unique within the process and, with
/// overwhelming probability, across processes and restarts. Not drawn from the CSPRNG per call,
/// which cost more than the rest of the id; anyone may guess the next one, which gives nothing.
pub fn unique_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: std::sync::LazyLock<[u8; 6]> = std::sync::LazyLock::new(|| {
        let mut prefix = [0u8; 6];
        fill_random(&mut prefix);
        prefix
    });
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 12];
    bytes[..6].copy_from_slice(&*PREFIX);
    // 48 bits of counter: a process would need millions of years to wrap it at this rate.
    bytes[6..].copy_from_slice(&n.to_be_bytes()[2..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh credential: prefix plus 256 bits of randomness.
pub fn new_credential(prefix: &str) -> SecretString {
    SecretString::new(format!("{prefix}{}", random_b64(32)))
}

/// An opaque access token: `tat_` + base64url(id as 8 bytes big-endian ‖ 32 random bytes).
/// The id selects the stored row; the random part is the secret, stored only as its SHA-256
/// (the split selector/verifier design, so lookups need no index on random keys).
pub struct OpaqueToken {
    pub id: u64,
    pub secret: [u8; 32],
}

impl OpaqueToken {
    /// A fresh secret for a token whose id the store assigns.
    pub fn secret() -> [u8; 32] {
        let mut secret = [0u8; 32];
        fill_random(&mut secret);
        secret
    }

    pub fn encode(&self) -> SecretString {
        self.encode_as(ACCESS_TOKEN_PREFIX)
    }

    /// Encodes with another type prefix (refresh tokens).
    pub fn encode_as(&self, prefix: &str) -> SecretString {
        let mut bytes = [0u8; 40];
        bytes[..8].copy_from_slice(&self.id.to_be_bytes());
        bytes[8..].copy_from_slice(&self.secret);
        SecretString::new(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Parses a presented token; anything malformed is `None`.
    pub fn parse(token: &str) -> Option<OpaqueToken> {
        OpaqueToken::parse_as(token, ACCESS_TOKEN_PREFIX)
    }

    /// Parses a token with another type prefix.
    pub fn parse_as(token: &str, prefix: &str) -> Option<OpaqueToken> {
        let bytes = URL_SAFE_NO_PAD.decode(token.strip_prefix(prefix)?).ok()?;
        let bytes: [u8; 40] = bytes.try_into().ok()?;
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&bytes[8..]);
        Some(OpaqueToken { id: u64::from_be_bytes(bytes[..8].try_into().ok()?), secret })
    }

    pub fn secret_hash(&self) -> [u8; 32] {
        hash_bytes(&self.secret)
    }
}

/// SHA-256 of bytes.
pub fn hash_bytes(bytes: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// SHA-256 of a presented secret: what we store and look up.
pub fn hash(secret: &str) -> [u8; 32] {
    hash_bytes(secret.as_bytes())
}

/// Compares two stored hashes in constant time.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A secret that never prints and is zeroized on drop (shared with the gateway and `tessera-verify`).
pub use tessera_proto::SecretString;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn unique_ids_are_distinct_and_plain() {
        let ids: Vec<String> = (0..1000).map(|_| unique_id()).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        for id in &ids {
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{id}");
            // The same process prefix.
            assert_eq!(id[..8], ids[0][..8]);
        }
    }

    proptest! {
        #[test]
        fn credentials_have_a_prefix_and_256_random_bits(prefix in "(tat_|tcs_)") {
            let credential = new_credential(&prefix);
            let random = credential.expose().strip_prefix(prefix.as_str()).unwrap();
            prop_assert_eq!(URL_SAFE_NO_PAD.decode(random).unwrap().len(), 32);
            // RFC 6749 Appendix A.12: VSCHAR only.
            prop_assert!(credential.expose().bytes().all(|b| (0x20..=0x7e).contains(&b)));
            let other = new_credential(&prefix);
            prop_assert_ne!(credential.expose(), other.expose());
        }

        #[test]
        fn hashes_compare_equal_only_for_equal_secrets(a in ".{0,64}", b in ".{0,64}") {
            prop_assert_eq!(hashes_equal(&hash(&a), &hash(&b)), a == b);
        }
    }

    proptest! {
        #[test]
        fn opaque_tokens_round_trip(id in any::<u64>(), secret in any::<[u8; 32]>()) {
            let token = OpaqueToken { id, secret }.encode();
            prop_assert!(token.expose().starts_with(ACCESS_TOKEN_PREFIX));
            prop_assert!(token.expose().bytes().all(|b| (0x20..=0x7e).contains(&b)));
            let parsed = OpaqueToken::parse(token.expose()).unwrap();
            prop_assert_eq!((parsed.id, parsed.secret), (id, secret));
        }

        #[test]
        fn malformed_opaque_tokens_do_not_parse(junk in "tat_[A-Za-z0-9_-]{0,80}") {
            prop_assume!(junk.len() != 4 + 54);
            prop_assert!(OpaqueToken::parse(&junk).is_none());
        }
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", new_credential(CLIENT_SECRET_PREFIX)), "SecretString([redacted])");
    }
}
