//! Dynamic client registration (RFC 7591) and management (RFC 7592), under each `registration`
//! setting, attacked as a stranger would: from several addresses, with junk tokens, asking for
//! privileges. docs/threat-model.md T-16.

use serde_json::{Value, json};
use tessera_server::config::Registration;
use tessera_test_support::http_from as from;
use tessera_test_support::{Browser, CHALLENGE, PASSWORD, VERIFIER, location, query_param};
use tessera_test_support::{T0, TestApp, spawn_app_with};

const LOOPBACK_REDIRECT: &str = "http://127.0.0.1:45111/callback";

/// An MCP-style public client: loopback redirect, code and refresh grants, no secret.
fn public_metadata() -> Value {
    json!({
        "client_name": "Example MCP client",
        "redirect_uris": [LOOPBACK_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "client_uri": "https://mcp-client.example",
        "software_id": "example-mcp-client",
    })
}

async fn register(app: &TestApp, http: &reqwest::Client, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = http.post(app.url("/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let res = request.send().await.unwrap();
    let status = res.status().as_u16();
    if status == 201 || status == 400 || status == 401 {
        assert_eq!(res.headers()["cache-control"], "no-store");
    }
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn discovery(app: &TestApp) -> Value {
    app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn registration_is_off_by_default_and_then_nothing_is_stored() {
    let app = spawn_app_with(T0, |_| {}).await;
    let clients = app.state.store.count_rows("clients").await.unwrap();
    assert!(discovery(&app).await.get("registration_endpoint").is_none());
    let (status, _) = register(&app, &app.http, None, &public_metadata()).await;
    assert_eq!(status, 404);
    let res = app.http.get(app.url("/register/anything")).bearer_auth("x").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(app.state.store.count_rows("clients").await.unwrap(), clients);
}

/// Open registration: a public client registers itself, completes a code flow with PKCE and a
/// refresh, then reads, replaces and deletes its registration with its registration access token.
#[tokio::test]
async fn an_open_registration_completes_a_code_flow_and_manages_itself() {
    let app = spawn_app_with(T0, |c| c.registration = Registration::Open).await;
    assert_eq!(discovery(&app).await["registration_endpoint"], app.url("/register"));
    let (status, registered) = register(&app, &app.http, None, &public_metadata()).await;
    assert_eq!(status, 201, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    assert!(registered.get("client_secret").is_none(), "a public client has no secret");
    assert_eq!(registered["token_endpoint_auth_method"], "none");
    assert_eq!(registered["origin"], "open_registration");
    assert_eq!(registered["scope"], "email openid profile", "every scope offered to registrations");
    assert_eq!(registered["client_id_issued_at"], T0);
    let uri = registered["registration_client_uri"].as_str().unwrap().to_owned();
    assert_eq!(uri, app.url(&format!("/register/{client_id}")));
    let rat = registered["registration_access_token"].as_str().unwrap().to_owned();

    // The code flow; the consent page says the app is not verified and where it redirects.
    app.create_user("alice").await;
    let mut browser = Browser::new(&app);
    let query = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", LOOPBACK_REDIRECT),
        ("scope", "openid"),
        ("state", "s-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let res = browser.get(url.as_str()).await;
    let login = location(&res).unwrap();
    let res = browser.login(&login, "alice", PASSWORD).await;
    let consent = location(&res).unwrap();
    assert!(consent.starts_with("/consent"), "open registrations are always asked: {consent}");
    let page = browser.get(&consent).await.text().await.unwrap();
    assert!(page.contains("not verified by this server"), "{page}");
    assert!(page.contains("<strong>127.0.0.1</strong>"), "the redirect host is shown: {page}");
    let res = browser.consent(&consent, "allow").await;
    let redirect = location(&res).unwrap();
    assert!(redirect.starts_with(LOOPBACK_REDIRECT), "{redirect}");
    let code = query_param(&redirect, "code").unwrap();
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", LOOPBACK_REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(tokens["access_token"].is_string());
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "refresh works for a self-registered client");
    let refreshed: Value = res.json().await.unwrap();
    let refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();

    // A second authorization asks again (open registrations are never remembered).
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let res = browser.get(url.as_str()).await;
    assert!(location(&res).unwrap().starts_with("/consent"));

    // RFC 7592 read.
    let res = app.http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let read: Value = res.json().await.unwrap();
    assert_eq!(read["client_id"], client_id.as_str());
    assert!(read.get("registration_access_token").is_none(), "the token is shown once");
    // A wrong token, another client's id, no token: 401 alike (nothing to probe).
    for (path, token) in [(uri.as_str(), "trg_wrong"), (&app.url("/register/nobody"), rat.as_str())] {
        let res = app.http.get(path).bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    }
    assert_eq!(app.http.get(&uri).send().await.unwrap().status(), 401);

    // RFC 7592 update: the whole registration is replaced; its client_id must be named.
    let mut update = public_metadata();
    update["client_id"] = json!(client_id);
    update["client_name"] = json!("Renamed client");
    update["redirect_uris"] = json!(["https://mcp-client.example/cb"]);
    let res = app.http.put(&uri).bearer_auth(&rat).json(&update).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["client_name"], "Renamed client");
    assert_eq!(updated["redirect_uris"], json!(["https://mcp-client.example/cb"]));
    assert_eq!(updated["client_id_issued_at"], T0, "the creation time stays");
    update["client_id"] = json!("someone-else");
    assert_eq!(app.http.put(&uri).bearer_auth(&rat).json(&update).send().await.unwrap().status(), 400);
    update["client_id"] = json!(client_id);
    update["admin"] = json!(true);
    assert_eq!(app.http.put(&uri).bearer_auth(&rat).json(&update).send().await.unwrap().status(), 400);

    // RFC 7592 delete: the client and its tokens are gone.
    let res = app.http.delete(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(app.http.get(&uri).bearer_auth(&rat).send().await.unwrap().status(), 401);
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a deleted client's refresh token is dead");

    // Every step is in the audit log.
    let entries = app.state.store.audit_tail(100).await.unwrap();
    let events: Vec<&str> = entries.iter().map(|e| e.event.as_str()).collect();
    assert!(events.contains(&"client.registered"), "{events:?}");
    assert!(events.iter().filter(|e| **e == "client.registration_managed").count() >= 2, "{events:?}");
}

/// Every way an open registration could ask for more than the policy gives is refused with the
/// RFC 7591 §3.2.2 error that names the field, and stores nothing.
#[tokio::test]
async fn open_registration_refuses_every_privilege() {
    let app = spawn_app_with(T0, |c| c.registration = Registration::Open).await;
    let clients = app.state.store.count_rows("clients").await.unwrap();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        (json!({"grant_types": ["client_credentials"]}), "invalid_client_metadata", "grant_types"),
        (
            json!({"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"]}),
            "invalid_client_metadata",
            "grant_types",
        ),
        (json!({"redirect_uris": ["http://evil.example/cb"]}), "invalid_redirect_uri", "redirect_uris"),
        (json!({"redirect_uris": ["com.example.app:/cb"]}), "invalid_redirect_uri", "redirect_uris"),
        (json!({"redirect_uris": ["https://app.example/cb#x"]}), "invalid_redirect_uri", "redirect_uris"),
        (json!({"redirect_uris": ["javascript:alert(1)"]}), "invalid_redirect_uri", "redirect_uris"),
        (json!({"scope": "openid tessera:admin"}), "invalid_client_metadata", "scope"),
        (json!({"scope": "openid read"}), "invalid_client_metadata", "scope"),
        (json!({"admin": true}), "invalid_client_metadata", "admin"),
        (json!({"first_party": true}), "invalid_client_metadata", "first_party"),
        (json!({"introspection": true}), "invalid_client_metadata", "introspection"),
        (json!({"access_token_ttl": 86400}), "invalid_client_metadata", "access_token_ttl"),
        (json!({"audience": ["https://other-api.example"]}), "invalid_client_metadata", "audience"),
        (json!({"client_id": "chosen-by-me"}), "invalid_client_metadata", "client_id"),
        (
            json!({"post_logout_redirect_uris": ["https://app.example/bye"]}),
            "invalid_client_metadata",
            "post_logout_redirect_uris",
        ),
    ];
    for (i, (overrides, error, field)) in cases.into_iter().enumerate() {
        let mut body = public_metadata();
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        // From a fresh address each time, so the per-address allowance is not what refuses.
        let http = from(&format!("127.0.1.{}", i + 1));
        let (status, answer) = register(&app, &http, None, &body).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(error)), "{body}: {answer}");
        assert!(answer["error_description"].as_str().unwrap().starts_with(field), "{answer}");
    }
    // Not JSON, not an object.
    let res = app.http.post(app.url("/register")).body("redirect_uris=x").send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(app.state.store.count_rows("clients").await.unwrap(), clients, "nothing was stored");
}

/// `registration = "token"`: no token, a junk token, a spent or expired one are 401; a token of
/// N uses registers N clients on every node (one conditional update).
#[tokio::test]
async fn token_registration_needs_an_initial_access_token_with_uses_left() {
    let app = spawn_app_with(T0, |c| c.registration = Registration::Token).await;
    let clients = app.state.store.count_rows("clients").await.unwrap();
    assert_eq!(register(&app, &app.http, None, &public_metadata()).await.0, 401);
    assert_eq!(register(&app, &app.http, Some("tri_junk"), &public_metadata()).await.0, 401);
    assert_eq!(app.state.store.count_rows("clients").await.unwrap(), clients);

    let res = app.admin_post("/admin/registration-tokens", &json!({"uses": 2, "expires_in": 3600})).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["expires_at"], T0 + 3600);
    // A confidential client is allowed with a token; it gets a secret.
    let mut confidential = public_metadata();
    confidential["token_endpoint_auth_method"] = json!("client_secret_basic");
    let (status, registered) = register(&app, &app.http, Some(&token), &confidential).await;
    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["origin"], "token_registration");
    assert!(registered["client_secret"].as_str().unwrap().starts_with("tcs_"));
    assert_eq!(registered["client_secret_expires_at"], 0);
    // Invalid metadata spends no use.
    let mut bad = public_metadata();
    bad["admin"] = json!(true);
    assert_eq!(register(&app, &app.http, Some(&token), &bad).await.0, 400);
    assert_eq!(register(&app, &app.http, Some(&token), &public_metadata()).await.0, 201);
    assert_eq!(register(&app, &app.http, Some(&token), &public_metadata()).await.0, 401, "both uses are spent");

    // Expiry, by the injected clock.
    let res = app.admin_post("/admin/registration-tokens", &json!({"expires_in": 60})).await;
    let token = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(register(&app, &app.http, Some(&token), &public_metadata()).await.0, 201);
    app.clock.advance(61);
    assert_eq!(register(&app, &app.http, Some(&token), &public_metadata()).await.0, 401);
    assert_eq!(app.admin_post("/admin/registration-tokens", &json!({"uses": 0})).await.status(), 400);
}

