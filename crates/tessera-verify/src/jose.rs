//! Strict compact-JWS parsing (RFC 7515 §7.1) and header policy (RFC 8725 §3.1, §3.10, §3.11).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::{MAX_TOKEN_LEN, VerifyError, strict_json};

/// A compact JWS whose three segments decoded strictly and whose header and payload are JSON
/// objects. Nothing in it has been verified yet.
pub(crate) struct CompactJws<'a> {
    signing_input: &'a str,
    signature_b64: &'a str,
    unverified_header: Map<String, Value>,
    unverified_payload: Map<String, Value>,
}

/// Header members that would make us fetch or trust a key from the token itself, nest tokens,
/// or require extensions we do not implement. Their presence alone refuses the token.
const FORBIDDEN_HEADERS: [&str; 8] = ["crit", "jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "cty"];

impl<'a> CompactJws<'a> {
    pub(crate) fn parse(token: &'a str) -> Result<CompactJws<'a>, VerifyError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed("token too large"));
        }
        // Only the base64url alphabet and the two separators: no padding, whitespace or JSON.
        if !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') {
            return Err(VerifyError::Malformed("characters outside the base64url alphabet"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed("not three segments"));
        };
        if header.is_empty() || payload.is_empty() || signature.is_empty() {
            return Err(VerifyError::Malformed("empty segment"));
        }
        let header_bytes = strict_b64(header)?;
        let payload_bytes = strict_b64(payload)?;
        strict_b64(signature)?;
        let unverified_header =
            strict_json::parse_object(&header_bytes).ok_or(VerifyError::Malformed("header is not a JSON object"))?;
        let unverified_payload =
            strict_json::parse_object(&payload_bytes).ok_or(VerifyError::Malformed("payload is not a JSON object"))?;
        Ok(CompactJws {
            signing_input: &token[..header.len() + 1 + payload.len()],
            signature_b64: signature,
            unverified_header,
            unverified_payload,
        })
    }

    pub(crate) fn check_forbidden_headers(&self) -> Result<(), VerifyError> {
        self.check_forbidden_headers_except(&[])
    }

    /// [`Self::check_forbidden_headers`], allowing the members in `allowed` (a DPoP proof carries
    /// its public key in `jwk`).
    pub(crate) fn check_forbidden_headers_except(&self, allowed: &[&str]) -> Result<(), VerifyError> {
        let forbidden = |name: &&&str| !allowed.contains(name) && self.unverified_header.contains_key(**name);
        match FORBIDDEN_HEADERS.iter().find(forbidden) {
            Some(name) => Err(VerifyError::ForbiddenHeader(name)),
            None => Ok(()),
        }
    }

    /// The `typ` header, if it is a string.
    pub(crate) fn typ(&self) -> Option<&str> {
        self.unverified_header.get("typ").and_then(Value::as_str)
    }

    pub(crate) fn check_header(&self) -> Result<(), VerifyError> {
        self.check_forbidden_headers()?;
        // RFC 9068 §4: typ is at+jwt or application/at+jwt. Media types are case-insensitive.
        match self.unverified_header.get("typ").and_then(Value::as_str) {
            Some(typ) if typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt") => Ok(()),
            _ => Err(VerifyError::WrongType),
        }
    }

    /// The header, not yet verified.
    pub(crate) fn header(&self) -> &Map<String, Value> {
        &self.unverified_header
    }

    pub(crate) fn kid(&self) -> Result<&str, VerifyError> {
        self.unverified_header.get("kid").and_then(Value::as_str).ok_or(VerifyError::UnknownKey)
    }

    pub(crate) fn alg(&self) -> Result<&str, VerifyError> {
        self.unverified_header.get("alg").and_then(Value::as_str).ok_or(VerifyError::AlgorithmMismatch)
    }

    pub(crate) fn signing_input(&self) -> &str {
        self.signing_input
    }

    pub(crate) fn signature_b64(&self) -> &str {
        self.signature_b64
    }

    /// The payload; call only after the signature verified.
    pub(crate) fn into_payload(self) -> Map<String, Value> {
        self.unverified_payload
    }
}

/// Strict base64url: no padding, and the unused bits of the last character must be zero so
/// that every byte string has exactly one encoding.
fn strict_b64(segment: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| VerifyError::Malformed("invalid base64url"))
}
