//! Attack classes of SECURITY-TESTS.md c.1 and the RFC vectors of section d, run against
//! [`Verifier::verify`] with deterministic keys and a fixed clock.

use std::sync::OnceLock;

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Value, json};
use tessera_proto::{UnixTime, jwks::JwkSet};

use crate::{Verifier, VerifyError};

const ISS: &str = "https://as.example.test";
const API: &str = "https://api.example.test";
const NOW: u64 = 1_767_225_600;

// RFC 7515 Appendix A.3: the AS EC key of the attack fixtures.
const EC_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const EC_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
// RFC 8037 Appendix A.1.
const ED_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn ec_key() -> EcdsaKeyPair {
    let mut public = vec![4u8];
    public.extend(B64.decode(EC_X).unwrap());
    public.extend(B64.decode(EC_Y).unwrap());
    EcdsaKeyPair::from_private_key_and_public_key(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &B64.decode(EC_D).unwrap(),
        &public,
    )
    .unwrap()
}

fn attacker_ec_key() -> &'static EcdsaKeyPair {
    static KEY: OnceLock<EcdsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
}

fn ed_key() -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&B64.decode(ED_D).unwrap()).unwrap()
}

fn rsa_key() -> &'static RsaKeyPair {
    static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
    KEY.get_or_init(|| RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap())
}

fn rsa_jwk(alg: &str, kid: &str) -> Value {
    let public = rsa_key().public_key();
    json!({"kty":"RSA","kid":kid,"alg":alg,"use":"sig",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero())})
}

fn jwks() -> JwkSet {
    JwkSet {
        keys: vec![
            json!({"kty":"EC","crv":"P-256","kid":"as-ec","alg":"ES256","use":"sig","x":EC_X,"y":EC_Y}),
            json!({"kty":"OKP","crv":"Ed25519","kid":"as-ed","alg":"EdDSA","use":"sig","x":ED_X}),
            rsa_jwk("RS256", "as-rs256"),
        ],
    }
}

fn verifier() -> Verifier {
    Verifier::new(ISS, API, &jwks()).unwrap()
}

fn claims() -> Value {
    json!({"iss":ISS,"sub":"client-a","aud":API,"client_id":"client-a","scope":"read",
        "iat":NOW - 10,"exp":NOW + 300,"jti":"j-1"})
}

fn header(kid: &str, alg: &str) -> Value {
    json!({"typ":"at+jwt","alg":alg,"kid":kid})
}

enum Signer {
    Ec,
    Ed,
    Rs256,
    Ps256,
    Attacker,
}

fn sign_raw(signer: Signer, header_json: &str, claims_json: &str) -> String {
    let input = format!("{}.{}", b64(header_json.as_bytes()), b64(claims_json.as_bytes()));
    let rng = SystemRandom::new();
    let sig = match signer {
        Signer::Ec => ec_key().sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        Signer::Attacker => attacker_ec_key().sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        Signer::Ed => ed_key().sign(input.as_bytes()).as_ref().to_vec(),
        Signer::Rs256 | Signer::Ps256 => {
            let padding: &dyn signature::RsaEncoding =
                if matches!(signer, Signer::Rs256) { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
            let mut sig = vec![0; rsa_key().public_modulus_len()];
            rsa_key().sign(padding, &rng, input.as_bytes(), &mut sig).unwrap();
            sig
        }
    };
    format!("{input}.{}", b64(&sig))
}

fn sign(signer: Signer, header: &Value, claims: &Value) -> String {
    sign_raw(signer, &header.to_string(), &claims.to_string())
}

fn es256(claims: &Value) -> String {
    sign(Signer::Ec, &header("as-ec", "ES256"), claims)
}

fn with(mut value: Value, name: &str, member: Value) -> Value {
    value[name] = member;
    value
}

fn without(mut value: Value, name: &str) -> Value {
    value.as_object_mut().unwrap().remove(name);
    value
}

#[track_caller]
fn accepts(token: &str) {
    if let Err(err) = verifier().verify(token, UnixTime(NOW)) {
        panic!("expected the token to verify, got {err:?}");
    }
}

#[track_caller]
fn rejects(token: &str, expected: VerifyError) {
    assert_eq!(verifier().verify(token, UnixTime(NOW)), Err(expected));
}

#[test]
fn valid_tokens_of_every_algorithm_verify() {
    accepts(&es256(&claims()));
    accepts(&sign(Signer::Ed, &header("as-ed", "EdDSA"), &claims()));
    accepts(&sign(Signer::Rs256, &header("as-rs256", "RS256"), &claims()));
    let claims = verifier().verify(&es256(&claims()), UnixTime(NOW)).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.aud.as_slice(), claims.exp),
        ("client-a", &[API.to_owned()][..], NOW + 300)
    );
}

