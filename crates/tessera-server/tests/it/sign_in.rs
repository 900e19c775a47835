//! The central story over real HTTP: a user signs in through `/authorize`, login and consent;
//! the client redeems the code for an access token, an ID token and a refresh token; uses
//! `/userinfo`; refreshes; and the user sees the session on `/account` and signs out everywhere.

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_test_support::{
    Browser, CHALLENGE, PASSWORD, REDIRECT_URI, T0, code_request, hidden_field, location, query_param, spawn_app,
    spawn_app_with,
};

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

fn claims(jwt: &str) -> (Value, Value) {
    let mut parts = jwt.split('.');
    let decode = |s: &str| -> Value {
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap()
    };
    let header = decode(parts.next().unwrap());
    (header, decode(parts.next().unwrap()))
}

#[tokio::test]
async fn sign_in_consent_code_tokens_userinfo_refresh_and_sign_out_everywhere() {
    let app = spawn_app().await;
    let user_id = app.create_user("alice").await;
    let client = app.code_client(json!({})).await;
    let mut browser = Browser::new(&app);

    // Authorization request → login page (303), with the browser-binding cookie.
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        &code_request(&client.id, "openid profile email offline_access"),
    )
    .unwrap();
    let res = browser.get(url.as_str()).await;
    assert_eq!(res.status(), 303);
    let login_url = location(&res).unwrap();
    assert!(login_url.starts_with("/login?request="));
    // Page security headers (CJ-01, RF-01).
    let page = browser.get(&login_url).await;
    for (name, expected) in
        [("x-frame-options", "DENY"), ("referrer-policy", "no-referrer"), ("cache-control", "no-store")]
    {
        assert_eq!(page.headers()[name], expected, "{name}");
    }
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("Example App"));
    assert!(!html.contains("http://") && !html.contains("https://"), "no third-party sources or links: {html}");

    // A wrong password: 401, the form again, no session.
    let res = browser.login(&login_url, "alice", "wrong password!").await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("The username or password is wrong."));
    // The right one: 303 (never 307) to consent.
    let res = browser.login(&login_url, "alice", PASSWORD).await;
    assert_eq!(res.status(), 303);
    let set_cookie: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session_cookie = set_cookie.iter().find(|c| c.starts_with("tessera-session=")).unwrap();
    assert!(
        session_cookie.contains("HttpOnly")
            && session_cookie.contains("SameSite=Lax")
            && session_cookie.contains("Path=/")
    );
    assert!(!session_cookie.contains("Domain"));
    let consent_url = location(&res).unwrap();
    assert!(consent_url.starts_with("/consent?request="));
    let consent_res = browser.get(&consent_url).await;
    assert_eq!(consent_res.headers()["x-frame-options"], "DENY");
    assert!(consent_res.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    let consent_page = consent_res.text().await.unwrap();
    assert!(consent_page.contains("See your email address") && consent_page.contains("alice"));
    let res = browser.consent(&consent_url, "allow").await;
    assert_eq!(res.status(), 303);
    let redirect = location(&res).unwrap();
    assert!(redirect.starts_with(REDIRECT_URI));
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("s-123"));
    assert_eq!(query_param(&redirect, "iss").as_deref(), Some(app.issuer.as_str()));
    let code = query_param(&redirect, "code").unwrap();
    assert!(code.starts_with("tac_") && code.len() >= 4 + 43, "256-bit code: {code}");

    // Code → tokens.
    let res = app.redeem(&client, &code).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens = body(res).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("trt_"));
    let (header, id) = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!((header["typ"].as_str(), header["alg"].as_str()), (Some("JWT"), Some("RS256")));
    assert_eq!(id["iss"], app.issuer);
    assert_eq!((id["sub"].as_str(), id["aud"].as_str()), (Some(user_id.as_str()), Some(client.id.as_str())));
    assert_eq!(
        (id["nonce"].as_str(), id["auth_time"].as_u64(), id["iat"].as_u64()),
        (Some("n-456"), Some(T0), Some(T0))
    );
    assert!(id["exp"].as_u64().unwrap() > T0 && id["sid"].is_string());
    let expected_at_hash =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tessera_server::secret::hash(&access)[..16]);
    assert_eq!(id["at_hash"], expected_at_hash);
    let kid = header["kid"].as_str().unwrap();
    let jwks = body(app.jwks().await).await;
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid));

    // The ID token is not an access token (typ JWT, not at+jwt).
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(body(app.introspect(&client, id_token).await).await, json!({"active": false}));
    let res = app.http.get(app.url("/userinfo")).bearer_auth(id_token).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // Userinfo by scope, GET and POST.
    let res = app.http.get(app.url("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let info = body(res).await;
    assert_eq!(
        info,
        json!({"sub": user_id, "preferred_username": "alice", "name": "alice", "email": "alice@example.com", "email_verified": true})
    );
    let res = app.http.post(app.url("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));

    // Refresh: a new access token and a new refresh token; the ID token keeps sub and auth_time.
    app.clock.advance(60);
    let res = app.refresh(&client, &refresh).await;
    assert_eq!(res.status(), 200);
    let refreshed = body(res).await;
    let refresh2 = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh);
    let (_, id2) = claims(refreshed["id_token"].as_str().unwrap());
    assert_eq!((id2["sub"].clone(), id2["auth_time"].clone()), (id["sub"].clone(), id["auth_time"].clone()));
    assert_eq!(id2["iat"].as_u64(), Some(T0 + 60));
    let access2 = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(body(app.introspect(&client, &access2).await).await["active"], true);
    // Narrower scope allowed, broader refused (RT-09).
    app.clock.advance(60);
    let res = app
        .token(&client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh2), ("scope", "openid admin")])
        .await;
    assert_eq!((res.status().as_u16(), body(res).await["error"].clone()), (400, json!("invalid_scope")));
    let res =
        app.token(&client, &[("grant_type", "refresh_token"), ("refresh_token", &refresh2), ("scope", "openid")]).await;
    assert_eq!(res.status(), 200);
    let narrow = body(res).await;
    assert_eq!(narrow["scope"], "openid");
    let refresh3 = narrow["refresh_token"].as_str().unwrap().to_owned();

    // A second authorization is silent: session and consent are remembered.
    let again = browser.authorize(&code_request(&client.id, "openid email"), "alice").await;
    assert!(query_param(&again, "code").is_some());

    // The account page lists the session with the application and device.
    let res = browser.get("/account").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Example App") && html.contains("TestBrowser") && html.contains("127.0.0.1"), "{html}");
    assert!(html.contains("(this device)"));

    // Sign out all devices: 303 to the login page, cookie cleared, every token inactive.
    let csrf = hidden_field(&html, "csrf_token").unwrap();
    let res = browser.post("/account/sign-out-all", &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).as_deref(), Some("/login"));
    assert!(!browser.cookies.contains_key("tessera-session"));
    for token in [&access, &access2] {
        assert_eq!(body(app.introspect(&client, token).await).await, json!({"active": false}));
    }
    let res = app.refresh(&client, &refresh3).await;
    assert_eq!((res.status().as_u16(), body(res).await["error"].clone()), (400, json!("invalid_grant")));
    assert_eq!(browser.get("/account").await.status(), 303);
}

