//! `tessera gateway` as a real process between a client and a small upstream API, in front of a
//! real `tessera serve`: the jwt mode's happy path, SECURITY-TESTS.md c.9 GW-03/04/05/07/08,
//! path normalisation, RFC 9728 metadata, and JW-21: a revocation at the server is refused by the
//! gateway within one second (measured), and still after the gateway restarts.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::e2e::{Server, free_port, json_out, post_form, tessera, wait_ready};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");
pub(crate) const API: &str = "https://api.example.test";

pub(crate) struct Gateway {
    child: Child,
    pub(crate) addr: String,
}

impl Gateway {
    pub(crate) fn start(dir: &std::path::Path, config: &str) -> Gateway {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let addr = config.lines().find_map(|l| l.strip_prefix("listen = ")).unwrap().trim_matches('"').to_owned();
        let child = Command::new(BIN)
            .args(["gateway", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("gateway-{}.log", addr.replace(':', "-")))).unwrap())
            .spawn()
            .unwrap();
        wait_ready(&format!("http://{addr}/readyz"));
        Gateway { child, addr }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.1 GET (paths exactly as written: URL libraries would normalise them).
pub(crate) fn raw(addr: &str, target: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    get_on(std::net::TcpStream::connect(addr).unwrap(), addr, target, headers)
}

/// [`raw`] on a connection made already (e.g. from another source address).
pub(crate) fn get_on(
    mut stream: std::net::TcpStream,
    addr: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

/// The gateway's `/metrics` text.
pub(crate) fn scrape(addr: &str) -> String {
    let (status, head, body) = raw(addr, "/metrics", &[]);
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    body
}

/// An upstream that answers with what it received, and counts requests.
pub(crate) fn upstream(runtime: &tokio::runtime::Runtime) -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let echo = move |request: axum::extract::Request| {
        counted.fetch_add(1, Ordering::SeqCst);
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.to_str().unwrap_or("").to_owned())))
            .collect();
        let path = request.uri().path().to_owned();
        async move { axum::Json(json!({"path": path, "headers": headers})) }
    };
    runtime.spawn(async move { axum::serve(listener, axum::Router::new().fallback(echo)).await.unwrap() });
    (url, count)
}

