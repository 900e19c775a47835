//! The server under test: [`spawn_app`] and its variants start a real `tessera serve` in-process
//! on ephemeral loopback ports with a fresh database and a [`FixedClock`]; [`TestApp`] has one
//! method per endpoint and returns the raw response, so that assertions stay in the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_proto::UnixTime;
use tessera_proto::admin::AdminConfig;
use tessera_server::clock::Clock;
use tessera_server::config::Config;
use tessera_server::{AppState, run};
use tokio::net::TcpListener;

use crate::pki::{TestCert, TestPki, client_for};
use crate::postgres::PostgresSchema;

/// 2026-01-01T00:00:00Z, the instant every test starts at.
pub const T0: u64 = 1_767_225_600;

/// The wall clock now, for servers that talk to clients with clocks of their own.
pub fn wall_clock_now() -> u64 {
    tessera_server::clock::SystemClock.now().secs()
}

/// A clock that only moves when told to.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<AtomicU64>);

impl FixedClock {
    pub fn at(t: u64) -> FixedClock {
        FixedClock(Arc::new(AtomicU64::new(t)))
    }

    /// The current instant, in seconds.
    pub fn now_secs(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
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
    /// The PostgreSQL schema of this test, dropped at the end.
    pub postgres: Option<PostgresSchema>,
    /// With HTTPS ([`spawn_tls_app`]): the CA of the server's and the clients' certificates.
    pub pki: Option<TestPki>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// An HTTP client whose connections come from `source` (any 127.0.0.0/8 address is this host),
/// following no redirects: one attacker or user per address in the abuse tests.
pub fn http_from(source: &str) -> reqwest::Client {
    #[allow(clippy::unwrap_used)]
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
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
    spawn_app_with(now, |_| {}).await
}

/// [`spawn_app_at`] with a configuration change (a grace period, an https issuer, …).
pub async fn spawn_app_with(now: u64, configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn(now, None, configure).await
}

/// A server whose public listener speaks HTTPS with a certificate from a fresh test CA, which
/// is also `tls_client_ca`; `app.http` trusts that CA, and [`TestApp::https_as`] presents a
/// client certificate.
pub async fn spawn_tls_app(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn(T0, Some(TestPki::default()), configure).await
}

/// [`spawn_tls_app`] with the clock fixed at `now` (for independent clients with their own clocks).
pub async fn spawn_tls_app_at(now: u64) -> TestApp {
    spawn(now, Some(TestPki::default()), |_| {}).await
}

async fn spawn(now: u64, pki: Option<TestPki>, configure: impl FnOnce(&mut Config)) -> TestApp {
    install_crypto_provider();
    let data_dir = tempfile::tempdir().unwrap();
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
    let mut config = Config::for_tests(addr, admin_addr, data_dir.path());
    let postgres = match std::env::var("TESSERA_TEST_POSTGRES") {
        Ok(base) if !base.is_empty() => Some(PostgresSchema::create(&base).await),
        _ => None,
    };
    if let Some(schema) = &postgres {
        config.database_url = schema.url();
    }
    if let Some(pki) = &pki {
        let write = |name: &str, text: &str| {
            let path = data_dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let server = pki.server_cert();
        config.tls = Some((write("server.pem", &server.cert_pem), write("server-key.pem", &server.key_pem)));
        config.tls_client_ca = Some(write("client-ca.pem", &pki.ca_pem));
        config.issuer = tessera_server::config::IssuerUrl::parse(&format!("https://{addr}")).unwrap();
    }
    configure(&mut config);
    let issuer = config.issuer.as_str().to_owned();
    let clock = FixedClock::at(now);
    let state = AppState::open(config, Arc::new(clock.clone())).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(state.clone(), public, admin, async move {
        let _ = rx.await;
    }));
    let admin_json = std::fs::read(data_dir.path().join("admin.json")).unwrap();
    let http = client_for(pki.as_ref(), None);
    TestApp {
        addr,
        admin_addr,
        issuer,
        pki,
        clock,
        http,
        admin: serde_json::from_slice(&admin_json).unwrap(),
        state,
        data_dir,
        postgres,
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
        if let Some(schema) = &self.postgres {
            schema.drop_blocking();
        }
        if errors > 0 && !std::thread::panicking() {
            panic!("the server answered {errors} request(s) with a 5xx status or panicked");
        }
    }
}

impl TestApp {
    /// A URL on the public listener (https with [`spawn_tls_app`]).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.pki.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// An HTTP client that presents `cert` as its TLS client certificate.
    pub fn https_as(&self, cert: &TestCert) -> reqwest::Client {
        client_for(self.pki.as_ref(), Some(cert))
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// Everything the database holds at rest, for "no secret is stored" checks: the SQLite
    /// database and WAL files, or every row of this test's PostgreSQL schema as text (bytes in
    /// hex).
    pub async fn database_at_rest(&self) -> Vec<Vec<u8>> {
        let Some(pg) = &self.postgres else {
            let file = |name: &str| std::fs::read(self.data_dir.path().join(name)).unwrap_or_default();
            return vec![file("tessera.db"), file("tessera.db-wal")];
        };
        use sqlx::{Connection as _, Row as _};
        let mut conn = sqlx::PgConnection::connect(&pg.base_url).await.unwrap();
        let tables =
            sqlx::query("SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = $1")
                .bind(&pg.schema)
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let mut dump = Vec::new();
        for table in tables {
            let name: String = table.get("name");
            let sql = format!("SELECT t::text AS row FROM {}.{name} t", pg.schema);
            for row in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap() {
                dump.extend(row.get::<String, _>("row").into_bytes());
                dump.push(b'\n');
            }
        }
        vec![dump]
    }

    /// Runs SQL statements straight on this test's database, behind the server's back (to
    /// tamper with what it stored): the SQLite file, or this test's PostgreSQL schema.
    pub async fn execute_sql(&self, statements: &[&str]) {
        if let Err(err) = self.try_execute_sql(statements).await {
            panic!("{err}");
        }
    }

    /// [`TestApp::execute_sql`], stopping at the first statement the database refuses and
    /// returning its error message.
    pub async fn try_execute_sql(&self, statements: &[&str]) -> Result<(), String> {
        use sqlx::Connection as _;
        let error = |sql: &str, err: sqlx::Error| format!("{sql}: {err}");
        match &self.postgres {
            Some(pg) => {
                let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
                for sql in statements {
                    let result = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await;
                    result.map_err(|e| error(sql, e))?;
                }
                let _ = conn.close().await;
            }
            None => {
                let url = format!("sqlite:{}", self.data_dir.path().join("tessera.db").display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut conn).await.unwrap();
                for sql in statements {
                    let result = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await;
                    result.map_err(|e| error(sql, e))?;
                }
                let _ = conn.close().await;
            }
        }
        Ok(())
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

    /// POSTs a form to `path` with the client's credentials (Basic, or `client_id` for a public client).
    pub async fn token_like(&self, path: &str, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
        if client.secret.is_empty() {
            let mut form = form.to_vec();
            if !form.iter().any(|(k, _)| *k == "client_id") {
                form.push(("client_id", &client.id));
            }
            self.post_form(path, None, &form).await
        } else {
            self.post_form(path, Some(client), form).await
        }
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
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 201, "client registration failed: {body}");
        TestClient {
            id: body["client_id"].as_str().unwrap().to_owned(),
            // Clients that authenticate with keys or certificates have no secret.
            secret: body["client_secret"].as_str().unwrap_or_default().to_owned(),
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
