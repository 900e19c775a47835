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
const API: &str = "https://api.example.test";

struct Gateway {
    child: Child,
    addr: String,
}

impl Gateway {
    fn start(dir: &std::path::Path, config: &str) -> Gateway {
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
fn raw(addr: &str, target: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
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

/// An upstream that answers with what it received, and counts requests.
fn upstream(runtime: &tokio::runtime::Runtime) -> (String, Arc<AtomicUsize>) {
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
    let server = Server::start(dir.path(), free_port(), free_port());
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let create = |args: &[&str]| {
        let mut all = vec!["client", "create"];
        all.extend_from_slice(args);
        all.extend(["--admin-config", &admin, "--json"]);
        json_out(&tessera(&all))
    };
    let reader = create(&["--name", "gateway", "--introspection", "--audience", API]);
    let caller = create(&["--name", "billing", "--scope", "invoices:read", "--audience", API]);
    let (id, secret) = (caller["client_id"].as_str().unwrap(), caller["client_secret"].as_str().unwrap());
    let token_url = format!("{}/token", server.issuer);
    let token = || {
        post_form(&token_url, id, secret, &[("grant_type", "client_credentials")]).1["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (upstream_url, upstream_count) = upstream(&runtime);
    let listen = format!("127.0.0.1:{}", free_port());
    let gateway = Gateway::start(dir.path(), &config(&listen, &server.issuer, &reader, &upstream_url));
    let addr = gateway.addr.clone();
    let access = token();
    let bearer = format!("Bearer {access}");

    // Happy path; client-supplied identity headers never reach the upstream (GW-08).
    let (status, _, body) = raw(
        &addr,
        "/invoices/42?page=2",
        &[("Authorization", &bearer), ("X-Tessera-Sub", "admin"), ("X-Forwarded-User", "admin")],
    );
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
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
