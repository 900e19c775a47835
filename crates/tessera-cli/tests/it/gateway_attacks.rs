//! Attacks on `tessera gateway` as a real process in front of a real `tessera serve`, made as a
//! stranger would make them: raw request targets written to the socket (no client-side
//! normalisation), several source addresses (all of 127.0.0.0/8 is loopback), floods bounded in
//! count. docs/threat-model.md T-02, T-03, T-04; each test failed before its fix (#23).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::e2e::{Server, free_port};
use crate::gateway::{API, Gateway, client_token, create_client, get_on, scrape, upstream};

/// A raw HTTP/1.1 GET from `source` (e.g. `127.0.0.2`), target and headers exactly as written.
pub(crate) fn raw_from(source: &str, addr: &str, target: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(addr.parse().unwrap()).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    get_on(stream, addr, target, headers)
}

fn gateway_toml(listen: &str, issuer: &str, reader: &Value, routes: &str) -> String {
    format!(
        "listen = \"{listen}\"\nissuer = \"{issuer}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\npublic_origin = \"http://{listen}\"\nmax_feed_outage = 0\n{routes}",
        reader["client_id"].as_str().unwrap(),
        reader["client_secret"].as_str().unwrap(),
    )
}

/// A server, the gateway's resource-server client, and a caller of `format` with `scope`.
fn server_and_caller(dir: &std::path::Path, format: &str, scope: &str) -> (Server, Value, Value) {
    let server = Server::start(dir, free_port(), free_port());
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let reader = create_client(&admin, &["--name", "gateway", "--introspection", "--audience", API]);
    let caller = create_client(&admin, &["--name", "caller", "--format", format, "--scope", scope, "--audience", API]);
    (server, reader, caller)
}

/// A server with a caller of `format` and `scope`, and a gateway with `routes` (a function of the
/// echoing upstream's URL) in front of it; with the upstream's request count.
pub(crate) fn gateway_for(
    dir: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
    (format, scope): (&str, &str),
    routes: impl Fn(&str) -> String,
) -> (Server, Value, Gateway, Arc<AtomicUsize>) {
    let (server, reader, caller) = server_and_caller(dir, format, scope);
    let (upstream_url, upstream_count) = upstream(runtime);
    let listen = format!("127.0.0.1:{}", free_port());
    let gateway = Gateway::start(dir, &gateway_toml(&listen, &server.issuer, &reader, &routes(&upstream_url)));
    (server, caller, gateway, upstream_count)
}

pub(crate) fn token_of(server: &Server, caller: &Value) -> String {
    client_token(&server.issuer, caller["client_id"].as_str().unwrap(), caller["client_secret"].as_str().unwrap())
}

// Regression: #23. With `/api` (read) and `/api/admin` (admin), `/api/%61dmin/x` matched `/api`
// and was forwarded as is; upstreams that decode before routing served `/api/admin/x`.
#[test]
fn encoded_paths_cannot_walk_past_a_nested_route() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, caller, gateway, upstream_count) = gateway_for(dir.path(), &runtime, ("jwt", "invoices:read"), |up| {
        format!(
            "\n[[routes]]\nprefix = \"/api\"\nupstream = \"{up}\"\naudience = \"{API}\"\nscopes = [\"invoices:read\"]\n\n[[routes]]\nprefix = \"/api/admin\"\nupstream = \"{up}\"\naudience = \"{API}\"\nscopes = [\"invoices:admin\"]\n"
        )
    });
    let bearer = format!("Bearer {}", token_of(&server, &caller));
    let get = |target: &str| raw_from("127.0.0.2", &gateway.addr, target, &[("Authorization", &bearer)]);

    assert_eq!(get("/api/admin/x").0, 403, "the admin route needs its scope");
    for target in ["/api/%61dmin/x", "/api/%61%64%6D%69%6E/x", "/api/admi%6E"] {
        let (status, head, _) = get(target);
        assert_eq!(status, 403, "{target} is /api/admin…: {head}");
        assert!(head.contains("insufficient_scope"), "{head}");
    }
    let before = upstream_count.load(Ordering::SeqCst);
    for target in ["/api/%2561dmin/x", "/api%2Fadmin/x", "/api/%2e%2e/api/admin", "/api/%5Cadmin", "/api/%3Badmin"] {
        assert_eq!(get(target).0, 400, "{target}");
    }
    assert_eq!(upstream_count.load(Ordering::SeqCst), before, "nothing refused reached the upstream");
    // What passes is forwarded in exactly its canonical form; case stays significant.
    let (status, _, body) = get("/api/%7e%41x?q=%61");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["path"], "/api/~Ax");
    assert_eq!(get("/API/admin/x").0, 404, "/API is no route");
}

