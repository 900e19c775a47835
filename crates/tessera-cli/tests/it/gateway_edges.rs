//! Edges found by fuzzing the gateway (#30), each sent as raw bytes over a socket, checking both
//! the client's answer and what the upstream received: identity headers in CGI/WSGI spellings,
//! a protected header in two spellings, CONNECT and TRACE, absolute-form targets, and path bytes
//! that are not UTF-8 once decoded. docs/threat-model.md T-03, T-04.

use std::io::{Read as _, Write as _};
use std::sync::atomic::Ordering;

use serde_json::Value;

use crate::gateway::API;
use crate::gateway_attacks::{gateway_for, raw_from, token_of};

/// Writes `request` as is and reads the whole answer: (status, head, body).
fn raw(addr: &str, request: &str) -> (u16, String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_owned(), body.to_owned())
}

/// A server, a caller with `invoices:read` and its bearer header, and a gateway routing `/api` to
/// an echoing upstream whose requests are counted (the dir and runtime keep them alive).
fn api_gateway() -> (
    tempfile::TempDir,
    tokio::runtime::Runtime,
    crate::e2e::Server,
    Value,
    crate::gateway::Gateway,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    String,
) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, caller, gateway, upstream_count) = gateway_for(dir.path(), &runtime, ("jwt", "invoices:read"), |up| {
        format!(
            "\n[[routes]]\nprefix = \"/api\"\nupstream = \"{up}\"\naudience = \"{API}\"\nscopes = [\"invoices:read\"]\n"
        )
    });
    let bearer = format!("Bearer {}", token_of(&server, &caller));
    (dir, runtime, server, caller, gateway, upstream_count, bearer)
}

/// A header name as a WSGI/CGI upstream sees it.
fn normal(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

#[test]
fn no_spelling_of_an_identity_header_reaches_a_wsgi_style_upstream() {
    let (_dir, _runtime, _server, caller, gateway, upstream_count, bearer) = api_gateway();
    // One spelling per header in a request (two spellings of one are refused, below).
    let spoofed = [
        "X_Tessera_Sub",
        "x_tessera_client_id",
        "X_Tessera_Scope",
        "X_Forwarded_User",
        "X_Forwarded_For",
        "Remote_User",
        "X-Remote-User",
        "X-Forwarded-Email",
        "X-Forwarded-Groups",
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "x_auth_request_groups",
        "X_Real_IP",
        "X_HTTP_Method_Override",
        "Client_Cert",
    ];
    let mut headers = vec![("Authorization", bearer.as_str())];
    headers.extend(spoofed.iter().map(|name| (*name, "evil")));
    let (status, _, body) = raw_from("127.0.0.2", &gateway.addr, "/api/x", &headers);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    let received = seen["headers"].as_object().unwrap();
    for (name, value) in received {
        let protected = spoofed.iter().any(|s| normal(s) == normal(name));
        assert!(!(protected && value == "evil"), "{name}: {value} reached the upstream: {seen}");
    }
    assert_ne!(seen["headers"]["x-tessera-sub"], "evil");
    assert_eq!(seen["headers"]["x-tessera-client-id"], caller["client_id"]);
    // The other spellings, in a request of their own.
    let (status, _, body) = raw_from(
        "127.0.0.2",
        &gateway.addr,
        "/api/x",
        &[("Authorization", &bearer), ("Remote-User", "evil"), ("X_Remote_User", "evil"), ("X-Tessera-Sub", "evil")],
    );
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert!(seen["headers"].as_object().unwrap().values().all(|v| v != "evil"), "{seen}");

    // Two spellings of one protected header: refused, never forwarded.
    let before = upstream_count.load(Ordering::SeqCst);
    let (status, head, _) = raw_from(
        "127.0.0.2",
        &gateway.addr,
        "/api/x",
        &[("Authorization", &bearer), ("X-Tessera-Sub", "a"), ("X_Tessera_Sub", "b")],
    );
    assert_eq!(status, 400, "{head}");
    // `Transfer_Encoding` is not framing: the request is read by its Content-Length and the
    // header never reaches the upstream.
    let request = format!(
        "POST /api/x HTTP/1.1\r\nHost: {}\r\nAuthorization: {bearer}\r\nTransfer_Encoding: chunked\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
        gateway.addr
    );
    let (status, _, body) = raw(&gateway.addr, &request);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert!(seen["headers"].as_object().unwrap().keys().all(|k| normal(k) != "transfer-encoding"), "{seen}");
    assert_eq!(upstream_count.load(Ordering::SeqCst), before + 1, "only the well-formed request went on");
}

#[test]
fn connect_trace_foreign_absolute_targets_and_undecodable_paths_are_refused() {
    let (_dir, _runtime, _server, _caller, gateway, upstream_count, bearer) = api_gateway();
    let addr = gateway.addr.clone();
    let before = upstream_count.load(Ordering::SeqCst);
    for method in ["CONNECT", "TRACE"] {
        let request =
            format!("{method} /api/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n");
        let (status, head, _) = raw(&addr, &request);
        assert!(status == 405 || status == 400, "{method}: {head}");
        if status == 405 {
            assert!(head.to_ascii_lowercase().contains("allow: get"), "{head}");
        }
    }
    let foreign = format!(
        "GET http://evil.example/api/x HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(raw(&addr, &foreign).0, 400);
    for target in ["/api/%C0%AE%C0%AE/admin", "/api/%ff", "/api/%c2%85", "/api/%e0%80%ae"] {
        let (status, head, _) = raw_from("127.0.0.3", &addr, target, &[("Authorization", &bearer)]);
        assert_eq!(status, 400, "{target}: {head}");
    }
    assert_eq!(upstream_count.load(Ordering::SeqCst), before, "nothing refused reached the upstream");
    // The gateway's own origin in absolute form is routed by its path.
    let own = format!(
        "GET http://{addr}/api/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
    );
    let (status, _, body) = raw(&addr, &own);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["path"], "/api/x");
}

/// Writes `head` and `body`, then closes the writing side (a client that stops sending).
fn raw_then_close(addr: &str, request: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response)
}

