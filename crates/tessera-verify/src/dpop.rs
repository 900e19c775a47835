//! DPoP proofs (RFC 9449): the checks of §4.3 on one proof for one request. What this module
//! cannot know is left to the caller and named in its return value: whether the proof's `jti`
//! was seen before (a replay cache shared by every node), and whether the key's thumbprint is
//! the one the access token is bound to (`cnf.jkt`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use serde_json::Value;
use tessera_proto::UnixTime;

use crate::VerifyError;
use crate::jose::CompactJws;
use crate::keys::VerificationKey;

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The request URL as the client addressed it (query and fragment are ignored).
    pub url: &'a str,
    /// The access token presented with the proof, if any: then `ath` must be its hash.
    pub access_token: Option<&'a str>,
    /// The nonce the server currently requires, if it uses nonces.
    pub nonce: Option<&'a str>,
}

/// A request to a resource server that carries a DPoP-bound access token.
#[derive(Debug, Clone)]
pub struct ResourceRequest<'a> {
    /// The HTTP method, e.g. `GET`.
    pub method: &'a str,
    /// The request URL as the client addressed it (query and fragment are ignored).
    pub url: &'a str,
    /// The nonce the resource server currently requires, if it uses nonces.
    pub nonce: Option<&'a str>,
    /// What proofs may look like.
    pub policy: DpopPolicy,
}

/// Resource-server DPoP nonces (RFC 9449 §9) that need no shared state: a nonce names a time
/// window and carries an HMAC-SHA256 of it under a key that every node of a deployment shares,
/// so a nonce one gateway issued is accepted by all of them, in the window it names and the
/// next. A proof therefore cannot be made in advance, and a replay at another node (whose
/// replay cache never saw the proof) works at most until the nonce expires.
pub struct DpopNonces {
    key: aws_lc_rs::hmac::Key,
    window: u64,
}

impl std::fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopNonces").field("key", &"[redacted]").field("window", &self.window).finish()
    }
}

impl DpopNonces {
    /// Nonces under `key` (at least 32 bytes), each window lasting `window_seconds` (at least 1).
    pub fn new(key: &[u8], window_seconds: u64) -> Result<DpopNonces, VerifyError> {
        if key.len() < 32 {
            return Err(VerifyError::Malformed("a DPoP nonce key has at least 32 bytes"));
        }
        Ok(DpopNonces {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
            window: window_seconds.max(1),
        })
    }

    fn tag(&self, window: u64) -> [u8; 16] {
        let mut input = b"tessera dpop nonce ".to_vec();
        input.extend_from_slice(&window.to_be_bytes());
        let full = aws_lc_rs::hmac::sign(&self.key, &input);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full.as_ref()[..16]);
        tag
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: UnixTime) -> String {
        let window = now.0 / self.window;
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.tag(window));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was issued under this key for the current window or the one before.
    pub fn accepts(&self, nonce: &str, now: UnixTime) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else { return false };
        let Some((window, tag)) = bytes.split_first_chunk::<8>() else { return false };
        let window = u64::from_be_bytes(*window);
        let current = now.0 / self.window;
        (window == current || window.saturating_add(1) == current)
            && aws_lc_rs::constant_time::verify_slices_are_equal(tag, &self.tag(window)).is_ok()
    }
}

/// The `nonce` claim of a proof, read without checking anything (the proof is verified next,
/// with this nonce required).
pub fn unverified_nonce(proof: &str) -> Option<String> {
    let payload = proof.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?.get("nonce")?.as_str().map(str::to_owned)
}

/// Proof `jti`s seen recently, so that a replayed proof is refused (RFC 9449 §11.1). Bounded
/// in entries; an entry is kept while its proof could still pass the `iat` window. One cache
/// serves one process: several gateway nodes each keep their own (or require server nonces).
pub struct ReplayCache {
    seen: moka::sync::Cache<(String, String), u64>,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache").field("entries", &self.seen.entry_count()).finish()
    }
}

