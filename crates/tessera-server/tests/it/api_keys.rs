//! API keys (SECURITY-TESTS.md c.10 AK-*): creation within the owner's scope and audience,
//! hash-only storage, introspection (`token_type: api_key`), typos refused, expiry, revocation
//! through the revocation feed, and the RFC 8693 exchange for a short-lived (DPoP-bound)
//! access token that dies with its key.

use serde_json::{Value, json};
use tessera_test_support::{
    Browser, DpopKey, TestApp, TestClient, basic, code_request, jwt_claims, query_param, spawn_app,
};

const API: &str = "https://api.example.test";
const KEY_TYPE: &str = "urn:tessera:params:oauth:token-type:api-key";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

async fn body(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn create_key(app: &TestApp, request: Value) -> (u16, Value) {
    body(app.admin_post("/admin/api-keys", &request).await).await
}

async fn resource_server(app: &TestApp) -> TestClient {
    app.create_client(json!({"client_name": "api", "introspection": true, "audience": [API]})).await
}

async fn service(app: &TestApp) -> TestClient {
    app.create_client(json!({"client_name": "billing", "scope": "invoices:read invoices:write", "audience": [API, "https://other.example.test"]}))
        .await
}

async fn exchange(app: &TestApp, key: &str, extra: &[(&str, &str)], proof: Option<&str>) -> (u16, Value) {
    let mut form = vec![("grant_type", EXCHANGE), ("subject_token", key), ("subject_token_type", KEY_TYPE)];
    form.extend_from_slice(extra);
    let mut request = app.http.post(app.url("/token")).form(&form);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    body(request.send().await.unwrap()).await
}

#[tokio::test]
async fn service_keys_stay_within_their_client_and_are_stored_only_as_a_hash() {
    let app = spawn_app().await;
    let billing = service(&app).await;
    let rs = resource_server(&app).await;

    let (status, created) =
        create_key(&app, json!({"client_id": billing.id, "name": "nightly export", "scope": "invoices:read"})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("tessera_sak_") && key.len() == 72, "{key}");
    assert_eq!(created["display"], &key[..16]);
    assert_eq!((created["scope"].as_str(), created["audience"][0].as_str()), (Some("invoices:read"), Some(API)));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ak_"));

    // Outside the owner's scope or audience, no owner, two owners, unknown owners, bad expiry.
    for (request, error) in [
        (json!({"client_id": billing.id, "name": "x", "scope": "admin"}), "invalid_scope"),
        (json!({"client_id": billing.id, "name": "x", "audience": ["https://elsewhere.example"]}), "invalid_target"),
        (json!({"name": "x"}), "invalid_request"),
        (json!({"client_id": billing.id, "user_id": "u", "name": "x"}), "invalid_request"),
        (json!({"client_id": "nobody", "name": "x"}), "invalid_request"),
        (json!({"client_id": billing.id, "name": ""}), "invalid_request"),
        (json!({"client_id": billing.id, "name": "x", "expires_in": 0}), "invalid_request"),
        (json!({"client_id": billing.id, "name": "x", "secret": "mine"}), "invalid_request"),
    ] {
        let (status, answer) = create_key(&app, request.clone()).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(error)), "{request}: {answer}");
    }

    // Introspection by the API's resource server.
    let (status, active) = body(app.introspect(&rs, &key).await).await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["token_type"], "api_key");
    assert_eq!((active["sub"].as_str(), active["jti"].as_str()), (Some(billing.id.as_str()), Some(id.as_str())));
    assert_eq!(active["scope"], "invoices:read");
    // A typo, a truncation, the display prefix: inactive, and nothing about them is looked up.
    let mut typo = key.clone().into_bytes();
    typo[30] = if typo[30] == b'A' { b'B' } else { b'A' };
    for wrong in [String::from_utf8(typo).unwrap(), key[..71].to_owned(), key[..16].to_owned()] {
        assert_eq!(body(app.introspect(&rs, &wrong).await).await.1, json!({"active": false}));
    }
    // Another resource server (another audience) learns nothing.
    let other = app.create_client(json!({"introspection": true, "audience": ["https://third.example"]})).await;
    assert_eq!(body(app.introspect(&other, &key).await).await.1, json!({"active": false}));

    // AK-01: neither the key nor its secret part is anywhere in the database; listing shows no key.
    let secret_part = &key[20..60];
    for file in app.database_at_rest().await {
        let text = String::from_utf8_lossy(&file);
        assert!(!text.contains(&key) && !text.contains(secret_part), "the key is stored in clear");
    }
    let list = app.admin_get(&format!("/admin/api-keys?client_id={}", billing.id)).await.text().await.unwrap();
    assert!(list.contains(&id) && !list.contains(secret_part), "{list}");
    assert_eq!(body(app.admin_get(&format!("/admin/api-keys/{id}")).await).await.1["name"], "nightly export");
}