// JW-01
#[test]
fn alg_none_in_any_case_is_rejected() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = sign(Signer::Ec, &json!({"typ":"at+jwt","alg":alg,"kid":"as-ec"}), &claims());
        let (input, _) = token.rsplit_once('.').unwrap();
        rejects(&format!("{input}."), VerifyError::Malformed("empty segment"));
        // J02: the same header, but keeping a real signature.
        rejects(&token, VerifyError::AlgorithmMismatch);
    }
}

// JW-02: HS256 keyed with the public key in every encoding.
#[test]
fn hs256_with_the_public_key_is_rejected() {
    let public = rsa_key().public_key();
    let pem_like = [
        public.as_ref().to_vec(),
        rsa_jwk("RS256", "as-rs256").to_string().into_bytes(),
        ec_key().public_key().as_ref().to_vec(),
    ];
    for secret in pem_like {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        for kid in ["as-rs256", "as-ec"] {
            let input = format!(
                "{}.{}",
                b64(header(kid, "HS256").to_string().as_bytes()),
                b64(claims().to_string().as_bytes())
            );
            let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
            rejects(&format!("{input}.{}", b64(tag.as_ref())), VerifyError::AlgorithmMismatch);
        }
    }
}

// JW-03
#[test]
fn injected_kids_are_unknown() {
    for kid in ["../../../../../../../dev/null", "x' UNION SELECT 'secret' -- ", "as-ec\u{0}", "as-ec\r\n"] {
        rejects(&sign(Signer::Ec, &header(kid, "ES256"), &claims()), VerifyError::UnknownKey);
    }
    rejects(&sign(Signer::Ec, &json!({"typ":"at+jwt","alg":"ES256"}), &claims()), VerifyError::UnknownKey);
}