// Regression: #23. Routing headers from the client reached the upstream, and `Connection:
// authorization` made the gateway drop the verified `Authorization` before forwarding.
#[test]
fn only_the_gateway_speaks_for_the_client_to_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, caller, gateway, upstream_count) = gateway_for(dir.path(), &runtime, ("jwt", "invoices:read"), |up| {
        format!(
            "\n[[routes]]\nprefix = \"/api\"\nupstream = \"{up}\"\naudience = \"{API}\"\nscopes = [\"invoices:read\"]\n"
        )
    });
    let bearer = format!("Bearer {}", token_of(&server, &caller));
    let spoofed = [
        ("Forwarded", "for=6.6.6.6;proto=https;host=admin.internal"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Host", "admin.internal"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Prefix", "/admin"),
        ("X-Forwarded-Port", "443"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Client-IP", "6.6.6.6"),
        ("True-Client-IP", "6.6.6.6"),
        ("X-Original-URL", "/api/admin"),
        ("X-Rewrite-URL", "/api/admin"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-HTTP-Method", "DELETE"),
        ("X-Method-Override", "DELETE"),
    ];
    let mut headers = vec![("Authorization", bearer.as_str())];
    headers.extend(spoofed);
    let (status, _, body) = raw_from("127.0.0.2", &gateway.addr, "/api/x", &headers);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    for (name, _) in spoofed {
        let name = name.to_ascii_lowercase();
        let own = ["x-forwarded-for", "x-forwarded-host", "x-forwarded-proto"].contains(&name.as_str());
        if !own {
            assert!(seen["headers"].get(&name).is_none(), "{name} reached the upstream: {seen}");
        }
    }
    // The gateway's own, from what it saw.
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.2");
    assert_eq!(seen["headers"]["x-forwarded-host"], gateway.addr.as_str());
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(seen["headers"]["authorization"], bearer.as_str());

    let before = upstream_count.load(Ordering::SeqCst);
    for connection in ["authorization", "close, Authorization", "cookie", "x-tessera-sub", "dpop"] {
        let headers = [("Authorization", bearer.as_str()), ("Connection", connection)];
        assert_eq!(raw_from("127.0.0.2", &gateway.addr, "/api/x", &headers).0, 400, "{connection}");
    }
    assert_eq!(upstream_count.load(Ordering::SeqCst), before);
    let headers = [("Authorization", bearer.as_str()), ("Connection", "keep-alive")];
    assert_eq!(raw_from("127.0.0.2", &gateway.addr, "/api/x", &headers).0, 200);
}

/// 200 junk credentials (`junk(address, i)`) at `/reports/q3` from each of two addresses: each
/// address causes a bounded number of lookups (401), and the rest are refused (429).
fn flood_is_bounded(gateway: &Gateway, junk: impl Fn(&str, usize) -> String) {
    let mut statuses = std::collections::BTreeMap::<(&str, u16), usize>::new();
    for attacker in ["127.0.0.2", "127.0.0.3"] {
        for i in 0..200 {
            let junk = junk(attacker, i);
            let (status, _, _) = raw_from(attacker, &gateway.addr, "/reports/q3", &[("Authorization", &junk)]);
            *statuses.entry((attacker, status)).or_default() += 1;
        }
    }
    for attacker in ["127.0.0.2", "127.0.0.3"] {
        let looked_up = statuses.get(&(attacker, 401)).copied().unwrap_or(0);
        let throttled = statuses.get(&(attacker, 429)).copied().unwrap_or(0);
        assert_eq!(looked_up + throttled, 200, "only 401 and 429: {statuses:?}");
        assert!((20..=40).contains(&looked_up), "each address gets a bounded number of lookups: {statuses:?}");
    }
}

// Regression: #23. 400 junk `tat_…` references made the gateway introspect each one with its
// single resource-server client; the server's scan throttle then refused that client, and every
// request with a token not yet cached got 502, valid ones included.
#[test]
fn a_flood_of_junk_tokens_does_not_take_a_phantom_route_down() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, caller, gateway, _) = gateway_for(dir.path(), &runtime, ("opaque", "reports:read"), |up| {
        format!(
            "\n[[routes]]\nprefix = \"/reports\"\nupstream = \"{up}\"\naudience = \"{API}\"\nscopes = [\"reports:read\"]\nmode = \"phantom\"\n"
        )
    });

    flood_is_bounded(&gateway, |attacker, i| {
        format!("Bearer tat_{attacker}_{i:04}_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    });
    // A junk token seen before is refused from memory.
    let junk = "Bearer tat_127.0.0.2_0000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_eq!(raw_from("127.0.0.4", &gateway.addr, "/reports/q3", &[("Authorization", junk)]).0, 401);
    assert!(scrape(&gateway.addr).contains(r#"outcome="negative""#));
    // A valid token the gateway has never seen, from elsewhere, is served.
    for _ in 0..3 {
        let bearer = format!("Bearer {}", token_of(&server, &caller));
        let (status, _, body) = raw_from("127.0.0.1", &gateway.addr, "/reports/q3", &[("Authorization", &bearer)]);
        assert_eq!(status, 200, "{body}");
    }
}

// The same flood with junk API keys at an `api_keys` route (T-02b): each miss is looked up with
// the gateway's one resource-server client, so before #23 the same throttle took the route down
// for every key the gateway had not cached.
#[test]
fn a_flood_of_junk_api_keys_does_not_take_an_api_key_route_down() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, caller, gateway, _) = gateway_for(dir.path(), &runtime, ("jwt", "reports:read"), |up| {
        format!(
            "\n[[routes]]\nprefix = \"/reports\"\nupstream = \"{up}\"\naudience = \"{API}\"\nscopes = [\"reports:read\"]\napi_keys = true\n"
        )
    });
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let created = crate::gateway::create_api_key(&admin, caller["client_id"].as_str().unwrap());
    let key = created["key"].as_str().unwrap().to_owned();

    // Well-formed: the same prefix and length as a real key, so each one is looked up.
    flood_is_bounded(&gateway, |attacker, i| {
        format!("Bearer tessera_sak_{:A<60}", format!("{}x{i}", attacker.replace('.', "")))
    });
    // The real key, never seen by the gateway before, is served from elsewhere.
    let bearer = format!("Bearer {key}");
    let (status, _, body) = raw_from("127.0.0.1", &gateway.addr, "/reports/q3", &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
}

/// A response header's value from a raw response head.
fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
    })
}

