//! Several `tessera serve` processes on one PostgreSQL database (a fresh schema per test, in the
//! database named by `TESSERA_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
//! A change made on one node is in force on the other at once: tokens, revocations, client
//! deletion, keys; single-use steps stay single-use across nodes.

use std::path::Path;

use serde_json::{Value, json};
use tessera_proto::admin::AdminConfig;
use tessera_test_support::{Browser, PostgresSchema, REDIRECT_URI, VERIFIER, basic, code_request, query_param};

use crate::e2e::{Server, free_port};

pub(crate) fn postgres_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// One node: its process, URLs and admin credentials.
pub(crate) struct Node {
    _server: Server,
    pub(crate) issuer: String,
    admin: AdminConfig,
    http: reqwest::Client,
}

impl Node {
    pub(crate) fn start(dir: &Path, issuer: &str, database_url: &str, master_key: &Path, extra: &[&str]) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let mut args =
            vec!["--issuer", issuer, "--database-url", database_url, "--master-key-file", master_key.to_str().unwrap()];
        args.extend_from_slice(extra);
        let server = Server::start_with(dir, free_port(), free_port(), &args);
        Node::new(server, dir)
    }

    pub(crate) fn start_on(
        dir: &Path,
        port: u16,
        issuer: &str,
        database_url: &str,
        master_key: &Path,
        extra: &[&str],
    ) -> Node {
        std::fs::create_dir_all(dir).unwrap();
        let mut args =
            vec!["--issuer", issuer, "--database-url", database_url, "--master-key-file", master_key.to_str().unwrap()];
        args.extend_from_slice(extra);
        let server = Server::start_with(dir, port, free_port(), &args);
        Node::new(server, dir)
    }

    fn new(server: Server, dir: &Path) -> Node {
        let admin: AdminConfig = serde_json::from_slice(&std::fs::read(dir.join("data/admin.json")).unwrap()).unwrap();
        Node { issuer: server.issuer.clone(), _server: server, admin, http: reqwest::Client::new() }
    }

    async fn admin_token(&self) -> String {
        let res = self
            .form("/token", &self.admin.client_id, &self.admin.client_secret, &[("grant_type", "client_credentials")])
            .await;
        res["access_token"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = self.admin_token().await;
        let mut request = self.http.request(method, format!("{}{path}", self.admin.admin_url)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let res = request.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn create_client(&self, metadata: Value) -> (String, String) {
        let (status, body) = self.admin(reqwest::Method::POST, "/admin/clients", Some(metadata)).await;
        assert_eq!(status, 201, "{body}");
        (body["client_id"].as_str().unwrap().to_owned(), body["client_secret"].as_str().unwrap().to_owned())
    }

    pub(crate) async fn form_status(&self, path: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.issuer))
            .header("authorization", basic(id, secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn form(&self, path: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> Value {
        let (status, body) = self.form_status(path, id, secret, form).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    pub(crate) async fn active(&self, client: &(String, String), token: &str) -> bool {
        self.form("/introspect", &client.0, &client.1, &[("token", token)]).await["active"] == true
    }
}

/// Two nodes on a fresh schema, sharing one master key file.
fn two_nodes(dir: &Path, extra: &[&str]) -> (Node, Node, PostgresSchema) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let schema = runtime.block_on(PostgresSchema::create(&postgres_url()));
    let url = schema.url();
    let key = dir.join("master.key");
    // Behind a load balancer every node has the same issuer; here it is simply A's address.
    let a_port = free_port();
    let issuer = format!("http://127.0.0.1:{a_port}");
    let a = Node::start_on(&dir.join("a"), a_port, &issuer, &url, &key, extra);
    let b = Node::start(&dir.join("b"), &issuer, &url, &key, extra);
    (a, b, schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_is_in_force_on_the_other_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, schema) = tokio::task::block_in_place(|| two_nodes(dir.path(), &[]));
    assert_ne!(a.admin.client_id, b.admin.client_id, "each node gets an admin client of its own");
    let opaque = a.create_client(json!({"scope":"read","access_token_format":"opaque"})).await;
    let jwt = b.create_client(json!({"scope":"read"})).await;

    // Issue on A, introspect on B; revoke on B, introspect on A.
    for client in [&opaque, &jwt] {
        let token = a.form("/token", &client.0, &client.1, &[("grant_type", "client_credentials")]).await;
        let token = token["access_token"].as_str().unwrap().to_owned();
        assert!(b.active(client, &token).await);
        assert!(a.active(client, &token).await, "cached as active on A");
        b.form_status("/revoke", &client.0, &client.1, &[("token", &token)]).await;
        assert!(!a.active(client, &token).await, "revoked on B, inactive on A at once");
    }

    // Delete a client on A: its token request on B fails at once (B had it cached).
    let token = b.form("/token", &jwt.0, &jwt.1, &[("grant_type", "client_credentials")]).await;
    let token = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(a.admin(reqwest::Method::DELETE, &format!("/admin/clients/{}", jwt.0), None).await.0, 204);
    let (status, _) = b.form_status("/token", &jwt.0, &jwt.1, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 401);
    let (status, _) = b.form_status("/introspect", &opaque.0, &opaque.1, &[("token", &token)]).await;
    assert_eq!(status, 200);

    // A key made on A and activated on B signs on B; A verifies B's tokens at once.
    let (status, key) = a.admin(reqwest::Method::POST, "/admin/keys", Some(json!({"alg":"EdDSA"}))).await;
    assert_eq!(status, 201);
    let kid = key["kid"].as_str().unwrap();
    let jwks: Value = b.http.get(format!("{}/jwks.json", b.issuer)).send().await.unwrap().json().await.unwrap();
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid), "published on B before it signs");
    let verifier = a.create_client(json!({"scope":"read"})).await;
    assert_eq!(b.admin(reqwest::Method::POST, &format!("/admin/keys/{kid}/activate"), Some(json!({}))).await.0, 200);
    let token = b.form("/token", &verifier.0, &verifier.1, &[("grant_type", "client_credentials")]).await;
    let token = token["access_token"].as_str().unwrap();
    assert!(a.active(&verifier, token).await);
    drop((a, b));
    schema.drop_blocking();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_under_load_without_a_single_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, schema) = tokio::task::block_in_place(|| two_nodes(dir.path(), &[]));
    let client = a.create_client(json!({"scope":"read"})).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (a_issuer, b_issuer, client, stop) = (a.issuer.clone(), b.issuer.clone(), client.clone(), stop.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Issued on one node, introspected on the other, both ways.
                for (issuer, checker) in [(&a_issuer, &b_issuer), (&b_issuer, &a_issuer)] {
                    let res = http
                        .post(format!("{issuer}/token"))
                        .header("authorization", basic(&client.0, &client.1))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await
                        .unwrap();
                    let token: Value = res.json().await.unwrap();
                    let token = token["access_token"].as_str().unwrap_or("").to_owned();
                    let res = http
                        .post(format!("{checker}/introspect"))
                        .header("authorization", basic(&client.0, &client.1))
                        .form(&[("token", token.as_str())])
                        .send()
                        .await
                        .unwrap();
                    let body: Value = res.json().await.unwrap();
                    if body["active"] == true { ok += 1 } else { failed += 1 }
                }
            }
            (ok, failed)
        })
    };
    for (i, alg) in ["ES256", "EdDSA", "ES256", "RS256"].iter().enumerate() {
        let (node, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (status, key) = node.admin(reqwest::Method::POST, "/admin/keys", Some(json!({ "alg": alg }))).await;
        assert_eq!(status, 201);
        let path = format!("/admin/keys/{}/activate", key["kid"].as_str().unwrap());
        assert_eq!(other.admin(reqwest::Method::POST, &path, Some(json!({}))).await.0, 200);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = load.await.unwrap();
    assert!(ok > 0);
    assert_eq!(failed, 0, "{failed} of {} introspections failed during rotation", ok + failed);
    drop((a, b));
    schema.drop_blocking();
}

/// Signs a user in on `node` and returns a code for `client`.
async fn code_on(node: &Node, client: &(String, String)) -> String {
    let mut browser = Browser::at(&node.issuer);
    let redirect = browser.authorize(&code_request(&client.0, "openid"), "alice").await;
    query_param(&redirect, "code").unwrap()
}

async fn concurrently<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

async fn post(url: String, id: String, secret: String, form: Vec<(&'static str, String)>) -> (u16, Value) {
    let res =
        reqwest::Client::new().post(url).header("authorization", basic(&id, &secret)).form(&form).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_holds_across_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, schema) = tokio::task::block_in_place(|| two_nodes(dir.path(), &["--refresh-token-grace-period", "0"]));
    let (status, _) = a
        .admin(
            reqwest::Method::POST,
            "/admin/users",
            Some(json!({"username":"alice","password":tessera_test_support::PASSWORD})),
        )
        .await;
    assert_eq!(status, 201);
    let client = a
        .create_client(json!({"grant_types":["authorization_code","refresh_token"],"redirect_uris":[REDIRECT_URI],
                              "scope":"openid","first_party":true}))
        .await;
    let urls = [format!("{}/token", a.issuer), format!("{}/token", b.issuer)];

    // 32 concurrent redemptions of one code, split across the nodes: exactly one success.
    let code = code_on(&a, &client).await;
    let results = concurrently(32, |i| {
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
        ];
        post(urls[i % 2].clone(), client.0.clone(), client.1.clone(), form)
    })
    .await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, b)| *s == 200 || b["error"] == "invalid_grant"), "{results:?}");

    // 32 concurrent refreshes of one token, split across the nodes (strict rotation): one family,
    // at most one success.
    let code = code_on(&b, &client).await;
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("code_verifier", VERIFIER.to_owned()),
    ];
    let (status, tokens) = post(urls[1].clone(), client.0.clone(), client.1.clone(), form).await;
    assert_eq!(status, 200, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let results = concurrently(32, |i| {
        let form = vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", rt.clone())];
        post(urls[i % 2].clone(), client.0.clone(), client.1.clone(), form)
    })
    .await;
    let winners: Vec<&Value> = results.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert!(winners.len() <= 1, "{results:?}");
    assert!(results.iter().all(|(s, b)| *s == 200 || b["error"] == "invalid_grant"), "{results:?}");
    drop((a, b));
    schema.drop_blocking();
}

