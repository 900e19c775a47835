//! High-entropy secrets: generation, readable prefixes, SHA-256 hashing for storage and
//! constant-time comparison. Argon2 is deliberately not used for these (DEPENDENCIES.md).

use aws_lc_rs::{digest, rand};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;

/// Prefix of opaque access tokens.
pub const ACCESS_TOKEN_PREFIX: &str = "tat_";
/// Prefix of client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";

/// `n` bytes from the system CSPRNG, base64url without padding.
pub fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // aws-lc's RNG only fails if the OS entropy source is gone, where nothing can go on safely.
    #[allow(clippy::expect_used)]
    rand::fill(&mut bytes).expect("system random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh credential: prefix plus 256 bits of randomness.
pub fn new_credential(prefix: &str) -> SecretString {
    SecretString(format!("{prefix}{}", random_b64(32)))
}

/// SHA-256 of a presented secret: what we store and look up.
pub fn hash(secret: &str) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Compares two stored hashes in constant time.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A secret that never prints: `Debug` shows `SecretString([redacted])`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: String) -> SecretString {
        SecretString(secret)
    }

    /// The secret itself; call only where it must go on the wire or into a hash.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

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

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", new_credential(CLIENT_SECRET_PREFIX)), "SecretString([redacted])");
    }
}
