//! The gateway's `bff` mode (token handler for single-page apps) as real processes: a server,
//! the gateway and a small upstream. The SPA's side is played over HTTP with its `Origin` and
//! cookies; the user signs in at the server with the test browser. SECURITY-TESTS.md c.9
//! BF-C1…BF-C8, silent refresh (one refresh for parallel calls), and a revocation at the server
//! refused by the gateway within one second, also after the gateway restarts.
//! The same flow in headless Chromium is in `browser.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_gateway::bff::{Session, open_session_cookie, seal_session_cookie};
use tessera_test_support::{Browser, PASSWORD};

use crate::e2e::{Server, free_port, json_out};
use crate::gateway::{API, Gateway, create_client, raw};

const EVIL: &str = "https://malicious-site.example";
const OTHER_APP: &str = "https://app.example.test";

/// An API that records the `Authorization` it receives (and never echoes it).
fn recording_upstream(runtime: &tokio::runtime::Runtime) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let api = move |request: axum::extract::Request| {
        let authorization = request.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
        recorded.lock().unwrap().push(authorization.unwrap_or_default());
        let cookie = request.headers().get("cookie").map(|v| v.to_str().unwrap().to_owned());
        let sub = request.headers().get("x-tessera-sub").map(|v| v.to_str().unwrap().to_owned());
        let (method, path) = (request.method().to_string(), request.uri().path().to_owned());
        async move { axum::Json(json!({"method": method, "path": path, "sub": sub, "cookie": cookie})) }
    };
    runtime.spawn(async move { axum::serve(listener, axum::Router::new().fallback(api)).await.unwrap() });
    (url, seen)
}

/// The single-page app's view of the gateway: its origin, its cookies, and every header and
/// body it was shown (for BF-C7).
struct Spa {
    http: reqwest::Client,
    base: String,
    origin: String,
    cookies: BTreeMap<String, String>,
    shown: Vec<String>,
}

