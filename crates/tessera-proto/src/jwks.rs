//! Public JSON Web Keys as published at `/jwks.json` (RFC 7517, RFC 7518 §6, RFC 8037).

use serde::{Deserialize, Serialize};

/// A JWK Set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The public keys.
    pub keys: Vec<serde_json::Value>,
}