#[tokio::test]
async fn keys_expire_and_revocation_reaches_introspection_the_feed_and_exchanged_tokens() {
    let app = spawn_app().await;
    let billing = service(&app).await;
    let rs = resource_server(&app).await;
    let (_, created) = create_key(&app, json!({"client_id": billing.id, "name": "ci", "expires_in": 3600})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["expires_at"], app.clock.now_secs() + 3600);

    // RFC 8693: the key for a five-minute JWT with at most its scope and audience.
    let (status, issued) = exchange(&app, &key, &[("scope", "invoices:read")], None).await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert_eq!((issued["token_type"].as_str(), issued["expires_in"].as_u64()), (Some("Bearer"), Some(300)));
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let claims = jwt_claims(&token);
    assert_eq!((claims["client_id"].as_str(), claims["sub"].as_str()), (Some(id.as_str()), Some(billing.id.as_str())));
    assert_eq!((claims["scope"].as_str(), claims["aud"].as_str()), (Some("invoices:read"), Some(API)));
    assert_eq!(body(app.introspect(&rs, &token).await).await.1["active"], true);
    // DPoP-bound when the exchange carries a proof.
    let dpop = DpopKey::default();
    let proof = app.dpop_proof(&dpop, "/token");
    let (status, bound) = exchange(&app, &key, &[], Some(&proof)).await;
    assert_eq!((status, bound["token_type"].as_str()), (200, Some("DPoP")), "{bound}");
    assert_eq!(jwt_claims(bound["access_token"].as_str().unwrap())["cnf"]["jkt"], dpop.jkt());
    // Refused: wider scope, another audience, a wrong type, a bad key, an actor token.
    for (form, error) in [
        (vec![("scope", "invoices:delete")], "invalid_scope"),
        (vec![("audience", "https://nowhere.example")], "invalid_target"),
        (vec![("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")], "invalid_request"),
        (vec![("actor_token", "x")], "invalid_request"),
    ] {
        let (status, answer) = exchange(&app, &key, &form, None).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(error)), "{form:?}");
    }
    let (status, answer) = exchange(&app, &key[..71], &[], None).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")));
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", &key),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Phantom form for gateways: a JWT that stands for the key five minutes at a time.
    let res = app
        .http
        .post(app.url("/introspect"))
        .header("authorization", basic(&rs.id, &rs.secret))
        .header("accept", "application/jwt")
        .form(&[("token", &key)])
        .send()
        .await
        .unwrap();
    let phantom = jwt_claims(&res.text().await.unwrap());
    assert_eq!((phantom["jti"].as_str(), phantom["client_id"].as_str()), (Some(id.as_str()), Some(id.as_str())));
    assert_eq!(phantom["exp"].as_u64().unwrap() - phantom["iat"].as_u64().unwrap(), 300);

    // Revocation: the key and its exchanged tokens stop at once; the feed says so.
    let res = app.admin_delete(&format!("/admin/api-keys/{id}")).await;
    assert_eq!(res.status(), 204);
    assert_eq!(body(app.introspect(&rs, &key).await).await.1, json!({"active": false}));
    assert_eq!(body(app.introspect(&rs, &token).await).await.1, json!({"active": false}));
    assert_eq!(exchange(&app, &key, &[], None).await.1["error"], "invalid_grant");
    let feed = app
        .http
        .get(app.url("/revocations?after=0"))
        .header("authorization", basic(&rs.id, &rs.secret))
        .send()
        .await
        .unwrap();
    let events: Value = feed.json().await.unwrap();
    let kinds: Vec<(String, String)> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["value"].as_str().unwrap().to_owned()))
        .collect();
    assert!(kinds.contains(&("jti".into(), id.clone())) && kinds.contains(&("client".into(), id.clone())), "{kinds:?}");
    assert_eq!(app.admin_delete(&format!("/admin/api-keys/{id}")).await.status(), 204, "revoking twice is fine");
    assert_eq!(app.admin_delete("/admin/api-keys/ak_999999").await.status(), 404);

    // Expiry, by the injected clock.
    let (_, short) = create_key(&app, json!({"client_id": billing.id, "name": "short", "expires_in": 60})).await;
    let short = short["key"].as_str().unwrap().to_owned();
    assert_eq!(body(app.introspect(&rs, &short).await).await.1["active"], true);
    app.clock.advance(61);
    assert_eq!(body(app.introspect(&rs, &short).await).await.1, json!({"active": false}));
    assert_eq!(exchange(&app, &short, &[], None).await.1["error"], "invalid_grant");
}

