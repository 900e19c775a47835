//! Test harness for Tessera: `spawn_app` starts a real server on ephemeral loopback ports with
//! a fresh database and a fixed clock; `TestApp` has one method per endpoint and returns the raw
//! response so that assertions stay in the tests.
//!
//! The database is a fresh SQLite file, or, when `TESSERA_TEST_POSTGRES` names a PostgreSQL
//! database (`postgres://postgres@127.0.0.1:5432/test`), a fresh schema in it, dropped when the
//! test ends. `scripts/test` runs the server suite both ways.

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

/// A schema created for one test in the database named by `TESSERA_TEST_POSTGRES`.
#[derive(Debug, Clone)]
pub struct PostgresSchema {
    pub base_url: String,
    pub schema: String,
}

impl PostgresSchema {
    /// Creates a fresh schema; panics (failing the test) if PostgreSQL cannot be reached.
    pub async fn create(base_url: &str) -> PostgresSchema {
        use sqlx::Connection as _;
        let schema = format!("t_{}", tessera_server::secret::random_b64(12).to_lowercase().replace(['-', '_'], "x"));
        let mut conn = sqlx::PgConnection::connect(base_url)
            .await
            .unwrap_or_else(|e| panic!("TESSERA_TEST_POSTGRES={base_url} cannot be reached: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await.unwrap();
        let _ = conn.close().await;
        PostgresSchema { base_url: base_url.to_owned(), schema }
    }

    /// The URL whose connections use this schema.
    pub fn url(&self) -> String {
        let separator = if self.base_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-c%20search_path%3D{}", self.base_url, self.schema)
    }

    /// Drops the schema (on a thread of its own: `Drop` cannot await).
    pub fn drop_blocking(&self) {
        let (base, schema) = (self.base_url.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
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

/// The redirect URI of the code-flow clients the tests register.
pub const REDIRECT_URI: &str = "https://client.example.org/cb";
/// The RFC 7636 Appendix B verifier and its S256 challenge (SECURITY-TESTS.md d.1).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The password of every test user.
pub const PASSWORD: &str = "correct horse battery staple";

/// A browser: a cookie jar and no automatic redirects, so every hop is visible to the test.
pub struct Browser<'a> {
    base: String,
    http: reqwest::Client,
    _app: std::marker::PhantomData<&'a TestApp>,
    pub cookies: std::collections::BTreeMap<String, String>,
    pub user_agent: String,
}

/// Where a response sends the browser (`Location`), if anywhere.
pub fn location(res: &reqwest::Response) -> Option<String> {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_owned())
}

/// The value of the hidden form field `name` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&#x2f;", "/").replace("&amp;", "&"))
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url).ok()?.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        Browser::with(&app.url(""), app.http.clone())
    }

    /// A browser for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn at(base: &str) -> Browser<'a> {
        Browser::with(base, reqwest::Client::builder().redirect(Policy::none()).build().unwrap())
    }

    /// A browser that talks through `http` (one that trusts a test CA, say).
    pub fn with(base: &str, http: reqwest::Client) -> Browser<'a> {
        Browser {
            base: base.trim_end_matches('/').to_owned(),
            http,
            _app: std::marker::PhantomData,
            cookies: Default::default(),
            user_agent: "TestBrowser/1.0".into(),
        }
    }

    /// An absolute URL on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn absolute(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") { path_or_url.to_owned() } else { self.url(path_or_url) }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    /// Keeps what `Set-Cookie` says (deleting cookies with `Max-Age=0`).
    pub fn remember(&mut self, res: &reqwest::Response) {
        for value in res.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, val) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), val.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path_or_url: &str) -> reqwest::Response {
        let res = self
            .http
            .get(self.absolute(path_or_url))
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .send()
            .await
            .unwrap();
        self.remember(&res);
        res
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let res = self
            .http
            .post(self.absolute(path))
            .header("cookie", self.cookie_header())
            .header("user-agent", &self.user_agent)
            .form(form)
            .send()
            .await
            .unwrap();
        self.remember(&res);
        res
    }

    /// Submits the login form of `login_url` (a `/login?request=…` page).
    pub async fn login(&mut self, login_url: &str, username: &str, password: &str) -> reqwest::Response {
        let page = self.get(login_url).await;
        assert_eq!(page.status(), 200, "login page");
        let html = page.text().await.unwrap();
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let request = hidden_field(&html, "request").unwrap_or_default();
        self.post(
            "/login",
            &[("request", &request), ("csrf_token", &csrf), ("username", username), ("password", password)],
        )
        .await
    }

    /// Answers the consent page at `consent_url` with `decision` (`allow` or `deny`).
    pub async fn consent(&mut self, consent_url: &str, decision: &str) -> reqwest::Response {
        let page = self.get(consent_url).await;
        assert_eq!(page.status(), 200, "consent page");
        let html = page.text().await.unwrap();
        let csrf = hidden_field(&html, "csrf_token").unwrap();
        let request = hidden_field(&html, "request").unwrap();
        self.post("/consent", &[("request", &request), ("csrf_token", &csrf), ("decision", decision)]).await
    }

    /// Follows an authorization request through login and consent (as needed) to the client's
    /// redirect, which is returned.
    pub async fn authorize(&mut self, query: &[(&str, &str)], username: &str) -> String {
        let url = reqwest::Url::parse_with_params(&self.url("/authorize"), query).unwrap();
        self.follow_authorization(url.as_str(), username).await
    }

    /// Follows an authorization URL (one a client built) through login and consent (as needed)
    /// to the client's redirect, which is returned.
    pub async fn follow_authorization(&mut self, url: &str, username: &str) -> String {
        let mut res = self.get(url).await;
        for _ in 0..4 {
            assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
            let next = location(&res).unwrap();
            if next.starts_with("/login") {
                res = self.login(&next, username, PASSWORD).await;
            } else if next.starts_with("/consent") {
                res = self.consent(&next, "allow").await;
            } else {
                return next;
            }
        }
        panic!("too many hops");
    }
}