// Regression: #23. The gateway's DPoP replay cache is per process and it issued no nonces: a
// proof (iat window five minutes and more) replayed at another gateway node. Routes can now
// require nonces that every gateway sharing the key accepts; the iat window is 60 s.
#[test]
fn gateway_dpop_nonces_work_across_nodes_and_bound_replays() {
    use tessera_test_support::{DpopKey, wall_clock_now};
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let server = Server::start(dir.path(), free_port(), free_port());
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let reader = create_client(&admin, &["--name", "gateway", "--introspection", "--audience", API]);
    let client =
        create_client(&admin, &["--name", "dpop", "--require-dpop", "--scope", "invoices:read", "--audience", API]);
    let (upstream_url, _) = upstream(&runtime);
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    // Two gateway nodes behind one public origin, sharing the nonce key.
    let origin_port = free_port();
    let nodes: Vec<Gateway> = (0..2)
        .map(|i| {
            let listen = format!("127.0.0.1:{}", if i == 0 { origin_port } else { free_port() });
            let node_dir = dir.path().join(format!("node-{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let routes = format!(
                "dpop_nonce_key = \"{key}\"\n\n[[routes]]\nprefix = \"/api\"\nupstream = \"{upstream_url}\"\naudience = \"{API}\"\ndpop_nonce = true\n"
            );
            let config = gateway_toml(&listen, &server.issuer, &reader, &routes)
                .replace(&format!("public_origin = \"http://{listen}\""), &format!("public_origin = \"http://127.0.0.1:{origin_port}\""));
            Gateway::start(&node_dir, &config)
        })
        .collect();
    let dpop_key = DpopKey::default();
    let token_url = format!("{}/token", server.issuer);
    let (status, issued) = crate::gateway::token_with(
        &server.issuer,
        &client,
        &[("DPoP", &dpop_key.proof("POST", &token_url, wall_clock_now(), None))],
    );
    assert_eq!(status, 200, "{issued}");
    let token = issued["access_token"].as_str().unwrap().to_owned();
    let url = format!("http://127.0.0.1:{origin_port}/api/x");
    let authorization = format!("DPoP {token}");
    let proof = |nonce: Option<&str>, iat: u64| {
        let (header, mut claims) = dpop_key.parts("GET", &url, iat, Some(&token));
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        dpop_key.sign(&header, &claims)
    };
    let call = |node: &Gateway, proof: &str| {
        raw_from("127.0.0.2", &node.addr, "/api/x", &[("Authorization", &authorization), ("DPoP", proof)])
    };

    // Without a nonce: 401 use_dpop_nonce, and a nonce to use.
    let (status, head, _) = call(&nodes[0], &proof(None, wall_clock_now()));
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("use_dpop_nonce"), "{head}");
    let nonce = header_of(&head, "dpop-nonce").unwrap();
    // A nonce from node 0 works at node 1, and every answer brings a fresh one.
    let (status, head, body) = call(&nodes[1], &proof(Some(&nonce), wall_clock_now()));
    assert_eq!(status, 200, "{head}{body}");
    assert!(header_of(&head, "dpop-nonce").is_some());
    // A forged nonce, or a proof older than the 60 s iat window, is refused.
    let (status, head, _) = call(&nodes[1], &proof(Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), wall_clock_now()));
    assert_eq!(status, 401);
    assert!(head.contains("use_dpop_nonce"), "{head}");
    let (status, head, _) = call(&nodes[0], &proof(Some(&nonce), wall_clock_now() - 90));
    assert_eq!(status, 401, "{head}");
}

