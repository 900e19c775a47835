//! DPoP (RFC 9449) at the token, PAR and userinfo endpoints: SECURITY-TESTS.md c.2 (DP-01 to
//! DP-14 as they apply to the authorization server), a.4's DPoP rows and a.5's resource-side
//! cases against `/userinfo`, and the binding reported by introspection.

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_test_support::{
    Browser, DpopKey, REDIRECT_URI, TestApp, TestClient, VERIFIER, basic, code_request, query_param, spawn_app,
};

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

use tessera_test_support::jwt_claims as payload;

async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, body(res).await["error"].as_str().unwrap_or_default().to_owned())
}

const CC: [(&str, &str); 1] = [("grant_type", "client_credentials")];

// DP-10: a proof binds the token; token_type DPoP; cnf.jkt is the key's thumbprint, in the JWT
// and in introspection, for both token formats.
#[tokio::test]
async fn a_proof_at_the_token_endpoint_binds_the_access_token() {
    let app = spawn_app().await;
    let key = DpopKey::default();
    for format in ["jwt", "opaque"] {
        let client = app.create_client(json!({"scope":"read","access_token_format":format})).await;
        let res = app.post_dpop("/token", &client, &CC, &[&app.dpop_proof(&key, "/token")]).await;
        assert_eq!(res.status(), 200, "{format}");
        let token = body(res).await;
        assert_eq!(token["token_type"], "DPoP", "{format}");
        let access_token = token["access_token"].as_str().unwrap();
        if format == "jwt" {
            assert_eq!(payload(access_token)["cnf"], json!({"jkt": key.jkt()}));
        }
        let introspected = body(app.introspect(&client, access_token).await).await;
        assert_eq!(introspected["active"], true);
        assert_eq!(introspected["token_type"], "DPoP");
        assert_eq!(introspected["cnf"], json!({"jkt": key.jkt()}), "{format}");
        // Without a proof the same client gets a plain bearer token.
        let bearer = body(app.post_dpop("/token", &client, &CC, &[]).await).await;
        assert_eq!(bearer["token_type"], "Bearer");
        let introspected = body(app.introspect(&client, bearer["access_token"].as_str().unwrap()).await).await;
        assert!(introspected.get("cnf").is_none());
    }
}