/// One address cannot register without bound; another address is not slowed by it.
#[tokio::test]
async fn open_registration_is_bounded_per_address() {
    let app = spawn_app_with(T0, |c| c.registration = Registration::Open).await;
    let flooder = from("127.0.0.2");
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(register(&app, &flooder, None, &public_metadata()).await.0);
    }
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!((1..=10).contains(&created), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 20, "{statuses:?}");
    let res = flooder.post(app.url("/register")).json(&public_metadata()).send().await.unwrap();
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(register(&app, &from("127.0.0.3"), None, &public_metadata()).await.0, 201);
}

/// The janitor deletes self-registered clients never used within `registration_expiry`, and
/// keeps those that completed an authorization and every admin-made client.
#[tokio::test]
async fn unused_registrations_expire_and_used_ones_stay() {
    let app = spawn_app_with(T0, |c| c.registration = Registration::Open).await;
    let admin_made = app.code_client(json!({})).await;
    let (_, unused) = register(&app, &from("127.0.0.4"), None, &public_metadata()).await;
    let (_, used) = register(&app, &from("127.0.0.5"), None, &public_metadata()).await;
    let (unused, used) = (unused["client_id"].as_str().unwrap(), used["client_id"].as_str().unwrap());
    app.create_user("bob").await;
    let mut browser = Browser::new(&app);
    let query = [
        ("response_type", "code"),
        ("client_id", used),
        ("redirect_uri", LOOPBACK_REDIRECT),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let redirect = browser.authorize(&query, "bob").await;
    let code = query_param(&redirect, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", LOOPBACK_REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", used),
    ];
    assert_eq!(app.http.post(app.url("/token")).form(&form).send().await.unwrap().status(), 200);

    app.clock.advance(6 * 24 * 3600);
    app.state.janitor_round().await;
    assert!(app.state.store.client(unused).await.unwrap().is_some(), "not yet");
    app.clock.advance(24 * 3600 + 1);
    app.state.janitor_round().await;
    assert!(app.state.store.client(unused).await.unwrap().is_none(), "expired");
    assert!(app.state.store.client(used).await.unwrap().is_some(), "used: kept");
    assert!(app.state.store.client(&admin_made.id).await.unwrap().is_some(), "admin-made: kept");
    let entries = app.state.store.audit_tail(50).await.unwrap();
    assert!(entries.iter().any(|e| e.event == "client.registration_expired" && e.client_id.as_deref() == Some(unused)));
}

