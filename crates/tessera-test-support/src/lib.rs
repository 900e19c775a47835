//! Test harness for Tessera: `spawn_app` starts a real server on ephemeral loopback ports with
//! a fresh SQLite database and a fixed clock; `TestApp` has one method per endpoint and returns
//! the raw response so that assertions stay in the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use tessera_proto::UnixTime;
use tessera_proto::admin::AdminConfig;
use tessera_server::clock::Clock;
use tessera_server::config::Config;
use tessera_server::{AppState, run};
use tokio::net::TcpListener;

/// 2026-01-01T00:00:00Z, the instant every test starts at.
pub const T0: u64 = 1_767_225_600;

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<AtomicU64>);

impl FixedClock {
    pub fn at(t: u64) -> FixedClock {
        FixedClock(Arc::new(AtomicU64::new(t)))
    }

    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

/// A registered client as a test sees it.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: String,
}

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub issuer: String,
    pub clock: FixedClock,
    pub http: reqwest::Client,
    pub admin: AdminConfig,
    pub state: AppState,
    pub data_dir: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// Installs the one TLS crypto provider (DEPENDENCIES.md trap 1). Safe to call repeatedly.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Starts a server on 127.0.0.1 with ephemeral ports, a fresh data directory and a clock fixed at [`T0`].
pub async fn spawn_app() -> TestApp {
    spawn_app_at(T0).await
}

/// [`spawn_app`] with the clock fixed at `now`: for independent clients that check times
/// against their own wall clock.
pub async fn spawn_app_at(now: u64) -> TestApp {
    install_crypto_provider();
    let data_dir = tempfile::tempdir().unwrap();
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
    let config = Config::for_tests(addr, admin_addr, data_dir.path());
    let clock = FixedClock::at(now);
    let state = AppState::open(config, Arc::new(clock.clone())).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(state.clone(), public, admin, async move {
        let _ = rx.await;
    }));
    let admin_json = std::fs::read(data_dir.path().join("admin.json")).unwrap();
    let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    TestApp {
        addr,
        admin_addr,
        issuer: format!("http://{addr}"),
        clock,
        http,
        admin: serde_json::from_slice(&admin_json).unwrap(),
        state,
        data_dir,
        _shutdown: tx,
    }
}

/// `Authorization: Basic` per RFC 6749 §2.3.1: both halves form-urlencoded first.
pub fn basic(id: &str, secret: &str) -> String {
    let encode = |s: &str| serde_urlencoded_component(s);
    let raw = format!("{}:{}", encode(id), encode(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

fn serde_urlencoded_component(s: &str) -> String {
    let encoded = reqwest::Url::parse_with_params("http://x/", &[("v", s)]).unwrap();
    encoded.query().unwrap().trim_start_matches("v=").to_owned()
}

/// Every test's server must finish without a single 5xx response or panic.
impl Drop for TestApp {
    fn drop(&mut self) {
        let errors = self.state.server_errors.load(Ordering::Relaxed);
        if errors > 0 && !std::thread::panicking() {
            panic!("the server answered {errors} request(s) with a 5xx status or panicked");
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// The bootstrap admin client.
    pub fn admin_client(&self) -> TestClient {
        TestClient { id: self.admin.client_id.clone(), secret: self.admin.client_secret.clone() }
    }

    /// POSTs a form with Basic client authentication.
    pub async fn post_form(&self, path: &str, client: Option<&TestClient>, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some(client) = client {
            request = request.header("authorization", basic(&client.id, &client.secret));
        }
        request.send().await.unwrap()
    }

    pub async fn token(&self, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form("/token", Some(client), form).await
    }

    pub async fn client_credentials(&self, client: &TestClient) -> reqwest::Response {
        self.token(client, &[("grant_type", "client_credentials")]).await
    }

    /// Issues a token and returns the access token string; panics if issuance fails.
    pub async fn access_token(&self, client: &TestClient) -> String {
        let res = self.client_credentials(client).await;
        assert_eq!(res.status(), 200, "token request failed");
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn introspect(&self, client: &TestClient, token: &str) -> reqwest::Response {
        self.post_form("/introspect", Some(client), &[("token", token)]).await
    }

    pub async fn revoke(&self, client: &TestClient, token: &str) -> reqwest::Response {
        self.post_form("/revoke", Some(client), &[("token", token)]).await
    }

    pub async fn jwks(&self) -> reqwest::Response {
        self.http.get(self.url("/jwks.json")).send().await.unwrap()
    }

    pub async fn admin_token(&self) -> String {
        self.access_token(&self.admin_client()).await
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        let token = self.admin_token().await;
        self.http.get(self.admin_url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> reqwest::Response {
        let token = self.admin_token().await;
        self.http.post(self.admin_url(path)).bearer_auth(token).json(body).send().await.unwrap()
    }

    pub async fn admin_delete(&self, path: &str) -> reqwest::Response {
        let token = self.admin_token().await;
        self.http.delete(self.admin_url(path)).bearer_auth(token).send().await.unwrap()
    }

    /// Registers a client through the admin API.
    pub async fn create_client(&self, metadata: Value) -> TestClient {
        let res = self.admin_post("/admin/clients", &metadata).await;
        assert_eq!(res.status(), 201, "client registration failed");
        let body: Value = res.json().await.unwrap();
        TestClient {
            id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    /// A client with scopes `read write` and default settings otherwise.
    pub async fn jwt_client(&self) -> TestClient {
        self.create_client(json!({"client_name":"jwt","scope":"read write"})).await
    }

    pub async fn opaque_client(&self) -> TestClient {
        self.create_client(json!({"client_name":"opaque","scope":"read write","access_token_format":"opaque"})).await
    }
}
