//! The verification keys of one issuer, each bound to exactly one algorithm (RFC 8725 §3.1).

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, jwk::Jwk};
use serde_json::Value;
use tessera_proto::jwks::JwkSet;

use crate::VerifyError;

/// Public keys by `kid`. Lookup is an in-memory map only: a `kid` never reaches a file path,
/// a query or a URL.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerificationKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("kids", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

#[derive(Clone)]
pub(crate) struct VerificationKey {
    alg: Algorithm,
    alg_name: &'static str,
    key: DecodingKey,
}

impl KeySet {
    /// Parses a JWK Set. Keys for other uses (`use` other than `sig`) are skipped; a key with
    /// private members, a duplicate `kid`, or an algorithm outside ES256, EdDSA, RS256 and
    /// PS256 makes the whole set invalid.
    pub fn from_jwks(jwks: &JwkSet) -> Result<KeySet, VerifyError> {
        let mut keys = HashMap::new();
        for value in &jwks.keys {
            let Some(member) = value.as_object() else {
                return Err(VerifyError::InvalidKeySet("a key is not a JSON object".into()));
            };
            if member.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
                continue;
            }
            if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| member.contains_key(*m)) {
                return Err(VerifyError::InvalidKeySet("a key carries private or symmetric material".into()));
            }
            let Some(kid) = member.get("kid").and_then(Value::as_str) else {
                return Err(VerifyError::InvalidKeySet("a key has no kid".into()));
            };
            let key = VerificationKey::from_jwk(value)?;
            if keys.insert(kid.to_owned(), key).is_some() {
                return Err(VerifyError::InvalidKeySet(format!("duplicate kid {kid:?}")));
            }
        }
        Ok(KeySet { keys })
    }

    /// Verifies the signature of a compact JWS of type `typ` (case-insensitive) made with one of
    /// these keys, and returns its payload. Nothing else is checked: no claims, no expiry. For an
    /// issuer reading back its own tokens, such as an ID token presented as `id_token_hint`.
    pub fn verify_signature(&self, token: &str, typ: &str) -> Result<serde_json::Map<String, Value>, VerifyError> {
        let jws = crate::jose::CompactJws::parse(token)?;
        jws.check_forbidden_headers()?;
        if !jws.typ().is_some_and(|t| t.eq_ignore_ascii_case(typ)) {
            return Err(VerifyError::WrongType);
        }
        let key = self.get(jws.kid()?).ok_or(VerifyError::UnknownKey)?;
        if jws.alg()? != key.alg_name() {
            return Err(VerifyError::AlgorithmMismatch);
        }
        key.verify(jws.signing_input(), jws.signature_b64())?;
        Ok(jws.into_payload())
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl VerificationKey {
    pub(crate) fn from_jwk(value: &Value) -> Result<VerificationKey, VerifyError> {
        let invalid = |why: &str| VerifyError::InvalidKeySet(why.to_owned());
        let kty = value.get("kty").and_then(Value::as_str).ok_or_else(|| invalid("a key has no kty"))?;
        let crv = value.get("crv").and_then(Value::as_str);
        let declared = value.get("alg").and_then(Value::as_str);
        let (alg, alg_name) = match (kty, crv, declared) {
            ("EC", Some("P-256"), None | Some("ES256")) => (Algorithm::ES256, "ES256"),
            ("OKP", Some("Ed25519"), None | Some("EdDSA") | Some("Ed25519")) => (Algorithm::EdDSA, "EdDSA"),
            ("RSA", None, Some("RS256")) => (Algorithm::RS256, "RS256"),
            ("RSA", None, Some("PS256")) => (Algorithm::PS256, "PS256"),
            _ => return Err(invalid("unsupported key type, curve or algorithm")),
        };
        if kty == "RSA" {
            // FAPI 2 and RFC 8725: RSA keys below 2048 bits are refused.
            let n = value.get("n").and_then(Value::as_str).unwrap_or_default();
            if n.len() < 342 {
                return Err(invalid("RSA key shorter than 2048 bits"));
            }
        }
        let jwk: Jwk = serde_json::from_value(value.clone()).map_err(|err| invalid(&err.to_string()))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|err| invalid(&err.to_string()))?;
        Ok(VerificationKey { alg, alg_name, key })
    }

    pub(crate) fn alg_name(&self) -> &'static str {
        self.alg_name
    }

    pub(crate) fn verify(&self, signing_input: &str, signature_b64: &str) -> Result<(), VerifyError> {
        match jsonwebtoken::crypto::verify(signature_b64, signing_input.as_bytes(), &self.key, self.alg) {
            Ok(true) => Ok(()),
            _ => Err(VerifyError::InvalidSignature),
        }
    }
}