#[test]
fn a_clients_broken_body_is_its_own_400_and_never_reaches_the_upstream() {
    let (_dir, _runtime, _server, _caller, gateway, upstream_count, bearer) = api_gateway();
    let addr = gateway.addr.clone();
    let before = upstream_count.load(Ordering::SeqCst);
    let chunked = |body: &str| {
        format!(
            "POST /api/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{body}"
        )
    };
    for body in [
        "z\r\n",
        "-1\r\nx\r\n0\r\n\r\n",
        "0x3\r\nabc\r\n0\r\n\r\n",
        "+1\r\na\r\n0\r\n\r\n",
        "99999999999999999999\r\nabc\r\n",
        "3\nabc\n0\n\n",
        "2\r\nabcdef\r\n0\r\n\r\n",
    ] {
        // The client keeps its side open: it gets the gateway's answer.
        let (status, head, _) = raw(&addr, &chunked(body));
        assert_eq!(status, 400, "{body:?}: {head}");
    }
    let short = format!(
        "POST /api/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {bearer}\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"
    );
    let (status, response) = raw_then_close(&addr, &short);
    assert!(status == 400 || status == 0, "{response}");
    assert!(!response.contains("502"), "{response}");
    assert_eq!(upstream_count.load(Ordering::SeqCst), before, "the upstream saw none of them");
    let metrics = crate::gateway::scrape(&addr);
    assert!(!metrics.contains("source=\"upstream\""), "{metrics}");
    assert!(metrics.contains("source=\"client\""), "{metrics}");
    // A well-formed chunked body is forwarded whole.
    let (status, _, response) = raw(&addr, &chunked("3\r\nabc\r\n0\r\n\r\n"));
    assert_eq!(status, 200, "{response}");
    assert_eq!(upstream_count.load(Ordering::SeqCst), before + 1);
}