impl ReplayCache {
    /// A cache of at most `capacity` proofs.
    pub fn new(capacity: u64) -> ReplayCache {
        ReplayCache { seen: moka::sync::Cache::new(capacity) }
    }

    /// Records `proof` as used at `now`; [`VerifyError::ReplayedProof`] when the same key's
    /// `jti` was recorded before and could still be within the `iat` window.
    pub fn check_and_remember(
        &self,
        proof: &VerifiedProof,
        policy: &DpopPolicy,
        now: UnixTime,
    ) -> Result<(), VerifyError> {
        let until = proof.iat.saturating_add(policy.max_age).saturating_add(policy.leeway).max(now.secs());
        let key = (proof.jkt.clone(), proof.jti.clone());
        let entry = self.seen.entry(key).or_insert_with(|| until);
        if entry.is_fresh() || *entry.value() < now.secs() {
            if !entry.is_fresh() {
                // An expired record of the same jti: it is no longer a replay within the window.
                self.seen.insert((proof.jkt.clone(), proof.jti.clone()), until);
            }
            return Ok(());
        }
        Err(VerifyError::ReplayedProof)
    }
}

/// What the verifier accepts.
#[derive(Debug, Clone)]
pub struct DpopPolicy {
    /// Asymmetric algorithms a proof may use.
    pub algorithms: Vec<&'static str>,
    /// How old `iat` may be, in seconds.
    pub max_age: u64,
    /// How far in the future `iat` may be, in seconds (clock skew).
    pub leeway: u64,
}

impl Default for DpopPolicy {
    fn default() -> DpopPolicy {
        DpopPolicy { algorithms: vec!["ES256", "EdDSA", "PS256", "RS256"], max_age: 300, leeway: 60 }
    }
}

impl DpopPolicy {
    /// FAPI 2.0: PS256, ES256 and EdDSA only.
    pub fn fapi2() -> DpopPolicy {
        DpopPolicy { algorithms: vec!["ES256", "EdDSA", "PS256"], ..DpopPolicy::default() }
    }
}

/// A proof that passed every check this module can make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// RFC 7638 SHA-256 thumbprint of the proof key: compare with the token's `cnf.jkt`.
    pub jkt: String,
    /// The proof's unique id: reject it if seen before, for at least `max_age` + `leeway`.
    pub jti: String,
    /// When the proof was made.
    pub iat: u64,
    /// The `nonce` claim, for servers that check their own nonces.
    pub nonce: Option<String>,
}

/// `ath` (§4.2): base64url of SHA-256 of the access token's ASCII.
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(access_token.as_bytes()))
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