struct Answer {
    status: u16,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Spa {
    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn session(&self) -> Option<&str> {
        self.cookies.get("__Host-tessera-session").map(String::as_str)
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        origin: Option<&str>,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(csrf) = csrf {
            request = request.header("x-tessera-csrf", csrf);
        }
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> =
            headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        for set in &set_cookies {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let text = response.text().await.unwrap();
        for (name, value) in &headers {
            self.shown.push(format!("{name}: {}", value.to_str().unwrap_or("")));
        }
        self.shown.push(text.clone());
        Answer { status, set_cookies, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    async fn post(&mut self, path: &str, csrf: Option<&str>, body: Option<Value>) -> Answer {
        let origin = self.origin.clone();
        self.send("POST", path, Some(&origin), csrf, body).await
    }

    async fn get(&mut self, path: &str) -> Answer {
        self.send("GET", path, None, None, None).await
    }

    /// Starts a login and returns the authorization URL.
    async fn login_start(&mut self) -> String {
        let answer = self.post("/bff/login/start", None, None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["authorization_url"].as_str().unwrap().to_owned()
    }

    /// Signs alice in through the issuer and ends the login; returns the CSRF value.
    async fn login(&mut self, issuer: &str) -> String {
        let url = self.login_start().await;
        let redirect = Browser::at(issuer).follow_authorization(&url, "alice").await;
        assert!(redirect.starts_with(&format!("{}/?", self.origin)), "{redirect}");
        let answer = self.post("/bff/login/end", None, Some(json!({"page_url": redirect}))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!((answer.body["handled"].as_bool(), answer.body["is_logged_in"].as_bool()), (Some(true), Some(true)));
        answer.body["csrf"].as_str().unwrap().to_owned()
    }
}

fn state_of(authorization_url: &str) -> String {
    tessera_test_support::query_param(authorization_url, "state").unwrap()
}

fn create_alice(admin: &str) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["user", "create", "--username", "alice", "--password-stdin", "--admin-config", admin, "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    json_out(&child.wait_with_output().unwrap())["id"].as_str().unwrap().to_owned()
}

/// A server with alice, the gateway's resource-server client and the SPA's confidential
/// client; an upstream API; and the gateway with a `[bff]` section and an `/api` route.
struct Fixture {
    server: Server,
    gateway: Gateway,
    config: String,
    cookie_key: String,
    admin: String,
    alice: String,
    reader: Value,
    origin: String,
    home: String,
    upstream_seen: Arc<Mutex<Vec<String>>>,
}

fn fixture(dir: &std::path::Path, runtime: &tokio::runtime::Runtime, static_dir: Option<&std::path::Path>) -> Fixture {
    let server = Server::start(dir, free_port(), free_port());
    let admin = server.admin_config.to_str().unwrap().to_owned();
    let alice = create_alice(&admin);
    let reader = create_client(&admin, &["--name", "gateway", "--introspection", "--audience", API]);
    let port = free_port();
    let origin = format!("http://localhost:{port}");
    let home = format!("{origin}/");
    let spa_client = create_client(
        &admin,
        &[
            "--name",
            "Example SPA",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--redirect-uri",
            &home,
            "--post-logout-redirect-uri",
            &home,
            "--scope",
            "openid profile invoices:read",
            "--audience",
            API,
            "--first-party",
        ],
    );
    let (upstream_url, upstream_seen) = recording_upstream(runtime);
    let cookie_key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let static_line = static_dir.map(|d| format!("static_dir = {:?}\n", d.to_str().unwrap())).unwrap_or_default();
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
issuer = "{issuer}"
client_id = "{reader_id}"
client_secret = "{reader_secret}"
public_origin = "{origin}"
max_feed_outage = 0

[bff]
client_id = "{bff_id}"
client_secret = "{bff_secret}"
redirect_uri = "{home}"
post_logout_redirect_uri = "{home}"
scope = "openid profile invoices:read"
cookie_key = "{cookie_key}"
allowed_origins = ["{OTHER_APP}"]
{static_line}
[[routes]]
prefix = "/api"
upstream = "{upstream_url}"
audience = "{API}"
scopes = ["invoices:read"]
mode = "bff"
"#,
        issuer = server.issuer,
        reader_id = reader["client_id"].as_str().unwrap(),
        reader_secret = reader["client_secret"].as_str().unwrap(),
        bff_id = spa_client["client_id"].as_str().unwrap(),
        bff_secret = spa_client["client_secret"].as_str().unwrap(),
    );
    let gateway = Gateway::start(dir, &config);
    Fixture { server, gateway, config, cookie_key, admin, alice, reader, origin, home, upstream_seen }
}

#[test]
fn bff_mode_keeps_tokens_out_of_the_browser_and_honours_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let Fixture { server, gateway, config, cookie_key, admin, alice, reader, origin, home, upstream_seen } =
        fixture(dir.path(), &runtime, None);
    let (reader_id, reader_secret) = (reader["client_id"].as_str().unwrap(), reader["client_secret"].as_str().unwrap());
    let addr = gateway.addr.clone();
    let issuer = server.issuer.clone();

    let revoked_cookie = runtime.block_on(async {
        tessera_test_support::install_crypto_provider();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let mut spa = Spa {
            http,
            base: format!("http://{addr}"),
            origin: origin.clone(),
            cookies: BTreeMap::new(),
            shown: Vec::new(),
        };
        let mut tokens_seen: Vec<String> = Vec::new();

        // Not signed in: the page load says so; the API refuses.
        let answer = spa.post("/bff/login/end", None, Some(json!({"page_url": home}))).await;
        assert_eq!((answer.status, answer.body["is_logged_in"].as_bool()), (200, Some(false)), "{}", answer.body);
        assert_eq!(spa.get("/api/invoices").await.status, 401);

        // Sign in. BF-C1: the cookies' attributes, and an encrypted value.
        let url = spa.login_start().await;
        let login_cookie = spa.cookies.clone();
        assert!(url.starts_with(&format!("{issuer}/authorize?")), "{url}");
        for param in ["code_challenge", "nonce", "state"] {
            assert!(tessera_test_support::query_param(&url, param).is_some_and(|v| v.len() >= 43), "{param}: {url}");
        }
        let redirect = Browser::at(&issuer).follow_authorization(&url, "alice").await;
        // BF-C4: a state this browser did not start is refused (the login cookie stays unused).
        let mut foreign = Spa {
            cookies: login_cookie.clone(),
            shown: Vec::new(),
            http: spa.http.clone(),
            base: spa.base.clone(),
            origin: origin.clone(),
        };
        let forged = redirect.replace(&state_of(&url), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let answer = foreign.post("/bff/login/end", None, Some(json!({"page_url": forged}))).await;
        assert_eq!((answer.status, answer.body["error"].as_str()), (400, Some("invalid_request")), "{}", answer.body);
        // BF-C2: the right code from another origin is refused.
        let answer = spa.send("POST", "/bff/login/end", Some(EVIL), None, Some(json!({"page_url": redirect}))).await;
        assert_eq!((answer.status, answer.body["error"].as_str()), (401, Some("unauthorized_request")));
        let answer = spa.post("/bff/login/end", None, Some(json!({"page_url": redirect}))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let csrf = answer.body["csrf"].as_str().unwrap().to_owned();
        let set = answer.set_cookies.iter().find(|c| c.starts_with("__Host-tessera-session=")).unwrap();
        for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.split("; ").any(|a| a == attribute), "{attribute} missing: {set}");
        }
        assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
        assert!(answer.set_cookies.iter().any(|c| c.starts_with("__Host-tessera-login=;") && c.contains("Max-Age=0")));
        let session = open_session_cookie(&cookie_key, spa.session().unwrap()).expect("the cookie opens with the key");
        tokens_seen.extend([session.at.clone(), session.rt.clone().unwrap()]);
        assert!(!spa.session().unwrap().contains(&session.at[..20]));

        // The API through the gateway: the access token attached, the session cookie kept back.
        let answer = spa.get("/api/invoices").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["sub"], alice.as_str());
        assert_eq!(answer.body["cookie"], Value::Null, "the token handler's cookies never reach the API");
        assert_eq!(upstream_seen.lock().unwrap().last().unwrap(), &format!("Bearer {}", session.at));
        // The page load with a session says so and hands the CSRF value back.
        let answer = spa.post("/bff/login/end", None, Some(json!({"page_url": home}))).await;
        assert_eq!(
            (answer.body["is_logged_in"].as_bool(), answer.body["csrf"].as_str()),
            (Some(true), Some(csrf.as_str()))
        );
        let answer = spa.get("/bff/userinfo").await;
        assert_eq!((answer.status, answer.body["sub"].as_str()), (200, Some(alice.as_str())), "{}", answer.body);

        // BF-C3: a state-changing call needs the CSRF header, and the right one.
        assert_eq!(spa.post("/api/invoices", None, Some(json!({}))).await.status, 401);
        assert_eq!(spa.post("/api/invoices", Some("wrong"), Some(json!({}))).await.status, 401);
        assert_eq!(spa.post("/bff/refresh", None, None).await.status, 401);
        let answer = spa.post("/api/invoices", Some(&csrf), Some(json!({"amount": 1}))).await;
        assert_eq!((answer.status, answer.body["method"].as_str()), (200, Some("POST")), "{}", answer.body);

        // BF-C2: another origin is refused everywhere; CORS only for the allow-list.
        for path in ["/bff/login/start", "/bff/refresh", "/bff/logout", "/api/invoices"] {
            let answer = spa.send("POST", path, Some(EVIL), Some(&csrf), None).await;
            assert_eq!((answer.status, answer.body["error"].as_str()), (401, Some("unauthorized_request")), "{path}");
        }
        assert_eq!(spa.send("GET", "/api/invoices", Some(EVIL), None, None).await.status, 401);
        assert_eq!(spa.send("POST", "/bff/login/start", None, None, None).await.status, 401, "a POST without Origin");
        let preflight = |origin: &'static str| {
            let http = spa.http.clone();
            let url = format!("{}/api/invoices", spa.base);
            async move {
                http.request(reqwest::Method::OPTIONS, url)
                    .header("origin", origin)
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "x-tessera-csrf")
                    .send()
                    .await
                    .unwrap()
            }
        };
        let refused = preflight(EVIL).await;
        assert_eq!(refused.status(), 204);
        assert!(refused.headers().get("access-control-allow-origin").is_none());
        let allowed = preflight(OTHER_APP).await;
        assert_eq!(allowed.status(), 204);
        assert_eq!(allowed.headers()["access-control-allow-origin"], OTHER_APP);
        assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
        let answer = spa.send("GET", "/api/invoices", Some(OTHER_APP), None, None).await;
        assert_eq!((answer.status, answer.headers["access-control-allow-origin"].to_str().unwrap()), (200, OTHER_APP));

        // BF-C6: nothing outside the route's upstream, and nothing for paths not in normal form.
        let before = upstream_seen.lock().unwrap().len();
        let cookie = format!("__Host-tessera-session={}", spa.session().unwrap());
        for path in ["/api/../../admin", "/api/http://evil.example/", "/api/%2e%2e/admin", "/api/%2E%2E/%2E%2E/admin"] {
            assert_eq!(raw(&addr, path, &[("Cookie", &cookie)]).0, 400, "{path}");
        }
        assert_eq!(raw(&addr, "/admin", &[("Cookie", &cookie)]).0, 404);
        assert_eq!(upstream_seen.lock().unwrap().len(), before, "no outbound request for a refused path");

        // BF-C1: one flipped byte in the cookie is no session.
        let mut flipped = spa.session().unwrap().as_bytes().to_vec();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = format!("__Host-tessera-session={}", String::from_utf8(flipped).unwrap());
        assert_eq!(raw(&addr, "/api/invoices", &[("Cookie", &flipped)]).0, 401);
        assert_eq!(raw(&addr, "/bff/userinfo", &[("Cookie", &flipped)]).0, 401);

        // T-02f: a stranger floods the issuer's /token with the SPA client's id (it is in every
        // authorization URL) and wrong secrets, from two addresses, until refused. The token
        // handler's refresh, from its own address, is not refused: failures are counted per
        // (client id, address), and an issuer's 429 would be a 503, never a session's end.
        let bff_id = tessera_test_support::query_param(&url, "client_id").unwrap();
        let mut refused = BTreeMap::<(&str, u16), usize>::new();
        for attacker in ["127.0.0.2", "127.0.0.3"] {
            let http = reqwest::Client::builder().local_address(attacker.parse::<std::net::IpAddr>().unwrap()).build();
            let http = http.unwrap();
            for _ in 0..60 {
                let res = http
                    .post(format!("{issuer}/token"))
                    .basic_auth(&bff_id, Some("not-the-secret"))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", "trt_junk")])
                    .send()
                    .await
                    .unwrap();
                *refused.entry((attacker, res.status().as_u16())).or_default() += 1;
            }
            assert!(refused.get(&(attacker, 429)).is_some_and(|n| *n > 0), "the attacker is throttled: {refused:?}");
        }

        // An explicit refresh rotates the tokens behind the cookie.
        let answer = spa.post("/bff/refresh", Some(&csrf), None).await;
        assert_eq!(answer.status, 204);
        let refreshed = open_session_cookie(&cookie_key, spa.session().unwrap()).unwrap();
        assert_ne!((&refreshed.at, &refreshed.rt), (&session.at, &session.rt));
        assert_eq!(refreshed.csrf, csrf);
        tokens_seen.extend([refreshed.at.clone(), refreshed.rt.clone().unwrap()]);

        // Silent refresh: an access token about to expire is renewed on the next API call, once
        // for eight parallel calls (all admitted; a second rotation would revoke the family).
        let due = Session { exp: 0, ..refreshed.clone() };
        spa.cookies.insert("__Host-tessera-session".into(), seal_session_cookie(&cookie_key, &due).unwrap());
        let calls = (0..8).map(|_| {
            let (http, url, cookie) = (spa.http.clone(), format!("{}/api/invoices", spa.base), spa.cookie_header());
            async move {
                let response = http.get(url).header("cookie", cookie).send().await.unwrap();
                let set: Vec<String> =
                    response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
                (response.status().as_u16(), set, response.text().await.unwrap())
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        let mut renewed = std::collections::BTreeSet::new();
        for (status, set, body) in &answers {
            assert_eq!(*status, 200, "{body}");
            let value = set.iter().find_map(|c| c.strip_prefix("__Host-tessera-session=")).unwrap();
            renewed.insert(open_session_cookie(&cookie_key, value.split(';').next().unwrap()).unwrap().at);
            spa.shown.push(body.clone());
            spa.shown.extend(set.iter().cloned());
        }
        assert_eq!(renewed.len(), 1, "one refresh for eight parallel calls");
        let silent = renewed.into_iter().next().unwrap();
        assert_ne!(silent, refreshed.at);
        let value = answers[0].1.iter().find_map(|c| c.strip_prefix("__Host-tessera-session=")).unwrap();
        spa.cookies.insert("__Host-tessera-session".into(), value.split(';').next().unwrap().to_owned());
        let current = open_session_cookie(&cookie_key, spa.session().unwrap()).unwrap();
        tokens_seen.extend([current.at.clone(), current.rt.clone().unwrap()]);
        assert_eq!(spa.get("/api/invoices").await.status, 200, "the family is intact");

        // BF-C5: error mapping.
        let url = spa.login_start().await;
        let page = format!("{home}?error=login_required&state={}", state_of(&url));
        assert_eq!(spa.post("/bff/login/end", None, Some(json!({"page_url": page}))).await.status, 401);
        let url = spa.login_start().await;
        let page = format!("{home}?error=invalid_scope&state={}", state_of(&url));
        assert_eq!(spa.post("/bff/login/end", None, Some(json!({"page_url": page}))).await.status, 400);
        let url = spa.login_start().await;
        let page = format!("{home}?code=tac_not-a-code&state={}", state_of(&url));
        let answer = spa.post("/bff/login/end", None, Some(json!({"page_url": page}))).await;
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (400, Some("invalid_grant")),
            "exchange refused → 400"
        );
        let bogus = Session { rt: Some("trt_bogus".into()), exp: 0, ..current.clone() };
        let mut stranger = Spa {
            cookies: BTreeMap::new(),
            shown: Vec::new(),
            http: spa.http.clone(),
            base: spa.base.clone(),
            origin: origin.clone(),
        };
        stranger.cookies.insert("__Host-tessera-session".into(), seal_session_cookie(&cookie_key, &bogus).unwrap());
        let answer = stranger.get("/api/invoices").await;
        assert_eq!(answer.status, 401, "a refused refresh ends the session: {}", answer.body);
        assert!(
            answer.set_cookies.iter().any(|c| c.starts_with("__Host-tessera-session=;") && c.contains("Max-Age=0"))
        );

        let metrics = crate::gateway::scrape(&addr);
        for line in [
            r#"tessera_gateway_bff_total{event="login",outcome="ok"} 1"#,
            r#"tessera_gateway_bff_total{event="login",outcome="refused"} 1"#,
            r#"tessera_gateway_bff_total{event="refresh",outcome="ok"} 2"#,
            r#"tessera_gateway_bff_total{event="refresh",outcome="refused"} 1"#,
        ] {
            assert!(metrics.contains(line), "{line} missing from\n{metrics}");
        }

        // BF-C8: logout expires the cookies and revokes the refresh token at the issuer.
        let before_logout = spa.cookie_header();
        let answer = spa.post("/bff/logout", Some(&csrf), None).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            answer.set_cookies.iter().any(|c| c.starts_with("__Host-tessera-session=;") && c.contains("Max-Age=0"))
        );
        assert!(spa.session().is_none());
        let end_session = answer.body["end_session_url"].as_str().unwrap();
        assert!(end_session.starts_with(&format!("{issuer}/logout?client_id=")), "{end_session}");
        let introspect = |token: String| {
            let request = spa.http.post(format!("{issuer}/introspect")).basic_auth(reader_id, Some(reader_secret));
            async move {
                request.form(&[("token", token)]).send().await.unwrap().json::<Value>().await.unwrap()["active"].clone()
            }
        };
        let (rt_active, at_active) =
            (introspect(current.rt.clone().unwrap()).await, introspect(current.at.clone()).await);
        assert_eq!((rt_active, at_active), (Value::Bool(false), Value::Bool(false)));
        // A copy of the old cookie (stolen before logout) is refused within a second.
        let started = Instant::now();
        while raw(&addr, "/api/invoices", &[("Cookie", &before_logout)]).0 != 401 {
            assert!(started.elapsed() < Duration::from_secs(1), "still admitted after logout");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Revocation at the server: the gateway refuses the session within one second.
        let csrf = spa.login(&issuer).await;
        assert_eq!(spa.get("/api/invoices").await.status, 200);
        let session = open_session_cookie(&cookie_key, spa.session().unwrap()).unwrap();
        tokens_seen.extend([session.at.clone(), session.rt.clone().unwrap()]);
        let revoke = crate::e2e::tessera(&["revoke", "--user", &alice, "--admin-config", &admin]);
        assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
        let revoked = Instant::now();
        while spa.get("/api/invoices").await.status != 401 {
            assert!(revoked.elapsed() < Duration::from_secs(1), "still admitted after {:?}", revoked.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("revocation at the server → BFF session refused: {:?}", revoked.elapsed());
        let revoked_cookie = spa.cookie_header();
        let answer = spa.post("/bff/refresh", Some(&csrf), None).await;
        assert_eq!(answer.status, 401, "the refresh token is revoked too");
        assert!(spa.session().is_none(), "a refused refresh ends the browser's session");

        // BF-C7: no access or refresh token in anything the SPA was shown.
        for token in &tokens_seen {
            for shown in &spa.shown {
                assert!(!shown.contains(token.as_str()), "a token reached the browser: {shown}");
            }
        }
        revoked_cookie
    });

    // The revocation holds after the gateway restarts (it reads the feed again from the start).
    drop(gateway);
    let gateway = Gateway::start(dir.path(), &config);
    assert!(revoked_cookie.contains("__Host-tessera-session="));
    assert_eq!(raw(&gateway.addr, "/api/invoices", &[("Cookie", &revoked_cookie)]).0, 401);
}

/// BFF in headless Chromium (playwright-core): the SPA served by the gateway signs in, calls
/// the API, holds no token anywhere JavaScript can read, and signs out.
#[test]
fn chromium_uses_the_spa_through_the_token_handler() {
    let root = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let scripts = root.join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(std::path::Path::new(&chromium).exists(), "{chromium} is missing (scripts/test installs it)");
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let fixture = fixture(dir.path(), &runtime, Some(&scripts.join("spa")));
    let output = std::process::Command::new("node")
        .arg("bff.mjs")
        .current_dir(&scripts)
        .env("SPA_URL", &fixture.home)
        .env("USERNAME", "alice")
        .env("PASSWORD", PASSWORD)
        .env("CHROMIUM", chromium)
        .output()
        .expect("node is required for the browser test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(seen.get("error").is_none(), "{}", seen["error"].as_str().unwrap_or_default());
    assert_eq!(seen["url_after_login"], fixture.home.as_str(), "code and state leave the address bar");
    assert_eq!(seen["api"]["status"], 200, "{seen:#}");
    assert_eq!(seen["api"]["body"]["sub"], fixture.alice.as_str());
    assert_eq!((seen["document_cookie"].as_str(), seen["storage"].as_str()), (Some(""), Some("{}{}")));
    let session = seen["cookies"].as_array().unwrap().iter().find(|c| c["name"] == "__Host-tessera-session").unwrap();
    assert_eq!((session["httpOnly"].as_bool(), session["secure"].as_bool()), (Some(true), Some(true)));
    assert_eq!((session["sameSite"].as_str(), session["path"].as_str()), (Some("Strict"), Some("/")));
    // BF-C7: the tokens behind the browser's cookie appear in nothing the page was shown.
    let tokens = open_session_cookie(&fixture.cookie_key, session["value"].as_str().unwrap()).unwrap();
    let shown = seen["shown"].as_array().unwrap();
    assert!(shown.len() >= 8, "{shown:?}");
    for token in [tokens.at.as_str(), tokens.rt.as_deref().unwrap()] {
        assert!(!stdout.replace(session["value"].as_str().unwrap(), "").contains(token), "a token reached the page");
    }
    assert_eq!(fixture.upstream_seen.lock().unwrap().last().unwrap(), &format!("Bearer {}", tokens.at));
    assert_eq!(seen["logout"]["status"], 200);
    assert!(!seen["cookies_after"].as_array().unwrap().iter().any(|c| c == "__Host-tessera-session"));
    assert_eq!(seen["api_after"], 401);
}
