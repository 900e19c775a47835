//! The claims of an RFC 9068 access token and their checks: types first, then values.

use serde_json::{Map, Value};
use tessera_proto::UnixTime;

use crate::VerifyError;

/// The verified claims of an access token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `iss`.
    pub iss: String,
    /// `sub`.
    pub sub: String,
    /// `aud`, as a list whether the token carried a string or an array.
    pub aud: Vec<String>,
    /// `client_id`.
    pub client_id: String,
    /// `scope`, when present.
    pub scope: Option<String>,
    /// `jti`.
    pub jti: String,
    /// `exp`, whole seconds.
    pub exp: u64,
    /// `iat`, whole seconds.
    pub iat: u64,
    /// `nbf`, when present.
    pub nbf: Option<u64>,
    /// `cnf` (RFC 7800): the key the token is bound to, when it is sender-constrained.
    pub cnf: Option<Confirmation>,
    raw: Map<String, Value>,
}

/// What a sender-constrained token is bound to (RFC 7800 `cnf`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Confirmation {
    /// `cnf.jkt` (RFC 9449 §6): the RFC 7638 SHA-256 thumbprint of the client's DPoP key.
    Jkt(String),
    /// `cnf.x5t#S256` (RFC 8705 §3.1): base64url SHA-256 of the client certificate's DER.
    X5tS256(String),
}

impl Confirmation {
    /// Reads a `cnf` object: exactly one member, `jkt` or `x5t#S256`, a non-empty string.
    /// Anything else (an unknown confirmation method among them) is refused, so a binding
    /// this crate cannot check is never mistaken for no binding.
    pub fn from_json(value: &Value) -> Option<Confirmation> {
        let object = value.as_object()?;
        if object.len() != 1 {
            return None;
        }
        let (name, value) = object.iter().next()?;
        let value = value.as_str().filter(|v| !v.is_empty() && v.len() <= 128)?.to_owned();
        match name.as_str() {
            "jkt" => Some(Confirmation::Jkt(value)),
            "x5t#S256" => Some(Confirmation::X5tS256(value)),
            _ => None,
        }
    }

    /// The JSON form, `{"jkt": …}` or `{"x5t#S256": …}`.
    pub fn to_json(&self) -> Value {
        match self {
            Confirmation::Jkt(jkt) => serde_json::json!({ "jkt": jkt }),
            Confirmation::X5tS256(x5t) => serde_json::json!({ "x5t#S256": x5t }),
        }
    }
}

impl Claims {
    /// Every claim exactly as the token carried it, including ones this crate does not interpret.
    pub fn as_json(&self) -> &Map<String, Value> {
        &self.raw
    }

    pub(crate) fn from_object(raw: Map<String, Value>) -> Result<Claims, VerifyError> {
        let string = |name: &'static str| -> Result<String, VerifyError> {
            match raw.get(name) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(VerifyError::InvalidClaim(name)),
            }
        };
        let aud = match raw.get("aud") {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(VerifyError::InvalidClaim("aud"))?,
            _ => return Err(VerifyError::InvalidClaim("aud")),
        };
        if aud.is_empty() {
            return Err(VerifyError::InvalidClaim("aud"));
        }
        let scope = match raw.get("scope") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(VerifyError::InvalidClaim("scope")),
        };
        let cnf = match raw.get("cnf") {
            None => None,
            Some(value) => Some(Confirmation::from_json(value).ok_or(VerifyError::InvalidClaim("cnf"))?),
        };
        Ok(Claims {
            iss: string("iss")?,
            sub: string("sub")?,
            client_id: string("client_id")?,
            jti: string("jti")?,
            exp: numeric_date(&raw, "exp")?.ok_or(VerifyError::InvalidClaim("exp"))?,
            iat: numeric_date(&raw, "iat")?.ok_or(VerifyError::InvalidClaim("iat"))?,
            nbf: numeric_date(&raw, "nbf")?,
            aud,
            scope,
            cnf,
            raw,
        })
    }

    pub(crate) fn check(
        &self,
        issuer: &str,
        audience: Option<&str>,
        now: UnixTime,
        leeway: u64,
        max_lifetime: u64,
    ) -> Result<(), VerifyError> {
        // RFC 9068 §4: iss exactly, aud contains ours, exp in the future (with leeway).
        if self.iss != issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if let Some(audience) = audience
            && !self.aud.iter().any(|a| a == audience)
        {
            return Err(VerifyError::WrongAudience);
        }
        let now = now.secs();
        if self.exp.saturating_add(leeway) <= now {
            return Err(VerifyError::Expired);
        }
        if self.exp > now.saturating_add(leeway).saturating_add(max_lifetime) {
            return Err(VerifyError::NotYetValid);
        }
        let in_future = |t: u64| t > now.saturating_add(leeway);
        if in_future(self.iat) || self.nbf.is_some_and(in_future) {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }
}

/// A NumericDate (RFC 7519 §2): a non-negative JSON number, fractions allowed and truncated.
/// A string, boolean or other type is an error, never "absent".
fn numeric_date(raw: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, VerifyError> {
    match raw.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 => {
                        Ok(Some(if f >= u64::MAX as f64 { u64::MAX } else { f as u64 }))
                    }
                    _ => Err(VerifyError::InvalidClaim(name)),
                }
            }
        }
        Some(_) => Err(VerifyError::InvalidClaim(name)),
    }
}
