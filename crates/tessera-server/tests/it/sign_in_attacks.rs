//! SECURITY-TESTS.md c.4 (redirect URIs, CSRF, clickjacking, CORS, mix-up), c.5 (PKCE, codes,
//! PAR) and c.6 (refresh rotation, reuse, races) against the sign-in flow.

use serde_json::{Value, json};
use tessera_test_support::{
    Browser, CHALLENGE, PASSWORD, REDIRECT_URI, T0, TestClient, VERIFIER, code_request, hidden_field, location,
    query_param, spawn_app, spawn_app_with,
};

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

/// Signs `username` in through client `client` and returns the code.
async fn code_for(browser: &mut Browser<'_>, client: &TestClient, username: &str) -> String {
    let redirect = browser.authorize(&code_request(&client.id, "openid offline_access"), username).await;
    query_param(&redirect, "code").unwrap()
}

async fn authorize_raw(browser: &mut Browser<'_>, query: &[(&str, &str)]) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(&browser.url("/authorize"), query).unwrap();
    browser.get(url.as_str()).await
}

async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, body(res).await["error"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn redirect_uri_variants_get_an_error_page_and_never_a_redirect() {
    let app = spawn_app().await;
    let client = app.code_client(json!({})).await;
    let other = app.code_client(json!({"redirect_uris": ["https://other.example/cb"]})).await;
    let mut browser = Browser::new(&app);
    let variants = [
        "https://client.example.org/cb/",
        "https://client.example.org/cb/x",
        "https://client.example.org/cbx",
        "https://client.example.org/cb?x=1",
        "https://client.example.org/cb#f",
        "https://CLIENT.example.org/cb",
        "https://client.example.org:443/cb",
        "http://client.example.org/cb",
        "https://client.example.org/cb/../evil",
        "https://client.example.org/cb/..;/evil",
        "https://client.example.org/cb%2F..%2Fevil",
        "https://client.example.org.evil.example/cb",
        "https://client.example.org@evil.example/cb",
        "https://evil.example@@client.example.org/cb",
        "http://localhost.evil.example:51004/cb",
    ];
    for uri in variants {
        let mut query = code_request(&client.id, "openid");
        query.retain(|(k, _)| *k != "redirect_uri");
        query.push(("redirect_uri", uri));
        let res = authorize_raw(&mut browser, &query).await;
        assert_eq!(res.status(), 400, "{uri}");
        assert!(location(&res).is_none(), "{uri}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        // CJ-01, RF-01 on the error page too.
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert_eq!(res.headers()["referrer-policy"], "no-referrer");
        assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    }
    // RU-09: repeated redirect_uri; RU-10: unknown client, or another client's URI.
    let mut twice = code_request(&client.id, "openid");
    twice.push(("redirect_uri", REDIRECT_URI));
    let mut unknown = code_request("unknown", "openid");
    unknown.retain(|_| true);
    let swapped = code_request(&other.id, "openid");
    for query in [twice, unknown, swapped] {
        let res = authorize_raw(&mut browser, &query).await;
        assert_eq!(res.status(), 400);
        assert!(location(&res).is_none());
    }
    // RU-07 at registration.
    for uri in ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x", "vbscript:x"] {
        let res = app
            .admin_post("/admin/clients", &json!({"grant_types":["authorization_code"],"redirect_uris":[uri]}))
            .await;
        assert_eq!(res.status(), 400, "{uri}");
    }
}

#[tokio::test]
async fn errors_with_a_valid_pair_redirect_with_state_and_iss() {
    let app = spawn_app().await;
    let client = app.code_client(json!({})).await;
    let mut browser = Browser::new(&app);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("scope", "openid admin")], "invalid_scope"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("prompt", "none")], "login_required"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("max_age", "soon")], "invalid_request"),
        (vec![("code_challenge", "short")], "invalid_request"),
        (vec![("request", "eyJhbGciOiJub25lIn0.e30.")], "request_not_supported"),
    ];
    for (overrides, error) in cases {
        let mut query = code_request(&client.id, "openid");
        query.retain(|(k, _)| !overrides.iter().any(|(o, _)| o == k));
        query.extend(overrides.iter().copied());
        let res = authorize_raw(&mut browser, &query).await;
        assert_eq!(res.status(), 303, "{overrides:?}");
        let to = location(&res).unwrap();
        assert!(to.starts_with(REDIRECT_URI), "{to}");
        assert_eq!(query_param(&to, "error").as_deref(), Some(error), "{overrides:?}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("s-123"));
        assert_eq!(query_param(&to, "iss").as_deref(), Some(app.issuer.as_str()));
        assert!(query_param(&to, "code").is_none());
    }
    // PK-05/PK-07: a challenge without a method defaults to plain: refused; no challenge at all: refused.
    for drop in ["code_challenge_method", "code_challenge"] {
        let mut query = code_request(&client.id, "openid");
        query.retain(|(k, _)| *k != drop);
        let to = location(&authorize_raw(&mut browser, &query).await).unwrap();
        assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"), "{drop}");
    }
    // Missing response_type: invalid_request; unknown parameters are ignored; POST works.
    let mut query = code_request(&client.id, "openid");
    query.retain(|(k, _)| *k != "response_type");
    let to = location(&authorize_raw(&mut browser, &query).await).unwrap();
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"));
    let mut query = code_request(&client.id, "openid");
    query.push(("extra", "foobar"));
    query.push(("display", "popup"));
    let res = authorize_raw(&mut browser, &query).await;
    assert!(location(&res).unwrap().starts_with("/login"));
    let res = browser.post("/authorize", &code_request(&client.id, "openid")).await;
    assert!(location(&res).unwrap().starts_with("/login"));
    // CO-01: no CORS on the authorization endpoint.
    let res = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/authorize"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn login_and_consent_forms_require_their_csrf_tokens() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    app.create_user("mallory").await;
    let client = app.code_client(json!({})).await;
    let mut browser = Browser::new(&app);
    let login = location(&authorize_raw(&mut browser, &code_request(&client.id, "openid")).await).unwrap();
    let handle = query_param(&app.url(&login), "request").unwrap();
    // CS-01: no token, or a token of another browser.
    let res = browser.post("/login", &[("request", &handle), ("username", "alice"), ("password", PASSWORD)]).await;
    assert_eq!(res.status(), 403);
    let mut attacker = Browser::new(&app);
    let attacker_login = location(&authorize_raw(&mut attacker, &code_request(&client.id, "openid")).await).unwrap();
    let attacker_csrf = hidden_field(&attacker.get(&attacker_login).await.text().await.unwrap(), "csrf_token").unwrap();
    let res = browser
        .post(
            "/login",
            &[("request", &handle), ("csrf_token", &attacker_csrf), ("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(!browser.cookies.contains_key("tessera-session"));
    // The attacker's own pending request cannot be completed in the victim's browser either.
    let attacker_handle = query_param(&app.url(&attacker_login), "request").unwrap();
    assert_eq!(browser.get(&format!("/login?request={attacker_handle}")).await.status(), 400);

    // CS-02: a consent POST replayed in another session, and twice.
    let res = browser.login(&login, "alice", PASSWORD).await;
    let consent = location(&res).unwrap();
    let html = browser.get(&consent).await.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf_token").unwrap();
    // Signed in, the request is stored under a new handle (the login page's was sealed, T-08).
    let stored = query_param(&app.url(&consent), "request").unwrap();
    assert_ne!(stored, handle);
    let form = [("request", stored.as_str()), ("csrf_token", csrf.as_str()), ("decision", "allow")];
    let mut other = Browser::new(&app);
    let other_login = location(&authorize_raw(&mut other, &code_request(&client.id, "openid")).await).unwrap();
    other.login(&other_login, "mallory", PASSWORD).await;
    assert_eq!(other.post("/consent", &form).await.status(), 403);
    let first = browser.post("/consent", &form).await;
    assert_eq!(first.status(), 303);
    assert!(query_param(&location(&first).unwrap(), "code").is_some());
    let second = browser.post("/consent", &form).await;
    assert_eq!(second.status(), 400);
    assert!(location(&second).is_none());
}

#[tokio::test]
async fn denying_consent_redirects_access_denied_and_prompt_none_needs_consent() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({})).await;
    let mut browser = Browser::new(&app);
    let login = location(&authorize_raw(&mut browser, &code_request(&client.id, "openid")).await).unwrap();
    let consent = location(&browser.login(&login, "alice", PASSWORD).await).unwrap();
    // Signed in but no consent: prompt=none answers consent_required.
    let mut query = code_request(&client.id, "openid");
    query.push(("prompt", "none"));
    let to = location(&authorize_raw(&mut browser, &query).await).unwrap();
    assert_eq!(query_param(&to, "error").as_deref(), Some("consent_required"));
    let res = browser.consent(&consent, "deny").await;
    let to = location(&res).unwrap();
    assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&to, "iss").as_deref(), Some(app.issuer.as_str()));
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_login_with_a_later_auth_time() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let first = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    app.clock.advance(30);
    // Silent with prompt=none and max_age=10000.
    let mut query = code_request(&client.id, "openid");
    query.push(("prompt", "none"));
    query.push(("max_age", "10000"));
    let to = location(&authorize_raw(&mut browser, &query).await).unwrap();
    assert!(query_param(&to, "code").is_some(), "{to}");
    // max_age=1 after 30 s, and prompt=login: a login page.
    for extra in [("max_age", "1"), ("prompt", "login")] {
        let mut query = code_request(&client.id, "openid");
        query.push(extra);
        let res = authorize_raw(&mut browser, &query).await;
        assert!(location(&res).unwrap().starts_with("/login"), "{extra:?}");
    }
    let mut query = code_request(&client.id, "openid");
    query.push(("prompt", "login"));
    let redirect = browser.authorize(&query, "alice").await;
    let second = body(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await).await;
    let auth_time = |t: &Value| {
        use base64::Engine as _;
        let payload = t["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
        let claims: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["auth_time"].as_u64().unwrap()
    };
    assert_eq!(auth_time(&first), T0);
    assert_eq!(auth_time(&second), T0 + 30);
}