/// POSTs `client_credentials` to `url` with one DPoP proof.
async fn dpop_token(url: String, client: (String, String), proof: String) -> (u16, Value, Option<String>) {
    let res = reqwest::Client::new()
        .post(url)
        .header("authorization", basic(&client.0, &client.1))
        .header("dpop", proof)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let nonce = res.headers().get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap_or(Value::Null), nonce)
}

// SECURITY-TESTS.md c.2 DP-04 across nodes: a proof is used once in the whole cluster, even
// when copies race to both nodes; and a nonce issued by one node is good on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_proof_is_single_use_across_nodes_and_nonces_are_shared() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, schema) = tokio::task::block_in_place(|| two_nodes(dir.path(), &[]));
    let client = a.create_client(json!({"scope":"read"})).await;
    // The nodes' own clock (they run on the real one): the iat of a token just issued.
    let token = a.form("/token", &client.0, &client.1, &[("grant_type", "client_credentials")]).await;
    let now = tessera_test_support::jwt_claims(token["access_token"].as_str().unwrap())["iat"].as_u64().unwrap();
    let key = tessera_test_support::DpopKey::default();
    // Every node has the same issuer, so a proof's htu names the cluster, not a node.
    let htu = format!("{}/token", a.issuer);
    let urls = [htu.clone(), format!("{}/token", b.issuer)];

    let proof = key.proof("POST", &htu, now, None);
    let (status, body, _) = dpop_token(urls[0].clone(), client.clone(), proof.clone()).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")), "{body}");
    let (status, body, _) = dpop_token(urls[1].clone(), client.clone(), proof).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");

    // 16 copies of one fresh proof, split across the nodes at once: exactly one success.
    let proof = key.proof("POST", &htu, now, None);
    let results = concurrently(16, |i| dpop_token(urls[i % 2].clone(), client.clone(), proof.clone())).await;
    assert_eq!(results.iter().filter(|(s, _, _)| *s == 200).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, b, _)| *s == 200 || b["error"] == "invalid_dpop_proof"), "{results:?}");

    // A nonce from node B works at node A.
    let nonce_client = a.create_client(json!({"scope":"read","dpop_nonce_required":true})).await;
    let (status, body, nonce) =
        dpop_token(urls[1].clone(), nonce_client.clone(), key.proof("POST", &htu, now, None)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("use_dpop_nonce")), "{body}");
    let (header, mut claims) = key.parts("POST", &htu, now, None);
    claims["nonce"] = nonce.unwrap().into();
    let (status, body, _) = dpop_token(urls[0].clone(), nonce_client, key.sign(&header, &claims)).await;
    assert_eq!(status, 200, "{body}");
    drop((a, b));
    schema.drop_blocking();
}

