//! A client's P-256 key that signs DPoP proofs and client assertions, the `TestApp` requests
//! that carry them, and JWT claims decoded for assertions.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::app::{TestApp, TestClient, basic};

/// A client's P-256 key: it signs DPoP proofs exactly as RFC 9449 §4.2 describes (the parts of
/// a proof can be set one by one for the attack cases) and `private_key_jwt` assertions.
pub struct DpopKey(aws_lc_rs::signature::EcdsaKeyPair);

impl Default for DpopKey {
    fn default() -> DpopKey {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        DpopKey(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }
}

pub(crate) fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl DpopKey {
    /// The public JWK that goes into the proof header.
    pub fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair as _;
        let point = self.0.public_key().as_ref();
        json!({"kty":"EC","crv":"P-256","x":b64url(&point[1..33]),"y":b64url(&point[33..65])})
    }

    /// The public JWK with a `kid`, as a client registers it for `private_key_jwt`.
    pub fn jwk_with_kid(&self, kid: &str) -> Value {
        let mut jwk = self.jwk();
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        jwk
    }

    /// RFC 7638 thumbprint, computed here independently of the server: SHA-256 over the
    /// required members in lexicographic order, without whitespace.
    pub fn jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// The standard header and claims of a proof for `method url` at `iat`, with `ath` for an
    /// access token; a fresh random `jti`.
    pub fn parts(&self, method: &str, url: &str, iat: u64, access_token: Option<&str>) -> (Value, Value) {
        let header = json!({"typ":"dpop+jwt","alg":"ES256","jwk":self.jwk()});
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let mut claims = json!({"jti":b64url(&jti),"htm":method,"htu":url,"iat":iat});
        if let Some(token) = access_token {
            claims["ath"] =
                b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref()).into();
        }
        (header, claims)
    }

    /// A proof for `method url` at `iat`.
    pub fn proof(&self, method: &str, url: &str, iat: u64, access_token: Option<&str>) -> String {
        let (header, claims) = self.parts(method, url, iat, access_token);
        self.sign(&header, &claims)
    }

    /// Signs any header and claims.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let signature = self.0.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(signature.as_ref()))
    }
}

impl TestApp {
    /// POSTs a form to `path` with the client's credentials and the given `DPoP` header values.
    pub async fn post_dpop(
        &self,
        path: &str,
        client: &TestClient,
        form: &[(&str, &str)],
        proofs: &[&str],
    ) -> reqwest::Response {
        let mut form = form.to_vec();
        let mut request = self.http.post(self.url(path));
        if client.secret.is_empty() {
            form.push(("client_id", &client.id));
        } else {
            request = request.header("authorization", basic(&client.id, &client.secret));
        }
        for proof in proofs {
            request = request.header("dpop", *proof);
        }
        request.form(&form).send().await.unwrap()
    }

    /// A proof for `POST {issuer}{path}` at the server's current time.
    pub fn dpop_proof(&self, key: &DpopKey, path: &str) -> String {
        key.proof("POST", &self.url(path), self.clock.now_secs(), None)
    }
}

/// The claims of a JWT, decoded without any check (for assertions about what was issued).
pub fn jwt_claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