#[tokio::test]
async fn opaque_access_tokens_die_with_their_session() {
    let app = spawn_app().await;
    app.create_user("bob").await;
    let client = app.code_client(json!({"access_token_format": "opaque", "first_party": true})).await;
    let mut browser = Browser::new(&app);
    // A first-party client skips consent.
    let redirect = browser.authorize(&code_request(&client.id, "openid read"), "bob").await;
    let tokens = body(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(access.starts_with("tat_"));
    let (_, id) = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(body(app.introspect(&client, access).await).await["active"], true);
    // Introspection finds refresh tokens whatever the hint says (IN-03).
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res =
        app.post_form("/introspect", Some(&client), &[("token", refresh), ("token_type_hint", "access_token")]).await;
    let found = body(res).await;
    assert_eq!((found["active"].as_bool(), found["token_type"].as_str()), (Some(true), Some("refresh_token")));

    // The admin API ends the session: tokens are inactive at once.
    let res = app.admin_post("/admin/revocations", &json!({"session_id": id["sid"]})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(res).await, json!({"sessions": 1, "grants": 1}));
    assert_eq!(body(app.introspect(&client, access).await).await, json!({"active": false}));
    assert_eq!(body(app.introspect(&client, refresh).await).await, json!({"active": false}));
    // Signed out: the next authorization asks for a login again.
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &code_request(&client.id, "openid")).unwrap();
    let res = browser.get(url.as_str()).await;
    assert!(location(&res).unwrap().starts_with("/login"));
}

