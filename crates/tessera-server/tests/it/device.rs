//! The device authorization grant (RFC 8628) over HTTP: the device's side (codes, polling,
//! `slow_down`, `access_denied`, `expired_token`, single redemption) and the person's side at
//! `/device`, attacked as a stranger would (user-code guessing from several addresses, device
//! code floods). docs/threat-model.md T-18.

use serde_json::{Value, json};
use tessera_test_support::http_from as from;
use tessera_test_support::{Browser, PASSWORD, T0, TestApp, TestClient, hidden_field, location, spawn_app_with};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn device_client(app: &TestApp) -> TestClient {
    app.code_client(json!({
        "client_name": "Living-room TV",
        "grant_types": [DEVICE_GRANT, "refresh_token"],
        "redirect_uris": [],
        "token_endpoint_auth_method": "none",
    }))
    .await
}

async fn start(app: &TestApp, http: &reqwest::Client, client_id: &str, scope: &str) -> (u16, Value) {
    let res = http
        .post(app.url("/device_authorization"))
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, res.json().await.unwrap())
}

async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", DEVICE_GRANT), ("device_code", device_code), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Signs `browser` in through `/device` (the link with the code) and answers `decision`.
async fn answer(browser: &mut Browser<'_>, link: &str, decision: &str) -> String {
    let res = browser.get(link).await;
    let login = location(&res).unwrap();
    assert!(login.starts_with("/login?request=device:"), "{login}");
    let res = browser.login(&login, "alice", PASSWORD).await;
    let back = location(&res).unwrap();
    assert!(back.starts_with("/device?user_code="), "{back}");
    let page = browser.get(&back).await.text().await.unwrap();
    assert!(page.contains("Living-room TV"), "{page}");
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let user_code = hidden_field(&page, "user_code").unwrap();
    let res = browser
        .post("/device/decide", &[("csrf_token", &csrf), ("user_code", &user_code), ("decision", decision)])
        .await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn a_device_is_approved_polls_with_slow_down_and_redeems_once() {
    let app = spawn_app_with(T0, |_| {}).await;
    let discovery: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["device_authorization_endpoint"], app.url("/device_authorization"));
    assert!(discovery["grant_types_supported"].as_array().unwrap().contains(&json!(DEVICE_GRANT)));
    let client = device_client(&app).await;
    let alice = app.create_user("alice").await;

    let (status, started) = start(&app, &app.http, &client.id, "openid offline_access").await;
    assert_eq!(status, 200, "{started}");
    let user_code = started["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code.chars().enumerate().all(|(i, c)| if i == 4 { c == '-' } else { "BCDFGHJKLMNPQRSTVWXZ".contains(c) }),
        "{user_code}"
    );
    assert_eq!(started["verification_uri"], app.url("/device"));
    assert_eq!(started["verification_uri_complete"], app.url(&format!("/device?user_code={user_code}")));
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    let device_code = started["device_code"].as_str().unwrap();

    // Pending; polled again at once: slow_down, and the interval is 10 s from then on.
    let (status, body) = poll(&app, &client.id, device_code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));
    let (_, body) = poll(&app, &client.id, device_code).await;
    assert_eq!(body["error"], "slow_down");
    app.clock.advance(5);
    let (_, body) = poll(&app, &client.id, device_code).await;
    assert_eq!(body["error"], "slow_down", "5 s is too soon now: the interval grew to 10 s");
    app.clock.advance(15);
    let (_, body) = poll(&app, &client.id, device_code).await;
    assert_eq!(body["error"], "authorization_pending");

    // The person approves with the link's code.
    let mut browser = Browser::new(&app);
    let page = answer(&mut browser, started["verification_uri_complete"].as_str().unwrap(), "allow").await;
    assert!(page.contains("Device connected"), "{page}");
    app.clock.advance(20);
    let (status, tokens) = poll(&app, &client.id, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string());
    assert!(tokens["id_token"].is_string(), "openid was asked for");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res =
        app.http.get(app.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 200, "the token is alice's");
    let userinfo: Value = res.json().await.unwrap();
    assert_eq!(userinfo["sub"], alice.as_str());
    // Redeemed once: the next poll, from anyone, gets nothing.
    app.clock.advance(20);
    let (status, body) = poll(&app, &client.id, device_code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // Refresh works like any grant.
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Another client's device code is not this client's.
    let other = device_client(&app).await;
    let (_, started) = start(&app, &app.http, &client.id, "openid").await;
    let (_, body) = poll(&app, &other.id, started["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "invalid_grant");

    let events: Vec<String> =
        app.state.store.audit_tail(100).await.unwrap().into_iter().map(|e| e.event.as_str().to_owned()).collect();
    for event in ["device.code_issued", "device.decided", "token.issued"] {
        assert!(events.iter().any(|e| e == event), "{event}: {events:?}");
    }
}

#[tokio::test]
async fn a_denied_code_is_access_denied_and_an_old_one_expired() {
    let app = spawn_app_with(T0, |_| {}).await;
    let client = device_client(&app).await;
    app.create_user("alice").await;
    let (_, denied) = start(&app, &app.http, &client.id, "openid").await;
    let (_, expiring) = start(&app, &app.http, &client.id, "openid").await;
    let mut browser = Browser::new(&app);
    let page = answer(&mut browser, denied["verification_uri_complete"].as_str().unwrap(), "deny").await;
    assert!(page.contains("Request denied"), "{page}");
    let (_, body) = poll(&app, &client.id, denied["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "access_denied");

    app.clock.advance(600);
    let (_, body) = poll(&app, &client.id, expiring["device_code"].as_str().unwrap()).await;
    assert_eq!(body["error"], "expired_token");
    // An expired code cannot be approved either: the page says the code is not valid.
    let res = browser.get(expiring["verification_uri_complete"].as_str().unwrap()).await;
    let page = res.text().await.unwrap();
    assert!(page.contains("That code is not valid"), "{page}");
    // The janitor deletes expired codes at once (no margin).
    assert!(app.state.store.count_rows("device_codes").await.unwrap() >= 2);
    app.clock.advance(1);
    app.state.janitor_round().await;
    assert_eq!(app.state.store.count_rows("device_codes").await.unwrap(), 0);
}

#[tokio::test]
async fn only_device_clients_may_start_and_scopes_stay_within_the_client() {
    let app = spawn_app_with(T0, |_| {}).await;
    let code_only = app.code_client(json!({"token_endpoint_auth_method": "none"})).await;
    let (status, body) = start(&app, &app.http, &code_only.id, "openid").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
    let client = device_client(&app).await;
    let (status, body) = start(&app, &app.http, &client.id, "openid tessera:admin").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, body) = start(&app, &app.http, "nobody", "openid").await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, _) = start(&app, &app.http, &client.id, "openid").await;
    assert_eq!(status, 200);
}

/// A stranger guessing user codes at `/device` is throttled per address and per account; a
/// stranger asking for device codes is throttled per address; others are not held up.
#[tokio::test]
async fn user_code_guessing_and_device_code_floods_are_bounded() {
    let app = spawn_app_with(T0, |_| {}).await;
    let client = device_client(&app).await;
    app.create_user("alice").await;
    app.create_user("mallory").await;

    // Floods of device codes: 10 per address, then 429; another address still gets one.
    let flooder = from("127.0.4.1");
    let mut refused = 0;
    for _ in 0..20 {
        let (status, body) = start(&app, &flooder, &client.id, "openid").await;
        if status == 429 {
            assert_eq!(body["error"], "slow_down");
            refused += 1;
        }
    }
    assert!(refused >= 9, "{refused} of 20 refused");
    assert!(app.state.store.count_rows("device_codes").await.unwrap() <= 11);
    let (status, real) = start(&app, &from("127.0.4.2"), &client.id, "openid").await;
    assert_eq!(status, 200);

    // Guessing: mallory signs in and types codes; after 5 wrong ones she is refused, even with
    // the right code, from her address and on her account.
    let mut mallory = Browser::with(&app.url(""), from("127.0.4.3"));
    let res = mallory.get("/device").await;
    let login = location(&res).unwrap();
    assert_eq!(login, "/login?request=device");
    let res = mallory.login(&login, "mallory", PASSWORD).await;
    assert_eq!(location(&res).as_deref(), Some("/device"));
    let mut statuses = Vec::new();
    for guess in ["BCDF-GHJK", "BCDF-GHJL", "BCDF-GHJM", "BCDF-GHJN", "BCDF-GHJP", "BCDF-GHJQ", "not a code"] {
        let page = mallory.get("/device").await.text().await.unwrap();
        let csrf = hidden_field(&page, "csrf_token").unwrap();
        let res = mallory.post("/device", &[("csrf_token", &csrf), ("user_code", guess)]).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses[..5], [400; 5]);
    assert_eq!(statuses[5..], [429, 429]);
    let page = mallory.get("/device").await.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let res =
        mallory.post("/device", &[("csrf_token", &csrf), ("user_code", real["user_code"].as_str().unwrap())]).await;
    assert_eq!(res.status(), 429, "a blocked guesser does not get to try the right code");

    // Alice, elsewhere, is not held up; a form without its CSRF token does nothing.
    let mut alice = Browser::with(&app.url(""), from("127.0.4.4"));
    let res = alice.get("/device").await;
    let login = location(&res).unwrap();
    alice.login(&login, "alice", PASSWORD).await;
    let res = alice.post("/device", &[("user_code", real["user_code"].as_str().unwrap())]).await;
    assert_eq!(res.status(), 403);
    let page = alice.get("/device").await.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let res = alice
        .post("/device", &[("csrf_token", &csrf), ("user_code", &real["user_code"].as_str().unwrap().to_lowercase())])
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Allow this device?"), "{page}");
}

/// RFC 9449 with RFC 8628: a proof on the redeeming poll binds the access token to the device's
/// key, and the public device client's refresh token too (a refresh without that key fails).
#[tokio::test]
async fn dpop_binds_a_device_grants_tokens_to_the_devices_key() {
    let app = spawn_app_with(T0, |_| {}).await;
    let client = device_client(&app).await;
    app.create_user("alice").await;
    let (_, started) = start(&app, &app.http, &client.id, "openid offline_access").await;
    let mut browser = Browser::new(&app);
    answer(&mut browser, started["verification_uri_complete"].as_str().unwrap(), "allow").await;
    let key = tessera_test_support::DpopKey::default();
    let res = app
        .http
        .post(app.url("/token"))
        .header("dpop", app.dpop_proof(&key, "/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", started["device_code"].as_str().unwrap()),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let claims = tessera_test_support::jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"], json!({"jkt": key.jkt()}));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "the refresh token is bound to the device's key");
}