// JW-04, JW-05, JW-06, JW-07, JW-19: headers that would make us trust the token itself.
#[test]
fn key_carrying_crit_and_nesting_headers_are_rejected() {
    let attacker_jwk = json!({"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y});
    let cases = [
        ("jku", json!("https://attacker.example/jwks.json")),
        ("jku", json!("http://169.254.169.254/latest/meta-data/")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("jwk", attacker_jwk),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUQ"])),
        ("crit", json!(["exp"])),
        ("crit", json!([])),
        ("crit", json!(["alg"])),
        ("cty", json!("JWT")),
    ];
    for (name, value) in cases {
        let token = sign(Signer::Attacker, &with(header("as-ec", "ES256"), name, value.clone()), &claims());
        assert!(matches!(verifier().verify(&token, UnixTime(NOW)), Err(VerifyError::ForbiddenHeader(_))), "{name}");
        // Even signed by the real key, the member alone refuses the token.
        let token = sign(Signer::Ec, &with(header("as-ec", "ES256"), name, value), &claims());
        assert!(matches!(verifier().verify(&token, UnixTime(NOW)), Err(VerifyError::ForbiddenHeader(_))), "{name}");
    }
}

#[test]
fn a_token_signed_by_another_key_never_verifies() {
    rejects(&sign(Signer::Attacker, &header("as-ec", "ES256"), &claims()), VerifyError::InvalidSignature);
}

// JW-08: psychic signatures and other ECDSA malformations.
#[test]
fn malformed_ecdsa_signatures_are_rejected() {
    let token = es256(&claims());
    let (input, _) = token.rsplit_once('.').unwrap();
    // n, the order of P-256.
    let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let mut r_eq_s_eq_n = n.clone();
    r_eq_s_eq_n.extend(&n);
    // r = 0, s = 1.
    let mut r0_s1 = vec![0u8; 63];
    r0_s1.push(1);
    let der = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        ec_key().to_pkcs8v1().unwrap().as_ref(),
    )
    .unwrap()
    .sign(&SystemRandom::new(), input.as_bytes())
    .unwrap();
    for sig in [vec![0u8; 64], r_eq_s_eq_n, r0_s1, der.as_ref().to_vec(), vec![7u8; 63]] {
        let forged = format!("{input}.{}", b64(&sig));
        assert!(verifier().verify(&forged, UnixTime(NOW)).is_err());
    }
    // J09a exactly as the catalogue writes it.
    rejects(&format!("{input}.{}", "A".repeat(86)), VerifyError::InvalidSignature);
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

// JW-09
#[test]
fn non_compact_and_non_canonical_encodings_are_rejected() {
    let token = es256(&claims());
    let (head, rest) = token.split_once('.').unwrap();
    let malformed = [
        format!("{token}="),
        format!("{token}\n"),
        format!("{head}.{rest}.x"),
        format!("{token}.x.y"),
        format!("{}+", &token[..token.len() - 1]),
        format!("{{\"payload\":\"{rest}\"}}"),
        format!(" {token}"),
    ];
    for bad in &malformed {
        assert!(matches!(verifier().verify(bad, UnixTime(NOW)), Err(VerifyError::Malformed(_))), "{bad:?}");
    }
    // J10c: a trailing character changes the signature length.
    assert!(verifier().verify(&format!("{token}x"), UnixTime(NOW)).is_err());
    // J10h: a last character whose unused bits are set decodes leniently to the same bytes.
    let (input, sig) = token.rsplit_once('.').unwrap();
    let last = sig.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    // 64 bytes encode to 86 characters; the last carries 4 data bits and 2 unused ones.
    let sibling = alphabet.chars().nth(index ^ 1).unwrap();
    let forged = format!("{input}.{}{sibling}", &sig[..sig.len() - 1]);
    rejects(&forged, VerifyError::Malformed("invalid base64url"));
}

// JW-10
#[test]
fn duplicate_members_and_foreign_encodings_are_rejected() {
    let payload = claims().to_string().replacen("\"sub\":\"client-a\"", "\"sub\":\"client-a\",\"sub\":\"admin\"", 1);
    rejects(
        &sign_raw(Signer::Ec, &header("as-ec", "ES256").to_string(), &payload),
        VerifyError::Malformed("payload is not a JSON object"),
    );
    let head = r#"{"typ":"at+jwt","alg":"ES256","kid":"as-ec","alg":"none"}"#;
    rejects(&sign_raw(Signer::Ec, head, &claims().to_string()), VerifyError::Malformed("header is not a JSON object"));
    let bom = format!("\u{feff}{}", header("as-ec", "ES256"));
    rejects(&sign_raw(Signer::Ec, &bom, &claims().to_string()), VerifyError::Malformed("header is not a JSON object"));
    let utf16: Vec<u8> = header("as-ec", "ES256").to_string().encode_utf16().flat_map(u16::to_le_bytes).collect();
    let input = format!("{}.{}", b64(&utf16), b64(claims().to_string().as_bytes()));
    let sig = ec_key().sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    rejects(&format!("{input}.{}", b64(sig.as_ref())), VerifyError::Malformed("header is not a JSON object"));
}

// JW-11
#[test]
fn security_claims_of_the_wrong_type_are_rejected() {
    for (name, value) in [
        ("exp", json!("1767225900")),
        ("exp", json!("never")),
        ("nbf", json!("1767225000")),
        ("exp", json!(true)),
        ("iat", json!(null)),
    ] {
        rejects(&es256(&with(claims(), name, value)), VerifyError::InvalidClaim(name));
    }
}

// JW-12, with the default 60 s leeway.
#[test]
fn time_claims_respect_the_leeway_edges() {
    rejects(&es256(&with(claims(), "exp", json!(NOW - 61))), VerifyError::Expired);
    accepts(&es256(&with(claims(), "exp", json!(NOW - 59))));
    rejects(&es256(&with(claims(), "nbf", json!(NOW + 61))), VerifyError::NotYetValid);
    accepts(&es256(&with(claims(), "nbf", json!(NOW + 59))));
    rejects(&es256(&with(claims(), "iat", json!(NOW + 61))), VerifyError::NotYetValid);
    accepts(&es256(&with(claims(), "iat", json!(NOW + 59))));
    rejects(&es256(&without(claims(), "exp")), VerifyError::InvalidClaim("exp"));
    rejects(&es256(&with(claims(), "exp", json!(-5))), VerifyError::InvalidClaim("exp"));
    rejects(&es256(&with(claims(), "exp", json!(1e300))), VerifyError::NotYetValid);
    accepts(&es256(&with(claims(), "exp", json!(NOW as f64 + 30.5))));
    let strict = verifier().with_leeway(0);
    assert_eq!(strict.verify(&es256(&with(claims(), "exp", json!(NOW - 1))), UnixTime(NOW)), Err(VerifyError::Expired));
}

// JW-13
#[test]
fn audience_must_contain_ours_exactly() {
    accepts(&es256(&with(claims(), "aud", json!(["https://other.example", API]))));
    rejects(&es256(&with(claims(), "aud", json!(["https://other.example"]))), VerifyError::WrongAudience);
    rejects(&es256(&without(claims(), "aud")), VerifyError::InvalidClaim("aud"));
    rejects(&es256(&with(claims(), "aud", json!(format!("{API}/")))), VerifyError::WrongAudience);
    rejects(&es256(&with(claims(), "aud", json!([]))), VerifyError::InvalidClaim("aud"));
    rejects(&es256(&with(claims(), "aud", json!(format!("{API}.evil.example")))), VerifyError::WrongAudience);
    rejects(&es256(&with(claims(), "aud", json!([API, 7]))), VerifyError::InvalidClaim("aud"));
}

// JW-14
#[test]
fn issuer_must_match_exactly() {
    for iss in [format!("{ISS}/"), ISS.to_uppercase(), "https://other-as.example.test".to_owned()] {
        rejects(&es256(&with(claims(), "iss", json!(iss))), VerifyError::WrongIssuer);
    }
}

// JW-15
#[test]
fn only_access_token_types_are_accepted() {
    let id_token_shaped = with(with(claims(), "aud", json!("client-a")), "nonce", json!("n"));
    rejects(
        &sign(Signer::Ec, &with(header("as-ec", "ES256"), "typ", json!("JWT")), &id_token_shaped),
        VerifyError::WrongType,
    );
    rejects(&sign(Signer::Ec, &without(header("as-ec", "ES256"), "typ"), &claims()), VerifyError::WrongType);
    for typ in ["dpop+jwt", "logout+jwt", "JWT"] {
        rejects(
            &sign(Signer::Ec, &with(header("as-ec", "ES256"), "typ", json!(typ)), &claims()),
            VerifyError::WrongType,
        );
    }
    accepts(&sign(Signer::Ec, &with(header("as-ec", "ES256"), "typ", json!("application/at+jwt")), &claims()));
    // Policy (J15f): media types are case-insensitive.
    accepts(&sign(Signer::Ec, &with(header("as-ec", "ES256"), "typ", json!("AT+JWT")), &claims()));
}

// JW-16
#[test]
fn each_key_verifies_with_its_one_algorithm() {
    rejects(&sign(Signer::Ec, &header("as-ec", "ES384"), &claims()), VerifyError::AlgorithmMismatch);
    rejects(&sign(Signer::Rs256, &header("as-ec", "RS256"), &claims()), VerifyError::AlgorithmMismatch);
    rejects(&sign(Signer::Ps256, &header("as-rs256", "PS256"), &claims()), VerifyError::AlgorithmMismatch);
    accepts(&sign(Signer::Rs256, &header("as-rs256", "RS256"), &claims()));
}

#[test]
fn required_claims_must_be_present() {
    for name in ["iss", "sub", "client_id", "jti", "iat"] {
        rejects(&es256(&without(claims(), name)), VerifyError::InvalidClaim(name));
    }
    rejects(&es256(&with(claims(), "scope", json!(["read"]))), VerifyError::InvalidClaim("scope"));
}

// JW-18
#[test]
fn oversized_and_deeply_nested_tokens_are_rejected() {
    let padded = with(claims(), "pad", json!("p".repeat(64 * 1024)));
    rejects(&es256(&padded), VerifyError::Malformed("token too large"));
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let payload = claims().to_string().replacen('{', &format!("{{\"deep\":{deep},"), 1);
    let token = sign_raw(Signer::Ec, &header("as-ec", "ES256").to_string(), &payload);
    assert!(verifier().verify(&token, UnixTime(NOW)).is_err());
}

// JW-20
#[test]
fn sender_constrained_tokens_are_not_bearer_tokens() {
    rejects(
        &es256(&with(claims(), "cnf", json!({"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}))),
        VerifyError::SenderConstrained,
    );
}

/// A fresh P-256 client key that signs DPoP proofs.
struct DpopKey(EcdsaKeyPair);

impl DpopKey {
    fn new() -> DpopKey {
        DpopKey(EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    fn jwk(&self) -> Value {
        let point = self.0.public_key().as_ref();
        json!({"kty":"EC","crv":"P-256","x":b64(&point[1..33]),"y":b64(&point[33..65])})
    }

    fn jkt(&self) -> String {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.jwk()).unwrap();
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).unwrap()
    }

    fn proof(&self, jti: &str, method: &str, url: &str, token: &str) -> String {
        let header = json!({"typ":"dpop+jwt","alg":"ES256","jwk":self.jwk()});
        let claims = json!({"jti":jti,"htm":method,"htu":url,"iat":NOW,"ath":crate::dpop::access_token_hash(token)});
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let sig = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

fn resource_request(url: &str) -> crate::dpop::ResourceRequest<'_> {
    crate::dpop::ResourceRequest { method: "GET", url, nonce: None, policy: crate::dpop::DpopPolicy::default() }
}

// JW-20, DP-05, DP-04 (replay), a.5 items 11 and 14.
#[test]
fn dpop_bound_tokens_need_a_proof_by_the_bound_key() {
    let key = DpopKey::new();
    let url = "https://api.example.test/resource";
    let token = es256(&with(claims(), "cnf", json!({"jkt": key.jkt()})));
    let request = resource_request(url);
    let now = UnixTime(NOW);
    let (verified, proof) =
        verifier().verify_dpop(&token, &key.proof("p-1", "GET", url, &token), &request, None, now).unwrap();
    assert_eq!(verified.cnf, Some(crate::Confirmation::Jkt(key.jkt())));
    assert_eq!(proof.jkt, key.jkt());
    // As a bearer token: refused.
    rejects(&token, VerifyError::SenderConstrained);
    // A proof by another key, a proof for another token, another method.
    let other = DpopKey::new();
    let err = verifier().verify_dpop(&token, &other.proof("p-2", "GET", url, &token), &request, None, now);
    assert_eq!(err.unwrap_err(), VerifyError::WrongBinding("DPoP key"));
    let err = verifier().verify_dpop(&token, &key.proof("p-3", "GET", url, "another"), &request, None, now);
    assert!(matches!(err, Err(VerifyError::InvalidDpopProof(_))));
    let err = verifier().verify_dpop(&token, &key.proof("p-4", "POST", url, &token), &request, None, now);
    assert!(matches!(err, Err(VerifyError::InvalidDpopProof(_))));
    // A bearer token presented with a proof is not bound to it.
    let bearer = es256(&claims());
    let err = verifier().verify_dpop(&bearer, &key.proof("p-5", "GET", url, &bearer), &request, None, now);
    assert_eq!(err.unwrap_err(), VerifyError::WrongBinding("DPoP key"));
    // The same proof twice: the second is a replay.
    let cache = crate::dpop::ReplayCache::new(1000);
    let proof = key.proof("p-6", "GET", url, &token);
    assert!(verifier().verify_dpop(&token, &proof, &request, Some(&cache), now).is_ok());
    let replay = verifier().verify_dpop(&token, &proof, &request, Some(&cache), now);
    assert_eq!(replay.unwrap_err(), VerifyError::ReplayedProof);
}

// MT-03, JW-20b/c, MT-05.
#[test]
fn certificate_bound_tokens_need_the_bound_certificate() {
    let cert = b"a DER certificate stands here";
    let thumbprint = crate::certificate_thumbprint(cert);
    assert_eq!(thumbprint.len(), 43);
    let token = es256(&with(claims(), "cnf", json!({"x5t#S256": thumbprint})));
    let verified = verifier().verify_certificate_bound(&token, cert, UnixTime(NOW)).unwrap();
    assert_eq!(verified.cnf, Some(crate::Confirmation::X5tS256(thumbprint)));
    let err = verifier().verify_certificate_bound(&token, b"another certificate", UnixTime(NOW));
    assert_eq!(err.unwrap_err(), VerifyError::WrongBinding("client certificate"));
    rejects(&token, VerifyError::SenderConstrained);
    // A bearer token is not certificate-bound; an unknown or doubled confirmation is no token.
    let bearer = es256(&claims());
    assert!(verifier().verify_certificate_bound(&bearer, cert, UnixTime(NOW)).is_err());
    for cnf in [json!({"x5t":"abc"}), json!({"jkt":"a","x5t#S256":"b"}), json!({"jkt":5}), json!("jkt"), json!({})] {
        rejects(&es256(&with(claims(), "cnf", cnf.clone())), VerifyError::InvalidClaim("cnf"));
    }
}

#[test]
fn key_sets_with_private_or_weak_keys_are_refused() {
    let private = JwkSet { keys: vec![json!({"kty":"EC","crv":"P-256","kid":"k","x":EC_X,"y":EC_Y,"d":EC_D})] };
    assert!(Verifier::new(ISS, API, &private).is_err());
    let symmetric = JwkSet { keys: vec![json!({"kty":"oct","kid":"k","k":"c2VjcmV0"})] };
    assert!(Verifier::new(ISS, API, &symmetric).is_err());
    let duplicate = JwkSet { keys: vec![jwks().keys[0].clone(), jwks().keys[0].clone()] };
    assert!(Verifier::new(ISS, API, &duplicate).is_err());
    let rsa_without_alg = JwkSet { keys: vec![without(rsa_jwk("RS256", "r"), "alg")] };
    assert!(Verifier::new(ISS, API, &rsa_without_alg).is_err());
    let short_rsa = JwkSet { keys: vec![json!({"kty":"RSA","kid":"r","alg":"RS256","n":"AQAB","e":"AQAB"})] };
    assert!(Verifier::new(ISS, API, &short_rsa).is_err());
}

// RFC 8037 A.4: the Ed25519 signature is deterministic, so it checks our signer as well.
#[test]
fn rfc8037_ed25519_vector() {
    let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    let sig = ed_key().sign(input.as_bytes());
    assert_eq!(
        b64(sig.as_ref()),
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
    assert_eq!(b64(ed_key().public_key().as_ref()), ED_X);
}

// RFC 7515 A.3: the fixture EC key's public point derives from d.
#[test]
fn rfc7515_ec_vector() {
    let public = ec_key().public_key().as_ref().to_vec();
    assert_eq!((b64(&public[1..33]), b64(&public[33..])), (EC_X.to_owned(), EC_Y.to_owned()));
}

// RFC 7515 A.1: the HS256 example is never accepted, whatever key set we hold.
#[test]
fn rfc7515_hs256_example_is_rejected() {
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    rejects(token, VerifyError::WrongType);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn flipping_any_character_never_verifies(index in 0usize..400, replacement in "[A-Za-z0-9_-]") {
            let token = es256(&claims());
            let index = index % token.len();
            let mut bytes = token.clone().into_bytes();
            prop_assume!(bytes[index] != b'.' && bytes[index] != replacement.as_bytes()[0]);
            bytes[index] = replacement.as_bytes()[0];
            let forged = String::from_utf8(bytes).unwrap();
            prop_assert!(verifier().verify(&forged, UnixTime(NOW)).is_err());
        }

        #[test]
        fn arbitrary_input_never_panics(input in ".{0,300}") {
            let _ = verifier().verify(&input, UnixTime(NOW));
        }
    }
}