#[tokio::test]
async fn personal_access_tokens_carry_at_most_what_the_user_was_granted() {
    let app = spawn_app().await;
    let user = app.create_user("alice").await;
    let client =
        app.code_client(json!({"first_party": true, "scope": "openid profile invoices:read", "audience": [API]})).await;
    let (status, answer) = create_key(&app, json!({"user_id": user, "name": "laptop"})).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_target")), "nothing granted yet: {answer}");
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&client.id, "openid invoices:read"), "alice").await;
    let code = query_param(&redirect, "code").unwrap();
    assert_eq!(app.redeem(&client, &code).await.status(), 200);

    let (status, created) =
        create_key(&app, json!({"user_id": user, "name": "laptop", "scope": "invoices:read"})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("tessera_pat_"));
    let (status, answer) = create_key(&app, json!({"user_id": user, "name": "x", "scope": "profile"})).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_scope")), "profile was never granted");
    let rs = resource_server(&app).await;
    let active = body(app.introspect(&rs, key).await).await.1;
    assert_eq!((active["sub"].as_str(), active["token_type"].as_str()), (Some(user.as_str()), Some("api_key")));

    // A disabled user's keys stop working.
    assert!(app.admin_post(&format!("/admin/users/{user}/disable"), &json!({})).await.status().is_success());
    assert_eq!(body(app.introspect(&rs, key).await).await.1, json!({"active": false}));
}

#[tokio::test]
async fn users_manage_their_own_keys_on_the_account_page() {
    let app = spawn_app().await;
    let user = app.create_user("alice").await;
    let client =
        app.code_client(json!({"first_party": true, "scope": "openid profile invoices:read", "audience": [API]})).await;
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&client.id, "openid invoices:read"), "alice").await;
    assert_eq!(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await.status(), 200);
    let page = browser.get("/account").await.text().await.unwrap();
    let csrf = tessera_test_support::hidden_field(&page, "csrf_token").unwrap();

    // Without the form's CSRF token: refused.
    let res = browser.post("/account/api-keys", &[("name", "laptop")]).await;
    assert_eq!(res.status(), 403);
    // Wider than what alice granted: refused, said on the page.
    let res = browser
        .post(
            "/account/api-keys",
            &[("csrf_token", &csrf), ("name", "x"), ("scope", "admin"), ("expires_in_days", "30")],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("within its owner"));

    let res = browser
        .post(
            "/account/api-keys",
            &[("csrf_token", &csrf), ("name", "laptop"), ("scope", "invoices:read"), ("expires_in_days", "30")],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let start = html.find("id=\"new-api-key\">").unwrap() + "id=\"new-api-key\">".len();
    let key = &html[start..start + html[start..].find('<').unwrap()];
    assert!(key.starts_with("tessera_pat_") && key.len() == 72, "{key}");
    let rs = resource_server(&app).await;
    let active = body(app.introspect(&rs, key).await).await.1;
    assert_eq!((active["sub"].as_str(), active["scope"].as_str()), (Some(user.as_str()), Some("invoices:read")));
    assert_eq!(active["exp"], app.clock.now_secs() + 30 * 86_400);
    // Shown once: the page lists the key by its first characters only.
    let page = browser.get("/account").await.text().await.unwrap();
    assert!(!page.contains(key) && page.contains(&key[..16]), "listed without the secret");

    // Revocation from the account page; another user's key cannot be revoked from here.
    let listed: Value = body(app.admin_get(&format!("/admin/api-keys?user_id={user}")).await).await.1;
    let id = listed["api_keys"][0]["id"].as_str().unwrap().to_owned();
    let billing = service(&app).await;
    let (_, foreign) = create_key(&app, json!({"client_id": billing.id, "name": "svc"})).await;
    let res = browser
        .post("/account/api-keys/revoke", &[("csrf_token", &csrf), ("key_id", foreign["id"].as_str().unwrap())])
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(body(app.introspect(&rs, foreign["key"].as_str().unwrap()).await).await.1["active"], true);
    let res = browser.post("/account/api-keys/revoke", &[("csrf_token", &csrf), ("key_id", &id)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(body(app.introspect(&rs, key).await).await.1, json!({"active": false}));
    assert!(!browser.get("/account").await.text().await.unwrap().contains(&key[..16]), "a revoked key leaves the list");
}