#[tokio::test]
async fn pkce_and_code_attacks() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let other = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let redeem = |code: String, verifier: Option<&'static str>, redirect: Option<&'static str>| {
        let mut form = vec![("grant_type".to_owned(), "authorization_code".to_owned()), ("code".to_owned(), code)];
        if let Some(v) = verifier {
            form.push(("code_verifier".into(), v.into()));
        }
        if let Some(r) = redirect {
            form.push(("redirect_uri".into(), r.into()));
        }
        form
    };
    let send = |form: Vec<(String, String)>, who: TestClient| {
        let app = &app;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            error_of(app.token(&who, &pairs).await).await
        }
    };
    // PK-02 wrong verifier, PK-03 missing, PK-06 malformed, RU-11 redirect mismatch or omitted,
    // AC-03 another client's credentials: all invalid_grant, and the code survives them.
    let code = code_for(&mut browser, &client, "alice").await;
    let bad: Vec<(Option<&'static str>, Option<&'static str>, TestClient)> = vec![
        (Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"), Some(REDIRECT_URI), client.clone()),
        (None, Some(REDIRECT_URI), client.clone()),
        (Some("too+short"), Some(REDIRECT_URI), client.clone()),
        (Some(VERIFIER), Some("https://client.example.org/cb2"), client.clone()),
        (Some(VERIFIER), None, client.clone()),
        (Some(VERIFIER), Some(REDIRECT_URI), other.clone()),
    ];
    for (verifier, redirect, who) in bad {
        assert_eq!(send(redeem(code.clone(), verifier, redirect), who).await, (400, "invalid_grant".into()));
    }
    // PK-01: the right verifier still works.
    let res = app.redeem(&client, &code).await;
    assert_eq!(res.status(), 200);
    let tokens = body(res).await;
    // AC-01: a replay fails and revokes what the first redemption issued.
    app.clock.advance(1);
    assert_eq!(error_of(app.redeem(&client, &code).await).await, (400, "invalid_grant".into()));
    assert_eq!(
        body(app.introspect(&client, tokens["access_token"].as_str().unwrap()).await).await,
        json!({"active": false})
    );
    assert_eq!(
        error_of(app.refresh(&client, tokens["refresh_token"].as_str().unwrap()).await).await.1,
        "invalid_grant"
    );
    // AC-04: expiry after 60 s.
    let code = code_for(&mut browser, &client, "alice").await;
    app.clock.advance(61);
    assert_eq!(error_of(app.redeem(&client, &code).await).await, (400, "invalid_grant".into()));
    // A disabled user's code is refused at redemption (RT-14).
    let code = code_for(&mut browser, &client, "alice").await;
    let users = body(app.admin_get("/admin/users").await).await;
    let id = users["users"][0]["id"].as_str().unwrap().to_owned();
    app.admin_post(&format!("/admin/users/{id}/disable"), &json!({})).await;
    assert_eq!(error_of(app.redeem(&client, &code).await).await, (400, "invalid_grant".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_redemptions_of_one_code_give_exactly_one_success() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let code = code_for(&mut browser, &client, "alice").await;
    let results = futures_join(32, |_| app.redeem(&client, &code)).await;
    let ok: Vec<&Value> = results.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    assert!(results.iter().filter(|(s, _)| *s != 200).all(|(s, b)| *s == 400 && b["error"] == "invalid_grant"));
    // The losers were replays: the winner's tokens are revoked too (AC-02, our replay policy).
    assert_eq!(body(app.introspect(&client, ok[0]["access_token"].as_str().unwrap()).await).await["active"], false);
}

async fn futures_join<'a, F, Fut>(n: usize, f: F) -> Vec<(u16, Value)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response> + 'a,
{
    let mut handles = Vec::new();
    for i in 0..n {
        handles.push(f(i));
    }
    let mut out = Vec::new();
    let responses = join_all(handles).await;
    for res in responses {
        let status = res.status().as_u16();
        out.push((status, res.json().await.unwrap_or(Value::Null)));
    }
    out
}

/// Polls every future concurrently on this task.
async fn join_all<Fut: std::future::Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<Fut::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, fut) in futures.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => outputs[i] = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

#[tokio::test]
async fn pushed_authorization_requests() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true, "require_pushed_authorization_requests": true})).await;
    let other = app.code_client(json!({})).await;
    let par = |who: TestClient, extra: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move {
            let mut form = code_request(&who.id, "openid");
            form.extend(extra);
            app.token_like("/par", &who, &form).await
        }
    };
    // PR-01.
    let res = par(client.clone(), vec![]).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let pushed = body(res).await;
    let request_uri = pushed["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:") && request_uri.len() > 34 + 42);
    assert!(pushed["expires_in"].as_u64().unwrap() < 600);
    // PR-02: GET, request_uri inside, no client authentication.
    assert_eq!(app.http.get(app.url("/par")).send().await.unwrap().status(), 405);
    assert_eq!(
        error_of(par(client.clone(), vec![("request_uri", "urn:x")]).await).await,
        (400, "invalid_request".into())
    );
    let res = app.post_form("/par", None, &code_request(&client.id, "openid")).await;
    assert_eq!(res.status(), 401);
    // Validation happens at push time.
    assert_eq!(error_of(par(client.clone(), vec![("scope", "admin")]).await).await.1, "invalid_request");
    // PR-04: a PAR-required client cannot send a plain request.
    let mut browser = Browser::new(&app);
    let to = location(&authorize_raw(&mut browser, &code_request(&client.id, "openid")).await).unwrap();
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"));
    // PR-03: another client cannot use it; visiting twice before completion works; single use.
    let with = |id: &str| vec![("client_id", id.to_owned()), ("request_uri", request_uri.clone())];
    let res =
        authorize_raw(&mut browser, &with(&other.id).iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(res.status(), 400);
    let query = with(&client.id);
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let first = location(&authorize_raw(&mut browser, &query).await).unwrap();
    let second = location(&authorize_raw(&mut browser, &query).await).unwrap();
    assert!(first.starts_with("/login") && second.starts_with("/login"));
    let res = browser.login(&second, "alice", PASSWORD).await;
    let redirect = location(&res).unwrap();
    let code = query_param(&redirect, "code").unwrap();
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("s-123"));
    assert_eq!(app.redeem(&client, &code).await.status(), 200);
    // Used: the other pending interaction and the request_uri itself are finished.
    assert_eq!(browser.login(&first, "alice", PASSWORD).await.status(), 400);
    assert_eq!(authorize_raw(&mut browser, &query).await.status(), 400);
    // Expiry.
    let pushed = body(par(client.clone(), vec![]).await).await;
    app.clock.advance(pushed["expires_in"].as_u64().unwrap());
    let uri = pushed["request_uri"].as_str().unwrap();
    assert_eq!(
        authorize_raw(&mut browser, &[("client_id", client.id.as_str()), ("request_uri", uri)]).await.status(),
        400
    );
}