#[tokio::test]
async fn admin_revocation_by_user_and_client_and_password_change() {
    let app = spawn_app().await;
    let carol = app.create_user("carol").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let mut browser = Browser::new(&app);
        let redirect = browser.authorize(&code_request(&client.id, "openid"), "carol").await;
        sessions.push(body(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await).await);
    }
    let res = app.admin_post("/admin/revocations", &json!({"user_id": carol})).await;
    assert_eq!(body(res).await, json!({"sessions": 2, "grants": 2}));
    for tokens in &sessions {
        assert_eq!(
            body(app.introspect(&client, tokens["access_token"].as_str().unwrap()).await).await["active"],
            false
        );
    }

    // Client-wide: client-credentials tokens of the client go too.
    let cc = app.jwt_client().await;
    let token = app.access_token(&cc).await;
    let res = app.admin_post("/admin/revocations", &json!({"client_id": cc.id})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(app.introspect(&cc, &token).await).await["active"], false);
    app.clock.advance(1);
    let fresh = app.access_token(&cc).await;
    assert_eq!(body(app.introspect(&cc, &fresh).await).await["active"], true);

    // A password change revokes the user's sessions.
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&client.id, "openid"), "carol").await;
    let tokens = body(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await).await;
    let res =
        app.admin_post(&format!("/admin/users/{carol}/password"), &json!({"password": "a new long password"})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(body(app.introspect(&client, tokens["access_token"].as_str().unwrap()).await).await["active"], false);
    assert_eq!(browser.get("/account").await.status(), 303);
    let res = app.admin_post(&format!("/admin/users/{carol}/password"), &json!({"password": "short"})).await;
    assert_eq!(res.status(), 400);
    // Bad revocation requests.
    for bad in [json!({}), json!({"user_id": carol, "client_id": cc.id}), json!({"session": "x"})] {
        assert_eq!(app.admin_post("/admin/revocations", &bad).await.status(), 400, "{bad}");
    }
    assert_eq!(app.admin_post("/admin/revocations", &json!({"user_id": "nobody"})).await.status(), 404);
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_hinted_session_and_redirects_only_where_registered() {
    let app = spawn_app().await;
    app.create_user("dave").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let other = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&client.id, "openid"), "dave").await;
    let tokens = body(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await).await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // RU-12: unregistered post_logout_redirect_uri, a hint for another client, a forged hint.
    let bad = [
        vec![("id_token_hint", id_token), ("post_logout_redirect_uri", "https://evil.example/bye")],
        vec![("id_token_hint", id_token), ("client_id", other.id.as_str())],
        vec![
            ("id_token_hint", "eyJhbGciOiJub25lIn0.e30.x"),
            ("post_logout_redirect_uri", "https://client.example.org/bye"),
        ],
        vec![("post_logout_redirect_uri", "https://client.example.org/bye")],
    ];
    for query in bad {
        let url = reqwest::Url::parse_with_params(&app.url("/logout"), &query).unwrap();
        let res = browser.get(url.as_str()).await;
        assert_eq!(res.status(), 400, "{query:?}");
        assert!(location(&res).is_none());
    }
    assert_eq!(body(app.introspect(&client, tokens["access_token"].as_str().unwrap()).await).await["active"], true);

    let url = reqwest::Url::parse_with_params(
        &app.url("/logout"),
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://client.example.org/bye"),
            ("state", "bye-1"),
        ],
    )
    .unwrap();
    let res = browser.get(url.as_str()).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).as_deref(), Some("https://client.example.org/bye?state=bye-1"));
    assert_eq!(body(app.introspect(&client, tokens["access_token"].as_str().unwrap()).await).await["active"], false);
    assert!(!browser.cookies.contains_key("tessera-session"));
}

