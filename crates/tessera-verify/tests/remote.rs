//! `RemoteVerifier` and `VerifyLayer` against a real Tessera server on loopback: an axum API
//! behind the layer admits only valid, unrevoked, sufficiently scoped tokens; a revocation at
//! the server is refused by the API within one second; unknown `kid`s cannot make the verifier
//! hammer the issuer (SECURITY-TESTS.md JW-17); a lost revocation feed fails closed.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use tessera_test_support::{DpopKey, TestApp, TestClient, spawn_app_at, wall_clock_now};
use tessera_verify::Claims;
use tessera_verify::layer::VerifyLayer;
use tessera_verify::remote::{RemoteError, RemoteVerifier};

const API: &str = "https://api.example.test";

/// An API whose one route answers with the verified subject, behind `layer`; its URL.
async fn api(layer: VerifyLayer) -> String {
    async fn whoami(Extension(claims): Extension<Claims>) -> String {
        claims.sub
    }
    let router = Router::new().route("/whoami", get(whoami).post(whoami)).layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

async fn setup(app: &TestApp) -> (TestClient, RemoteVerifier) {
    let reader = app.create_client(json!({"client_name":"api","introspection":true,"audience":[API]})).await;
    let verifier =
        RemoteVerifier::builder(&app.issuer, API).revocation_feed(&reader.id, &reader.secret).build().await.unwrap();
    (reader, verifier)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_admits_only_valid_unrevoked_scoped_tokens_and_revocation_arrives_within_a_second() {
    let app = spawn_app_at(wall_clock_now()).await;
    let (_, verifier) = setup(&app).await;
    let url = api(VerifyLayer::new(verifier.clone()).require_scope("read")).await;
    let client = app.create_client(json!({"scope":"read write","audience":[API]})).await;
    let narrow = app.create_client(json!({"scope":"write","audience":[API]})).await;
    let elsewhere = app.create_client(json!({"scope":"read"})).await;
    let http = reqwest::Client::new();
    let call = |authorization: Option<String>| {
        let mut request = http.get(format!("{url}/whoami"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move {
            let res = request.send().await.unwrap();
            let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            (res.status().as_u16(), challenge, res.text().await.unwrap())
        }
    };

    let token = app.access_token(&client).await;
    let (status, _, body) = call(Some(format!("Bearer {token}"))).await;
    assert_eq!((status, body.as_str()), (200, client.id.as_str()));
    let (status, _, _) = call(Some(format!("bEARER {token}"))).await;
    assert_eq!(status, 200, "the scheme is case-insensitive");
    let (status, challenge, _) = call(None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer realm=\"api\"")));
    let (status, challenge, _) = call(Some("Bearer not-a-token".into())).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    let (status, _, _) = call(Some(format!("Bearer {}", app.access_token(&elsewhere).await))).await;
    assert_eq!(status, 401, "a token for another audience");
    let (status, challenge, _) = call(Some(format!("Bearer {}", app.access_token(&narrow).await))).await;
    assert_eq!(status, 403);
    assert!(challenge.unwrap().contains("error=\"insufficient_scope\""));
    // A token in the query string, and two Authorization headers, are refused outright.
    let res = http.get(format!("{url}/whoami?access_token={token}")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = http
        .get(format!("{url}/whoami"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Revoked at the server: refused by the API within a second (measured), though it was
    // verified and cached before.
    let revoked = Instant::now();
    assert_eq!(app.revoke(&client, &token).await.status(), 200);
    loop {
        let (status, _, _) = call(Some(format!("Bearer {token}"))).await;
        if status == 401 {
            break;
        }
        assert!(revoked.elapsed() < Duration::from_secs(1), "still accepted after {:?}", revoked.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("revocation → API refusal: {:?}", revoked.elapsed());
    // A client-wide revocation (a cut-off) reaches it too.
    let second = app.access_token(&client).await;
    assert_eq!(call(Some(format!("Bearer {second}"))).await.0, 200);
    app.admin_post("/admin/revocations", &json!({"client_id": client.id})).await;
    let cut = Instant::now();
    while call(Some(format!("Bearer {second}"))).await.0 != 401 {
        assert!(cut.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_bound_tokens_need_their_proof_at_the_api() {
    let app = spawn_app_at(wall_clock_now()).await;
    let (_, verifier) = setup(&app).await;
    let url = api(VerifyLayer::new(verifier).public_origin("https://api.example.test")).await;
    let client = app.create_client(json!({"scope":"read","audience":[API]})).await;
    let key = DpopKey::default();
    let res = app
        .post_dpop("/token", &client, &[("grant_type", "client_credentials")], &[&app.dpop_proof(&key, "/token")])
        .await;
    let token = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let now = wall_clock_now();
    let proof = key.proof("GET", "https://api.example.test/whoami", now, Some(&token));
    let send = |scheme: &str, proofs: Vec<String>| {
        let mut request = http.get(format!("{url}/whoami")).header("authorization", format!("{scheme} {token}"));
        for p in proofs {
            request = request.header("dpop", p);
        }
        async move {
            let res = request.send().await.unwrap();
            (res.status().as_u16(), res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()))
        }
    };
    assert_eq!(send("DPoP", vec![proof.clone()]).await.0, 200);
    let (status, challenge) = send("DPoP", vec![proof]).await;
    assert_eq!(status, 401, "a replayed proof");
    assert!(challenge.unwrap().contains("invalid_dpop_proof"));
    let (status, challenge) = send("Bearer", vec![]).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().starts_with("DPoP "), "a bound token as a bearer token gets a DPoP challenge");
    let wrong_url = key.proof("GET", "https://api.example.test/other", now, Some(&token));
    assert_eq!(send("DPoP", vec![wrong_url]).await.0, 401);
    let other_key = DpopKey::default().proof("GET", "https://api.example.test/whoami", now, Some(&token));
    assert_eq!(send("DPoP", vec![other_key]).await.0, 401);
}

/// JW-17: 1 000 tokens with random `kid`s cause at most one key fetch per refetch interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_cannot_make_the_verifier_hammer_the_issuer() {
    let app = spawn_app_at(wall_clock_now()).await;
    // An issuer whose JWKS (the real server's keys) counts its fetches.
    let fetches = Arc::new(AtomicUsize::new(0));
    let jwks = app.url("/jwks.json");
    let counted = fetches.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let metadata = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json")});
    let router = Router::new()
        .route("/.well-known/oauth-authorization-server", get(move || async move { axum::Json(metadata) }))
        .route(
            "/jwks.json",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                async move { reqwest::get(jwks).await.unwrap().text().await.unwrap() }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let verifier = RemoteVerifier::builder(&issuer, API).build().await.unwrap();
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = wall_clock_now();
    let started = Instant::now();
    for i in 0..1000 {
        let header = json!({"alg":"ES256","typ":"at+jwt","kid":format!("random-{i}")});
        let claims =
            json!({"iss":issuer,"sub":"x","aud":API,"client_id":"x","jti":format!("j{i}"),"iat":now,"exp":now+60});
        let token = format!("{}.{}.{}", b64(&header), b64(&claims), "A".repeat(86));
        let err = verifier.verify(&token, tessera_proto::UnixTime(now)).await.unwrap_err();
        assert_eq!(err, RemoteError::Invalid(tessera_verify::VerifyError::UnknownKey));
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(fetches.load(Ordering::SeqCst) <= 2, "{} fetches", fetches.load(Ordering::SeqCst));
}

/// A revocation feed that is gone fails closed: tokens are refused as unjudgeable (503 at the
/// layer), never accepted on stale revocation data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_revocation_feed_fails_closed() {
    let app = spawn_app_at(wall_clock_now()).await;
    let reader = app.create_client(json!({"introspection":true,"audience":[API]})).await;
    let verifier = RemoteVerifier::builder(&app.issuer, API)
        .revocation_feed(&reader.id, &reader.secret)
        .max_feed_outage(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let url = api(VerifyLayer::new(verifier.clone())).await;
    let client = app.create_client(json!({"scope":"read","audience":[API]})).await;
    let token = app.access_token(&client).await;
    let http = reqwest::Client::new();
    let status = || http.get(format!("{url}/whoami")).bearer_auth(&token).send();
    assert_eq!(status().await.unwrap().status(), 200);
    drop(app);
    let lost = Instant::now();
    loop {
        let res = status().await.unwrap();
        if res.status() == 503 {
            assert_eq!(res.headers()["retry-after"], "1");
            break;
        }
        assert_eq!(res.status(), 200);
        assert!(lost.elapsed() < Duration::from_secs(5), "the lost feed was not noticed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!verifier.is_current());
}

/// API keys in an embedded API: introspected once as the feed's client, the JWT they stand for
/// verified and cached; refused where not enabled, in a URL, when revoked (within a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_accepted_when_enabled_and_revoked_within_a_second() {
    let app = spawn_app_at(wall_clock_now()).await;
    let reader = app.create_client(json!({"client_name":"api","introspection":true,"audience":[API]})).await;
    let verifier = RemoteVerifier::builder(&app.issuer, API)
        .revocation_feed(&reader.id, &reader.secret)
        .api_keys()
        .build()
        .await
        .unwrap();
    assert!(matches!(
        RemoteVerifier::builder(&app.issuer, API).api_keys().build().await,
        Err(RemoteError::Unavailable(_))
    ));
    let owner = app.create_client(json!({"scope":"read","audience":[API]})).await;
    let res = app.admin_post("/admin/api-keys", &json!({"client_id": owner.id, "name": "ci"})).await;
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let now = tessera_proto::UnixTime(wall_clock_now());
    let claims = verifier.verify_api_key(&key, now).await.unwrap();
    assert_eq!(
        (claims.client_id.as_str(), claims.sub.as_str(), claims.jti.as_str()),
        (id.as_str(), owner.id.as_str(), id.as_str())
    );
    assert!(matches!(
        verifier.verify_api_key(&key[..71], now).await,
        Err(RemoteError::Invalid(tessera_verify::VerifyError::Inactive))
    ));

    let url = api(VerifyLayer::new(verifier.clone()).require_scope("read")).await;
    let plain = api(VerifyLayer::new(setup(&app).await.1)).await;
    let http = reqwest::Client::new();
    let call = |base: String, path: String| {
        let request = http.get(format!("{base}{path}")).header("authorization", format!("Bearer {key}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call(url.clone(), "/whoami".into()).await, 200);
    assert_eq!(call(plain, "/whoami".into()).await, 401, "API keys not enabled there");
    assert_eq!(call(url.clone(), format!("/whoami?key={key}")).await, 401, "never in a URL");

    assert_eq!(app.admin_delete(&format!("/admin/api-keys/{id}")).await.status(), 204);
    let revoked = Instant::now();
    while call(url.clone(), "/whoami".into()).await != 401 {
        assert!(revoked.elapsed() < Duration::from_secs(1), "still admitted after {:?}", revoked.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Regression: #23. Junk API keys each made the verifier introspect at the issuer, without bound.
// With `ClientAddress` set by the embedding service, one address gets a bounded number of
// unknown-key lookups; a known key from elsewhere is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_api_keys_are_bounded_per_client_address() {
    use axum::extract::{ConnectInfo, Request};
    use axum::middleware::Next;
    use tessera_verify::layer::{ClientAddress, UNKNOWN_KEY_LOOKUPS};
    let app = spawn_app_at(wall_clock_now()).await;
    let reader = app.create_client(json!({"client_name":"api","introspection":true,"audience":[API]})).await;
    let verifier = RemoteVerifier::builder(&app.issuer, API)
        .revocation_feed(&reader.id, &reader.secret)
        .api_keys()
        .build()
        .await
        .unwrap();
    let owner = app.create_client(json!({"scope":"read","audience":[API]})).await;
    let created: Value =
        app.admin_post("/admin/api-keys", &json!({"client_id": owner.id, "name": "ci"})).await.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();

    async fn whoami(Extension(claims): Extension<Claims>) -> String {
        claims.sub
    }
    async fn address(
        ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
        mut request: Request,
        next: Next,
    ) -> axum::response::Response {
        request.extensions_mut().insert(ClientAddress(peer.ip()));
        next.run(request).await
    }
    let router = Router::new()
        .route("/whoami", get(whoami))
        .layer(VerifyLayer::new(verifier))
        .layer(axum::middleware::from_fn(address));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/whoami", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap()
    });
    let from = |source: &str| {
        reqwest::Client::builder().local_address(source.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
    };
    let attacker = from("127.0.0.2");
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..60 {
        let junk = format!("tessera_sak_{i:04}{}", "A".repeat(56));
        let status = attacker.get(&url).bearer_auth(junk).send().await.unwrap().status().as_u16();
        *statuses.entry(status).or_default() += 1;
    }
    let looked_up = statuses.get(&401).copied().unwrap_or(0);
    assert!(looked_up >= UNKNOWN_KEY_LOOKUPS as usize && looked_up <= UNKNOWN_KEY_LOOKUPS as usize + 5, "{statuses:?}");
    assert_eq!(looked_up + statuses.get(&429).copied().unwrap_or(0), 60, "{statuses:?}");
    let res = from("127.0.0.3").get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

// Regression: #23. Discovery and key-set fetches followed redirects and read bodies without a
// cap: whoever answered at the issuer's URL could send the verifier elsewhere or exhaust memory.
#[tokio::test]
async fn discovery_follows_no_redirect_and_reads_a_bounded_body() {
    let serve = |router: Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    };
    // An issuer whose metadata URL redirects to a (working) issuer elsewhere.
    let app = spawn_app_at(wall_clock_now()).await;
    let target = app.url("/.well-known/oauth-authorization-server");
    let redirecting = serve(Router::new().fallback(move || {
        let target = target.clone();
        async move { axum::response::Redirect::temporary(&target) }
    }))
    .await;
    assert!(matches!(RemoteVerifier::builder(&redirecting, API).build().await, Err(RemoteError::Unavailable(_))));
    // An issuer whose metadata is 4 MiB of JSON whitespace.
    let huge = serve(Router::new().fallback(|| async { format!("{{{}}}", " ".repeat(4 << 20)) })).await;
    let Err(RemoteError::Unavailable(why)) = RemoteVerifier::builder(&huge, API).build().await else {
        panic!("a 4 MiB document was accepted")
    };
    assert!(why.contains("larger than"), "{why}");
}