// DP-01, DP-02, DP-03, DP-04, DP-06, DP-07, DP-08, DP-13 at the token endpoint.
#[tokio::test]
async fn bad_proofs_at_the_token_endpoint_are_invalid_dpop_proof() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let key = DpopKey::default();
    let url = app.url("/token");
    let now = app.clock.now_secs();
    let (header, claims) = key.parts("POST", &url, now, None);
    let with = |change: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = (header.clone(), claims.clone());
        change(&mut h, &mut c);
        // A fresh jti each, so no case passes or fails because of another.
        if let Some(jti) = c.get("jti").and_then(Value::as_str) {
            c["jti"] = format!("{jti}-{}", rand_suffix()).into();
        }
        key.sign(&h, &c)
    };
    let mut cases: Vec<(&str, String)> = vec![
        ("not a JWT", "not.a.jwt".into()),
        ("typ JWT", with(&|h, _| h["typ"] = "JWT".into())),
        ("no typ", with(&|h, _| drop(h.as_object_mut().unwrap().remove("typ")))),
        ("alg none", with(&|h, _| h["alg"] = "none".into())),
        ("alg HS256", with(&|h, _| h["alg"] = "HS256".into())),
        ("private jwk", with(&|h, _| h["jwk"]["d"] = "AAAA".into())),
        ("no jwk", with(&|h, _| drop(h.as_object_mut().unwrap().remove("jwk")))),
        ("no jti", with(&|_, c| drop(c.as_object_mut().unwrap().remove("jti")))),
        ("no htm", with(&|_, c| drop(c.as_object_mut().unwrap().remove("htm")))),
        ("no htu", with(&|_, c| drop(c.as_object_mut().unwrap().remove("htu")))),
        ("no iat", with(&|_, c| drop(c.as_object_mut().unwrap().remove("iat")))),
        ("htm GET", with(&|_, c| c["htm"] = "GET".into())),
        ("other path", with(&|_, c| c["htu"] = app.url("/par").into())),
        ("iat -3600", with(&|_, c| c["iat"] = (now - 3600).into())),
        ("iat +3600", with(&|_, c| c["iat"] = (now + 3600).into())),
        ("point off the curve", with(&|h, _| h["jwk"]["y"] = h["jwk"]["x"].clone())),
    ];
    let mut flipped = key.proof("POST", &url, now, None).into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    cases.push(("flipped signature", String::from_utf8(flipped).unwrap()));
    for (case, proof) in &cases {
        let res = app.post_dpop("/token", &client, &CC, &[proof]).await;
        assert_eq!(error_of(res).await, (400, "invalid_dpop_proof".to_owned()), "{case}");
    }
    // Accepted: query and fragment, case and default port in htu (DP-02), iat ±10 s (DP-03),
    // nbf/exp and unknown members (DP-08).
    let accepted = [
        ("query and fragment", with(&|_, c| c["htu"] = format!("{url}?a=b#frag").into())),
        ("upper-case scheme and host", with(&|_, c| c["htu"] = url.replace("http://", "HTTP://").into())),
        ("iat -10", with(&|_, c| c["iat"] = (now - 10).into())),
        ("iat +10", with(&|_, c| c["iat"] = (now + 10).into())),
        (
            "nbf, exp, extra members",
            with(&|h, c| {
                c["nbf"] = now.into();
                c["exp"] = (now + 300).into();
                c["x-extra"] = "1".into();
                h["x-extra"] = "1".into();
            }),
        ),
    ];
    for (case, proof) in &accepted {
        let res = app.post_dpop("/token", &client, &CC, &[proof]).await;
        assert_eq!(res.status(), 200, "{case}: {}", res.text().await.unwrap());
    }
    // DP-04: the same proof twice; DP-07: two DPoP headers, or two proofs in one.
    let proof = app.dpop_proof(&key, "/token");
    assert_eq!(app.post_dpop("/token", &client, &CC, &[&proof]).await.status(), 200);
    let replay = app.post_dpop("/token", &client, &CC, &[&proof]).await;
    assert_eq!(error_of(replay).await, (400, "invalid_dpop_proof".to_owned()));
    let (a, b) = (app.dpop_proof(&key, "/token"), app.dpop_proof(&key, "/token"));
    let twice = app.post_dpop("/token", &client, &CC, &[&a, &b]).await;
    assert_eq!(error_of(twice).await, (400, "invalid_dpop_proof".to_owned()));
    let joined = app.post_dpop("/token", &client, &CC, &[&format!("{a}, {b}")]).await;
    assert_eq!(error_of(joined).await, (400, "invalid_dpop_proof".to_owned()));
    // A failed client authentication spends nothing and is still invalid_client.
    let stranger = TestClient { id: client.id.clone(), secret: "wrong".into() };
    let res = app.post_dpop("/token", &stranger, &CC, &[&app.dpop_proof(&key, "/token")]).await;
    assert_eq!(error_of(res).await, (401, "invalid_client".to_owned()));
}

