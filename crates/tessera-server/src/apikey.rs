//! API keys: long-lived credentials a program presents where a resource server expects an
//! access token (introspection, `tessera gateway` routes that allow them) or exchanges for a
//! short-lived access token (RFC 8693).
//!
//! Format: `tessera_pat_` (a user's personal access token) or `tessera_sak_` (a client's service
//! key), then base64url(id as 8 bytes big-endian ‖ 32 random bytes) — 54 characters — then
//! base64url of the CRC-32 of everything before it — 6 characters. Secret scanners recognise the
//! prefix and check the checksum; a mistyped key is refused without a database lookup. The id
//! selects the stored row; the random part is stored only as its SHA-256 and compared in
//! constant time; the first 16 characters are kept for display.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::secret::{self, OpaqueToken, SecretString};

pub(crate) use tessera_proto::token::{
    CLIENT_API_KEY_PREFIX as CLIENT_KEY_PREFIX, USER_API_KEY_PREFIX as USER_KEY_PREFIX,
};
/// Characters kept for display (`tessera_pat_AAAA`).
pub(crate) const DISPLAY_LEN: usize = 16;
/// The `jti` (and feed key) of key `id`; tokens exchanged for it carry it as `client_id`.
pub(crate) fn key_jti(id: u64) -> String {
    format!("ak_{id}")
}

/// Whose key it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    User,
    Client,
}

impl Owner {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Owner::User => USER_KEY_PREFIX,
            Owner::Client => CLIENT_KEY_PREFIX,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Owner::User => "user",
            Owner::Client => "client",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Owner> {
        match s {
            "user" => Some(Owner::User),
            "client" => Some(Owner::Client),
            _ => None,
        }
    }
}

/// A parsed API key.
pub(crate) struct ApiKey {
    pub owner: Owner,
    pub id: u64,
    pub secret: [u8; 32],
}

fn checksum(body: &str) -> String {
    URL_SAFE_NO_PAD.encode(crc32fast::hash(body.as_bytes()).to_be_bytes())
}

impl ApiKey {
    /// A fresh secret for a key whose id the store assigns.
    pub(crate) fn secret() -> [u8; 32] {
        OpaqueToken::secret()
    }

    pub(crate) fn encode(&self) -> SecretString {
        let mut bytes = [0u8; 40];
        bytes[..8].copy_from_slice(&self.id.to_be_bytes());
        bytes[8..].copy_from_slice(&self.secret);
        let body = format!("{}{}", self.owner.prefix(), URL_SAFE_NO_PAD.encode(bytes));
        let sum = checksum(&body);
        SecretString::new(format!("{body}{sum}"))
    }

    /// Whether `token` looks like an API key at all (its prefix).
    pub(crate) fn looks_like(token: &str) -> bool {
        tessera_proto::token::looks_like_api_key(token)
    }

    /// Parses a presented key; a wrong prefix, length, checksum or encoding is `None`.
    pub(crate) fn parse(token: &str) -> Option<ApiKey> {
        let owner = if token.starts_with(USER_KEY_PREFIX) {
            Owner::User
        } else if token.starts_with(CLIENT_KEY_PREFIX) {
            Owner::Client
        } else {
            return None;
        };
        if token.len() != owner.prefix().len() + 54 + 6 || !token.is_ascii() {
            return None;
        }
        let (body, sum) = token.split_at(token.len() - 6);
        if !secret::hashes_equal(checksum(body).as_bytes(), sum.as_bytes()) {
            return None;
        }
        let bytes: [u8; 40] = URL_SAFE_NO_PAD.decode(&body[owner.prefix().len()..]).ok()?.try_into().ok()?;
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&bytes[8..]);
        Some(ApiKey { owner, id: u64::from_be_bytes(bytes[..8].try_into().ok()?), secret })
    }

    pub(crate) fn secret_hash(&self) -> [u8; 32] {
        secret::hash_bytes(&self.secret)
    }
}

/// Last uses, written in batches by the janitor (no write per request).
#[derive(Default)]
pub struct LastUsed(std::sync::Mutex<std::collections::HashMap<u64, (u64, Option<String>)>>);

impl LastUsed {
    pub fn record(&self, id: u64, at: u64, ip: Option<String>) {
        let mut uses = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if uses.len() < 100_000 || uses.contains_key(&id) {
            uses.insert(id, (at, ip));
        }
    }

    /// Writes what was recorded since the last flush.
    pub async fn flush(&self, store: &crate::store::Store) -> anyhow::Result<()> {
        let uses: Vec<(u64, u64, Option<String>)> = {
            let mut uses = self.0.lock().unwrap_or_else(|p| p.into_inner());
            uses.drain().map(|(id, (at, ip))| (id, at, ip)).collect()
        };
        if !uses.is_empty() {
            store.touch_api_keys(&uses).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keys_round_trip(id in any::<u64>(), secret in any::<[u8; 32]>(), user in any::<bool>()) {
            let owner = if user { Owner::User } else { Owner::Client };
            let encoded = ApiKey { owner, id, secret }.encode();
            let text = encoded.expose();
            prop_assert!(text.starts_with(owner.prefix()));
            prop_assert_eq!(text.len(), owner.prefix().len() + 60);
            let parsed = ApiKey::parse(text).unwrap();
            prop_assert_eq!((parsed.owner, parsed.id, parsed.secret), (owner, id, secret));
        }

        /// Any one character changed, or two neighbours swapped, is caught by the checksum.
        #[test]
        fn typos_are_caught_without_a_lookup(
            id in any::<u64>(), secret in any::<[u8; 32]>(), at in 12usize..72, to in "[A-Za-z0-9_-]",
        ) {
            let encoded = ApiKey { owner: Owner::User, id, secret }.encode();
            let text = encoded.expose();
            let mut changed = text.as_bytes().to_vec();
            prop_assume!(changed[at] != to.as_bytes()[0]);
            changed[at] = to.as_bytes()[0];
            prop_assert!(ApiKey::parse(std::str::from_utf8(&changed).unwrap()).is_none());
            let mut swapped = text.as_bytes().to_vec();
            prop_assume!(swapped[at] != swapped[at - 1]);
            swapped.swap(at, at - 1);
            prop_assert!(ApiKey::parse(std::str::from_utf8(&swapped).unwrap()).is_none());
        }
    }

    #[test]
    fn other_strings_are_not_keys() {
        for text in [
            "",
            "tessera_pat_",
            "tat_AAAA",
            "tessera_xyz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(ApiKey::parse(text).is_none(), "{text}");
        }
        let key = ApiKey { owner: Owner::Client, id: 7, secret: [9; 32] }.encode();
        assert!(ApiKey::parse(&format!("{} ", key.expose())).is_none());
        assert!(ApiKey::parse(&key.expose().replace("tessera_sak_", "tessera_pat_")).is_none(), "kind is checksummed");
    }
}
