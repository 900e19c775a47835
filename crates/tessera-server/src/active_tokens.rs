//! Access tokens found active, whatever their format ([`ActiveAccessToken`]), and the cache of
//! them that makes repeated introspection of one token cost no query ([`ActiveTokenCache`]).

use std::sync::Arc;

use tessera_verify::Confirmation;

use crate::cache::InvalidatingCache;
use crate::secret;

/// An access token that is active right now, whatever its format.
#[derive(Debug, Clone)]
pub struct ActiveAccessToken {
    pub jti: String,
    pub client_id: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
    /// What the token is bound to; such a token is never accepted as a bearer token.
    pub cnf: Option<Confirmation>,
    /// An API key rather than an access token.
    pub api_key: bool,
}

impl ActiveAccessToken {
    /// RFC 9449 §6.2: `DPoP` for a DPoP-bound token, `Bearer` otherwise (RFC 8705 keeps
    /// certificate-bound tokens `Bearer`).
    pub fn token_type(&self) -> &'static str {
        if self.api_key {
            "api_key"
        } else if matches!(self.cnf, Some(Confirmation::Jkt(_))) {
            "DPoP"
        } else {
            "Bearer"
        }
    }
}

/// Tokens found active recently, by SHA-256 of the token: repeated introspection of one token
/// (what gateways do) costs no query and no signature check. A revocation on this node
/// invalidates the entry after its commit; expiry and client deletion are checked on every hit.
pub struct ActiveTokenCache(pub(crate) InvalidatingCache<[u8; 32], Arc<ActiveAccessToken>>);

impl Default for ActiveTokenCache {
    fn default() -> ActiveTokenCache {
        ActiveTokenCache(InvalidatingCache::new(20_000, std::time::Duration::from_secs(60)))
    }
}

impl ActiveTokenCache {
    /// Call after `token` was revoked.
    pub fn revoked(&self, token: &str) {
        self.0.invalidate(&secret::hash(token));
    }

    /// Call after a revocation that may cover any number of tokens (a grant, session, user or client).
    pub fn clear(&self) {
        self.0.clear();
    }
}