// Revocation made on node A reaches a feed stream open on node B within one second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_reaches_a_stream_on_the_other_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, schema) = tokio::task::block_in_place(|| two_nodes(dir.path(), &[]));
    let reader = a.create_client(json!({"introspection":true,"audience":["https://api.example.test"]})).await;
    // The feed shows a reader only events about tokens that could be addressed to it.
    let client = a.create_client(json!({"scope":"read","audience":["https://api.example.test"]})).await;
    let stream = reqwest::Client::new()
        .get(format!("{}/revocations/stream", b.issuer))
        .header("authorization", basic(&reader.0, &reader.1))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut stream = tessera_test_support::SseReader::new(stream);
    let ready = stream.next(std::time::Duration::from_secs(5)).await.unwrap();
    assert_eq!(ready.event.as_deref(), Some("caught-up"));
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..3 {
        let token = a.form("/token", &client.0, &client.1, &[("grant_type", "client_credentials")]).await;
        let token = token["access_token"].as_str().unwrap();
        let revoked = std::time::Instant::now();
        a.form("/revoke", &client.0, &client.1, &[("token", token)]).await;
        let event = stream.next(std::time::Duration::from_secs(3)).await.expect("the revocation arrives on node B");
        slowest = slowest.max(revoked.elapsed());
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data["value"], tessera_test_support::jwt_claims(token)["jti"]);
    }
    assert!(slowest < std::time::Duration::from_secs(1), "slowest cross-node delivery {slowest:?}");
    println!("revocation on A → stream on B: slowest of 3 deliveries {slowest:?}");
    drop(stream);
    drop((a, b));
    schema.drop_blocking();
}

