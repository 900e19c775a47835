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
