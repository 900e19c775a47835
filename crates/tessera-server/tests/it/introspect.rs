//! `POST /introspect` (RFC 7662): who may see what, and `{"active":false}` for everything else.

use serde_json::{Value, json};
use tessera_test_support::{TestClient, spawn_app};

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

fn assert_inactive(json: &Value) {
    assert_eq!(json, &json!({"active": false}));
}

#[tokio::test]
async fn own_tokens_are_active_in_both_formats() {
    let app = spawn_app().await;
    for client in [app.jwt_client().await, app.opaque_client().await] {
        let token = app.access_token(&client).await;
        let res = app.introspect(&client, &token).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let json = body(res).await;
        assert_eq!(json["active"], true);
        for member in ["scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "token_type"] {
            assert!(json.get(member).is_some(), "{member} missing");
        }
        assert_eq!(json["client_id"], client.id.as_str());
        assert_eq!(json["sub"], client.id.as_str());
        assert_eq!(json["iss"], app.issuer);
        assert_eq!(json["scope"], "read write");
        assert_eq!(json["token_type"], "Bearer");
    }
}

#[tokio::test]
async fn hints_do_not_limit_the_search() {
    let app = spawn_app().await;
    let client = app.opaque_client().await;
    let token = app.access_token(&client).await;
    for hint in ["refresh_token", "access_token", "bogus"] {
        let res = app.post_form("/introspect", Some(&client), &[("token", &token), ("token_type_hint", hint)]).await;
        assert_eq!(body(res).await["active"], true, "{hint}");
    }
}

#[tokio::test]
async fn resource_servers_see_tokens_for_their_audience_only() {
    let app = spawn_app().await;
    let api = "https://api.example.test";
    let client = app.create_client(json!({"scope":"read","audience":[api],"access_token_format":"opaque"})).await;
    let jwt_client = app.create_client(json!({"scope":"read","audience":[api]})).await;
    let rs = app.create_client(json!({"audience":[api],"introspection":true})).await;
    let other_rs = app.create_client(json!({"audience":["https://other.example.test"],"introspection":true})).await;
    let bystander = app.create_client(json!({"audience":[api]})).await;
    for token in [app.access_token(&client).await, app.access_token(&jwt_client).await] {
        assert_eq!(body(app.introspect(&rs, &token).await).await["active"], true);
        // IN-05: another resource server, or a client without `introspection`, sees nothing.
        assert_inactive(&body(app.introspect(&other_rs, &token).await).await);
        assert_inactive(&body(app.introspect(&bystander, &token).await).await);
    }
}

#[tokio::test]
async fn expired_unknown_and_malformed_tokens_are_inactive() {
    let app = spawn_app().await;
    let jwt = app.jwt_client().await;
    let opaque = app.opaque_client().await;
    let jwt_token = app.access_token(&jwt).await;
    let opaque_token = app.access_token(&opaque).await;
    // A forged opaque token: the real selector with another secret.
    let mut forged = opaque_token.clone();
    forged.replace_range(opaque_token.len() - 4.., "AAAA");
    let garbage = ["tat_unknown", "x", "a.b.c", "' OR '1'='1", &"A".repeat(20_000), &format!("{jwt_token}x"), &forged];
    for token in garbage {
        assert_inactive(&body(app.introspect(&jwt, token).await).await);
    }
    app.clock.advance(601);
    assert_inactive(&body(app.introspect(&jwt, &jwt_token).await).await);
    assert_inactive(&body(app.introspect(&opaque, &opaque_token).await).await);
}

#[tokio::test]
async fn a_deleted_clients_tokens_are_inactive() {
    let app = spawn_app().await;
    let rs = app.create_client(json!({"introspection":true})).await;
    for client in [app.jwt_client().await, app.opaque_client().await] {
        let token = app.access_token(&client).await;
        assert_eq!(body(app.introspect(&rs, &token).await).await["active"], true);
        app.admin_delete(&format!("/admin/clients/{}", client.id)).await;
        assert_inactive(&body(app.introspect(&rs, &token).await).await);
    }
}