/// The device grant on two nodes: a code asked for on A, approved on B, polled on both. Polling
/// state is shared (a poll on B right after one on A is `slow_down`), and 32 concurrent polls of
/// the approved code split across the nodes redeem it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_code_is_redeemed_once_across_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, schema) = tokio::task::block_in_place(|| two_nodes(dir.path(), &[]));
    let user = json!({"username":"alice","password":tessera_test_support::PASSWORD});
    assert_eq!(a.admin(reqwest::Method::POST, "/admin/users", Some(user)).await.0, 201);
    let client = a
        .create_client(
            json!({"client_name":"Hallway TV","grant_types":["urn:ietf:params:oauth:grant-type:device_code"],
                              "scope":"openid"}),
        )
        .await;
    let started = a.form("/device_authorization", &client.0, &client.1, &[("scope", "openid")]).await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let poll = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code".to_owned()),
        ("device_code", device_code.clone()),
    ];
    let urls = [format!("{}/token", a.issuer), format!("{}/token", b.issuer)];
    let (_, first) = post(urls[0].clone(), client.0.clone(), client.1.clone(), poll.clone()).await;
    assert_eq!(first["error"], "authorization_pending");
    let (_, second) = post(urls[1].clone(), client.0.clone(), client.1.clone(), poll.clone()).await;
    assert_eq!(second["error"], "slow_down", "B knows A was just polled");

    // Approved on B.
    let mut browser = Browser::at(&b.issuer);
    let user_code = started["user_code"].as_str().unwrap();
    let res = browser.get(&format!("/device?user_code={user_code}")).await;
    let login = tessera_test_support::location(&res).unwrap();
    let res = browser.login(&login, "alice", tessera_test_support::PASSWORD).await;
    let back = tessera_test_support::location(&res).unwrap();
    let page = browser.get(&back).await.text().await.unwrap();
    assert!(page.contains("Hallway TV"), "{page}");
    let csrf = tessera_test_support::hidden_field(&page, "csrf_token").unwrap();
    let res =
        browser.post("/device/decide", &[("csrf_token", &csrf), ("user_code", user_code), ("decision", "allow")]).await;
    assert_eq!(res.status(), 200);

    let results =
        concurrently(32, |i| post(urls[i % 2].clone(), client.0.clone(), client.1.clone(), poll.clone())).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, b)| *s == 200 || b["error"] == "invalid_grant"), "{results:?}");
    drop((a, b));
    schema.drop_blocking();
}
