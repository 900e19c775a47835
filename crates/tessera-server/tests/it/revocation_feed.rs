//! The revocation feed (`GET /revocations`, `GET /revocations/stream`): every kind of
//! revocation appears, in order, written with the revocation itself; only resource servers
//! read it; a stream delivers a revocation within one second and resumes after `Last-Event-ID`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_test_support::{Browser, SseReader, TestApp, TestClient, basic, code_request, query_param, spawn_app};

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

async fn feed(app: &TestApp, reader: &TestClient, after: u64) -> Value {
    let url = format!("{}?after={after}", app.url("/revocations"));
    let res = app.http.get(url).header("authorization", basic(&reader.id, &reader.secret)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    body(res).await
}

fn events(page: &Value) -> Vec<(String, String)> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["value"].as_str().unwrap().to_owned()))
        .collect()
}

/// A resource server for the audiences of every client these tests revoke from (the issuer is
/// the default audience): the feed shows a reader only its audiences' events.
async fn resource_server(app: &TestApp) -> TestClient {
    app.create_client(
        json!({"client_name":"api","introspection":true,"audience":["https://api.example.test", app.issuer]}),
    )
    .await
}

#[tokio::test]
async fn only_resource_servers_read_the_feed() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/revocations")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let ordinary = app.jwt_client().await;
    let res = app
        .http
        .get(app.url("/revocations"))
        .header("authorization", basic(&ordinary.id, &ordinary.secret))
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), body(res).await["error"].clone()), (400, json!("unauthorized_client")));
    let reader = resource_server(&app).await;
    assert_eq!(feed(&app, &reader, 0).await, json!({"events": [], "last": 0, "more": false}));
    let res = app
        .http
        .get(app.url("/revocations/stream"))
        .header("authorization", basic(&ordinary.id, &ordinary.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn every_revocation_reaches_the_feed_in_order() {
    let app = spawn_app().await;
    let reader = resource_server(&app).await;
    let now = app.clock.now_secs();

    // One token: a JWT and an opaque token revoked by their client (RFC 7009).
    let jwt_client = app.jwt_client().await;
    let jwt = app.access_token(&jwt_client).await;
    let jti = tessera_test_support::jwt_claims(&jwt)["jti"].as_str().unwrap().to_owned();
    app.revoke(&jwt_client, &jwt).await;
    let opaque_client = app.opaque_client().await;
    let opaque = app.access_token(&opaque_client).await;
    app.revoke(&opaque_client, &opaque).await;
    let page = feed(&app, &reader, 0).await;
    let got = events(&page);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], ("jti".to_owned(), jti));
    assert_eq!(page["events"][0]["exp"], now + 600);
    assert_eq!(got[1].0, "jti");
    // Revoking again adds nothing.
    app.revoke(&jwt_client, &jwt).await;
    let last = page["last"].as_u64().unwrap();
    assert_eq!(events(&feed(&app, &reader, last).await), vec![]);

    // A user signed in: sign out everywhere revokes the session's tokens by jti, and a cut-off
    // by user; a session revocation by session; a client-wide one by client.
    let user = app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&client.id, "openid offline_access"), "alice").await;
    let tokens = body(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await).await;
    let claims = tessera_test_support::jwt_claims(tokens["access_token"].as_str().unwrap());
    let sid = claims["sid"].as_str().expect("access tokens of a grant carry sid").to_owned();
    let res = app.admin_post("/admin/revocations", &json!({"session_id": sid})).await;
    assert!(res.status().is_success());
    let page = feed(&app, &reader, last).await;
    assert_eq!(
        events(&page),
        vec![("jti".to_owned(), claims["jti"].as_str().unwrap().to_owned()), ("session".to_owned(), sid.clone())]
    );
    let last = page["last"].as_u64().unwrap();
    app.admin_post("/admin/revocations", &json!({"user_id": user})).await;
    app.admin_post("/admin/revocations", &json!({"client_id": jwt_client.id})).await;
    app.admin_delete(&format!("/admin/clients/{}", opaque_client.id)).await;
    app.admin_delete(&format!("/admin/users/{user}")).await;
    let page = feed(&app, &reader, last).await;
    assert_eq!(
        events(&page),
        vec![
            ("user".to_owned(), user.clone()),
            ("client".to_owned(), jwt_client.id.clone()),
            ("client".to_owned(), opaque_client.id.clone()),
            ("user".to_owned(), user.clone()),
        ]
    );
    let seqs: Vec<u64> = page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(page["events"].as_array().unwrap().iter().all(|e| e["at"] == now && e["exp"] == now + 86_400));
}

async fn open_stream(app: &TestApp, reader: &TestClient, last_event_id: Option<&str>) -> SseReader {
    let mut request =
        app.http.get(app.url("/revocations/stream")).header("authorization", basic(&reader.id, &reader.secret));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let res = request.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    SseReader::new(res)
}

// JW-21 at the feed: a revocation reaches an open stream within one second (measured).
#[tokio::test]
async fn a_stream_delivers_a_revocation_within_a_second_and_resumes_after_the_last_event() {
    let app = spawn_app().await;
    let reader = resource_server(&app).await;
    let client = app.jwt_client().await;
    let mut stream = open_stream(&app, &reader, None).await;
    let ready = stream.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!((ready.event.as_deref(), ready.data.as_str()), (Some("caught-up"), "0"));
    let mut slowest = Duration::ZERO;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let token = app.access_token(&client).await;
        let jti = tessera_test_support::jwt_claims(&token)["jti"].as_str().unwrap().to_owned();
        let revoked = Instant::now();
        assert_eq!(app.revoke(&client, &token).await.status(), 200);
        let event = stream.next(Duration::from_secs(2)).await.expect("an event within two seconds");
        slowest = slowest.max(revoked.elapsed());
        assert_eq!(event.event.as_deref(), Some("revocation"));
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!((data["kind"].as_str(), data["value"].as_str()), (Some("jti"), Some(jti.as_str())));
        assert_eq!(event.id.as_deref(), Some(data["seq"].to_string().as_str()));
        ids.push(event.id.unwrap());
    }
    assert!(slowest < Duration::from_secs(1), "slowest delivery {slowest:?}");
    println!("revocation → stream: slowest of 3 deliveries {slowest:?}");
    // Reconnecting with Last-Event-ID gets exactly what came after it, then caught-up.
    let mut resumed = open_stream(&app, &reader, Some(&ids[0])).await;
    for expected in &ids[1..] {
        assert_eq!(resumed.next(Duration::from_secs(5)).await.unwrap().id.as_ref(), Some(expected));
    }
    let ready = resumed.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!((ready.event.as_deref(), ready.data.as_str()), (Some("caught-up"), ids[2].as_str()));
    // A Last-Event-ID that is no position is refused.
    let res = app
        .http
        .get(app.url("/revocations/stream"))
        .header("authorization", basic(&reader.id, &reader.secret))
        .header("last-event-id", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