/// Members of a JWK that only a private or symmetric key has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// Checks `proof` for `request` at `now` (RFC 9449 §4.3, steps 2 to 11; the caller checks that
/// exactly one `DPoP` header was sent, the `jti` replay, and the key binding).
pub fn verify_proof(
    proof: &str,
    request: &DpopRequest<'_>,
    policy: &DpopPolicy,
    now: UnixTime,
) -> Result<VerifiedProof, VerifyError> {
    let bad = VerifyError::InvalidDpopProof;
    let jws = CompactJws::parse(proof).map_err(|_| bad("not a compact JWS"))?;
    jws.check_forbidden_headers_except(&["jwk"]).map_err(|_| bad("forbidden header member"))?;
    let header = jws.header();
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(bad("typ is not dpop+jwt"));
    }
    let alg = header.get("alg").and_then(Value::as_str).ok_or(bad("alg is missing"))?;
    let Some(alg) = policy.algorithms.iter().copied().find(|a| *a == alg) else {
        return Err(bad("alg is not an accepted asymmetric algorithm"));
    };
    let Some(jwk) = header.get("jwk").and_then(Value::as_object) else { return Err(bad("jwk is missing")) };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(bad("jwk carries private key material"));
    }
    // The key takes its one algorithm from the header (RSA keys carry none of their own).
    let mut bound = Value::Object(jwk.clone());
    bound["alg"] = Value::String(alg.to_owned());
    let key = VerificationKey::from_jwk(&bound).map_err(|_| bad("jwk is not a usable public key"))?;
    if key.alg_name() != alg {
        return Err(bad("alg does not match the jwk"));
    }
    let parsed: Jwk = serde_json::from_value(Value::Object(jwk.clone())).map_err(|_| bad("jwk is malformed"))?;
    let jkt = parsed.thumbprint(ThumbprintHash::SHA256).map_err(|_| bad("jwk has no thumbprint"))?;
    key.verify(jws.signing_input(), jws.signature_b64()).map_err(|_| bad("signature does not verify"))?;
    let claims = jws.into_payload();
    let text = |name: &'static str| claims.get(name).and_then(Value::as_str).ok_or(bad(name));
    let jti = text("jti")?;
    if jti.is_empty() || jti.len() > 256 {
        return Err(bad("jti"));
    }
    if text("htm")? != request.method {
        return Err(bad("htm does not match the request method"));
    }
    if !same_target(text("htu")?, request.url) {
        return Err(bad("htu does not match the request URL"));
    }
    let iat = claims.get("iat").and_then(Value::as_u64).ok_or(bad("iat"))?;
    if iat > now.secs().saturating_add(policy.leeway) || iat.saturating_add(policy.max_age) < now.secs() {
        return Err(bad("iat is outside the accepted window"));
    }
    if let Some(token) = request.access_token {
        let ath = text("ath").map_err(|_| bad("ath is missing"))?;
        if ath != access_token_hash(token) {
            return Err(bad("ath does not match the access token"));
        }
    }
    if let Some(expected) = request.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(expected)
    {
        return Err(VerifyError::UseDpopNonce);
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).map(str::to_owned);
    Ok(VerifiedProof { jkt, jti: jti.to_owned(), iat, nonce })
}

