//! Concurrency, oversized bodies and hostile input: never a 500, never "database is locked".

use serde_json::Value;
use tessera_test_support::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_token_introspect_and_revoke_requests_all_succeed() {
    let app = std::sync::Arc::new(spawn_app().await);
    let opaque = app.opaque_client().await;
    let jwt = app.jwt_client().await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let app = app.clone();
        let client = if i % 2 == 0 { opaque.clone() } else { jwt.clone() };
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..5 {
                let res = app.client_credentials(&client).await;
                statuses.push(res.status().as_u16());
                let text = res.text().await.unwrap();
                let token =
                    serde_json::from_str::<Value>(&text).unwrap()["access_token"].as_str().unwrap_or("").to_owned();
                let res = app.introspect(&client, &token).await;
                statuses.push(res.status().as_u16());
                let active = res.json::<Value>().await.unwrap()["active"] == true;
                assert!(active);
                let res = app.revoke(&client, &token).await;
                statuses.push(res.status().as_u16());
                let res = app.introspect(&client, &token).await;
                statuses.push(res.status().as_u16());
                assert_eq!(res.json::<Value>().await.unwrap()["active"], false);
            }
            statuses
        }));
    }
    for task in tasks {
        let statuses = task.await.unwrap();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
}

#[tokio::test]
async fn a_one_megabyte_body_gets_413() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(1024 * 1024));
    for path in ["/token", "/introspect", "/revoke"] {
        let res = app
            .http
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", tessera_test_support::basic(&client.id, &client.secret))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{path}");
    }
    let res = app
        .http
        .post(app.admin_url("/admin/clients"))
        .bearer_auth(app.admin_token().await)
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