// IN-01, BF-03.
#[tokio::test]
async fn the_caller_must_authenticate() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let token = app.access_token(&client).await;
    let res = app.post_form("/introspect", None, &[("token", &token)]).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    let wrong = TestClient { id: client.id.clone(), secret: "wrong".into() };
    assert_eq!(app.introspect(&wrong, &token).await.status(), 401);
    let res = app.post_form("/introspect", Some(&client), &[]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(body(res).await["error"], "invalid_request");
}

// A JWT from another issuer that happens to use our key id is not ours.
#[tokio::test]
async fn tokens_of_another_server_are_inactive() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let client = app.jwt_client().await;
    let foreign_client = other.jwt_client().await;
    let foreign = other.access_token(&foreign_client).await;
    assert_inactive(&body(app.introspect(&client, &foreign).await).await);
}

// The phantom-token answer: `Accept: application/jwt` gives an active access token as a signed
// at+jwt with the same claims and jti; inactive or hidden tokens stay exactly {"active":false}.
#[tokio::test]
async fn introspection_as_a_jwt_for_gateways() {
    let app = tessera_test_support::spawn_app().await;
    let rs = app.create_client(serde_json::json!({"introspection":true,"audience":["https://api.example.test"]})).await;
    let client = app
        .create_client(
            serde_json::json!({"scope":"read","access_token_format":"opaque","audience":["https://api.example.test"]}),
        )
        .await;
    let stranger = app.jwt_client().await;
    let opaque = app.access_token(&client).await;
    let ask = |caller: &tessera_test_support::TestClient, token: &str| {
        app.http
            .post(app.url("/introspect"))
            .header("authorization", tessera_test_support::basic(&caller.id, &caller.secret))
            .header("accept", "application/jwt")
            .form(&[("token", token)])
            .send()
    };
    let res = ask(&rs, &opaque).await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/jwt");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let jwt = res.text().await.unwrap();
    let claims = tessera_test_support::jwt_claims(&jwt);
    let json: serde_json::Value = app.introspect(&rs, &opaque).await.json().await.unwrap();
    for member in ["jti", "sub", "client_id", "scope", "exp", "iat", "iss", "aud"] {
        assert_eq!(claims[member], json[member], "{member}");
    }
    // It verifies as an RFC 9068 token with the server's own keys.
    let jwks: tessera_proto::jwks::JwkSet = app.jwks().await.json().await.unwrap();
    let verifier = tessera_verify::Verifier::new(&app.issuer, "https://api.example.test", &jwks).unwrap();
    verifier.verify(&jwt, tessera_proto::UnixTime(app.clock.now_secs())).unwrap();
    // A caller that may not see the token, a revoked token: exactly {"active":false}.
    let hidden = ask(&stranger, &opaque).await.unwrap();
    assert_eq!(hidden.text().await.unwrap(), r#"{"active":false}"#);
    app.revoke(&client, &opaque).await;
    assert_eq!(ask(&rs, &opaque).await.unwrap().text().await.unwrap(), r#"{"active":false}"#);
    // No credentials: 401 as ever.
    let res = app
        .http
        .post(app.url("/introspect"))
        .header("accept", "application/jwt")
        .form(&[("token", &opaque)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

// RFC 9701: `Accept: application/token-introspection+jwt` gives the RFC 7662 answer inside a JWT
// signed by the server, typed token-introspection+jwt and addressed to the caller.
#[tokio::test]
async fn rfc9701_jwt_introspection_responses() {
    let app = tessera_test_support::spawn_app().await;
    let rs = app.create_client(serde_json::json!({"introspection":true,"audience":["https://api.example.test"]})).await;
    let client = app.create_client(serde_json::json!({"scope":"read","audience":["https://api.example.test"]})).await;
    let token = app.access_token(&client).await;
    let ask = |token: String| {
        app.http
            .post(app.url("/introspect"))
            .header("authorization", tessera_test_support::basic(&rs.id, &rs.secret))
            .header("accept", "application/token-introspection+jwt")
            .form(&[("token", token)])
            .send()
    };
    let res = ask(token.clone()).await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/token-introspection+jwt");
    let jwt = res.text().await.unwrap();
    let jwks: tessera_proto::jwks::JwkSet = app.jwks().await.json().await.unwrap();
    let keys = tessera_verify::KeySet::from_jwks(&jwks).unwrap();
    let claims = keys.verify_signature(&jwt, "token-introspection+jwt").unwrap();
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["aud"], rs.id.as_str());
    assert_eq!(claims["token_introspection"]["active"], true);
    assert_eq!(claims["token_introspection"]["client_id"], client.id.as_str());
    // Not an access token: its type keeps it from ever passing as one.
    assert!(
        tessera_verify::Verifier::new(&app.issuer, &rs.id, &jwks)
            .unwrap()
            .verify(&jwt, tessera_proto::UnixTime(app.clock.now_secs()))
            .is_err()
    );
    let inactive = ask("tat_unknown".into()).await.unwrap().text().await.unwrap();
    let claims = keys.verify_signature(&inactive, "token-introspection+jwt").unwrap();
    assert_eq!(claims["token_introspection"], serde_json::json!({"active": false}));
}

// Split tokens: the client holds the signature part only; resource servers fetch the rest by its
// hash; introspection and revocation take the signature part.
#[tokio::test]
async fn split_tokens_are_signature_parts_with_the_rest_kept_for_gateways() {
    use base64::Engine as _;
    let app = tessera_test_support::spawn_app().await;
    let rs = app.create_client(serde_json::json!({"introspection":true,"audience":["https://api.example.test"]})).await;
    let client = app
        .create_client(
            serde_json::json!({"scope":"read","access_token_format":"split","audience":["https://api.example.test"]}),
        )
        .await;
    let part = app.access_token(&client).await;
    assert!(!part.contains('.') && part.len() >= 80, "{part}");
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tessera_server::secret::hash(&part));
    let fetch = |caller: &tessera_test_support::TestClient, hash: String| {
        app.http
            .get(app.url(&format!("/split-tokens/{hash}")))
            .header("authorization", tessera_test_support::basic(&caller.id, &caller.secret))
            .send()
    };
    let res = fetch(&rs, hash.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let header_payload = res.json::<serde_json::Value>().await.unwrap()["header_payload"].as_str().unwrap().to_owned();
    let whole = format!("{header_payload}.{part}");
    let jwks: tessera_proto::jwks::JwkSet = app.jwks().await.json().await.unwrap();
    let verifier = tessera_verify::Verifier::new(&app.issuer, "https://api.example.test", &jwks).unwrap();
    let claims = verifier.verify(&whole, tessera_proto::UnixTime(app.clock.now_secs())).unwrap();
    let introspected: serde_json::Value = app.introspect(&rs, &part).await.json().await.unwrap();
    assert_eq!(
        (introspected["active"].as_bool(), introspected["jti"].as_str()),
        (Some(true), Some(claims.jti.as_str()))
    );
    // Only resource servers fetch; unknown and malformed hashes are answered as such.
    assert_eq!(fetch(&client, hash.clone()).await.unwrap().status(), 400);
    assert_eq!(fetch(&rs, "A".repeat(43)).await.unwrap().status(), 404);
    assert_eq!(fetch(&rs, "not-a-hash".into()).await.unwrap().status(), 400);
    // Revocation with the signature part.
    assert_eq!(app.revoke(&client, &part).await.status(), 200);
    let introspected: serde_json::Value = app.introspect(&rs, &part).await.json().await.unwrap();
    assert_eq!(introspected, serde_json::json!({"active": false}));
}