#[tokio::test]
async fn logout_without_a_hint_asks_the_user_first() {
    let app = spawn_app().await;
    app.create_user("erin").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    browser.authorize(&code_request(&client.id, "openid"), "erin").await;
    let res = browser.get("/logout").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Sign out?"));
    // Without the CSRF token of this session: refused.
    let res = browser.post("/logout", &[("csrf_token", "forged")]).await;
    assert_eq!(res.status(), 403);
    let csrf = hidden_field(&html, "csrf_token").unwrap();
    let res = browser.post("/logout", &[("csrf_token", csrf.as_str())]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are signed out"));
    assert_eq!(browser.get("/account").await.status(), 303);
}

#[tokio::test]
async fn public_clients_use_pkce_and_always_rotate() {
    let app = spawn_app().await;
    app.create_user("frank").await;
    let res = app
        .admin_post(
            "/admin/clients",
            &json!({"grant_types":["authorization_code","refresh_token"],"redirect_uris":["http://127.0.0.1/cb"],
                    "token_endpoint_auth_method":"none","scope":"openid","first_party":true}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let info = body(res).await;
    assert!(info.get("client_secret").is_none());
    let id = info["client_id"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    // RFC 8252 §7.3: any port on the loopback redirect.
    let query = [
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", "http://127.0.0.1:51004/cb"),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let redirect = browser.authorize(&query, "frank").await;
    assert!(redirect.starts_with("http://127.0.0.1:51004/cb?code="));
    let code = query_param(&redirect, "code").unwrap();
    let res = app
        .post_form(
            "/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &id),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:51004/cb"),
                ("code_verifier", tessera_test_support::VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let tokens = body(res).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res = app
        .post_form("/token", None, &[("grant_type", "refresh_token"), ("client_id", &id), ("refresh_token", refresh)])
        .await;
    assert_eq!(res.status(), 200);
    assert_ne!(body(res).await["refresh_token"].as_str(), Some(refresh));
    // Public clients cannot introspect, cannot use client_credentials, cannot turn rotation off.
    let res = app.post_form("/introspect", None, &[("client_id", &id), ("token", refresh)]).await;
    assert_eq!(res.status(), 401);
    let res = app
        .admin_post(
            "/admin/clients",
            &json!({"grant_types":["authorization_code","refresh_token"],"redirect_uris":["https://a.example/cb"],
                    "token_endpoint_auth_method":"none","refresh_token_rotation":false}),
        )
        .await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn an_https_issuer_sets_host_prefixed_secure_cookies() {
    let app = spawn_app_with(T0, |config| {
        config.issuer = tessera_server::config::IssuerUrl::parse("https://as.example.test").unwrap();
    })
    .await;
    app.create_user("gina").await;
    let client = app.code_client(json!({})).await;
    let mut browser = Browser::new(&app);
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &code_request(&client.id, "openid")).unwrap();
    let res = browser.get(url.as_str()).await;
    let login = location(&res).unwrap();
    let res = browser.login(&login, "gina", PASSWORD).await;
    assert_eq!(res.status(), 303);
    let cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with("__Host-tessera-session=")).unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    assert!(!session.contains("Domain"));
    assert!(browser.cookies.contains_key("__Host-tessera-browser"));
}

#[tokio::test]
async fn client_options_login_hint_resources_es256_and_no_rotation() {
    let app = spawn_app().await;
    app.create_user("hana").await;
    let api = "https://api.example.test";
    let client = app
        .code_client(json!({
            "first_party": true, "refresh_token_rotation": false, "id_token_signed_response_alg": "ES256",
            "audience": [api, "https://other.example.test"],
        }))
        .await;
    let mut browser = Browser::new(&app);
    let mut query = code_request(&client.id, "openid read");
    query.push(("login_hint", "hana"));
    query.push(("resource", api));
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let login = location(&browser.get(url.as_str()).await).unwrap();
    let html = browser.get(&login).await.text().await.unwrap();
    assert!(html.contains("value=\"hana\""), "login_hint prefills the username");
    let res = browser.login(&login, "hana", PASSWORD).await;
    let redirect = location(&res).unwrap();
    let tokens = body(app.redeem(&client, &query_param(&redirect, "code").unwrap()).await).await;
    let (_, access) = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], api);
    let (header, _) = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(header["alg"], "ES256");
    // Without rotation the refresh token stays the same and keeps working.
    let rt = tokens["refresh_token"].as_str().unwrap();
    for _ in 0..3 {
        app.clock.advance(10);
        let res = app.refresh(&client, rt).await;
        assert_eq!(res.status(), 200);
        assert!(body(res).await.get("refresh_token").is_none());
    }
    // prompt=consent shows the consent page even to a first-party client.
    let mut query = code_request(&client.id, "openid");
    query.push(("prompt", "consent"));
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let res = browser.get(url.as_str()).await;
    assert!(location(&res).unwrap().starts_with("/consent"));
    // A deleted client's refresh tokens stop working.
    assert_eq!(app.admin_delete(&format!("/admin/clients/{}", client.id)).await.status(), 204);
    let res = app.post_form("/token", Some(&client), &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_account_page_signs_out_one_session() {
    let app = spawn_app().await;
    app.create_user("ivan").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let mut laptop = Browser::new(&app);
    let mut phone = Browser::new(&app);
    phone.user_agent = "Phone/2.0".into();
    let from_laptop = laptop.authorize(&code_request(&client.id, "openid"), "ivan").await;
    let laptop_tokens = body(app.redeem(&client, &query_param(&from_laptop, "code").unwrap()).await).await;
    let from_phone = phone.authorize(&code_request(&client.id, "openid"), "ivan").await;
    let phone_tokens = body(app.redeem(&client, &query_param(&from_phone, "code").unwrap()).await).await;
    let html = laptop.get("/account").await.text().await.unwrap();
    assert_eq!(html.matches("class=\"session\"").count(), 2);
    assert!(html.contains("Phone"));
    let (_, phone_id) = claims(phone_tokens["id_token"].as_str().unwrap());
    let csrf = hidden_field(&html, "csrf_token").unwrap();
    // Another user's CSRF token, or none, is refused.
    let res = laptop.post("/account/sessions/end", &[("session_id", phone_id["sid"].as_str().unwrap())]).await;
    assert_eq!(res.status(), 403);
    let res = laptop
        .post(
            "/account/sessions/end",
            &[("csrf_token", csrf.as_str()), ("session_id", phone_id["sid"].as_str().unwrap())],
        )
        .await;
    assert_eq!((res.status().as_u16(), location(&res).as_deref()), (303, Some("/account")));
    assert_eq!(
        body(app.introspect(&client, phone_tokens["access_token"].as_str().unwrap()).await).await["active"],
        false
    );
    assert_eq!(
        body(app.introspect(&client, laptop_tokens["access_token"].as_str().unwrap()).await).await["active"],
        true
    );
    assert_eq!(phone.get("/account").await.status(), 303);
    let html = laptop.get("/account").await.text().await.unwrap();
    assert_eq!(html.matches("class=\"session\"").count(), 1);
}
