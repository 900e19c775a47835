//! [`SecretString`]: a password, client secret or key held in memory. It never prints (`Debug`
//! shows `SecretString([redacted])`), is overwritten with zeros when dropped (`zeroize`), and
//! deserializes from a plain string, so configuration files can hold one directly.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret that never prints and is zeroized on drop.
///
/// Zeroizing covers this value's own buffer; a copy made through [`SecretString::expose`] is the
/// caller's to keep short-lived.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: String) -> SecretString {
        SecretString(secret)
    }

    /// The secret itself; call only where it must go on the wire, into a hash or into a key.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> SecretString {
        SecretString(secret)
    }
}

impl From<&str> for SecretString {
    fn from(secret: &str) -> SecretString {
        SecretString(secret.to_owned())
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_and_reads_from_a_plain_string() {
        let secret: SecretString = serde_json::from_str(r#""hunter2""#).unwrap();
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(format!("{secret:?}"), "SecretString([redacted])");
        assert!(!format!("{:?}", Some(&secret)).contains("hunter2"));
    }

    #[test]
    fn zeroize_clears_the_buffer() {
        let mut secret = SecretString::new("hunter2".to_owned());
        secret.zeroize();
        assert_eq!(secret.expose(), "", "the bytes are overwritten and the string emptied");
    }
}