// Regression: #23. Behind a load balancer every client has the balancer's address: the
// unknown-token allowance would then be one budget that an attacker spends for everyone.
// From `trusted_proxies`, the gateway keys on the forwarded client address (and forwards it).
#[test]
fn behind_a_trusted_proxy_the_allowance_is_per_client_not_per_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (server, caller, gateway, _) = gateway_for(dir.path(), &runtime, ("opaque", "reports:read"), |up| {
        format!(
            "trusted_proxies = [\"127.0.0.9/32\"]\n\n[[routes]]\nprefix = \"/reports\"\nupstream = \"{up}\"\naudience = \"{API}\"\nscopes = [\"reports:read\"]\nmode = \"phantom\"\n"
        )
    });
    // The proxy (127.0.0.9) relays an attacker's junk, naming the attacker.
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..60 {
        let junk = format!("Bearer tat_junk_{i:04}_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        let headers = [("Authorization", junk.as_str()), ("X-Forwarded-For", "198.51.100.7")];
        *statuses.entry(raw_from("127.0.0.9", &gateway.addr, "/reports/q", &headers).0).or_default() += 1;
    }
    assert!(statuses.get(&429).copied().unwrap_or(0) >= 20, "the attacker is throttled: {statuses:?}");
    // Another client behind the same proxy is not.
    let bearer = format!("Bearer {}", token_of(&server, &caller));
    let headers = [("Authorization", bearer.as_str()), ("X-Forwarded-For", "198.51.100.8")];
    let (status, _, body) = raw_from("127.0.0.9", &gateway.addr, "/reports/q", &headers);
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-for"], "198.51.100.8", "the client's address, not the proxy's");
    // A client that is no trusted proxy cannot choose its address.
    let headers = [("Authorization", bearer.as_str()), ("X-Forwarded-For", "198.51.100.7")];
    let (status, _, body) = raw_from("127.0.0.4", &gateway.addr, "/reports/q", &headers);
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["headers"]["x-forwarded-for"], "127.0.0.4");
}
