//! Verification of Tessera JWT access tokens for resource servers (RFC 9068 §4, RFC 8725).
//!
//! A [`Verifier`] is built from the issuer, the audience this resource server answers to and
//! the issuer's JWK Set; [`Verifier::verify`] then checks a token at an explicit time:
//!
//! ```
//! use tessera_proto::{UnixTime, jwks::JwkSet};
//! use tessera_verify::{Verifier, VerifyError};
//!
//! let jwks: JwkSet = serde_json::from_str(r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig",
//!     "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#).unwrap();
//! let verifier = Verifier::new("https://as.example.test", "https://api.example.test", &jwks).unwrap();
//! // Anything that is not a well-formed, correctly signed RFC 9068 token is refused.
//! let err = verifier.verify("not-a-jwt", UnixTime(1_700_000_000)).unwrap_err();
//! assert!(matches!(err, VerifyError::Malformed(_)));
//! ```
//!
//! Nothing in this crate reads the system clock or performs I/O.

#![deny(missing_docs)]

mod claims;
pub mod client_assertion;
pub mod dpop;
mod jose;
mod keys;
#[cfg(feature = "remote")]
pub mod layer;
#[cfg(feature = "remote")]
pub mod remote;
mod strict_json;

pub use claims::{Claims, Confirmation};
pub use keys::KeySet;

use tessera_proto::{UnixTime, jwks::JwkSet};