/// A client_credentials access token of `id` from the server at `server_url`.
pub(crate) fn client_token(server_url: &str, id: &str, secret: &str) -> String {
    post_form(&format!("{server_url}/token"), id, secret, &[("grant_type", "client_credentials")]).1["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `tessera client create ARGS --admin-config ADMIN --json`.
pub(crate) fn create_client(admin: &str, args: &[&str]) -> Value {
    let mut all = vec!["client", "create"];
    all.extend_from_slice(args);
    all.extend(["--admin-config", admin, "--json"]);
    json_out(&tessera(&all))
}

/// A server with a resource-server client for the gateway and a caller with `invoices:read` for
/// the API; returns them and a fresh access token of the caller.
fn server_with_clients(dir: &std::path::Path) -> (Server, Value, Value, String) {
    let server = Server::start(dir, free_port(), free_port());
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let create = |args: &[&str]| create_client(&admin, args);
    let reader = create(&["--name", "gateway", "--introspection", "--audience", API]);
    let caller = create(&["--name", "billing", "--scope", "invoices:read", "--audience", API]);
    let token =
        client_token(&server.issuer, caller["client_id"].as_str().unwrap(), caller["client_secret"].as_str().unwrap());
    (server, reader, caller, token)
}

fn config(listen: &str, issuer: &str, reader: &Value, upstream: &str) -> String {
    format!(
        r#"listen = "{listen}"
issuer = "{issuer}"
client_id = "{id}"
client_secret = "{secret}"
public_origin = "http://{listen}"
max_feed_outage = 0

[[routes]]
prefix = "/invoices"
upstream = "{upstream}"
audience = "{API}"
scopes = ["invoices:read"]
methods = ["GET", "POST"]

[[routes]]
prefix = "/broken"
upstream = "http://127.0.0.1:1"
audience = "{API}"
"#,
        id = reader["client_id"].as_str().unwrap(),
        secret = reader["client_secret"].as_str().unwrap(),
    )
}

#[test]
fn the_gateway_admits_only_valid_tokens_and_refuses_a_revoked_one_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, reader, caller, first) = server_with_clients(dir.path());
    let (id, secret) = (caller["client_id"].as_str().unwrap(), caller["client_secret"].as_str().unwrap());
    let token = || client_token(&server.issuer, id, secret);
    let (upstream_url, upstream_count) = upstream(&runtime);
    let listen = format!("127.0.0.1:{}", free_port());
    let gateway = Gateway::start(dir.path(), &config(&listen, &server.issuer, &reader, &upstream_url));
    let addr = gateway.addr.clone();
    let access = first;
    let bearer = format!("Bearer {access}");

    // Happy path; client-supplied identity headers never reach the upstream (GW-08).
    let (status, _, body) = raw(
        &addr,
        "/invoices/42?page=2",
        &[
            ("Authorization", &bearer),
            ("X-Tessera-Sub", "admin"),
            ("X-Forwarded-User", "admin"),
            ("Mcp-Session-Id", "session-1"),
            ("Mcp-Protocol-Version", "2025-11-25"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    // An MCP server behind the gateway gets the protocol's own headers unchanged.
    assert_eq!(seen["headers"]["mcp-session-id"], "session-1");
    assert_eq!(seen["headers"]["mcp-protocol-version"], "2025-11-25");
    assert_eq!(seen["path"], "/invoices/42");
    assert_eq!(seen["headers"]["x-tessera-sub"], id);
    assert_eq!(seen["headers"]["x-tessera-scope"], "invoices:read");
    assert_eq!(seen["headers"]["authorization"], bearer.as_str());
    assert!(seen["headers"].get("x-forwarded-user").is_none());
    // GW-04: the scheme in any case, several spaces.
    assert_eq!(raw(&addr, "/invoices", &[("Authorization", &format!("bEaReR   {access}"))]).0, 200);
    let admitted = upstream_count.load(Ordering::SeqCst);

    // Refused before the upstream: no token (GW-03), a Basic header, a token in the query
    // (GW-07), two Authorization headers (GW-08), paths that are not in normal form, unknown
    // routes, a method the route does not allow.
    let (status, head, _) = raw(&addr, "/invoices", &[]);
    assert_eq!(status, 401);
    let metadata_url = format!("http://{listen}/.well-known/oauth-protected-resource/invoices");
    assert!(head.contains(&format!("resource_metadata=\"{metadata_url}\"")), "{head}");
    assert!(!head.contains("error="), "no error code without a token: {head}");
    assert_eq!(raw(&addr, "/invoices", &[("Authorization", "Basic Zm9vOmJhcg==")]).0, 401);
    assert_eq!(raw(&addr, &format!("/invoices?access_token={access}"), &[]).0, 401);
    assert_eq!(raw(&addr, "/invoices", &[("Authorization", &bearer), ("Authorization", &bearer)]).0, 400);
    for path in [
        "/invoices/../admin",
        "/invoices/%2e%2e/admin",
        "//invoices",
        "/invoices/..;/admin",
        "/invoices;x=1",
        "/invoices/%2F",
    ] {
        assert_eq!(raw(&addr, path, &[("Authorization", &bearer)]).0, 400, "{path}");
    }
    assert_eq!(raw(&addr, "/admin", &[("Authorization", &bearer)]).0, 404);
    assert_eq!(raw(&addr, "/invoicesX", &[("Authorization", &bearer)]).0, 404);
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "DELETE /invoices/1 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert_eq!(upstream_count.load(Ordering::SeqCst), admitted, "refused requests never reach the upstream");
    // An upstream that cannot be reached is 502, never 401 (GW-05).
    let (status, _, body) = raw(&addr, "/broken", &[("Authorization", &bearer)]);
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()["error"].clone()), (502, json!("bad_gateway")));
    // RFC 9728 metadata.
    let (status, _, body) = raw(&addr, "/.well-known/oauth-protected-resource/invoices", &[]);
    assert_eq!(status, 200);
    let metadata: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (metadata["resource"].as_str(), metadata["authorization_servers"][0].as_str()),
        (Some(API), Some(server.issuer.as_str()))
    );

    // /metrics: requests by route and status, errors by who caused them, the feed; only for
    // loopback peers not proxied.
    let metrics = scrape(&addr);
    for line in [
        r#"tessera_gateway_requests_total{route="/invoices",status="200",source="none"} 2"#,
        r#"tessera_gateway_requests_total{route="invalid",status="400",source="client"} 6"#,
        r#"tessera_gateway_requests_total{route="/broken",status="502",source="upstream"} 1"#,
        // Who caused each error answer: the client's bad paths, the unreachable upstream.
        r#"tessera_gateway_errors_total{route="invalid",source="client"} 6"#,
        r#"tessera_gateway_errors_total{route="/broken",source="upstream"} 1"#,
        r#"tessera_gateway_revocation_feed_current{audience="https://api.example.test"} 1"#,
        "tessera_gateway_request_duration_seconds_bucket{route=\"/invoices\",le=\"0.25\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert_eq!(raw(&addr, "/metrics", &[("X-Forwarded-For", "203.0.113.9")]).0, 403);

    // JW-21: revoke at the server; the gateway refuses within one second.
    let revoked = Instant::now();
    assert_eq!(post_form(&format!("{}/revoke", server.issuer), id, secret, &[("token", &access)]).0, 200);
    while raw(&addr, "/invoices", &[("Authorization", &bearer)]).0 != 401 {
        assert!(revoked.elapsed() < Duration::from_secs(1), "still admitted after {:?}", revoked.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("revocation at the server → gateway refusal: {:?}", revoked.elapsed());
    // After a restart the gateway still knows (it reads the feed from the start).
    drop(gateway);
    let gateway = Gateway::start(dir.path(), &config(&listen, &server.issuer, &reader, &upstream_url));
    assert_eq!(raw(&gateway.addr, "/invoices", &[("Authorization", &bearer)]).0, 401);
    let fresh = format!("Bearer {}", token());
    assert_eq!(raw(&gateway.addr, "/invoices", &[("Authorization", &fresh)]).0, 200);
    // The server goes away: the gateway fails closed with 503, never 401 (GW-05).
    server.kill();
    let gone = Instant::now();
    loop {
        let (status, _, _) = raw(&gateway.addr, "/invoices", &[("Authorization", &fresh)]);
        if status == 503 {
            break;
        }
        assert_eq!(status, 200);
        assert!(gone.elapsed() < Duration::from_secs(5), "the lost issuer was not noticed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(raw(&gateway.addr, "/readyz", &[]).0, 503);
}

/// A proxy in front of the server that counts `POST /introspect` calls; the server's issuer
/// is the proxy's URL, so everything (discovery, feed, introspection) goes through it.
fn counting_proxy(runtime: &tokio::runtime::Runtime, proxy_port: u16, server_port: u16) -> Arc<AtomicUsize> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let introspections = Arc::new(AtomicUsize::new(0));
    let counted = introspections.clone();
    let client: Client<_, axum::body::Body> = Client::builder(TokioExecutor::new()).build_http();
    let forward = move |mut request: axum::extract::Request| {
        let client = client.clone();
        if request.uri().path() == "/introspect" {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        async move {
            let target = format!("http://127.0.0.1:{server_port}{}", request.uri().path_and_query().unwrap());
            *request.uri_mut() = target.parse().unwrap();
            match client.request(request).await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(_) => axum::http::Response::builder().status(502).body(axum::body::Body::empty()).unwrap(),
            }
        }
    };
    let listener = runtime.block_on(tokio::net::TcpListener::bind(("127.0.0.1", proxy_port))).unwrap();
    runtime.spawn(async move { axum::serve(listener, axum::Router::new().fallback(forward)).await.unwrap() });
    introspections
}

// SECURITY-TESTS.md c.9 GW-01, GW-02, GW-09, GW-10, GW-12 in phantom mode.
#[test]
fn phantom_mode_forwards_a_jwt_for_an_opaque_token_introspected_once() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (proxy_port, server_port) = (free_port(), free_port());
    let introspections = counting_proxy(&runtime, proxy_port, server_port);
    let issuer = format!("http://127.0.0.1:{proxy_port}");
    let server = Server::start_with(dir.path(), server_port, free_port(), &["--issuer", &issuer]);
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let create = |args: &[&str]| create_client(&admin, args);
    let reader = create(&["--name", "gateway", "--introspection", "--audience", API]);
    let caller = create(&["--name", "reports", "--format", "opaque", "--scope", "reports:read", "--audience", API]);
    let jwt_caller = create(&["--name", "jwt", "--scope", "reports:read", "--audience", API]);
    let (id, secret) =
        (caller["client_id"].as_str().unwrap().to_owned(), caller["client_secret"].as_str().unwrap().to_owned());
    let token = |id: &str, secret: &str| client_token(&server.issuer, id, secret);
    let (upstream_url, upstream_count) = upstream(&runtime);
    let listen = format!("127.0.0.1:{}", free_port());
    let config = format!(
        "listen = \"{listen}\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\npublic_origin = \"http://{listen}\"\n\n[[routes]]\nprefix = \"/reports\"\nupstream = \"{upstream_url}\"\naudience = \"{API}\"\nscopes = [\"reports:read\"]\nmode = \"phantom\"\n",
        reader["client_id"].as_str().unwrap(),
        reader["client_secret"].as_str().unwrap(),
    );
    let gateway = Gateway::start(dir.path(), &config);
    let addr = gateway.addr.clone();
    let before = introspections.load(Ordering::SeqCst);

    // GW-01: the upstream gets a JWT for the opaque token, never the opaque token; one
    // introspection serves every request with that token.
    let opaque = token(&id, &secret);
    assert!(opaque.starts_with("tat_"));
    let mut jwt = String::new();
    for _ in 0..5 {
        let (status, _, body) = raw(&addr, "/reports/q3", &[("Authorization", &format!("Bearer {opaque}"))]);
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains(&opaque), "the opaque token reached the upstream");
        let seen: Value = serde_json::from_str(&body).unwrap();
        jwt = seen["headers"]["authorization"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_owned();
    }
    assert_eq!(introspections.load(Ordering::SeqCst) - before, 1, "one introspection per token");
    let metrics = scrape(&addr);
    assert!(metrics.contains(r#"tessera_gateway_exchanges_total{mode="phantom",outcome="miss"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"tessera_gateway_exchanges_total{mode="phantom",outcome="hit"} 4"#), "{metrics}");
    let claims = tessera_test_support::jwt_claims(&jwt);
    let header = tessera_test_support::jwt_claims(&format!("x.{}", jwt.split('.').next().unwrap()));
    assert_eq!(
        (header["typ"].as_str(), claims["client_id"].as_str(), claims["aud"].as_str()),
        (Some("at+jwt"), Some(id.as_str()), Some(API))
    );
    let introspected = post_form(
        &format!("{}/introspect", server.issuer),
        reader["client_id"].as_str().unwrap(),
        reader["client_secret"].as_str().unwrap(),
        &[("token", &opaque)],
    )
    .1;
    assert_eq!(claims["jti"], introspected["jti"], "the JWT stands for this very token");

    // GW-02, GW-12: unknown opaque tokens and JWTs sent directly are refused before the upstream.
    let admitted = upstream_count.load(Ordering::SeqCst);
    let (status, head, _) = raw(
        &addr,
        "/reports",
        &[("Authorization", "Bearer tat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
    );
    assert_eq!(status, 401);
    assert!(head.contains("error=\"invalid_token\""), "{head}");
    let direct = token(jwt_caller["client_id"].as_str().unwrap(), jwt_caller["client_secret"].as_str().unwrap());
    assert_eq!(raw(&addr, "/reports", &[("Authorization", &format!("Bearer {direct}"))]).0, 401);
    assert_eq!(raw(&addr, "/reports", &[]).0, 401);
    assert_eq!(upstream_count.load(Ordering::SeqCst), admitted);

    // GW-09: many tokens at once, each request sees its own token's identity.
    let tokens: Vec<String> = (0..8).map(|_| token(&id, &secret)).collect();
    let threads: Vec<_> = tokens
        .iter()
        .cloned()
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| {
                        let (status, _, body) = raw(&addr, "/reports", &[("Authorization", &format!("Bearer {t}"))]);
                        assert_eq!(status, 200, "{body}");
                        let seen: Value = serde_json::from_str(&body).unwrap();
                        seen["headers"]["x-tessera-jti"].as_str().unwrap().to_owned()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let jtis: Vec<Vec<String>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (token, seen) in tokens.iter().zip(&jtis) {
        let expected = post_form(
            &format!("{}/introspect", server.issuer),
            reader["client_id"].as_str().unwrap(),
            reader["client_secret"].as_str().unwrap(),
            &[("token", token)],
        )
        .1["jti"]
            .clone();
        assert!(
            seen.iter().all(|jti| *jti == expected.as_str().unwrap()),
            "a response carried another token's identity"
        );
    }

    // GW-10: revoked at the server, refused by the gateway within a second although cached.
    let revoked = Instant::now();
    assert_eq!(post_form(&format!("{}/revoke", server.issuer), &id, &secret, &[("token", &opaque)]).0, 200);
    while raw(&addr, "/reports", &[("Authorization", &format!("Bearer {opaque}"))]).0 != 401 {
        assert!(revoked.elapsed() < Duration::from_secs(1), "still admitted after {:?}", revoked.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("phantom: revocation at the server → gateway refusal: {:?}", revoked.elapsed());
}

// Issue #7 item 4: gateway.toml reloads without a restart; a broken file leaves the routes as they were.
#[test]
fn the_gateway_configuration_reloads_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, reader, _, token) = server_with_clients(dir.path());
    let bearer = format!("Bearer {token}");
    let (upstream_url, _) = upstream(&runtime);
    let listen = format!("127.0.0.1:{}", free_port());
    let original = config(&listen, &server.issuer, &reader, &upstream_url);
    let gateway = Gateway::start(dir.path(), &original);
    let addr = gateway.addr.clone();
    assert_eq!(raw(&addr, "/reports", &[("Authorization", &bearer)]).0, 404);
    let hangup =
        || assert!(Command::new("kill").args(["-HUP", &gateway.child.id().to_string()]).status().unwrap().success());
    let until = |path: &str, status: u16| {
        let start = Instant::now();
        while raw(&addr, path, &[("Authorization", &bearer)]).0 != status {
            assert!(start.elapsed() < Duration::from_secs(10), "{path} never answered {status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // A new route appears.
    let extended = format!(
        "{original}\n[[routes]]\nprefix = \"/reports\"\nupstream = \"{upstream_url}\"\naudience = \"{API}\"\nscopes = [\"invoices:read\"]\n"
    );
    std::fs::write(dir.path().join("gateway.toml"), &extended).unwrap();
    hangup();
    until("/reports", 200);
    // A broken file changes nothing.
    std::fs::write(dir.path().join("gateway.toml"), "routes = 'not a list'").unwrap();
    hangup();
    let log = dir.path().join(format!("gateway-{}.log", addr.replace(':', "-")));
    let start = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("not reloaded") {
        assert!(start.elapsed() < Duration::from_secs(10), "the broken file was not reported");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(raw(&addr, "/reports", &[("Authorization", &bearer)]).0, 200);
    assert_eq!(raw(&addr, "/invoices", &[("Authorization", &bearer)]).0, 200);
    // Taking the route away again.
    std::fs::write(dir.path().join("gateway.toml"), &original).unwrap();
    hangup();
    until("/reports", 404);
}

// SECURITY-TESTS.md c.9 ST-01, ST-02, ST-03: split-token mode.
#[test]
fn split_mode_reassembles_and_verifies_the_jwt_and_honours_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, reader, _, _) = server_with_clients(dir.path());
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let split = json_out(&tessera(&[
        "client",
        "create",
        "--name",
        "split",
        "--format",
        "split",
        "--scope",
        "invoices:read",
        "--audience",
        API,
        "--admin-config",
        &admin,
        "--json",
    ]));
    let (id, secret) = (split["client_id"].as_str().unwrap(), split["client_secret"].as_str().unwrap());
    let part = client_token(&server.issuer, id, secret);
    assert!(!part.contains('.'));
    let (upstream_url, upstream_count) = upstream(&runtime);
    let listen = format!("127.0.0.1:{}", free_port());
    let config = config(&listen, &server.issuer, &reader, &upstream_url)
        .replace("methods = [\"GET\", \"POST\"]\n", "methods = [\"GET\", \"POST\"]\nmode = \"split\"\n");
    let gateway = Gateway::start(dir.path(), &config);
    let addr = gateway.addr.clone();

    // ST-01: the upstream gets the whole, verified JWT; the client only ever held its signature.
    let (status, _, body) = raw(&addr, "/invoices", &[("Authorization", &format!("Bearer {part}"))]);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    let forwarded = seen["headers"]["authorization"].as_str().unwrap().strip_prefix("Bearer ").unwrap().to_owned();
    assert!(forwarded.ends_with(&format!(".{part}")) && forwarded.split('.').count() == 3);
    assert_eq!(seen["headers"]["x-tessera-client-id"], id);

    // ST-02: a random signature part, a modified one, a whole JWT: refused before the upstream.
    let admitted = upstream_count.load(Ordering::SeqCst);
    let mut modified = part.clone().into_bytes();
    modified[10] = if modified[10] == b'A' { b'B' } else { b'A' };
    let modified = String::from_utf8(modified).unwrap();
    for token in ["A".repeat(86), modified, forwarded.clone()] {
        assert_eq!(raw(&addr, "/invoices", &[("Authorization", &format!("Bearer {token}"))]).0, 401, "{token:.20}");
    }
    assert_eq!(upstream_count.load(Ordering::SeqCst), admitted);

    // ST-03: revoked at the server (with the signature part), refused within a second.
    let revoked = Instant::now();
    assert_eq!(post_form(&format!("{}/revoke", server.issuer), id, secret, &[("token", &part)]).0, 200);
    while raw(&addr, "/invoices", &[("Authorization", &format!("Bearer {part}"))]).0 != 401 {
        assert!(revoked.elapsed() < Duration::from_secs(1), "still admitted after {:?}", revoked.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A token request with extra headers (a DPoP proof, a proxy's `Client-Cert`).
pub(crate) fn token_with(issuer: &str, client: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        tessera_test_support::install_crypto_provider();
        let mut request = reqwest::Client::new()
            .post(format!("{issuer}/token"))
            .basic_auth(client["client_id"].as_str().unwrap(), client["client_secret"].as_str())
            .form(&[("grant_type", "client_credentials")]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let res = request.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    })
}

/// Every mode enforces sender constraints: DPoP-bound JWTs and phantom tokens need a fresh
/// proof for this very request (whose `ath` hashes what the client holds), and certificate-bound
/// tokens need their certificate, believed from a trusted TLS-terminating proxy (RFC 9440).
#[test]
fn dpop_and_certificate_binding_are_enforced_at_the_gateway() {
    use tessera_test_support::{DpopKey, TestCert, wall_clock_now};
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = Server::start_with(dir.path(), free_port(), free_port(), &["--trusted-proxies", "127.0.0.1/32"]);
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let reader = create_client(&admin, &["--name", "gateway", "--introspection", "--audience", API]);
    let scoped = ["--scope", "invoices:read", "--audience", API];
    let dpop_jwt = create_client(&admin, &[&["--name", "dpop-jwt", "--require-dpop"][..], &scoped].concat());
    let dpop_opaque = create_client(
        &admin,
        &[&["--name", "dpop-opaque", "--require-dpop", "--format", "opaque"][..], &scoped].concat(),
    );
    let bound = create_client(&admin, &[&["--name", "mtls", "--certificate-bound"][..], &scoped].concat());
    let (upstream_url, upstream_count) = upstream(&runtime);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut config = config(&listen, &server.issuer, &reader, &upstream_url);
    config = config.replace("max_feed_outage = 0\n", "max_feed_outage = 0\ntrusted_proxies = [\"127.0.0.1/32\"]\n");
    config.push_str(&format!(
        "\n[[routes]]\nprefix = \"/reports\"\nupstream = \"{upstream_url}\"\naudience = \"{API}\"\nmode = \"phantom\"\n"
    ));
    let gateway = Gateway::start(dir.path(), &config);
    let addr = gateway.addr.clone();
    let token_url = format!("{}/token", server.issuer);

    let key = DpopKey::default();
    for (client, path) in [(&dpop_jwt, "/invoices/7"), (&dpop_opaque, "/reports/7")] {
        let (status, issued) =
            token_with(&server.issuer, client, &[("DPoP", &key.proof("POST", &token_url, wall_clock_now(), None))]);
        assert_eq!((status, issued["token_type"].as_str()), (200, Some("DPoP")), "{issued}");
        let token = issued["access_token"].as_str().unwrap();
        let dpop = format!("DPoP {token}");
        let url = format!("http://{listen}{path}");
        let proof = key.proof("GET", &url, wall_clock_now(), Some(token));
        let (status, _, body) = raw(&addr, path, &[("Authorization", &dpop), ("DPoP", &proof)]);
        assert_eq!(status, 200, "{path}: {body}");
        let seen: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(seen["headers"]["x-tessera-client-id"], client["client_id"]);
        if path.starts_with("/reports") {
            assert!(!body.contains(token), "the opaque token never reaches the upstream");
        }
        let before = upstream_count.load(Ordering::SeqCst);
        // The same proof again, a proof for another URL or by another key, no proof, or the
        // bound token as a bearer token: all refused before the upstream.
        let (status, head, _) = raw(&addr, path, &[("Authorization", &dpop), ("DPoP", &proof)]);
        assert_eq!(status, 401, "{path}: a replayed proof");
        assert!(head.contains("DPoP realm="), "{head}");
        let elsewhere = key.proof("GET", &format!("http://{listen}/elsewhere"), wall_clock_now(), Some(token));
        assert_eq!(raw(&addr, path, &[("Authorization", &dpop), ("DPoP", &elsewhere)]).0, 401, "{path}");
        let stranger = DpopKey::default().proof("GET", &url, wall_clock_now(), Some(token));
        assert_eq!(raw(&addr, path, &[("Authorization", &dpop), ("DPoP", &stranger)]).0, 401, "{path}");
        assert_eq!(raw(&addr, path, &[("Authorization", &dpop)]).0, 401, "{path}: no proof");
        let fresh = key.proof("GET", &url, wall_clock_now(), Some(token));
        assert_eq!(raw(&addr, path, &[("Authorization", &format!("Bearer {token}")), ("DPoP", &fresh)]).0, 401);
        // `ath` must hash what the client sent, not something else.
        let wrong_ath = key.proof("GET", &url, wall_clock_now(), Some("another-token"));
        assert_eq!(raw(&addr, path, &[("Authorization", &dpop), ("DPoP", &wrong_ath)]).0, 401, "{path}");
        assert_eq!(upstream_count.load(Ordering::SeqCst), before, "{path}: nothing refused reached the upstream");
    }

    // Certificate-bound (RFC 8705): the server and the gateway each believe the certificate of
    // the TLS-terminating proxy in front of them (here: loopback, as configured).
    let cert = TestCert::self_signed("billing");
    let other = TestCert::self_signed("billing");
    let (status, issued) = token_with(&server.issuer, &bound, &[("Client-Cert", &cert.client_cert_header())]);
    assert_eq!(status, 200, "{issued}");
    let token = issued["access_token"].as_str().unwrap();
    assert!(tessera_test_support::jwt_claims(token)["cnf"]["x5t#S256"].is_string());
    let bearer = format!("Bearer {token}");
    let (status, _, body) =
        raw(&addr, "/invoices/9", &[("Authorization", &bearer), ("Client-Cert", &cert.client_cert_header())]);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert!(seen["headers"].get("client-cert").is_none(), "certificate headers stop at the gateway");
    assert_eq!(
        raw(&addr, "/invoices/9", &[("Authorization", &bearer), ("Client-Cert", &other.client_cert_header())]).0,
        401
    );
    assert_eq!(raw(&addr, "/invoices/9", &[("Authorization", &bearer)]).0, 401, "no certificate");
    assert_eq!(raw(&addr, "/invoices/9", &[("Authorization", &bearer), ("Client-Cert", ":bm90IGEgY2VydA==:")]).0, 401);
}

/// `tessera apikey create` for a client, named `nightly`: the JSON it prints.
pub(crate) fn create_api_key(admin: &str, client_id: &str) -> Value {
    json_out(&crate::e2e::tessera(&[
        "apikey",
        "create",
        "--client",
        client_id,
        "--name",
        "nightly",
        "--admin-config",
        admin,
        "--json",
    ]))
}

/// SECURITY-TESTS c.10 AK-02/AK-03 through the gateway: API keys only on routes that allow them
/// (never in a URL), exchanged once for a JWT the upstream gets instead; `tessera apikey revoke`
/// is in force at the gateway within a second, for the key and for tokens exchanged for it.
#[test]
fn api_keys_work_where_allowed_and_their_revocation_reaches_the_gateway_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, reader, caller, _) = server_with_clients(dir.path());
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let created = create_api_key(&admin, caller["client_id"].as_str().unwrap());
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let listed = json_out(&crate::e2e::tessera(&["apikey", "list", "--admin-config", &admin, "--json"]));
    assert_eq!(listed["api_keys"][0]["id"], id.as_str());
    assert!(!listed.to_string().contains(&key[16..]), "listing never shows the key");
    let (upstream_url, upstream_count) = upstream(&runtime);
    let listen = format!("127.0.0.1:{}", free_port());
    let mut config = config(&listen, &server.issuer, &reader, &upstream_url);
    config = config.replacen("methods = [\"GET\", \"POST\"]\n", "methods = [\"GET\", \"POST\"]\napi_keys = true\n", 1);
    config.push_str(&format!(
        "\n[[routes]]\nprefix = \"/reports\"\nupstream = \"{upstream_url}\"\naudience = \"{API}\"\n"
    ));
    let gateway = Gateway::start(dir.path(), &config);
    let addr = gateway.addr.clone();
    let bearer = format!("Bearer {key}");

    let (status, _, body) = raw(&addr, "/invoices/1", &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert!(!body.contains(&key), "the key never reaches the upstream");
    assert_eq!(seen["headers"]["x-tessera-client-id"], id.as_str());
    assert_eq!(seen["headers"]["x-tessera-sub"], caller["client_id"]);
    let before = upstream_count.load(Ordering::SeqCst);
    assert_eq!(raw(&addr, "/reports/1", &[("Authorization", &bearer)]).0, 401, "a route without api_keys");
    assert_eq!(raw(&addr, &format!("/invoices/1?api_key={key}"), &[]).0, 401, "AK-03: never in a URL");
    assert_eq!(raw(&addr, &format!("/invoices/1?x={key}"), &[("Authorization", &bearer)]).0, 401);
    assert_eq!(raw(&addr, "/invoices/1", &[("Authorization", &format!("Bearer {}x", &key[..71]))]).0, 401);
    assert_eq!(upstream_count.load(Ordering::SeqCst), before);

    // A token exchanged for the key (RFC 8693) works until the key is revoked.
    let (status, exchanged) = {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let res = reqwest::Client::new()
                .post(format!("{}/token", server.issuer))
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                    ("subject_token", key.as_str()),
                    ("subject_token_type", "urn:tessera:params:oauth:token-type:api-key"),
                ])
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        })
    };
    assert_eq!(status, 200, "{exchanged}");
    let exchanged = format!("Bearer {}", exchanged["access_token"].as_str().unwrap());
    assert_eq!(raw(&addr, "/reports/1", &[("Authorization", &exchanged)]).0, 200);

    let revoke = crate::e2e::tessera(&["apikey", "revoke", &id, "--admin-config", &admin]);
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    let revoked = Instant::now();
    while raw(&addr, "/invoices/1", &[("Authorization", &bearer)]).0 != 401 {
        assert!(revoked.elapsed() < Duration::from_secs(1), "the key still admitted after {:?}", revoked.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("API key revoked → refused at the gateway: {:?}", revoked.elapsed());
    while raw(&addr, "/reports/1", &[("Authorization", &exchanged)]).0 != 401 {
        assert!(revoked.elapsed() < Duration::from_secs(1), "the exchanged token still admitted");
        std::thread::sleep(Duration::from_millis(20));
    }
}
