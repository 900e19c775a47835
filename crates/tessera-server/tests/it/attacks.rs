//! Attacks from docs/threat-model.md, each made as a stranger would make it: real HTTP from
//! several source addresses (all of 127.0.0.0/8 is loopback), floods bounded in count. Every
//! test here failed against the build before its fix (#23).

use serde_json::{Value, json};
use tessera_test_support::http_from as from;
use tessera_test_support::{
    Browser, PASSWORD, T0, TestApp, TestClient, basic, code_request, location, query_param, spawn_app_with,
};

async fn client_credentials(app: &TestApp, http: &reqwest::Client, id: &str, secret: &str) -> u16 {
    let res = http
        .post(app.url("/token"))
        .header("authorization", basic(id, secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    res.status().as_u16()
}

// Regression: #23. Client ids are public; failures made with one from other addresses used to
// block the id itself, and the real client then got 429 with its correct secret.
#[tokio::test]
async fn a_stranger_cannot_lock_a_client_out_from_other_addresses() {
    let app = spawn_app_with(T0, |c| c.auth_failure_allowance = 10).await;
    let victim = app.jwt_client().await;
    let mut attacker_statuses = Vec::new();
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        let attacker = from(source);
        for i in 0..15 {
            attacker_statuses.push(client_credentials(&app, &attacker, &victim.id, &format!("tcs_guess{i}")).await);
        }
    }
    // Each attacking address is stopped after its own allowance...
    assert_eq!(attacker_statuses.iter().filter(|s| **s == 401).count(), 40, "{attacker_statuses:?}");
    assert_eq!(attacker_statuses.iter().filter(|s| **s == 429).count(), 20, "{attacker_statuses:?}");
    // ...and the real client, from its own address, is never refused.
    let real = from("127.0.0.1");
    for _ in 0..3 {
        assert_eq!(client_credentials(&app, &real, &victim.id, &victim.secret).await, 200);
    }
    // An address that failed too often is blocked as a whole: that budget was the attacker's.
    let shared = from("127.0.0.2");
    assert_eq!(client_credentials(&app, &shared, &victim.id, &victim.secret).await, 429);
}

// Regression: #23. The per-client request budget was spent by whoever named the client.
#[tokio::test]
async fn a_stranger_cannot_spend_a_clients_request_budget() {
    let app = spawn_app_with(T0, |c| {
        c.rate_limit_per_client = 5;
        c.rate_limit_per_ip = 0;
        c.auth_failure_allowance = 1000;
    })
    .await;
    let victim = app.jwt_client().await;
    let attacker = from("127.0.0.2");
    for i in 0..30 {
        assert_eq!(client_credentials(&app, &attacker, &victim.id, &format!("tcs_guess{i}")).await, 401);
    }
    // The client's own budget (5/s, bursts of 10) is whole: the stranger spent none of it. The
    // client itself is held to it (a request past it is answered, then the client waits).
    let real = from("127.0.0.1");
    let mut answered = 0;
    for _ in 0..20 {
        match client_credentials(&app, &real, &victim.id, &victim.secret).await {
            200 => answered += 1,
            status => {
                assert_eq!(status, 429);
                break;
            }
        }
    }
    assert!((10..=12).contains(&answered), "{answered}");
}

// Regression: #23. A resource server introspects whatever its callers present, unknown tokens
// included: it is not a scanner, and the per-client rate does not apply to its introspection.
#[tokio::test]
async fn a_resource_server_introspecting_unknown_tokens_is_not_throttled() {
    let app = spawn_app_with(T0, |c| c.rate_limit_per_client = 50).await;
    let rs = app.create_client(json!({"introspection": true, "audience": ["https://api.example.test"]})).await;
    let mut statuses = Vec::new();
    for i in 0..400 {
        statuses.push(app.introspect(&rs, &format!("tat_junk{i:04}")).await.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // A client that is not a resource server scanning tokens is still throttled.
    let scanner = app.jwt_client().await;
    let mut statuses = Vec::new();
    for i in 0..120 {
        statuses.push(app.introspect(&scanner, &format!("tat_junk{i:04}")).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// The admin API's answer to `token`.
async fn admin_status(app: &TestApp, token: &str) -> u16 {
    app.http.get(app.admin_url("/admin/clients")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

// Regression: #23. The admin API authorised on the scope alone: a code-flow client holding
// `tessera:admin` gave every person who signed in to it admin rights.
#[tokio::test]
async fn admin_rights_never_come_from_a_sign_in_or_an_api_key() {
    let app = spawn_app_with(T0, |_| {}).await;
    // Registration refuses the scope for anything but a client_credentials-only client.
    for metadata in [
        json!({"grant_types": ["authorization_code"], "redirect_uris": ["https://c.example/cb"], "scope": "openid tessera:admin"}),
        json!({"grant_types": ["authorization_code", "client_credentials"], "redirect_uris": ["https://c.example/cb"], "admin": true}),
        json!({"grant_types": ["client_credentials"], "scope": "tessera:admin", "admin": false}),
    ] {
        let res = app.admin_post("/admin/clients", &metadata).await;
        assert_eq!(res.status(), 400, "{metadata}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
    }
    // An admin client made with `admin: true` works, and says so.
    let res = app.admin_post("/admin/clients", &json!({"admin": true})).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["admin"].clone(), body["scope"].clone()), (json!(true), json!("tessera:admin")));
    let admin = TestClient {
        id: body["client_id"].as_str().unwrap().into(),
        secret: body["client_secret"].as_str().unwrap().into(),
    };
    assert_eq!(admin_status(&app, &app.access_token(&admin).await).await, 200);

    // A registration from before this rule: a code-flow client that holds the scope.
    app.create_user("mallory").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let sql = format!("UPDATE clients SET scope = scope || ' tessera:admin' WHERE client_id = '{}'", client.id);
    app.execute_sql(&[&sql]).await;
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&client.id, "openid tessera:admin"), "mallory").await;
    let tokens: Value = app.redeem(&client, &query_param(&redirect, "code").unwrap()).await.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    assert!(tokens["scope"].as_str().unwrap().contains("tessera:admin"), "{tokens}");
    assert_eq!(admin_status(&app, token).await, 403, "a person's token never reaches the admin API");
    // Nor does a key the person makes: it cannot even carry the scope.
    let user_id = app.admin_get("/admin/users").await.json::<Value>().await.unwrap()["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "mallory")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .admin_post("/admin/api-keys", &json!({"user_id": user_id, "name": "k", "scope": "openid tessera:admin"}))
        .await;
    assert_eq!(res.status(), 400, "{}", res.text().await.unwrap());
    // A client's service key does not inherit it from an admin client either.
    let res =
        app.admin_post("/admin/api-keys", &json!({"client_id": admin.id, "name": "k", "scope": "tessera:admin"})).await;
    assert_eq!(res.status(), 400, "{}", res.text().await.unwrap());
}

// Regression: #23. Every unauthenticated GET /authorize that needs a login page stored a pending
// request (up to a few KB) with no limit: disk and writer exhaustion from one address, and from a
// botnet (or an IPv6 /48: 65,536 /64s) even with a per-address limit. Now a browser nobody is
// signed in to gets its request back sealed, and nothing is stored until someone signs in.
#[tokio::test]
async fn unauthenticated_authorization_requests_store_nothing() {
    let app = spawn_app_with(T0, |_| {}).await;
    app.create_user("alice").await;
    let client = app.code_client(json!({})).await;
    let state = "s".repeat(2000);
    let mut query = code_request(&client.id, "openid");
    query.retain(|(k, _)| *k != "state");
    query.push(("state", &state));
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let rows = || async { app.state.store.count_rows("auth_requests").await.unwrap() };
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut login_url = String::new();
    for source in ["127.0.0.2", "127.0.0.3"] {
        let attacker = from(source);
        for _ in 0..150 {
            let res = attacker.get(url.as_str()).send().await.unwrap();
            *statuses.entry(res.status().as_u16()).or_default() += 1;
            login_url = location(&res).unwrap_or_default();
        }
    }
    assert_eq!(statuses, [(303, 300)].into(), "every stranger is sent to the login page");
    assert_eq!(rows().await, 0, "and nothing was stored");
    // The handle is sealed and bound to the browser: tampered, or from another browser, it is refused.
    let handle = query_param(&format!("http://x{login_url}"), "request").unwrap();
    assert!(handle.starts_with("s."), "{login_url}");
    let mut tampered = handle.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for request in [tampered.as_str(), handle.as_str(), "s.", "s.!!!"] {
        let page = Browser::new(&app).get(&format!("/login?request={request}")).await;
        assert_eq!(page.status(), 400, "{request}");
    }
    // A person signing in is unaffected; their row is written once they have signed in.
    let mut alice = Browser::new(&app);
    let redirect = alice.authorize(&code_request(&client.id, "openid"), "alice").await;
    assert!(query_param(&redirect, "code").is_some(), "{redirect}");
    assert_eq!(rows().await, 1);
}

// Regression: #23. A signed-in browser's pending requests (consent pages) are still rows: an
// address may hold 60 at once, then one every 2 s.
#[tokio::test]
async fn pending_requests_of_signed_in_browsers_are_bounded_per_address() {
    let app = spawn_app_with(T0, |_| {}).await;
    app.create_user("alice").await;
    let client = app.code_client(json!({})).await;
    let mut alice = Browser::new(&app);
    // Signing in leaves a consent page pending: a third-party client asks first.
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &code_request(&client.id, "openid")).unwrap();
    let res = alice.get(url.as_str()).await;
    let login = location(&res).unwrap();
    assert_eq!(alice.login(&login, "alice", PASSWORD).await.status(), 303);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..100 {
        *statuses.entry(alice.get(url.as_str()).await.status().as_u16()).or_default() += 1;
    }
    let stored = statuses.get(&303).copied().unwrap_or(0);
    assert!((58..=62).contains(&stored), "{statuses:?}");
    assert_eq!(statuses.get(&429).copied().unwrap_or(0), 100 - stored, "{statuses:?}");
    assert!(app.state.store.count_rows("auth_requests").await.unwrap() <= 63);
    // Another address is not affected.
    assert_eq!(from("127.0.0.3").get(url.as_str()).send().await.unwrap().status(), 303);
}

/// A key of `owner` (`{"user_id"}` or `{"client_id"}`) with scope `invoices:read`: the status and key.
async fn create_key(app: &TestApp, owner: Value) -> (u16, String) {
    let mut request = json!({"name": "k", "scope": "invoices:read"});
    request.as_object_mut().unwrap().extend(owner.as_object().unwrap().clone());
    let res = app.admin_post("/admin/api-keys", &request).await;
    let (status, body) = (res.status().as_u16(), res.json::<Value>().await.unwrap());
    (status, body["key"].as_str().unwrap_or_default().to_owned())
}

async fn key_active(app: &TestApp, rs: &TestClient, key: String) -> bool {
    app.introspect(rs, &key).await.json::<Value>().await.unwrap()["active"] == json!(true)
}

// Regression: #23. API keys survived "sign out all devices", a password reset, disabling the
// user and revoking the client; and a key's scope was the union of every grant ever given,
// revoked ones included.
#[tokio::test]
async fn revocation_means_everything_api_keys_included() {
    let app = spawn_app_with(T0, |_| {}).await;
    let api = "https://api.example.test";
    let rs = app.create_client(json!({"introspection": true, "audience": [api]})).await;
    let service = app.create_client(json!({"scope": "invoices:read", "audience": [api]})).await;
    let user_id = app.create_user("alice").await;
    let client =
        app.code_client(json!({"first_party": true, "scope": "openid invoices:read", "audience": [api]})).await;
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&client.id, "openid invoices:read"), "alice").await;
    assert_eq!(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await.status(), 200);
    let key = |owner: Value| create_key(&app, owner);
    let active = |key: String| key_active(&app, &rs, key);

    // Each way of revoking a user takes their personal access tokens along.
    let revoke_user = json!({"user_id": user_id});
    let (status, pat) = key(json!({"user_id": user_id})).await;
    assert_eq!(status, 201);
    assert!(active(pat.clone()).await);
    assert_eq!(app.admin_post("/admin/revocations", &revoke_user).await.status(), 200);
    assert!(!active(pat).await, "sign out all devices");
    // The only grant is revoked now: a new key may not carry its scope.
    assert_eq!(key(json!({"user_id": user_id})).await.0, 400, "a revoked grant gives no scope");

    // A client's revocation takes its service keys along.
    let (status, sak) = key(json!({"client_id": service.id})).await;
    assert_eq!(status, 201);
    assert!(active(sak.clone()).await);
    assert_eq!(app.admin_post("/admin/revocations", &json!({"client_id": service.id})).await.status(), 200);
    assert!(!active(sak).await, "client revocation");
    let (status, sak) = key(json!({"client_id": service.id})).await;
    assert_eq!(status, 201);
    assert_eq!(app.admin_delete(&format!("/admin/clients/{}", service.id)).await.status(), 204);
    assert!(!active(sak).await, "client deletion");
}

/// A raw connection from `source` to the app's public listener.
async fn connect_from(app: &TestApp, source: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(app.addr).await.unwrap()
}

/// Whether the server closes `stream` within `within` (reads until EOF or an error).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 1024];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_to_end).await.is_ok()
}

// Regression: #23. The listeners had no header-read deadline and no connection cap: a few
// clients trickling headers (slowloris) held connections for ever.
#[tokio::test]
async fn slow_clients_cannot_hold_the_listener() {
    use tokio::io::AsyncWriteExt as _;
    let app = spawn_app_with(T0, |c| {
        c.listener.max_connections_per_ip = 5;
        c.listener.header_read_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    // Five connections from one address that send half a request and then nothing.
    let mut slow = Vec::new();
    for _ in 0..5 {
        let mut stream = connect_from(&app, "127.0.0.2").await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(stream);
    }
    // A sixth from the same address is closed at once, before anything is read.
    let mut sixth = connect_from(&app, "127.0.0.2").await;
    assert!(closed_within(&mut sixth, std::time::Duration::from_secs(5)).await, "over the per-address cap");
    // Everyone else is served meanwhile.
    let res = from("127.0.0.3").get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // The trickling connections are closed once their header deadline passes (1 s here).
    for stream in &mut slow {
        assert!(closed_within(stream, std::time::Duration::from_secs(5)).await, "header deadline");
    }
    // And their address may connect again.
    let res = from("127.0.0.2").get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

// Regression: #23. A GET to /logout with any old id_token_hint ended that session from any
// browser (a link in a mail was enough to sign a person out).
#[tokio::test]
async fn an_id_token_hint_ends_only_the_session_of_the_browser_that_holds_it() {
    let app = spawn_app_with(T0, |_| {}).await;
    app.create_user("dave").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut dave = Browser::new(&app);
    let redirect = dave.authorize(&code_request(&client.id, "openid"), "dave").await;
    let tokens: Value = app.redeem(&client, &query_param(&redirect, "code").unwrap()).await.json().await.unwrap();
    let (id_token, access_token) = (tokens["id_token"].as_str().unwrap(), tokens["access_token"].as_str().unwrap());
    let query = [("id_token_hint", id_token), ("post_logout_redirect_uri", "https://client.example.org/bye")];
    let url = reqwest::Url::parse_with_params(&app.url("/logout"), &query).unwrap();
    // From a stranger's browser: back to the client, nothing ended.
    let res = from("127.0.0.2").get(url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let active = |token: &str| {
        let (app, client, token) = (&app, &client, token.to_owned());
        async move { app.introspect(client, &token).await.json::<Value>().await.unwrap()["active"] == json!(true) }
    };
    assert!(active(access_token).await, "a stranger's hint ended nothing");
    // From dave's own browser it ends his session.
    assert_eq!(dave.get(url.as_str()).await.status(), 303);
    assert!(!active(access_token).await);
}

// Regression: #23. Replaying an already-redeemed code revoked its grant whoever sent it; for a
// public client anyone who saw the code (a log, a referrer) could end the person's session.
#[tokio::test]
async fn a_replayed_code_revokes_only_when_the_replay_proves_the_pkce_verifier() {
    let app = spawn_app_with(T0, |_| {}).await;
    app.create_user("erin").await;
    let rs = app.create_client(json!({"introspection": true, "audience": [app.issuer]})).await;
    let public = app.code_client(json!({"first_party": true, "token_endpoint_auth_method": "none"})).await;
    let mut erin = Browser::new(&app);
    let redirect = erin.authorize(&code_request(&public.id, "openid offline_access"), "erin").await;
    let code = query_param(&redirect, "code").unwrap();
    let tokens: Value = app.redeem(&public, &code).await.json().await.unwrap();
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let active =
        || async { app.introspect(&rs, &access_token).await.json::<Value>().await.unwrap()["active"] == json!(true) };
    assert!(active().await);
    let replay = |verifier: Option<&'static str>| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", tessera_test_support::REDIRECT_URI),
            ("client_id", public.id.as_str()),
        ];
        form.extend(verifier.map(|v| ("code_verifier", v)));
        from("127.0.0.2").post(app.url("/token")).form(&form).send()
    };
    for verifier in [None, Some("a-wrong-verifier-of-the-right-length-abcdefghijk")] {
        let res = replay(verifier).await.unwrap();
        assert_eq!(res.status(), 400);
        assert!(active().await, "a replay without the verifier revoked the grant");
    }
    // The client itself retrying with its verifier: RFC 6749 §4.1.2 revocation.
    assert_eq!(replay(Some(tessera_test_support::VERIFIER)).await.unwrap().status(), 400);
    assert!(!active().await);
}

// Regression: #23. /split-tokens answered any resource server with any split token's header
// and payload, whatever its audience.
#[tokio::test]
async fn split_tokens_are_given_only_to_resource_servers_of_their_audience() {
    use base64::Engine as _;
    let app = spawn_app_with(T0, |_| {}).await;
    let ours = app.create_client(json!({"introspection": true, "audience": ["https://api.example.test"]})).await;
    let theirs = app.create_client(json!({"introspection": true, "audience": ["https://other.example.test"]})).await;
    let client = app
        .create_client(
            json!({"scope": "read", "access_token_format": "split", "audience": ["https://api.example.test"]}),
        )
        .await;
    let part = app.access_token(&client).await;
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tessera_server::secret::hash(&part));
    let fetch = |caller: &TestClient| {
        app.http
            .get(app.url(&format!("/split-tokens/{hash}")))
            .header("authorization", basic(&caller.id, &caller.secret))
            .send()
    };
    assert_eq!(fetch(&ours).await.unwrap().status(), 200);
    assert_eq!(fetch(&theirs).await.unwrap().status(), 404, "another audience's token is unknown to it");
}

// Regression: #23. The revocation feed gave every resource server every event: the ids of
// users, sessions and clients revoked anywhere, and the jtis of every audience's tokens.
#[tokio::test]
async fn the_revocation_feed_shows_a_resource_server_only_events_of_its_audiences() {
    const API: &str = "https://api.example.test";
    let app = spawn_app_with(T0, |_| {}).await;
    let ours = app.create_client(json!({"introspection": true, "audience": [API]})).await;
    let theirs = app.create_client(json!({"introspection": true, "audience": ["https://other.example.test"]})).await;
    // Every kind of event, each about tokens for API: a JWT and an opaque token revoked by
    // their client, a signed-in user's session and then the user, a client, an API key.
    let jwt_client = app.create_client(json!({"scope": "read", "audience": [API]})).await;
    let jwt = app.access_token(&jwt_client).await;
    app.revoke(&jwt_client, &jwt).await;
    let opaque_client =
        app.create_client(json!({"scope": "read", "access_token_format": "opaque", "audience": [API]})).await;
    let opaque = app.access_token(&opaque_client).await;
    app.revoke(&opaque_client, &opaque).await;
    let user = app.create_user("gus").await;
    let code_client = app.code_client(json!({"first_party": true, "audience": [API]})).await;
    let mut gus = Browser::new(&app);
    let redirect = gus.authorize(&code_request(&code_client.id, "openid offline_access"), "gus").await;
    let tokens: Value = app.redeem(&code_client, &query_param(&redirect, "code").unwrap()).await.json().await.unwrap();
    let sid = tessera_test_support::jwt_claims(tokens["access_token"].as_str().unwrap())["sid"].clone();
    assert!(app.admin_post("/admin/revocations", &json!({"session_id": sid})).await.status().is_success());
    assert!(app.admin_post("/admin/revocations", &json!({"user_id": user})).await.status().is_success());
    assert!(app.admin_post("/admin/revocations", &json!({"client_id": jwt_client.id})).await.status().is_success());
    let key: Value = app
        .admin_post("/admin/api-keys", &json!({"client_id": opaque_client.id, "name": "ci"}))
        .await
        .json()
        .await
        .unwrap();
    let key_id = key["id"].as_str().expect("an API key").to_owned();
    assert_eq!(app.admin_delete(&format!("/admin/api-keys/{key_id}")).await.status(), 204);
    assert_eq!(app.admin_delete(&format!("/admin/clients/{}", opaque_client.id)).await.status(), 204);
    assert_eq!(app.admin_delete(&format!("/admin/users/{user}")).await.status(), 204);

    let page = |reader: &TestClient| {
        let request = from("127.0.0.2")
            .get(app.url("/revocations?after=0"))
            .header("authorization", basic(&reader.id, &reader.secret));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let (our_page, their_page) = (page(&ours).await, page(&theirs).await);
    let kinds: std::collections::BTreeSet<&str> =
        our_page["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["client", "jti", "session", "user"].into(), "{our_page}");
    assert_eq!(their_page["events"], json!([]), "another audience's events are none of its business");
    assert_eq!(their_page["last"], our_page["last"], "both readers move past every event");
    // The stream filters the same way: the other audience's reader hears only `caught-up`.
    let stream = app
        .http
        .get(app.url("/revocations/stream?after=0"))
        .header("authorization", basic(&theirs.id, &theirs.secret))
        .send()
        .await
        .unwrap();
    let mut stream = tessera_test_support::SseReader::new(stream);
    let first = stream.next(std::time::Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.event.as_deref(), Some("caught-up"), "{first:?}");
}

// Regression: #23. `prompt=consent` was dropped when the person had to sign in first.
#[tokio::test]
async fn prompt_consent_survives_a_login() {
    let app = spawn_app_with(T0, |_| {}).await;
    app.create_user("fay").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut query = code_request(&client.id, "openid");
    query.push(("prompt", "consent"));
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let mut fay = Browser::new(&app);
    let res = fay.get(url.as_str()).await;
    let login = tessera_test_support::location(&res).unwrap();
    assert!(login.starts_with("/login"), "{login}");
    let res = fay.login(&login, "fay", tessera_test_support::PASSWORD).await;
    let next = tessera_test_support::location(&res).unwrap();
    assert!(next.starts_with("/consent"), "a first-party client still asks, as prompt=consent said: {next}");
    let res = fay.consent(&next, "allow").await;
    let back = tessera_test_support::location(&res).unwrap();
    assert!(query_param(&back, "code").is_some(), "{back}");
}

// Regression: #23. Keys made on the account page never expired by default, and any session,
// however old (a browser left signed in, a stolen cookie), could make one.
#[tokio::test]
async fn account_page_keys_need_a_fresh_sign_in_and_always_expire() {
    let app = spawn_app_with(T0, |_| {}).await;
    app.create_user("gus").await;
    let client = app.code_client(json!({"first_party": true, "scope": "openid invoices:read"})).await;
    let mut gus = Browser::new(&app);
    let redirect = gus.authorize(&code_request(&client.id, "openid invoices:read"), "gus").await;
    assert_eq!(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await.status(), 200);
    let csrf = |html: &str| tessera_test_support::hidden_field(html, "csrf_token").unwrap();
    let page = gus.get("/account").await.text().await.unwrap();
    for lifetime in ["never", "0", "366"] {
        let form = [("csrf_token", csrf(&page)), ("name", "k".into()), ("expires_in_days", lifetime.into())];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(gus.post("/account/api-keys", &form).await.status(), 400, "{lifetime}");
    }
    let form = [("csrf_token", csrf(&page)), ("name", "k".to_owned())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(gus.post("/account/api-keys", &form).await.status(), 200, "no lifetime chosen: 90 days");
    let keys = app.admin_get("/admin/api-keys").await.json::<Value>().await.unwrap();
    let key = &keys["api_keys"][0];
    assert_eq!(key["expires_at"].as_u64().unwrap() - key["created_at"].as_u64().unwrap(), 90 * 86_400, "{key}");
    // Eleven minutes later the same session may not make another.
    app.clock.advance(660);
    let page = gus.get("/account").await.text().await.unwrap();
    let form = [("csrf_token", csrf(&page)), ("name", "k2".to_owned())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = gus.post("/account/api-keys", &form).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("Sign in again"));
}
