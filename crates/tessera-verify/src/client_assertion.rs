//! The signature of a JWT a client signed with one of its own keys: a `private_key_jwt` client
//! assertion (RFC 7523 §2.2). The caller passes the client's registered JWK Set and the
//! algorithms it accepts; the claims (`iss`, `sub`, `aud`, `exp`, `jti`) are the caller's to
//! check, since their rules depend on the server's profile.

use serde_json::{Map, Value};

use crate::VerifyError;
use crate::jose::CompactJws;
use crate::keys::VerificationKey;

/// Verifies that `token` is a compact JWS signed by a key of `jwks` (`{"keys": [...]}`) with one
/// of `algorithms`, and returns its payload.
///
/// The header must not carry key material or references (`jwk`, `jku`, `x5u`, `x5c`, …), nor a
/// `typ` that names another kind of token (`at+jwt`, `dpop+jwt`, …): an access token or a DPoP
/// proof is never accepted as a client assertion. With a `kid`, only keys with that `kid` are
/// tried; without one, every signing key of the set. A key is used only with the header's
/// algorithm, and only if its type fits it (RSA for RS256/PS256, P-256 for ES256, Ed25519 for
/// EdDSA) and its own `alg`, if any, agrees.
///
/// ```
/// use tessera_verify::client_assertion::verify_signature;
/// let jwks = serde_json::json!({"keys": []});
/// assert!(verify_signature("e30.e30.AAAA", &jwks, &["ES256"]).is_err());
/// ```
pub fn verify_signature(token: &str, jwks: &Value, algorithms: &[&str]) -> Result<Map<String, Value>, VerifyError> {
    let jws = CompactJws::parse(token)?;
    jws.check_forbidden_headers()?;
    if let Some(typ) = jws.typ() {
        let typ = typ.to_ascii_lowercase();
        if !["jwt", "client-authentication+jwt", "application/client-authentication+jwt"].contains(&typ.as_str()) {
            return Err(VerifyError::WrongType);
        }
    }
    let alg = jws.alg()?;
    let Some(alg) = algorithms.iter().copied().find(|a| *a == alg) else {
        return Err(VerifyError::AlgorithmMismatch);
    };
    let kid = jws.header().get("kid").and_then(Value::as_str);
    let keys = jwks.get("keys").and_then(Value::as_array).ok_or(VerifyError::UnknownKey)?;
    let mut candidates = 0;
    for key in keys {
        let Some(object) = key.as_object() else { continue };
        if kid.is_some() && object.get("kid").and_then(Value::as_str) != kid {
            continue;
        }
        if object.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
            continue;
        }
        if object.get("alg").and_then(Value::as_str).is_some_and(|a| a != alg) {
            continue;
        }
        let mut bound = Value::Object(object.clone());
        bound["alg"] = Value::String(alg.to_owned());
        let Ok(verification) = VerificationKey::from_jwk(&bound) else { continue };
        if verification.alg_name() != alg {
            continue;
        }
        candidates += 1;
        if verification.verify(jws.signing_input(), jws.signature_b64()).is_ok() {
            return Ok(jws.into_payload());
        }
    }
    Err(if candidates == 0 { VerifyError::UnknownKey } else { VerifyError::InvalidSignature })
}