fn rand_suffix() -> String {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// RFC 9449 §5.2: dpop_bound_access_tokens forces a proof on every token request.
#[tokio::test]
async fn a_dpop_bound_client_must_send_a_proof() {
    let app = spawn_app().await;
    let client = app.create_client(json!({"scope":"read","dpop_bound_access_tokens":true})).await;
    let res = app.post_dpop("/token", &client, &CC, &[]).await;
    assert_eq!(error_of(res).await, (400, "invalid_dpop_proof".to_owned()));
    let info = body(app.admin_get(&format!("/admin/clients/{}", client.id)).await).await;
    assert_eq!(info["dpop_bound_access_tokens"], true);
    let key = DpopKey::default();
    let res = app.post_dpop("/token", &client, &CC, &[&app.dpop_proof(&key, "/token")]).await;
    assert_eq!(body(res).await["token_type"], "DPoP");
}

fn proof_with_nonce(app: &TestApp, key: &DpopKey, nonce: &str) -> String {
    let (header, mut claims) = key.parts("POST", &app.url("/token"), app.clock.now_secs(), None);
    claims["nonce"] = nonce.into();
    key.sign(&header, &claims)
}

// DP-09: server nonces, per client, accepted on every node sharing the master key.
#[tokio::test]
async fn a_client_that_requires_nonces_is_told_the_current_one() {
    let app = spawn_app().await;
    let client = app.create_client(json!({"scope":"read","dpop_nonce_required":true})).await;
    let key = DpopKey::default();
    let res = app.post_dpop("/token", &client, &CC, &[&app.dpop_proof(&key, "/token")]).await;
    assert_eq!(res.status(), 400);
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(body(res).await["error"], "use_dpop_nonce");
    let res = app.post_dpop("/token", &client, &CC, &[&proof_with_nonce(&app, &key, &nonce)]).await;
    assert_eq!(res.status(), 200);
    // A forged nonce, and a stale one ten minutes later: use_dpop_nonce with a fresh nonce.
    let forged = app
        .post_dpop("/token", &client, &CC, &[&proof_with_nonce(&app, &key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")])
        .await;
    assert_eq!(error_of(forged).await, (400, "use_dpop_nonce".to_owned()));
    app.clock.advance(600);
    let stale = app.post_dpop("/token", &client, &CC, &[&proof_with_nonce(&app, &key, &nonce)]).await;
    let fresh = stale.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_ne!(fresh, nonce);
    assert_eq!(error_of(stale).await, (400, "use_dpop_nonce".to_owned()));
    let res = app.post_dpop("/token", &client, &CC, &[&proof_with_nonce(&app, &key, &fresh)]).await;
    assert_eq!(res.status(), 200);
    // A client without the requirement may send a nonce or not.
    let other = app.jwt_client().await;
    assert_eq!(app.post_dpop("/token", &other, &CC, &[&app.dpop_proof(&key, "/token")]).await.status(), 200);
}

/// Signs alice in for `client` with the extra authorization parameters and returns the code.
async fn code_for(app: &TestApp, client: &TestClient, extra: &[(&str, &str)]) -> String {
    let mut browser = Browser::new(app);
    let mut query = code_request(&client.id, "openid offline_access read");
    query.extend_from_slice(extra);
    let redirect = browser.authorize(&query, "alice").await;
    query_param(&redirect, "code").expect("a code")
}

async fn redeem(app: &TestApp, client: &TestClient, code: &str, proofs: &[&str]) -> reqwest::Response {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    app.post_dpop("/token", client, &form, proofs).await
}

// DP-11 and a.4: dpop_jkt binds the code at /authorize and /par; the PAR proof's key binds it too.
#[tokio::test]
async fn codes_are_bound_to_the_dpop_key_named_at_authorization() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let (key, other) = (DpopKey::default(), DpopKey::default());
    let jkt = key.jkt();

    // dpop_jkt at /authorize: another key, or no proof, cannot redeem; the named key can.
    let code = code_for(&app, &client, &[("dpop_jkt", &jkt)]).await;
    let res = redeem(&app, &client, &code, &[&app.dpop_proof(&other, "/token")]).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".to_owned()));
    let res = redeem(&app, &client, &code, &[]).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".to_owned()));
    let res = redeem(&app, &client, &code, &[&app.dpop_proof(&key, "/token")]).await;
    let tokens = body(res).await;
    assert_eq!(tokens["token_type"], "DPoP");
    assert_eq!(payload(tokens["access_token"].as_str().unwrap())["cnf"]["jkt"], jkt.as_str());
    // A malformed dpop_jkt is refused at once.
    let mut browser = Browser::new(&app);
    let mut query = code_request(&client.id, "openid");
    query.push(("dpop_jkt", "not-a-thumbprint"));
    let url = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let res = browser.get(url.as_str()).await;
    let to = tessera_test_support::location(&res).unwrap();
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"));

    // PAR with dpop_jkt X and a proof by key Y: refused.
    let mut par_form = code_request(&client.id, "openid offline_access read");
    par_form.push(("dpop_jkt", &jkt));
    let res = app.post_dpop("/par", &client, &par_form, &[&app.dpop_proof(&other, "/par")]).await;
    assert_eq!(error_of(res).await, (400, "invalid_dpop_proof".to_owned()));
    // PAR with only a proof: the code is bound to the proof's key.
    let par_form = code_request(&client.id, "openid offline_access read");
    let res = app.post_dpop("/par", &client, &par_form, &[&app.dpop_proof(&key, "/par")]).await;
    assert_eq!(res.status(), 201);
    let request_uri = body(res).await["request_uri"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&[("client_id", &client.id), ("request_uri", &request_uri)], "alice").await;
    let code = query_param(&redirect, "code").unwrap();
    let res = redeem(&app, &client, &code, &[&app.dpop_proof(&other, "/token")]).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".to_owned()));
    let res = redeem(&app, &client, &code, &[&app.dpop_proof(&key, "/token")]).await;
    assert_eq!(res.status(), 200);
    // A replayed PAR proof is refused too.
    let proof = app.dpop_proof(&key, "/par");
    assert_eq!(app.post_dpop("/par", &client, &par_form, &[&proof]).await.status(), 201);
    let res = app.post_dpop("/par", &client, &par_form, &[&proof]).await;
    assert_eq!(error_of(res).await, (400, "invalid_dpop_proof".to_owned()));
}

// DP-12: a public client's refresh tokens are bound to its DPoP key; a confidential client may
// refresh with a new key (the FAPI 2.0 suite does so on purpose).
#[tokio::test]
async fn refresh_tokens_of_public_clients_are_bound_to_their_key() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let public = app.code_client(json!({"first_party": true, "token_endpoint_auth_method": "none"})).await;
    let (key, other) = (DpopKey::default(), DpopKey::default());
    let code = code_for(&app, &public, &[]).await;
    let tokens = body(redeem(&app, &public, &code, &[&app.dpop_proof(&key, "/token")]).await).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let introspected = body(app.introspect(&app.admin_client(), refresh_token).await).await;
    assert_eq!(introspected["active"], false, "only its own client sees a refresh token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let res = app.post_dpop("/token", &public, &form, &[&app.dpop_proof(&other, "/token")]).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".to_owned()));
    let res = app.post_dpop("/token", &public, &form, &[]).await;
    assert_eq!(error_of(res).await, (400, "invalid_grant".to_owned()));
    let res = app.post_dpop("/token", &public, &form, &[&app.dpop_proof(&key, "/token")]).await;
    let refreshed = body(res).await;
    assert_eq!(refreshed["token_type"], "DPoP");
    assert_eq!(payload(refreshed["access_token"].as_str().unwrap())["cnf"]["jkt"], key.jkt().as_str());

    let confidential = app.code_client(json!({"first_party": true})).await;
    let code = code_for(&app, &confidential, &[]).await;
    let tokens = body(redeem(&app, &confidential, &code, &[&app.dpop_proof(&key, "/token")]).await).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
    let res = app.post_dpop("/token", &confidential, &form, &[&app.dpop_proof(&other, "/token")]).await;
    let refreshed = body(res).await;
    assert_eq!(payload(refreshed["access_token"].as_str().unwrap())["cnf"]["jkt"], other.jkt().as_str());
}

async fn userinfo(app: &TestApp, method: &str, authorization: &str, proofs: &[&str]) -> reqwest::Response {
    let mut request =
        app.http.request(method.parse().unwrap(), app.url("/userinfo")).header("authorization", authorization);
    for proof in proofs {
        request = request.header("dpop", *proof);
    }
    request.send().await.unwrap()
}

fn challenge(res: &reqwest::Response) -> String {
    res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

// a.5 and JW-20a against /userinfo: the DPoP scheme with a proof of the bound key and `ath`.
#[tokio::test]
async fn userinfo_takes_a_dpop_bound_token_only_with_a_proof_of_its_key() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({"first_party": true})).await;
    let (key, other) = (DpopKey::default(), DpopKey::default());
    let code = code_for(&app, &client, &[]).await;
    let tokens = body(redeem(&app, &client, &code, &[&app.dpop_proof(&key, "/token")]).await).await;
    let token = tokens["access_token"].as_str().unwrap();
    let url = app.url("/userinfo");
    let now = app.clock.now_secs();
    let dpop = format!("DPoP {token}");

    // GET and POST, the scheme in any case (DP-14).
    for (method, scheme) in [("GET", "DPoP"), ("POST", "DPoP"), ("GET", "dPoP")] {
        let proof = key.proof(method, &url, now, Some(token));
        let res = userinfo(&app, method, &format!("{scheme} {token}"), &[&proof]).await;
        assert_eq!(res.status(), 200, "{method} {scheme}");
    }
    // As a bearer token: 401 with a DPoP challenge (a.5 item 14).
    let res = userinfo(&app, "GET", &format!("Bearer {token}"), &[]).await;
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).starts_with("DPoP ") && challenge(&res).contains("invalid_token"), "{}", challenge(&res));
    let res = userinfo(&app, "GET", &format!("Bearer {token}"), &[&key.proof("GET", &url, now, Some(token))]).await;
    assert_eq!(res.status(), 401);
    // No proof, another key, no ath, another token's ath, another method, a replay, two proofs.
    let (header, claims) = key.parts("GET", &url, now, Some(token));
    let mut without_ath = claims.clone();
    without_ath.as_object_mut().unwrap().remove("ath");
    let replayed = key.proof("GET", &url, now, Some(token));
    assert_eq!(userinfo(&app, "GET", &dpop, &[&replayed]).await.status(), 200);
    let cases = [
        ("no proof", vec![]),
        ("other key", vec![other.proof("GET", &url, now, Some(token))]),
        ("no ath", vec![key.sign(&header, &without_ath)]),
        ("other ath", vec![key.proof("GET", &url, now, Some("another-token"))]),
        ("htm POST on GET", vec![key.proof("POST", &url, now, Some(token))]),
        ("iat an hour ago", vec![key.proof("GET", &url, now - 3600, Some(token))]),
        ("iat an hour ahead", vec![key.proof("GET", &url, now + 3600, Some(token))]),
        ("replay", vec![replayed]),
        ("two proofs", vec![key.proof("GET", &url, now, Some(token)), key.proof("GET", &url, now, Some(token))]),
    ];
    for (case, proofs) in &cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let res = userinfo(&app, "GET", &dpop, &proofs).await;
        assert_eq!(res.status(), 401, "{case}");
        assert!(challenge(&res).contains("error=\"invalid_dpop_proof\""), "{case}: {}", challenge(&res));
    }
    // A bearer token presented with the DPoP scheme is not bound to anything.
    let bearer = body(redeem(&app, &client, &code_for(&app, &client, &[]).await, &[]).await).await;
    let bearer = bearer["access_token"].as_str().unwrap();
    let res = userinfo(&app, "GET", &format!("DPoP {bearer}"), &[&key.proof("GET", &url, now, Some(bearer))]).await;
    assert_eq!(res.status(), 401);
    assert_eq!(userinfo(&app, "GET", &format!("Bearer {bearer}"), &[]).await.status(), 200);
    // The negative cases revoked nothing (a.5 item 15); responses carry a Date header (a.4).
    let res = userinfo(&app, "GET", &dpop, &[&key.proof("GET", &url, now, Some(token))]).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("date"));
    // DisallowAccessTokenInQuery (a.4): a token in the query string is no token at all.
    let query = app.http.get(format!("{url}?access_token={bearer}")).send().await.unwrap();
    assert_eq!(query.status(), 401);
    // a.5 item 1: the DPoP header name in capitals. HTTP clients lowercase header names, so this
    // request is written by hand.
    let proof = key.proof("GET", &url, now, Some(token));
    let raw = format!(
        "GET /userinfo HTTP/1.1\r\nHost: {}\r\nAuthorization: DPoP {token}\r\nDPOP: {proof}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, raw.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

// The admin API takes bearer tokens only: a DPoP-bound admin token is refused there.
#[tokio::test]
async fn a_dpop_bound_admin_token_is_no_bearer_token() {
    let app = spawn_app().await;
    let key = DpopKey::default();
    let res = app.post_dpop("/token", &app.admin_client(), &CC, &[&app.dpop_proof(&key, "/token")]).await;
    let token = body(res).await["access_token"].as_str().unwrap().to_owned();
    let res = app.http.get(app.admin_url("/admin/clients")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // It is still revocable like any token of the client.
    let revoke = app
        .http
        .post(app.url("/revoke"))
        .header("authorization", basic(&app.admin.client_id, &app.admin.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(body(app.introspect(&app.admin_client(), &token).await).await["active"], false);
}