/// `htu` and the request URL name the same resource: compared without query and fragment, after
/// RFC 3986 §6.2.2/§6.2.3 normalisation (scheme and host case, default port).
fn same_target(htu: &str, url: &str) -> bool {
    let normalise = |s: &str| {
        let mut url = url::Url::parse(s).ok()?;
        url.set_query(None);
        url.set_fragment(None);
        Some(url.to_string())
    };
    matches!((normalise(htu), normalise(url)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 9449 §4.1 (SECURITY-TESTS.md d.6).
    const RFC_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
    const RFC_IAT: u64 = 1_562_262_616;

    fn token_request(url: &str) -> DpopRequest<'_> {
        DpopRequest { method: "POST", url, access_token: None, nonce: None }
    }

    #[test]
    fn the_rfc_example_proof_verifies_at_its_own_time() {
        let proof = verify_proof(
            RFC_PROOF,
            &token_request("https://server.example.com/token"),
            &DpopPolicy::default(),
            UnixTime(RFC_IAT),
        )
        .unwrap();
        assert_eq!(proof.jkt, "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
        assert_eq!(proof.jti, "-BwC3ESc6acc2lTc");
    }

    // SECURITY-TESTS.md d.2 and d.3: the thumbprint `jkt` is computed with is RFC 7638's, and
    // members beyond the required ones (`alg`, `kid`) do not change it.
    #[test]
    fn rfc7638_and_rfc8037_thumbprint_vectors() {
        let rsa = serde_json::json!({"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        let ed = serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let thumbprint = |value: Value| {
            let jwk: Jwk = serde_json::from_value(value).unwrap();
            jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
        };
        assert_eq!(thumbprint(rsa), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(thumbprint(ed), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn htu_is_compared_without_query_fragment_case_or_default_port() {
        for url in [
            "https://server.example.com/token?a=b#frag",
            "HTTPS://SERVER.example.com/token",
            "https://server.example.com:443/token",
        ] {
            let ok = verify_proof(RFC_PROOF, &token_request(url), &DpopPolicy::default(), UnixTime(RFC_IAT));
            assert!(ok.is_ok(), "{url}");
        }
        for url in ["https://server.example.com/other", "http://server.example.com/token", "https://evil.example/token"]
        {
            let err = verify_proof(RFC_PROOF, &token_request(url), &DpopPolicy::default(), UnixTime(RFC_IAT));
            assert!(err.is_err(), "{url}");
        }
    }

    // Regression: #23. Stateless resource-server nonces: any node with the key accepts them
    // for the window they name and the next, nobody without it can make one.
    #[test]
    fn dpop_nonces_last_two_windows_and_need_the_key() {
        let key = [7u8; 32];
        let (a, b) = (DpopNonces::new(&key, 60).unwrap(), DpopNonces::new(&key, 60).unwrap());
        let other = DpopNonces::new(&[8u8; 32], 60).unwrap();
        let nonce = a.current(UnixTime(6_000));
        assert!(b.accepts(&nonce, UnixTime(6_000)), "another node with the key");
        assert!(b.accepts(&nonce, UnixTime(6_119)), "the next window");
        assert!(!b.accepts(&nonce, UnixTime(6_120)), "expired");
        assert!(!b.accepts(&nonce, UnixTime(5_999)), "from the future");
        assert!(!other.accepts(&nonce, UnixTime(6_000)), "another key");
        let mut forged = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        forged[12] ^= 1;
        assert!(!b.accepts(&URL_SAFE_NO_PAD.encode(forged), UnixTime(6_000)));
        assert!(!b.accepts("", UnixTime(6_000)) && !b.accepts("!!", UnixTime(6_000)));
        assert!(DpopNonces::new(&[1u8; 16], 60).is_err(), "a short key");
        assert!(!format!("{a:?}").contains('7'), "the key never prints");
    }

    #[test]
    fn method_time_nonce_and_ath_are_enforced() {
        let policy = DpopPolicy::default();
        let url = "https://server.example.com/token";
        let put = DpopRequest { method: "PUT", ..token_request(url) };
        assert!(verify_proof(RFC_PROOF, &put, &policy, UnixTime(RFC_IAT)).is_err());
        for now in [RFC_IAT + 3600, RFC_IAT - 3600] {
            assert!(verify_proof(RFC_PROOF, &token_request(url), &policy, UnixTime(now)).is_err(), "{now}");
        }
        for now in [RFC_IAT + 10, RFC_IAT - 10] {
            assert!(verify_proof(RFC_PROOF, &token_request(url), &policy, UnixTime(now)).is_ok(), "{now}");
        }
        let with_nonce = DpopRequest { nonce: Some("n-1"), ..token_request(url) };
        assert_eq!(verify_proof(RFC_PROOF, &with_nonce, &policy, UnixTime(RFC_IAT)), Err(VerifyError::UseDpopNonce));
        // The proof has no ath: it cannot accompany an access token.
        let with_token = DpopRequest { access_token: Some("token"), ..token_request(url) };
        assert!(verify_proof(RFC_PROOF, &with_token, &policy, UnixTime(RFC_IAT)).is_err());
    }

    #[test]
    fn tampering_and_malformed_proofs_are_refused_without_panicking() {
        let policy = DpopPolicy::default();
        let request = token_request("https://server.example.com/token");
        let mut flipped = RFC_PROOF.as_bytes().to_vec();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let (header_b64, rest) = RFC_PROOF.split_once('.').unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).unwrap()).unwrap();
        let with_header = |change: &dyn Fn(&mut Value)| {
            let mut h = header.clone();
            change(&mut h);
            format!("{}.{rest}", b64(&h))
        };
        let cases = [
            flipped,
            "not.a.jwt".to_owned(),
            String::new(),
            with_header(&|h| h["typ"] = "JWT".into()),
            with_header(&|h| {
                h.as_object_mut().unwrap().remove("typ");
            }),
            with_header(&|h| h["alg"] = "none".into()),
            with_header(&|h| h["alg"] = "HS256".into()),
            with_header(&|h| h["alg"] = "RS256".into()),
            with_header(&|h| h["jwk"]["d"] = "AAAA".into()),
            with_header(&|h| {
                h.as_object_mut().unwrap().remove("jwk");
            }),
            // A point that is not on P-256.
            with_header(&|h| {
                h["jwk"]["x"] =
                    URL_SAFE_NO_PAD.encode([0u8; 31].iter().chain([1u8].iter()).copied().collect::<Vec<_>>()).into();
                h["jwk"]["y"] = h["jwk"]["x"].clone();
            }),
            with_header(&|h| h["jku"] = "https://evil.example/jwks".into()),
        ];
        for proof in cases {
            assert!(verify_proof(&proof, &request, &policy, UnixTime(RFC_IAT)).is_err(), "{proof:.60}");
        }
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    /// Signs proofs with a fresh P-256 key, for cases the RFC's fixed proof cannot express.
    struct Signer(aws_lc_rs::signature::EcdsaKeyPair);

    impl Signer {
        fn new() -> Signer {
            use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
            Signer(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
        }

        fn jwk(&self) -> Value {
            use aws_lc_rs::signature::KeyPair as _;
            let point = self.0.public_key().as_ref();
            serde_json::json!({"kty":"EC","crv":"P-256","x":URL_SAFE_NO_PAD.encode(&point[1..33]),"y":URL_SAFE_NO_PAD.encode(&point[33..65])})
        }

        fn sign(&self, header: &Value, claims: &Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = self.0.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        }
    }

    #[test]
    fn every_required_member_is_required_and_extra_members_are_fine() {
        let signer = Signer::new();
        let header = serde_json::json!({"typ":"dpop+jwt","alg":"ES256","jwk":signer.jwk()});
        let token = "an-access-token";
        let claims = serde_json::json!({"jti":"j-1","htm":"GET","htu":"https://api.example.test/resource","iat":1000,"ath":access_token_hash(token)});
        let request = DpopRequest {
            method: "GET",
            url: "https://api.example.test/resource",
            access_token: Some(token),
            nonce: None,
        };
        let policy = DpopPolicy::default();
        let ok = verify_proof(&signer.sign(&header, &claims), &request, &policy, UnixTime(1000)).unwrap();
        assert_eq!(ok.jti, "j-1");
        let mut extra_header = header.clone();
        extra_header["x-extra"] = "1".into();
        let mut extra_claims = claims.clone();
        extra_claims["x-extra"] = "1".into();
        extra_claims["exp"] = 2000.into();
        assert!(verify_proof(&signer.sign(&extra_header, &extra_claims), &request, &policy, UnixTime(1000)).is_ok());
        for member in ["jti", "htm", "htu", "iat", "ath"] {
            let mut missing = claims.clone();
            missing.as_object_mut().unwrap().remove(member);
            assert!(
                verify_proof(&signer.sign(&header, &missing), &request, &policy, UnixTime(1000)).is_err(),
                "{member}"
            );
        }
        let mut other_token = claims.clone();
        other_token["ath"] = access_token_hash("another-token").into();
        assert!(verify_proof(&signer.sign(&header, &other_token), &request, &policy, UnixTime(1000)).is_err());
        // Signed by another key than the one in the header.
        let other = Signer::new();
        let forged = other.sign(&header, &claims);
        assert!(verify_proof(&forged, &request, &policy, UnixTime(1000)).is_err());
        // The thumbprint is the key's RFC 7638 thumbprint, different per key.
        let other_header = serde_json::json!({"typ":"dpop+jwt","alg":"ES256","jwk":other.jwk()});
        let theirs = verify_proof(&other.sign(&other_header, &claims), &request, &policy, UnixTime(1000)).unwrap();
        assert_ne!(theirs.jkt, ok.jkt);
    }
}