// SQ-01 / SQ-02: hostile values in every parameter get 4xx, never 5xx.
#[tokio::test]
async fn hostile_parameters_never_cause_a_server_error() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let hostile = [
        "' OR '1'='1",
        "client-a'--",
        "x'; DROP TABLE clients;--",
        "%00",
        "\u{0}",
        &"x".repeat(60_000),
        "\u{202e}evil",
    ];
    for value in hostile {
        for name in ["grant_type", "scope", "resource", "client_id", "token", "token_type_hint"] {
            for path in ["/token", "/introspect", "/revoke"] {
                let form = [("grant_type", "client_credentials"), (name, value)];
                let res =
                    app.post_form(path, Some(&client), if name == "grant_type" { &form[1..] } else { &form }).await;
                assert!(res.status().is_client_error() || res.status() == 200, "{path} {name}: {}", res.status());
            }
        }
    }
    // Raw garbage bodies and headers.
    for body in [&b"%%%"[..], b"\xff\xfe", b"a=1&a"] {
        let res = app
            .http
            .post(app.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error());
    }
    for header in ["Basic", "Basic !!!", "Basic Og==", "Bearer x", "basic    "] {
        let res = app
            .http
            .post(app.url("/token"))
            .header("authorization", header)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{header}");
    }
    let res = app
        .http
        .post(app.url("/token"))
        .header("authorization", tessera_test_support::basic(&client.id, &client.secret))
        .header("authorization", tessera_test_support::basic(&client.id, &client.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(app.client_credentials(&client).await.status(), 200);
}

/// SQ-01/SQ-02 at the sign-in endpoints: hostile values in every parameter get a page or an
/// RFC error, never a 5xx (the harness fails the test on any 5xx) and never a redirect to them.
#[tokio::test]
async fn hostile_input_at_the_sign_in_endpoints_never_fails_the_server() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(serde_json::json!({})).await;
    let hostile = [
        "' OR '1'='1",
        "client-a'--",
        "x'; DROP TABLE clients;--",
        "\u{0}",
        "%00",
        "é\u{202e}",
        "<script>alert(1)</script>",
        "urn:ietf:params:oauth:request_uri:",
        "tac_",
        "trt_AAAA",
        "a.b.c",
    ];
    let long = "x".repeat(60_000);
    let mut browser = tessera_test_support::Browser::new(&app);
    for value in hostile.iter().copied().chain([long.as_str()]) {
        for name in [
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "nonce",
            "prompt",
            "max_age",
            "login_hint",
            "request_uri",
            "code_challenge",
            "resource",
            "response_type",
        ] {
            let mut query = tessera_test_support::code_request(&client.id, "openid");
            query.retain(|(k, _)| *k != name);
            query.push((name, value));
            let res = browser.post("/authorize", &query).await;
            assert!(res.status().is_client_error() || res.status() == 303, "{name}={value:.40}: {}", res.status());
            if let Some(to) = tessera_test_support::location(&res) {
                assert!(to.starts_with('/') || to.starts_with(tessera_test_support::REDIRECT_URI), "{to:.80}");
            }
        }
        for path in ["/login", "/consent", "/logout"] {
            let res = browser
                .post(
                    path,
                    &[
                        ("request", value),
                        ("csrf_token", value),
                        ("username", value),
                        ("password", value),
                        ("id_token_hint", value),
                        ("session_id", value),
                    ],
                )
                .await;
            assert!(res.status().is_client_error() || res.status().is_success(), "{path}: {}", res.status());
            // Query strings stay below what HTTP clients send at all.
            let short: String = value.chars().take(2000).collect();
            let query = [("request", short.as_str()), ("id_token_hint", short.as_str())];
            let url = reqwest::Url::parse_with_params(&app.url(path), &query).unwrap();
            assert!(!browser.get(url.as_str()).await.status().is_server_error());
        }
        for form in [
            vec![
                ("grant_type", "authorization_code"),
                ("code", value),
                ("code_verifier", value),
                ("redirect_uri", value),
            ],
            vec![("grant_type", "refresh_token"), ("refresh_token", value), ("scope", value)],
        ] {
            let res = app.token(&client, &form).await;
            // 413 when the hostile values make the body larger than 64 KiB.
            assert!([400, 413].contains(&res.status().as_u16()), "{}", res.status());
        }
        let res = app
            .post_form("/par", Some(&client), &[("response_type", "code"), ("client_id", &client.id), ("scope", value)])
            .await;
        assert_eq!(res.status(), 400);
        let res = app
            .http
            .get(app.url("/userinfo"))
            .header("authorization", format!("Bearer {}", value.replace('\u{0}', "")))
            .send()
            .await;
        if let Ok(res) = res {
            assert_eq!(res.status(), 401);
        }
    }
    // Repeated parameters at /authorize: an error page, no redirect.
    let res =
        app.http.get(app.url(&format!("/authorize?client_id={0}&client_id={0}", client.id))).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

/// NUL characters name nothing and are stored nowhere (PostgreSQL cannot hold them in text):
/// a 404 or a 400, never a 5xx, on both stores.
#[tokio::test]
async fn nul_characters_in_admin_input_are_refused_cleanly() {
    let app = spawn_app().await;
    for path in ["/admin/clients/a%00b", "/admin/users/a%00b", "/admin/users/a%00b/disable"] {
        assert_eq!(app.admin_get(path).await.status().as_u16() / 100, 4, "{path}");
    }
    assert_eq!(app.admin_post("/admin/users/a%00b/disable", &serde_json::json!({})).await.status(), 404);
    for body in [
        serde_json::json!({"grant_types":["authorization_code"],"redirect_uris":["https://a.example/cb\u{0}"]}),
        serde_json::json!({"audience":["https://api.example/\u{0}"]}),
        serde_json::json!({"client_name":"a\u{0}b"}),
    ] {
        assert_eq!(app.admin_post("/admin/clients", &body).await.status(), 400, "{body}");
    }
    let res = app
        .admin_post("/admin/users", &serde_json::json!({"username":"a\u{0}b","password":"long enough password"}))
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.admin_post("/admin/revocations", &serde_json::json!({"user_id":"a\u{0}"})).await.status(), 404);
    let client = app.jwt_client().await;
    let res = app
        .post_form(
            "/token",
            None,
            &[("grant_type", "client_credentials"), ("client_id", "a\u{0}"), ("client_secret", "x")],
        )
        .await;
    assert_eq!(res.status(), 400);
    let basic = tessera_test_support::basic("a\u{0}", &client.secret);
    let res = app
        .http
        .post(app.url("/token"))
        .header("authorization", basic)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// Retention under constant load with a fixed clock: each simulated hour issues opaque and JWT
/// tokens, signs a user in, refreshes and revokes; the janitor's purge keeps every table
/// bounded, and what it keeps still works.
#[tokio::test]
async fn retention_keeps_tables_bounded_under_constant_load() {
    // Two-hour grants and sessions, so that every kind of row expires within the run.
    let app = tessera_test_support::spawn_app_with(tessera_test_support::T0, |c| {
        c.refresh_token_ttl = 7200;
        c.refresh_token_idle_ttl = 7200;
        c.session_ttl = 7200;
    })
    .await;
    app.create_user("alice").await;
    let opaque = app.opaque_client().await;
    let code = app.code_client(serde_json::json!({"first_party": true})).await;
    let mut history = Vec::new();
    for hour in 0..40 {
        for _ in 0..20 {
            let token = app.access_token(&opaque).await;
            if hour % 3 == 0 {
                app.revoke(&opaque, &token).await;
            }
        }
        let mut browser = tessera_test_support::Browser::new(&app);
        let redirect = browser.authorize(&tessera_test_support::code_request(&code.id, "openid"), "alice").await;
        let tokens: Value = app
            .redeem(&code, &tessera_test_support::query_param(&redirect, "code").unwrap())
            .await
            .json()
            .await
            .unwrap();
        let refreshed = app.refresh(&code, tokens["refresh_token"].as_str().unwrap()).await;
        assert_eq!(refreshed.status(), 200);
        app.clock.advance(3600);
        app.state.store.purge_expired(app.clock.now_secs()).await.unwrap();
        let mut counts = Vec::new();
        for table in [
            "opaque_tokens",
            "grant_jwts",
            "authorization_codes",
            "auth_requests",
            "grants",
            "refresh_tokens",
            "sessions",
        ] {
            counts.push((table, app.state.store.count_rows(table).await.unwrap()));
        }
        history.push(counts);
    }
    // Everything older than lifetime + one day is gone: about 25 hours of rows remain, not 40.
    let last = history.last().unwrap();
    let opaque_rows = last.iter().find(|(t, _)| *t == "opaque_tokens").unwrap().1;
    assert!(opaque_rows <= 26 * 20, "{last:?}");
    let settled = &history[30];
    for ((table, now), (_, then)) in last.iter().zip(settled.iter()) {
        assert!(now <= then, "{table} keeps growing: {then} → {now}");
    }
    // A token from this hour still introspects.
    let token = app.access_token(&opaque).await;
    assert_eq!(app.introspect(&opaque, &token).await.json::<Value>().await.unwrap()["active"], true);
}

/// Observability: every answer carries a request id (a proxy's plain one is kept, anything else
/// replaced), and `/metrics` counts requests by route pattern, tokens by grant and format,
/// revocations and cache use — on the admin listener, and on the public one for loopback peers
/// that did not come through a proxy.
#[tokio::test]
async fn request_ids_and_prometheus_metrics() {
    let app = tessera_test_support::spawn_app().await;
    let client = app.jwt_client().await;
    let token = app.access_token(&client).await;
    assert_eq!(app.introspect(&client, &token).await.status(), 200);
    assert_eq!(app.introspect(&client, &token).await.status(), 200);
    assert_eq!(app.revoke(&client, &token).await.status(), 200);

    let res = app.http.get(app.url("/jwks.json")).header("x-request-id", "req-42.a").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-42.a");
    let res = app.http.get(app.url("/jwks.json")).header("x-request-id", "bad id\twith spaces").send().await.unwrap();
    let fresh = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(fresh.len() >= 16 && !fresh.contains(' '), "{fresh}");
    let other = app.http.get(app.url("/jwks.json")).send().await.unwrap();
    assert_ne!(other.headers()["x-request-id"], fresh.as_str(), "a fresh id per request");

    let res = app.http.get(app.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    for needle in [
        r#"tessera_http_requests_total{listener="public",endpoint="/token",status="200"}"#,
        r#"tessera_http_requests_total{listener="public",endpoint="/introspect",status="200"}"#,
        r#"tessera_http_request_duration_seconds_bucket{listener="public",endpoint="/token",le="0.25"}"#,
        r#"tessera_tokens_issued_total{grant="client_credentials",format="jwt"}"#,
        r#"tessera_revocations_total{kind="access_token"}"#,
        r#"tessera_cache_total{cache="active_tokens",outcome="hit"}"#,
        "tessera_revocation_feed_head",
        r#"tessera_db_pool_connections{state="open"}"#,
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    assert!(!text.contains(&token), "no token in metrics");
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200, "loopback peers may scrape the public listener");
    let res = app.http.get(app.url("/metrics")).header("x-forwarded-for", "203.0.113.7").send().await.unwrap();
    assert_eq!(res.status(), 403, "not through a proxy");
}
