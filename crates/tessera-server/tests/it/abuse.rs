//! Abuse controls (SECURITY-TESTS.md BF-01, BF-02, BF-03, RT-14): client-secret brute force is
//! throttled per client id and per address alike for known and unknown clients; token scanning
//! at introspection is throttled; repeated wrong passwords lock the username out with backoff
//! (the right password is refused meanwhile, known and unknown usernames alike), and a lockout
//! also stops codes and refresh tokens issued before it.

use serde_json::{Value, json};
use tessera_test_support::{
    Browser, CHALLENGE, PASSWORD, T0, TestApp, basic, code_request, location, query_param, spawn_app, spawn_app_with,
};

async fn token_with_secret(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .header("authorization", basic(id, secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// Statuses of `n` attempts with a wrong secret for client `id`.
async fn brute_force(app: &TestApp, id: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        statuses.push(token_with_secret(app, id, &format!("tcs_guess{i}")).await.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn client_secret_guessing_is_throttled_per_client_and_per_address_alike_for_unknown_clients() {
    let allow = |c: &mut tessera_server::config::Config| c.auth_failure_allowance = 10;
    let known_app = spawn_app_with(T0, allow).await;
    let client = known_app.jwt_client().await;
    let other = known_app.jwt_client().await;
    let known = brute_force(&known_app, &client.id, 14).await;
    assert_eq!(&known[..10], &[401; 10], "{known:?}");
    assert_eq!(&known[10..], &[429; 4], "{known:?}");
    // Blocked before anything is checked: the right secret too, and with Retry-After.
    let res = token_with_secret(&known_app, &client.id, &client.secret).await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    // The address is throttled too: another client from it.
    assert_eq!(token_with_secret(&known_app, &other.id, &other.secret).await.status(), 429);

    // An unknown client id gets exactly the same answers (no enumeration).
    let unknown_app = spawn_app_with(T0, allow).await;
    assert_eq!(brute_force(&unknown_app, "no-such-client", 14).await, known);
}

#[tokio::test]
async fn token_scanning_at_introspection_is_throttled() {
    let app = spawn_app().await;
    // A client that is no resource server (#23: a resource server's callers present unknown
    // tokens legitimately; attacks::a_resource_server_introspecting_unknown_tokens_is_not_throttled).
    let rs = app.jwt_client().await;
    let mut statuses = Vec::new();
    for i in 0..150 {
        let res = app.introspect(&rs, &format!("tat_random{i:04}")).await;
        let status = res.status().as_u16();
        if status == 200 {
            assert_eq!(res.json::<Value>().await.unwrap(), json!({"active": false}));
        } else {
            assert!(res.headers().contains_key("retry-after"));
        }
        statuses.push(status);
    }
    assert!(statuses[..100].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[100..].contains(&429), "a scan is throttled: {statuses:?}");
    let res = app.http.post(app.url("/introspect")).form(&[("token", "tat_x")]).send().await.unwrap();
    assert_eq!(res.status(), 401, "RFC 7662: the caller must authenticate");
}

/// The login page of a fresh authorization request.
async fn login_page(app: &TestApp, browser: &mut Browser<'_>, client_id: &str) -> String {
    let url =
        reqwest::Url::parse_with_params(&app.url("/authorize"), &code_request(client_id, "openid offline_access"))
            .unwrap();
    let res = browser.get(url.as_str()).await;
    location(&res).unwrap()
}

// Regression: #23. A lockout protects, never punishes: five wrong passwords for a known username
// used to log that person out everywhere (their refresh tokens refused), renewable once an hour.
#[tokio::test]
async fn a_lockout_refuses_passwords_and_grants_made_during_it_but_not_earlier_sessions() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    // Before the attack: alice holds a refresh token, and has a code not yet redeemed.
    let mut alice = Browser::new(&app);
    let redirect = alice.authorize(&code_request(&client.id, "openid offline_access"), "alice").await;
    let tokens: Value = app.redeem(&client, &query_param(&redirect, "code").unwrap()).await.json().await.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let mut second = Browser::new(&app);
    let redirect = second.authorize(&code_request(&client.id, "openid offline_access"), "alice").await;
    let pending_code = query_param(&redirect, "code").unwrap();
    assert_eq!(CHALLENGE.len(), 43);
    app.clock.advance(1);

    // An attacker guesses: 5 failures lock the username; then even the right password is refused.
    let mut attacker = Browser::new(&app);
    for i in 0..5 {
        let login = login_page(&app, &mut attacker, &client.id).await;
        let res = attacker.login(&login, "alice", &format!("guess {i}")).await;
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    let login = login_page(&app, &mut attacker, &client.id).await;
    let res = attacker.login(&login, "alice", PASSWORD).await;
    assert_eq!(res.status(), 429, "locked: the right password is refused");
    assert_eq!(res.headers()["retry-after"], "30");
    // What alice had before the first wrong guess keeps working during the lock.
    let res = app.redeem(&client, &pending_code).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = app.refresh(&client, &refresh_token).await;
    assert_eq!(res.status(), 200);
    let refresh_token = res.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_owned();
    // RT-14: a grant created during the streak (here through a browser session, without a
    // password) cannot be finished while the lock lasts.
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &code_request(&client.id, "openid")).unwrap();
    let during = second.follow_authorization(url.as_str(), "alice").await;
    let res = app.redeem(&client, &query_param(&during, "code").unwrap()).await;
    assert_eq!(
        (res.status().as_u16(), res.json::<Value>().await.unwrap()["error"].clone()),
        (400, json!("invalid_grant"))
    );

    // Each further failure after the lock doubles it.
    app.clock.advance(31);
    let login = login_page(&app, &mut attacker, &client.id).await;
    assert_eq!(attacker.login(&login, "alice", "guess 5").await.status(), 401);
    let login = login_page(&app, &mut attacker, &client.id).await;
    let res = attacker.login(&login, "alice", PASSWORD).await;
    assert_eq!(
        (res.status(), res.headers()["retry-after"].to_str().unwrap()),
        (reqwest::StatusCode::TOO_MANY_REQUESTS, "60")
    );

    // After the lock: the right password signs in (and resets the count); the refresh token works.
    app.clock.advance(61);
    let login = login_page(&app, &mut attacker, &client.id).await;
    assert_eq!(attacker.login(&login, "alice", PASSWORD).await.status(), 303);
    assert_eq!(app.refresh(&client, &refresh_token).await.status(), 200);

    // An unknown username is locked the same way (a lock reveals nothing).
    let mut stranger = Browser::new(&app);
    for i in 0..5 {
        let login = login_page(&app, &mut stranger, &client.id).await;
        assert_eq!(stranger.login(&login, "mallory", &format!("guess {i}")).await.status(), 401);
    }
    let login = login_page(&app, &mut stranger, &client.id).await;
    let res = stranger.login(&login, "mallory", PASSWORD).await;
    assert_eq!(
        (res.status(), res.headers()["retry-after"].to_str().unwrap()),
        (reqwest::StatusCode::TOO_MANY_REQUESTS, "30")
    );
}

/// A browser whose requests come from `source` and carry `X-Forwarded-For: forwarded_for`.
fn browser_from<'a>(app: &TestApp, source: &str, forwarded_for: &str) -> Browser<'a> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", forwarded_for.parse().unwrap());
    let http = reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Browser::with(&app.url(""), http)
}

// Regression: #23 (T-07). The login throttle keyed on the peer address: behind a proxy every
// person has the proxy's, so 20 typos by one locked everyone out. From `trusted_proxies` it
// keys on the forwarded client address; from anyone else, `X-Forwarded-For` changes nothing.
#[tokio::test]
async fn behind_a_trusted_proxy_the_login_throttle_is_per_person_not_per_proxy() {
    let app = spawn_app_with(T0, |c| c.trusted_proxies = vec!["127.0.0.9/32".parse().unwrap()]).await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    // Through the proxy, an attacker guesses passwords of many usernames (so no username's own
    // lock is what stops it) until the address allowance (20 per 30 s) is spent.
    let mut attacker = browser_from(&app, "127.0.0.9", "198.51.100.7");
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..22 {
        let login = login_page(&app, &mut attacker, &client.id).await;
        *statuses.entry(attacker.login(&login, &format!("user{i}"), "guess").await.status().as_u16()).or_default() += 1;
    }
    assert_eq!(statuses.get(&429), Some(&2), "the attacker is throttled after 20: {statuses:?}");
    // Alice, behind the same proxy, signs in.
    let mut alice = browser_from(&app, "127.0.0.9", "198.51.100.8");
    let login = login_page(&app, &mut alice, &client.id).await;
    assert_eq!(
        alice.login(&login, "alice", PASSWORD).await.status(),
        303,
        "the proxy's other users are not locked out"
    );
    // Not a trusted proxy: a new X-Forwarded-For per attempt does not escape the address's allowance.
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..22 {
        let mut spoofer = browser_from(&app, "127.0.0.4", &format!("203.0.113.{i}"));
        let login = login_page(&app, &mut spoofer, &client.id).await;
        *statuses.entry(spoofer.login(&login, &format!("user{i}"), "guess").await.status().as_u16()).or_default() += 1;
    }
    assert_eq!(statuses.get(&429), Some(&2), "the spoofer's own address is throttled: {statuses:?}");
}

#[tokio::test]
async fn request_rates_are_limited_per_client_and_per_address() {
    let app = spawn_app_with(T0, |c| c.rate_limit_per_client = 5).await;
    let client = app.jwt_client().await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(app.client_credentials(&client).await.status().as_u16());
    }
    assert!(statuses[..10].iter().all(|s| *s == 200), "a burst of twice the rate passes: {statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    // #23: requests that authenticate no confidential client (here a public client, which
    // anyone can name) spend their address's budget; an authenticated client spends only its own.
    let other = spawn_app_with(T0, |c| c.rate_limit_per_ip = 5).await;
    let client = other.jwt_client().await;
    for _ in 0..20 {
        assert_eq!(other.client_credentials(&client).await.status(), 200);
    }
    let public = other.code_client(json!({"token_endpoint_auth_method": "none"})).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let form = [("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", public.id.as_str())];
        statuses.push(other.post_form("/token", None, &form).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}
