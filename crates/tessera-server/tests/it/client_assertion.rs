//! `private_key_jwt` client authentication (RFC 7523 §2.2): SECURITY-TESTS.md c.7 CA-04 and the
//! client-assertion rows of a.4, with keys inline and at a `jwks_uri` served on loopback.

use serde_json::{Value, json};
use tessera_test_support::{DpopKey, TestApp, spawn_app};

fn jwk_with_kid(key: &DpopKey, kid: &str) -> Value {
    key.jwk_with_kid(kid)
}

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Registers a client through the admin API; returns its id.
async fn create(app: &TestApp, metadata: Value) -> String {
    app.create_client(metadata).await.id
}

fn random_jti() -> String {
    let mut bytes = [0u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The claims of a good assertion for `client_id` at `now`, addressed to the issuer.
fn claims(app: &TestApp, client_id: &str) -> Value {
    let now = app.clock.now_secs();
    json!({"iss": client_id, "sub": client_id, "aud": app.issuer, "exp": now + 60, "iat": now, "jti": random_jti()})
}

fn sign(key: &DpopKey, kid: &str, claims: &Value) -> String {
    key.sign(&json!({"alg":"ES256","kid":kid,"typ":"JWT"}), claims)
}

async fn token_with(app: &TestApp, path: &str, assertion: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    app.http.post(app.url(path)).form(&form).send().await.unwrap()
}

// CA-04 and a.4's client-authentication rows (default profile).
#[tokio::test]
async fn private_key_jwt_accepts_only_a_fresh_well_formed_assertion_by_a_registered_key() {
    let app = spawn_app().await;
    let key = DpopKey::default();
    let client =
        create(&app, json!({"scope":"read","token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[jwk_with_kid(&key, "k1")]}}))
            .await;
    let now = app.clock.now_secs();
    let good = claims(&app, &client);
    let res = token_with(&app, "/token", &sign(&key, "k1", &good), &[]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // Without kid, nbf 8 s ahead: accepted.
    let mut accepted = Vec::new();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&app, &client);
        change(&mut c);
        c
    };
    accepted.push(("no kid", key.sign(&json!({"alg":"ES256"}), &claims(&app, &client))));
    accepted.push(("nbf +8", sign(&key, "k1", &with(&|c| c["nbf"] = (now + 8).into()))));
    for (case, assertion) in &accepted {
        assert_eq!(token_with(&app, "/token", assertion, &[]).await.status(), 200, "{case}");
    }
    // Refused, each with 401 invalid_client.
    let other = DpopKey::default();
    let header_none = json!({"alg":"none"});
    let unsigned = format!(
        "{}.{}.",
        base64url(header_none.to_string().as_bytes()),
        base64url(claims(&app, &client).to_string().as_bytes())
    );
    let replayed = sign(&key, "k1", &claims(&app, &client));
    assert_eq!(token_with(&app, "/token", &replayed, &[]).await.status(), 200);
    let refused = [
        ("alg none", unsigned),
        ("another key", sign(&other, "k1", &claims(&app, &client))),
        ("unknown kid", sign(&key, "k9", &claims(&app, &client))),
        ("exp 5 minutes ago", sign(&key, "k1", &with(&|c| c["exp"] = (now - 300).into()))),
        ("exp a day ahead", sign(&key, "k1", &with(&|c| c["exp"] = (now + 86_400).into()))),
        ("no exp", sign(&key, "k1", &with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))))),
        ("nbf +61", sign(&key, "k1", &with(&|c| c["nbf"] = (now + 61).into()))),
        ("sub is another", sign(&key, "k1", &with(&|c| c["sub"] = "someone-else".into()))),
        ("iss is another", sign(&key, "k1", &with(&|c| c["iss"] = "someone-else".into()))),
        ("no jti", sign(&key, "k1", &with(&|c| drop(c.as_object_mut().unwrap().remove("jti"))))),
        ("aud another server", sign(&key, "k1", &with(&|c| c["aud"] = "https://evil.example".into()))),
        ("aud the PAR endpoint at /token", sign(&key, "k1", &with(&|c| c["aud"] = app.url("/par").into()))),
        // Regression: #23. draft-ietf-oauth-rfc7523bis (CVE-2025-27370/27371): only the issuer
        // identifier, as one string, in every profile; these were accepted before.
        ("aud the token endpoint", sign(&key, "k1", &with(&|c| c["aud"] = app.url("/token").into()))),
        ("aud an array holding the issuer", sign(&key, "k1", &with(&|c| c["aud"] = json!([app.issuer])))),
        (
            "aud an array with another server",
            sign(&key, "k1", &with(&|c| c["aud"] = json!(["https://other.example", app.issuer]))),
        ),
        ("typ at+jwt", key.sign(&json!({"alg":"ES256","kid":"k1","typ":"at+jwt"}), &claims(&app, &client))),
        ("embedded jwk", key.sign(&json!({"alg":"ES256","jwk":key.jwk()}), &claims(&app, &client))),
        ("replayed jti", replayed),
    ];
    for (case, assertion) in &refused {
        let res = token_with(&app, "/token", assertion, &[]).await;
        assert_eq!(res.status(), 401, "{case}");
        assert_eq!(body(res).await["error"], "invalid_client", "{case}");
    }
    // No sub at all: the request does not even name a client.
    let no_sub = sign(&key, "k1", &with(&|c| drop(c.as_object_mut().unwrap().remove("sub"))));
    assert_eq!(token_with(&app, "/token", &no_sub, &[]).await.status(), 401);
    // HS256 keyed with a client secret, for a client registered for private_key_jwt.
    let hs256 = hmac_jwt(b"a-client-secret", &claims(&app, &client));
    assert_eq!(token_with(&app, "/token", &hs256, &[]).await.status(), 401);
    // A client_id beside the assertion must be the assertion's; two methods at once are refused.
    let good = sign(&key, "k1", &claims(&app, &client));
    assert_eq!(token_with(&app, "/token", &good, &[("client_id", "someone-else")]).await.status(), 401);
    let res = token_with(&app, "/token", &sign(&key, "k1", &claims(&app, &client)), &[("client_secret", "x")]).await;
    assert_eq!(body(res).await["error"], "invalid_request");
    let res = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("client_assertion", good.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["error"], "invalid_request", "client_assertion without its type");
    // An assertion for a client registered with a secret is no credential.
    let secret_client = app.jwt_client().await;
    let res = token_with(&app, "/token", &sign(&key, "k1", &claims(&app, &secret_client.id)), &[]).await;
    assert_eq!(res.status(), 401);
    // The same assertion works at introspection and revocation too; its aud is the issuer there
    // too, never the endpoint (#23, rfc7523bis).
    let revoke = |assertion: String| {
        app.http
            .post(app.url("/revoke"))
            .form(&[("token", "whatever"), ("client_assertion_type", ASSERTION_TYPE), ("client_assertion", &assertion)])
            .send()
    };
    assert_eq!(revoke(sign(&key, "k1", &claims(&app, &client))).await.unwrap().status(), 200);
    let endpoint_aud = sign(&key, "k1", &with(&|c| c["aud"] = app.url("/revoke").into()));
    assert_eq!(revoke(endpoint_aud).await.unwrap().status(), 401);
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hmac_jwt(key: &[u8], claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        base64url(json!({"alg":"HS256","typ":"JWT"}).to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", base64url(tag.as_ref()))
}

/// A JWK Set served on loopback that the test can change.
struct JwksServer {
    url: String,
    keys: std::sync::Arc<std::sync::Mutex<Value>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

async fn jwks_server(initial: Value) -> JwksServer {
    let keys = std::sync::Arc::new(std::sync::Mutex::new(initial));
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let (served, counted) = (keys.clone(), hits.clone());
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let served = served.clone();
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { axum::Json(served.lock().unwrap().clone()) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    JwksServer { url, keys, hits }
}

// jwks_uri: fetched, cached, fetched again for a new key at most once per cool-down; an
// oversized set is refused.
#[tokio::test]
async fn keys_at_a_jwks_uri_are_cached_and_refetched_for_a_new_key_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (old, new) = (DpopKey::default(), DpopKey::default());
    let server = jwks_server(json!({"keys":[jwk_with_kid(&old, "old")]})).await;
    let client =
        create(&app, json!({"scope":"read","token_endpoint_auth_method":"private_key_jwt","jwks_uri":server.url}))
            .await;
    let hits = || server.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(token_with(&app, "/token", &sign(&old, "old", &claims(&app, &client)), &[]).await.status(), 200);
    assert_eq!(token_with(&app, "/token", &sign(&old, "old", &claims(&app, &client)), &[]).await.status(), 200);
    assert_eq!(hits(), 1, "the set is cached");
    // The client rotates: the new key is refused until the cool-down allows a fetch ...
    *server.keys.lock().unwrap() = json!({"keys":[jwk_with_kid(&new, "new")]});
    for _ in 0..5 {
        assert_eq!(token_with(&app, "/token", &sign(&new, "new", &claims(&app, &client)), &[]).await.status(), 401);
    }
    assert_eq!(hits(), 1, "no fetch storm for unknown keys");
    // ... then fetched once.
    app.clock.advance(61);
    assert_eq!(token_with(&app, "/token", &sign(&new, "new", &claims(&app, &client)), &[]).await.status(), 200);
    assert_eq!(hits(), 2);
    // A set over 64 KiB is refused (after the TTL, the next use fetches again).
    let padding = "x".repeat(70 * 1024);
    *server.keys.lock().unwrap() = json!({"keys":[jwk_with_kid(&new, "new")], "padding": padding});
    app.clock.advance(301);
    assert_eq!(token_with(&app, "/token", &sign(&new, "new", &claims(&app, &client)), &[]).await.status(), 401);
    // Registration: a jwks_uri is https (http only on loopback for a loopback issuer); keys are public.
    for metadata in [
        json!({"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"http://keys.example.com/jwks.json"}),
        json!({"token_endpoint_auth_method":"private_key_jwt"}),
        json!({"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}]}}),
        json!({"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[]}}),
        json!({"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[jwk_with_kid(&old, "a")]},"jwks_uri":server.url}),
    ] {
        let res = app.admin_post("/admin/clients", &metadata).await;
        assert_eq!(res.status(), 400, "{metadata}");
    }
}