/// The authorization query of a code flow with PKCE (d.1), `openid` and a state.
pub fn code_request<'a>(client_id: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", scope),
        ("state", "s-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

impl TestApp {
    /// Registers a user with [`PASSWORD`]; returns the user's id.
    pub async fn create_user(&self, username: &str) -> String {
        let res = self
            .admin_post("/admin/users", &json!({"username": username, "password": PASSWORD, "email": format!("{username}@example.com"), "name": username, "email_verified": true}))
            .await;
        assert_eq!(res.status(), 201, "user registration failed");
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// A confidential code-flow client with refresh tokens, redirecting to [`REDIRECT_URI`];
    /// `extra` metadata is merged in.
    pub async fn code_client(&self, extra: Value) -> TestClient {
        let mut metadata = json!({
            "client_name": "Example App",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": ["https://client.example.org/bye"],
            "scope": "openid profile email offline_access read",
        });
        for (k, v) in extra.as_object().unwrap() {
            metadata[k] = v.clone();
        }
        let res = self.admin_post("/admin/clients", &metadata).await;
        assert_eq!(res.status(), 201, "client registration failed: {}", res.text().await.unwrap());
        let body: Value = res.json().await.unwrap();
        TestClient {
            id: body["client_id"].as_str().unwrap().to_owned(),
            secret: body["client_secret"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Redeems a code with the d.1 verifier.
    pub async fn redeem(&self, client: &TestClient, code: &str) -> reqwest::Response {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ];
        self.token_like("/token", client, &form).await
    }

    /// A refresh request.
    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> reqwest::Response {
        self.token_like("/token", client, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }
}

/// A client's P-256 key: it signs DPoP proofs exactly as RFC 9449 §4.2 describes (the parts of
/// a proof can be set one by one for the attack cases) and `private_key_jwt` assertions.
pub struct DpopKey(aws_lc_rs::signature::EcdsaKeyPair);

impl Default for DpopKey {
    fn default() -> DpopKey {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        DpopKey(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl DpopKey {
    /// The public JWK that goes into the proof header.
    pub fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair as _;
        let point = self.0.public_key().as_ref();
        json!({"kty":"EC","crv":"P-256","x":b64url(&point[1..33]),"y":b64url(&point[33..65])})
    }

    /// The public JWK with a `kid`, as a client registers it for `private_key_jwt`.
    pub fn jwk_with_kid(&self, kid: &str) -> Value {
        let mut jwk = self.jwk();
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        jwk
    }

    /// RFC 7638 thumbprint, computed here independently of the server: SHA-256 over the
    /// required members in lexicographic order, without whitespace.
    pub fn jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// The standard header and claims of a proof for `method url` at `iat`, with `ath` for an
    /// access token; a fresh random `jti`.
    pub fn parts(&self, method: &str, url: &str, iat: u64, access_token: Option<&str>) -> (Value, Value) {
        let header = json!({"typ":"dpop+jwt","alg":"ES256","jwk":self.jwk()});
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).unwrap();
        let mut claims = json!({"jti":b64url(&jti),"htm":method,"htu":url,"iat":iat});
        if let Some(token) = access_token {
            claims["ath"] =
                b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()).as_ref()).into();
        }
        (header, claims)
    }

    /// A proof for `method url` at `iat`.
    pub fn proof(&self, method: &str, url: &str, iat: u64, access_token: Option<&str>) -> String {
        let (header, claims) = self.parts(method, url, iat, access_token);
        self.sign(&header, &claims)
    }

    /// Signs any header and claims.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let signature = self.0.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(signature.as_ref()))
    }
}

impl TestApp {
    /// POSTs a form to `path` with the client's credentials and the given `DPoP` header values.
    pub async fn post_dpop(
        &self,
        path: &str,
        client: &TestClient,
        form: &[(&str, &str)],
        proofs: &[&str],
    ) -> reqwest::Response {
        let mut form = form.to_vec();
        let mut request = self.http.post(self.url(path));
        if client.secret.is_empty() {
            form.push(("client_id", &client.id));
        } else {
            request = request.header("authorization", basic(&client.id, &client.secret));
        }
        for proof in proofs {
            request = request.header("dpop", *proof);
        }
        request.form(&form).send().await.unwrap()
    }

    /// A proof for `POST {issuer}{path}` at the server's current time.
    pub fn dpop_proof(&self, key: &DpopKey, path: &str) -> String {
        key.proof("POST", &self.url(path), self.clock.now_secs(), None)
    }
}

/// The claims of a JWT, decoded without any check (for assertions about what was issued).
pub fn jwt_claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// An HTTP client without automatic redirects that trusts the test CA (if any) and presents
/// `identity` as its TLS client certificate (if any).
fn client_for(pki: Option<&TestPki>, identity: Option<&TestCert>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().redirect(Policy::none());
    if let Some(pki) = pki {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap());
    }
    if let Some(cert) = identity {
        let pem = format!("{}{}", cert.cert_pem, cert.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A test certificate authority, made fresh for each test (nothing expires in the repository).
pub struct TestPki {
    pub ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key.
#[derive(Clone)]
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    /// The public key as an uncompressed P-256 point.
    public_point: Vec<u8>,
}

impl Default for TestPki {
    fn default() -> TestPki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "Tessera Test CA");
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestPki { ca_pem: cert.pem(), issuer: rcgen::Issuer::new(params, key) }
    }
}

fn finish(cert: rcgen::Certificate, key: &rcgen::KeyPair) -> TestCert {
    TestCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        public_point: key.public_key_raw().to_vec(),
    }
}

impl TestPki {
    /// The server's certificate: `127.0.0.1` and `localhost`.
    pub fn server_cert(&self) -> TestCert {
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        finish(cert, &key)
    }

    /// A client certificate issued by this CA, with subject `CN=<cn>, O=Tessera Tests` and the
    /// given DNS names.
    pub fn client_cert(&self, cn: &str, dns_names: &[&str]) -> TestCert {
        let mut params =
            rcgen::CertificateParams::new(dns_names.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Tessera Tests");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        finish(cert, &key)
    }
}

impl TestCert {
    /// A self-signed client certificate with subject `CN=<cn>`.
    pub fn self_signed(cn: &str) -> TestCert {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        finish(cert, &key)
    }

    /// The certificate as a public JWK with `x5c` (RFC 8705 §2.2 self-signed registration).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig",
            "x": b64url(&self.public_point[1..33]), "y": b64url(&self.public_point[33..65]),
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.der)],
        })
    }

    /// RFC 8705 §3.1 `x5t#S256`, computed here independently of the server.
    pub fn thumbprint(&self) -> String {
        b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der).as_ref())
    }

    /// The certificate as an RFC 9440 `Client-Cert` header value.
    pub fn client_cert_header(&self) -> String {
        format!(":{}:", base64::engine::general_purpose::STANDARD.encode(&self.der))
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads Server-Sent Events from a streaming response (comments and keep-alives are skipped).
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> SseReader {
        SseReader { response, buffer: String::new() }
    }

    /// The next event, or `None` when the stream ends or `within` passes first.
    pub async fn next(&mut self, within: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut any = false;
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => event.id = Some(value.to_owned()),
                        "event" => event.event = Some(value.to_owned()),
                        "data" => {
                            if !event.data.is_empty() {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                        }
                        _ => continue,
                    }
                    any = true;
                }
                if any {
                    return Some(event);
                }
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}