#[tokio::test]
async fn strict_rotation_detects_reuse_and_revokes_the_family() {
    let app = spawn_app_with(T0, |c| c.refresh_token_grace_period = 0).await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
    // RT-03: two rotations in the same second, then replay RT0.
    let r1 = body(app.refresh(&client, &rt0).await).await;
    let rt1 = r1["refresh_token"].as_str().unwrap().to_owned();
    let at1 = r1["access_token"].as_str().unwrap().to_owned();
    // RT-01: replaying RT0 fails, and RT1 and AT1 die with the family.
    assert_eq!(error_of(app.refresh(&client, &rt0).await).await, (400, "invalid_grant".into()));
    assert_eq!(error_of(app.refresh(&client, &rt1).await).await, (400, "invalid_grant".into()));
    assert_eq!(body(app.introspect(&client, &at1).await).await, json!({"active": false}));
    // RT-13: a flipped bit is just invalid.
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let mut flipped = rt.as_bytes().to_vec();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    assert_eq!(error_of(app.refresh(&client, std::str::from_utf8(&flipped).unwrap()).await).await.1, "invalid_grant");
    assert!(rt.len() >= 4 + 54 && rt.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    // RT-07, RT-08: another client, or no client authentication.
    let other = app.code_client(json!({})).await;
    assert_eq!(error_of(app.refresh(&other, rt).await).await, (400, "invalid_grant".into()));
    let res = app.post_form("/token", None, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(res.status(), 401);
    // The family was not touched by those.
    assert_eq!(app.refresh(&client, rt).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_never_fork_a_family() {
    // Strict: exactly one success among 32.
    let app = spawn_app_with(T0, |c| c.refresh_token_grace_period = 0).await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let results = futures_join(32, |_| app.refresh(&client, &rt0)).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, b)| *s == 200 || b["error"] == "invalid_grant"));

    // With a grace window: every request gets the same successor.
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let results = futures_join(32, |_| app.refresh(&client, &rt0)).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let successors: std::collections::BTreeSet<&str> =
        results.iter().map(|(_, b)| b["refresh_token"].as_str().unwrap()).collect();
    assert_eq!(successors.len(), 1);
    let rt1 = successors.into_iter().next().unwrap().to_owned();
    assert_eq!(app.refresh(&client, &rt1).await.status(), 200);
}

#[tokio::test]
async fn the_grace_window_retries_and_then_detects_reuse() {
    let app = spawn_app().await; // grace 10 s
    let alice = app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let rt0 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let rt1 = body(app.refresh(&client, &rt0).await).await["refresh_token"].as_str().unwrap().to_owned();
    // A lost response: the retry within 10 s gets the same successor.
    app.clock.advance(5);
    let retry = body(app.refresh(&client, &rt0).await).await;
    assert_eq!(retry["refresh_token"].as_str(), Some(rt1.as_str()));
    // After the window: reuse, the family is revoked.
    app.clock.advance(6);
    assert_eq!(error_of(app.refresh(&client, &rt0).await).await.1, "invalid_grant");
    assert_eq!(error_of(app.refresh(&client, &rt1).await).await.1, "invalid_grant");

    // RT-10: a disabled user cannot refresh; RT-12: idle and absolute expiry.
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    app.admin_post(&format!("/admin/users/{alice}/disable"), &json!({})).await;
    assert_eq!(error_of(app.refresh(&client, &rt).await).await.1, "invalid_grant");
}

#[tokio::test]
async fn refresh_tokens_expire_when_idle_and_absolutely() {
    let app = spawn_app_with(T0, |c| {
        c.refresh_token_idle_ttl = 100;
        c.refresh_token_ttl = 250;
    })
    .await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        app.clock.advance(90);
        let res = app.refresh(&client, &rt).await;
        assert_eq!(res.status(), 200);
        rt = body(res).await["refresh_token"].as_str().unwrap().to_owned();
    }
    // 180 s in: idle would allow until 280, the family ends at 250.
    app.clock.advance(75);
    assert_eq!(error_of(app.refresh(&client, &rt).await).await.1, "invalid_grant");
    // Idle: unused for longer than 100 s.
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    app.clock.advance(101);
    assert_eq!(
        error_of(app.refresh(&client, tokens["refresh_token"].as_str().unwrap()).await).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_access_tokens() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let other = app.code_client(json!({})).await;
    let mut browser = Browser::new(&app);
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    // Another client may not revoke it.
    assert_eq!(app.revoke(&other, rt).await.status(), 400);
    assert_eq!(app.revoke(&client, rt).await.status(), 200);
    assert_eq!(body(app.introspect(&client, tokens["access_token"].as_str().unwrap()).await).await["active"], false);
    assert_eq!(error_of(app.refresh(&client, rt).await).await.1, "invalid_grant");
}

#[tokio::test]
async fn a_deleted_client_or_user_ends_the_grant() {
    let app = spawn_app().await;
    let alice = app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let tokens = body(app.redeem(&client, &code_for(&mut browser, &client, "alice").await).await).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.admin_delete(&format!("/admin/users/{alice}")).await.status(), 204);
    assert_eq!(body(app.introspect(&client, access).await).await["active"], false);
    assert_eq!(
        error_of(app.refresh(&client, tokens["refresh_token"].as_str().unwrap()).await).await.1,
        "invalid_grant"
    );
    assert_eq!(CHALLENGE.len(), 43);
}