/// Why a token was refused. Every variant maps to `invalid_token` on the wire (RFC 6750 §3.1);
/// the variant is for operators and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not a compact JWS of three strict base64url segments with JSON objects inside,
    /// or it is larger than [`MAX_TOKEN_LEN`].
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header `typ` is missing or not `at+jwt` / `application/at+jwt`.
    #[error("token type is not at+jwt")]
    WrongType,
    /// The header carries a member we refuse: `crit`, `jku`, `x5u`, `jwk`, `x5c`, `cty` and similar.
    #[error("header member `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    /// No `kid`, or a `kid` that is not in the key set.
    #[error("unknown signing key")]
    UnknownKey,
    /// The header `alg` is not the one algorithm bound to the key.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// A required claim is absent or has the wrong JSON type.
    #[error("claim `{0}` is missing or has the wrong type")]
    InvalidClaim(&'static str),
    /// `iss` is not exactly the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway), or `exp` is further out than the maximum lifetime.
    #[error("token is not yet valid or claims an implausible lifetime")]
    NotYetValid,
    /// The issuer says the token is not active (an unknown, expired or revoked API key).
    #[error("the token is not active")]
    Inactive,
    /// The token carries `cnf`: it is sender-constrained and cannot be accepted as a bearer token.
    #[error("token is sender-constrained; a proof of possession is required")]
    SenderConstrained,
    /// The JWK Set given to the verifier is unusable.
    #[error("invalid key set: {0}")]
    InvalidKeySet(String),
    /// A DPoP proof failed one of the checks of RFC 9449 §4.3 (`invalid_dpop_proof`).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
    /// The server requires its current nonce in the proof (`use_dpop_nonce`, RFC 9449 §8).
    #[error("a DPoP nonce is required")]
    UseDpopNonce,
    /// The proof of possession does not match what the token is bound to: another DPoP key,
    /// another client certificate, a token bound one way presented the other way, or a bearer
    /// token presented as if it were bound.
    #[error("the token is not bound to this {0}")]
    WrongBinding(&'static str),
    /// The DPoP proof's `jti` was seen before (RFC 9449 §11.1).
    #[error("DPoP proof replayed")]
    ReplayedProof,
}

/// Tokens longer than this are refused before any parsing: 16 KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Checks RFC 9068 JWT access tokens from one issuer for one audience.
#[derive(Debug, Clone)]
pub struct Verifier {
    issuer: String,
    audience: Option<String>,
    keys: KeySet,
    leeway: u64,
    max_lifetime: u64,
}

impl Verifier {
    /// A verifier for tokens from `issuer` addressed to `audience`, signed by a key in `jwks`.
    ///
    /// Each key is bound to exactly one algorithm: its `alg` member, or for keys without one
    /// `ES256` (P-256) and `EdDSA` (Ed25519). RSA keys without `alg` are refused.
    pub fn new(issuer: &str, audience: &str, jwks: &JwkSet) -> Result<Verifier, VerifyError> {
        Ok(Verifier::from_parts(issuer, Some(audience.to_owned()), KeySet::from_jwks(jwks)?))
    }

    /// A verifier that checks everything except the audience. Only for the authorization server
    /// that issued the tokens, which decides who may see a token from its own client records.
    /// A resource server must use [`Verifier::new`].
    pub fn for_issuer_itself(issuer: &str, keys: KeySet) -> Verifier {
        Verifier::from_parts(issuer, None, keys)
    }

    fn from_parts(issuer: &str, audience: Option<String>, keys: KeySet) -> Verifier {
        Verifier { issuer: issuer.to_owned(), audience, keys, leeway: 60, max_lifetime: 86_400 }
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. Defaults to 60.
    pub fn with_leeway(mut self, seconds: u64) -> Verifier {
        self.leeway = seconds;
        self
    }

    /// The longest lifetime a token may claim (`exp` minus now), in seconds. Defaults to 86 400.
    pub fn with_max_lifetime(mut self, seconds: u64) -> Verifier {
        self.max_lifetime = seconds;
        self
    }

    pub(crate) fn leeway(&self) -> u64 {
        self.leeway
    }

    pub(crate) fn max_lifetime(&self) -> u64 {
        self.max_lifetime
    }

    /// Verifies `token` as a bearer access token at time `now` and returns its claims. A
    /// sender-constrained token (one with `cnf`) is refused: it needs [`Verifier::verify_dpop`]
    /// or [`Verifier::verify_certificate_bound`].
    pub fn verify(&self, token: &str, now: UnixTime) -> Result<Claims, VerifyError> {
        let claims = self.verify_reporting_binding(token, now)?;
        if claims.cnf.is_some() {
            return Err(VerifyError::SenderConstrained);
        }
        Ok(claims)
    }

    /// Verifies a DPoP-bound token presented with `Authorization: DPoP` and its proof (RFC 9449
    /// §7.1): the token as in [`Verifier::verify`], the proof as in [`dpop::verify_proof`] with
    /// `ath` required, and the proof key's thumbprint equal to the token's `cnf.jkt`. When a
    /// `replay` cache is given, a proof `jti` seen before is refused. Returns the claims and the
    /// verified proof.
    pub fn verify_dpop(
        &self,
        token: &str,
        proof: &str,
        request: &dpop::ResourceRequest<'_>,
        replay: Option<&dpop::ReplayCache>,
        now: UnixTime,
    ) -> Result<(Claims, dpop::VerifiedProof), VerifyError> {
        let claims = self.verify_reporting_binding(token, now)?;
        let Some(Confirmation::Jkt(jkt)) = &claims.cnf else {
            return Err(VerifyError::WrongBinding("DPoP key"));
        };
        let proof_request = dpop::DpopRequest {
            method: request.method,
            url: request.url,
            access_token: Some(token),
            nonce: request.nonce,
        };
        let verified = dpop::verify_proof(proof, &proof_request, &request.policy, now)?;
        if &verified.jkt != jkt {
            return Err(VerifyError::WrongBinding("DPoP key"));
        }
        if let Some(cache) = replay {
            cache.check_and_remember(&verified, &request.policy, now)?;
        }
        Ok((claims, verified))
    }

    /// Verifies a certificate-bound token (RFC 8705 §3) presented over a mutually authenticated
    /// TLS connection whose client certificate is `client_cert_der`: the token as in
    /// [`Verifier::verify`], and its `cnf.x5t#S256` equal to the certificate's thumbprint.
    pub fn verify_certificate_bound(
        &self,
        token: &str,
        client_cert_der: &[u8],
        now: UnixTime,
    ) -> Result<Claims, VerifyError> {
        let claims = self.verify_reporting_binding(token, now)?;
        match &claims.cnf {
            Some(Confirmation::X5tS256(x5t)) if *x5t == certificate_thumbprint(client_cert_der) => Ok(claims),
            _ => Err(VerifyError::WrongBinding("client certificate")),
        }
    }

    /// Verifies everything but the sender constraint and returns the claims with `cnf` for the
    /// caller to enforce. For the authorization server's own introspection, which reports
    /// `cnf` to the resource server; a resource server uses the other `verify_*` methods.
    pub fn verify_reporting_binding(&self, token: &str, now: UnixTime) -> Result<Claims, VerifyError> {
        let jws = jose::CompactJws::parse(token)?;
        jws.check_header()?;
        let key = self.keys.get(jws.kid()?).ok_or(VerifyError::UnknownKey)?;
        if jws.alg()? != key.alg_name() {
            return Err(VerifyError::AlgorithmMismatch);
        }
        key.verify(jws.signing_input(), jws.signature_b64())?;
        let claims = Claims::from_object(jws.into_payload())?;
        claims.check(&self.issuer, self.audience.as_deref(), now, self.leeway, self.max_lifetime)?;
        Ok(claims)
    }
}

/// RFC 8705 §3.1 `x5t#S256`: base64url (no padding) of SHA-256 over the certificate's DER.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    use base64::Engine as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests;