/// RFC 9700 §4.11.2: an openly registered client's redirect URI is anyone's, so a request that
/// fails before the person sees the consent page (which names the redirect host) is answered
/// with a page here, never a redirect; an admin-made client still gets its error redirect.
#[tokio::test]
async fn an_open_registration_does_not_make_the_server_an_open_redirector() {
    let app = spawn_app_with(T0, |c| c.registration = Registration::Open).await;
    let mut body = public_metadata();
    body["redirect_uris"] = json!(["https://evil.example/landing"]);
    let (status, registered) = register(&app, &app.http, None, &body).await;
    assert_eq!(status, 201, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap();
    let browser = from("127.0.0.6");
    for bad in [("scope", "not-offered"), ("code_challenge_method", "plain"), ("prompt", "none")] {
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", "https://evil.example/landing"),
            ("state", "s"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        query.retain(|(k, _)| *k != bad.0);
        query.push(bad);
        let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
        let res = browser.get(url).send().await.unwrap();
        assert_ne!(res.status(), 303, "{bad:?} redirected to {:?}", res.headers().get("location"));
        assert!(res.headers().get("location").is_none(), "{bad:?}");
    }
    // An administrator's client keeps RFC 6749 §4.1.2.1 error redirects.
    let trusted = app.code_client(json!({})).await;
    let query = [
        ("response_type", "code"),
        ("client_id", trusted.id.as_str()),
        ("redirect_uri", tessera_test_support::REDIRECT_URI),
        ("scope", "not-offered"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().contains("error=invalid_scope"));
}

/// Guessing registration access tokens at `/register/{id}` is throttled per address like failed
/// client authentication; the client's own manager, elsewhere, is not held up and a wrong token
/// never changes anything.
#[tokio::test]
async fn guessing_registration_access_tokens_is_bounded_per_address() {
    let app = spawn_app_with(T0, |c| {
        c.registration = Registration::Open;
        c.auth_failure_allowance = 10; // the default; the test harness raises it
    })
    .await;
    let (status, registered) = register(&app, &from("127.0.6.1"), None, &public_metadata()).await;
    assert_eq!(status, 201);
    let uri = registered["registration_client_uri"].as_str().unwrap();
    let rat = registered["registration_access_token"].as_str().unwrap();
    let guesser = from("127.0.6.2");
    let mut statuses = Vec::new();
    for i in 0..30 {
        let res = match i % 3 {
            0 => guesser.get(uri).bearer_auth(format!("trg_guess{i}")).send().await.unwrap(),
            1 => guesser.delete(uri).bearer_auth(format!("trg_guess{i}")).send().await.unwrap(),
            _ => guesser.put(uri).bearer_auth(format!("trg_guess{i}")).json(&public_metadata()).send().await.unwrap(),
        };
        statuses.push(res.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 19, "{statuses:?}");
    // Even the right token waits at the blocked address; from its own address it works.
    assert_eq!(guesser.get(uri).bearer_auth(rat).send().await.unwrap().status(), 429);
    let res = from("127.0.6.3").get(uri).bearer_auth(rat).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let read: Value = res.json().await.unwrap();
    assert_eq!(read["client_name"], registered["client_name"], "nothing was changed by the guesses");
}
