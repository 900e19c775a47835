//! The `fapi2` client profile: the FAPI 2.0 Security Profile behaviours of SECURITY-TESTS.md a.4
//! that apply to an authorization server without signed request objects.

use serde_json::{Value, json};
use tessera_test_support::{Browser, CHALLENGE, DpopKey, REDIRECT_URI, TestApp, VERIFIER, query_param, spawn_app};

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Fapi2Client {
    id: String,
    key: DpopKey,
}

impl Fapi2Client {
    fn assertion(&self, app: &TestApp, aud: Value) -> String {
        let now = app.clock.now_secs();
        let mut jti = [0u8; 12];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
        let claims = json!({"iss": self.id, "sub": self.id, "aud": aud, "exp": now + 60, "iat": now, "jti": jti});
        self.key.sign(&json!({"alg":"ES256","kid":"k1"}), &claims)
    }

    /// POSTs `form` to `path`, authenticated by a private_key_jwt assertion for the issuer.
    async fn post(&self, app: &TestApp, path: &str, form: &[(&str, &str)], proofs: &[&str]) -> reqwest::Response {
        let assertion = self.assertion(app, json!(app.issuer));
        let mut form = form.to_vec();
        form.extend([("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion.as_str())]);
        let mut request = app.http.post(app.url(path));
        for proof in proofs {
            request = request.header("dpop", *proof);
        }
        request.form(&form).send().await.unwrap()
    }
}

async fn fapi2_client(app: &TestApp) -> Fapi2Client {
    let key = DpopKey::default();
    let metadata = json!({
        "client_name": "Bank App", "profile": "fapi2", "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [REDIRECT_URI], "scope": "openid accounts", "first_party": true,
        "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.jwk_with_kid("k1")]},
    });
    let res = app.admin_post("/admin/clients", &metadata).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let info = body(res).await;
    assert_eq!(info["require_pushed_authorization_requests"], true);
    assert_eq!(info["id_token_signed_response_alg"], "ES256");
    assert_eq!(info["refresh_token_rotation"], false);
    Fapi2Client { id: info["client_id"].as_str().unwrap().to_owned(), key }
}

fn par_form(client_id: &str) -> Vec<(&str, &str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid accounts"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

// Registration: only asymmetric client authentication, no RS256, PAR, no rotation.
#[tokio::test]
async fn the_fapi2_profile_refuses_weaker_registrations() {
    let app = spawn_app().await;
    let key = DpopKey::default();
    let base = json!({"profile":"fapi2","token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[key.jwk_with_kid("k")]}});
    let with = |k: &str, v: Value| {
        let mut m = base.clone();
        m[k] = v;
        m
    };
    for (metadata, field) in [
        (with("token_endpoint_auth_method", json!("client_secret_basic")), "token_endpoint_auth_method"),
        (with("id_token_signed_response_alg", json!("RS256")), "id_token_signed_response_alg"),
        (with("refresh_token_rotation", json!(true)), "refresh_token_rotation"),
        (with("require_pushed_authorization_requests", json!(false)), "require_pushed_authorization_requests"),
        (with("profile", json!("fapi1")), "profile"),
    ] {
        let res = app.admin_post("/admin/clients", &metadata).await;
        assert_eq!(res.status(), 400, "{metadata}");
        let description = body(res).await["error_description"].as_str().unwrap().to_owned();
        assert!(description.starts_with(field), "{description}");
    }
}

// a.4: PAR required, redirect_uri required at PAR, aud = issuer as a string, holder-of-key
// required, no RS256 DPoP proofs, dpop_jkt binding, refresh with the previous token after 30 s,
// and a new DPoP key on refresh.
#[tokio::test]
async fn a_fapi2_client_completes_the_flow_only_the_fapi2_way() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = fapi2_client(&app).await;
    let dpop = DpopKey::default();

    // ensure-unsigned-authorization-request-without-using-par-fails
    let mut browser = Browser::new(&app);
    let mut query = par_form(&client.id);
    query.push(("state", "s"));
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let res = browser.get(url.as_str()).await;
    let to = tessera_test_support::location(&res).unwrap_or_default();
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"), "{to}");

    // ensure-redirect-uri-in-authorization-request: even with one registered URI.
    let without_redirect: Vec<_> = par_form(&client.id).into_iter().filter(|(k, _)| *k != "redirect_uri").collect();
    let res = client.post(&app, "/par", &without_redirect, &[]).await;
    assert_eq!((res.status().as_u16(), body(res).await["error"].clone()), (400, json!("invalid_request")));

    // par-test-*-as-audience-fails: an array, the token URL, the PAR URL.
    for aud in [json!([app.issuer]), json!(app.url("/token")), json!(app.url("/par"))] {
        let assertion = client.assertion(&app, aud.clone());
        let mut form = par_form(&client.id);
        form.extend([("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion.as_str())]);
        let res = app.http.post(app.url("/par")).form(&form).send().await.unwrap();
        assert_eq!(res.status(), 401, "{aud}");
    }

    // The happy flow: PAR with a DPoP proof binds the code to the key.
    let res = client.post(&app, "/par", &par_form(&client.id), &[&app.dpop_proof(&dpop, "/par")]).await;
    assert_eq!(res.status(), 201);
    let request_uri = body(res).await["request_uri"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&[("client_id", &client.id), ("request_uri", &request_uri)], "alice").await;
    let code = query_param(&redirect, "code").unwrap();
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    // ensure-holder-of-key-required: no proof, no binding, no token.
    let res = client.post(&app, "/token", &redeem, &[]).await;
    assert_eq!((res.status().as_u16(), body(res).await["error"].clone()), (400, json!("invalid_request")));
    // DP-13: an RS256 proof is refused for a FAPI 2.0 client.
    let res = client.post(&app, "/token", &redeem, &[&rs256_proof(&app.url("/token"), app.clock.now_secs())]).await;
    assert_eq!(body(res).await["error"], "invalid_dpop_proof");
    let res = client.post(&app, "/token", &redeem, &[&app.dpop_proof(&dpop, "/token")]).await;
    let tokens = body(res).await;
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let id_token_header = tessera_test_support::jwt_claims(&format!(
        "x.{}",
        tokens["id_token"].as_str().unwrap().split('.').next().unwrap()
    ));
    assert_eq!(id_token_header["alg"], "ES256");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // refresh-token: 30 s later, the previous refresh token still works (no rotation), twice,
    // and a confidential client may use a new DPoP key.
    app.clock.advance(30);
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
    for key in [&dpop, &DpopKey::default()] {
        let res = client.post(&app, "/token", &refresh, &[&app.dpop_proof(key, "/token")]).await;
        let refreshed = body(res).await;
        assert_eq!(refreshed["token_type"], "DPoP", "{refreshed}");
        assert!(refreshed.get("refresh_token").is_none() || refreshed["refresh_token"] == refresh_token.as_str());
    }
    // Without a proof the refresh is refused: every token is sender-constrained.
    let res = client.post(&app, "/token", &refresh, &[]).await;
    assert_eq!((res.status().as_u16(), body(res).await["error"].clone()), (400, json!("invalid_request")));
}

/// A DPoP proof signed with RS256 by a fresh 2048-bit RSA key.
fn rs256_proof(url: &str, iat: u64) -> String {
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = key.public_key();
    let jwk = json!({"kty":"RSA","n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero())});
    let header = json!({"typ":"dpop+jwt","alg":"RS256","jwk":jwk});
    let claims = json!({"jti":"rsa-proof-1","htm":"POST","htu":url,"iat":iat});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", b64(&signature))
}
