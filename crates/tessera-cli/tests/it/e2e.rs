//! `tessera serve` → `tessera client create` → token → `tessera token verify` → revoke →
//! introspect → restart, all with the built binary.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_test_support::basic;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A port for a child process to listen on, free when it was picked.
///
/// Drawn at random from below Linux's ephemeral range (32768–60999) rather than with a bind to
/// port 0: a port from the ephemeral range, once released, can be taken as the local port of any
/// outgoing connection on the machine (and the parallel tests open thousands) before the child
/// binds it. Below the range only another test's pick can collide.
pub(crate) fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    loop {
        // RandomState is seeded afresh per instance: a random number without a dependency.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let port = 20_000 + u16::try_from(random % 12_000).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub(crate) struct Server {
    child: Child,
    pub(crate) issuer: String,
    pub(crate) admin_config: std::path::PathBuf,
}

impl Server {
    pub(crate) fn start(dir: &Path, public: u16, admin: u16) -> Server {
        Server::start_with(dir, public, admin, &[])
    }

    /// [`Server::start`] with more flags (a database URL, a shared master key, …).
    pub(crate) fn start_with(dir: &Path, public: u16, admin: u16, extra: &[&str]) -> Server {
        let child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{public}"),
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(if extra.contains(&"--issuer") {
                vec![]
            } else {
                vec!["--issuer".to_owned(), format!("http://127.0.0.1:{public}")]
            })
            .args(extra)
            .env_remove("TESSERA_LOG")
            .stdout(Stdio::null())
            // Appended, so that a restarted server's log follows the first run's.
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("serve-{public}.log")))
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        let mut server =
            Server { child, issuer: format!("http://127.0.0.1:{public}"), admin_config: dir.join("data/admin.json") };
        // `issuer` is where this node listens (behind a load balancer nodes share another one).
        server.wait_ready(&dir.join(format!("serve-{public}.log")));
        server
    }

    /// [`wait_ready`], but a server that exits fails the test at once, and with its log.
    fn wait_ready(&mut self, log: &Path) {
        let url = format!("{}/readyz", self.issuer);
        if !poll_ready(&url, || self.child.try_wait().unwrap().is_some()) {
            let state = match self.child.try_wait().unwrap() {
                Some(status) => format!("exited with {status}"),
                None => "still running".to_owned(),
            };
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{url} did not become ready; tessera serve {state}; its log:\n{log}");
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub(crate) fn stop(mut self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // kill(1) rather than libc::kill: the workspace forbids unsafe code.
        let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "tessera serve exited with {exit}");
    }
}

impl Server {
    /// SIGKILL: no shutdown of any kind.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls readiness of a process that is starting; bounded to 20 s.
pub(crate) fn wait_ready(url: &str) {
    assert!(poll_ready(url, || false), "{url} did not become ready");
}

/// Whether `url` answers 200 within 20 s, giving up early once `gone` says the process exited.
fn poll_ready(url: &str, mut gone: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if probe::blocking_get(url).is_ok_and(|status| status == 200) {
            return true;
        }
        if gone() || Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

mod probe {
    //! A tiny blocking GET over std, so the e2e test needs no async runtime.
    use std::io::{Read, Write};
    use std::net::TcpStream;

    pub(crate) fn blocking_get(url: &str) -> std::io::Result<u16> {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = TcpStream::connect(host)?;
        write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0))
    }
}

pub(crate) fn tessera(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

pub(crate) fn json_out(output: &Output) -> Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Form POST with curl-free std HTTP is tedious; use the test-support client on a runtime.
pub(crate) fn post_form(url: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        tessera_test_support::install_crypto_provider();
        let res = reqwest::Client::new()
            .post(url)
            .header("authorization", basic(id, secret))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

#[test]
fn serve_create_token_verify_revoke_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let server = Server::start(dir.path(), public, admin);
    let issuer = server.issuer.clone();
    let admin_config = server.admin_config.to_str().unwrap().to_owned();

    let jwt_client = json_out(&tessera(&[
        "client",
        "create",
        "--admin-config",
        &admin_config,
        "--json",
        "--scope",
        "read write",
        "--name",
        "e2e",
    ]));
    let opaque_client = json_out(&tessera(&[
        "client",
        "create",
        "--admin-config",
        &admin_config,
        "--json",
        "--format",
        "opaque",
        "--scope",
        "read",
    ]));
    let id = jwt_client["client_id"].as_str().unwrap();
    let secret = jwt_client["client_secret"].as_str().unwrap();
    let (opaque_id, opaque_secret) =
        (opaque_client["client_id"].as_str().unwrap(), opaque_client["client_secret"].as_str().unwrap());

    let token_url = format!("{issuer}/token");
    let (status, body) = post_form(&token_url, id, secret, &[("grant_type", "client_credentials")]);
    assert_eq!(status, 200);
    let jwt = body["access_token"].as_str().unwrap().to_owned();
    let (_, body) = post_form(&token_url, opaque_id, opaque_secret, &[("grant_type", "client_credentials")]);
    let opaque = body["access_token"].as_str().unwrap().to_owned();
    let (_, body) = post_form(&token_url, id, secret, &[("grant_type", "client_credentials")]);
    let second_jwt = body["access_token"].as_str().unwrap().to_owned();

    let verify =
        |token: &str| tessera(&["token", "verify", token, "--issuer", &issuer, "--audience", &issuer, "--discover"]);
    let out = verify(&jwt);
    let claims = json_out(&out);
    assert_eq!(claims["client_id"], id);
    let out = tessera(&[
        "token",
        "verify",
        &jwt,
        "--issuer",
        &issuer,
        "--audience",
        "https://elsewhere.example",
        "--discover",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong audience"));

    // Revoke the JWT and the opaque token; introspection reflects it at once.
    let revoke_url = format!("{issuer}/revoke");
    assert_eq!(post_form(&revoke_url, id, secret, &[("token", &jwt)]).0, 200);
    assert_eq!(post_form(&revoke_url, opaque_id, opaque_secret, &[("token", &opaque)]).0, 200);
    let introspect_url = format!("{issuer}/introspect");
    assert_eq!(post_form(&introspect_url, id, secret, &[("token", &jwt)]).1, serde_json::json!({"active": false}));
    assert_eq!(
        post_form(&introspect_url, opaque_id, opaque_secret, &[("token", &opaque)]).1,
        serde_json::json!({"active": false})
    );

    let listed = json_out(&tessera(&["client", "list", "--admin-config", &admin_config, "--json"]));
    assert_eq!(listed["clients"].as_array().unwrap().len(), 3);
    let keys_before = json_out(&tessera(&["key", "list", "--admin-config", &admin_config, "--json"]));

    server.stop();
    let server = Server::start(dir.path(), public, admin);

    // Keys persisted: the old JWT still verifies, and the key list is the same.
    json_out(&verify(&second_jwt));
    assert_eq!(json_out(&tessera(&["key", "list", "--admin-config", &admin_config, "--json"])), keys_before);
    // Revocations persisted.
    assert_eq!(post_form(&introspect_url, id, secret, &[("token", &jwt)]).1, serde_json::json!({"active": false}));
    assert_eq!(
        post_form(&introspect_url, opaque_id, opaque_secret, &[("token", &opaque)]).1,
        serde_json::json!({"active": false})
    );
    assert_eq!(post_form(&introspect_url, id, secret, &[("token", &second_jwt)]).1["active"], true);
    // The CLI reuses admin.json after a restart.
    let out = tessera(&["client", "show", id, "--admin-config", &admin_config]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("e2e"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    // Deleting through the CLI makes its tokens inactive.
    assert!(tessera(&["client", "delete", id, "--admin-config", &admin_config]).status.success());
    assert_eq!(post_form(&introspect_url, opaque_id, opaque_secret, &[("token", &second_jwt)]).1["active"], false);
    server.stop();

    // No secret or token ever reached the logs.
    let logs: String = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(logs.contains("tessera serving"));
    for secret in [secret, opaque_secret, &jwt, &opaque, &second_jwt] {
        assert!(!logs.contains(secret));
    }
    let admin_json: Value = serde_json::from_slice(&std::fs::read(&admin_config).unwrap()).unwrap();
    assert!(!logs.contains(admin_json["client_secret"].as_str().unwrap()));
}

#[test]
fn cli_errors_are_one_clear_line() {
    let out = tessera(&["client", "list", "--admin-config", "/nonexistent/admin.json"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: reading /nonexistent/admin.json"));

    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
    let out = tessera(&[
        "token",
        "verify",
        "a.b.c",
        "--issuer",
        "https://as",
        "--audience",
        "https://api",
        "--jwks",
        jwks.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("invalid token: "));

    let out =
        tessera(&["serve", "--issuer", "http://id.example.com", "--data-dir", dir.path().join("d").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must use https"));
}

/// The README quick start, word for word: `tessera serve` with no flags in an empty directory
/// listens on the documented defaults and writes `tessera-data/admin.json`, which the CLI reads.
#[test]
fn readme_quick_start() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains("cargo run --release -p tessera-cli -- serve"),
        "README run command changed; update this test"
    );
    assert!(readme.contains("scripts/test"), "README test command changed; update this test");
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() || std::net::TcpListener::bind("127.0.0.1:8081").is_err()
    {
        panic!("ports 8080/8081 are taken on this machine; the quick-start test needs the documented defaults");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready("http://127.0.0.1:8080/readyz");
    let out = Command::new(BIN).args(["client", "list"]).current_dir(dir.path()).output().unwrap();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exit = child.wait().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Tessera bootstrap admin"));
    assert!(exit.success());
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("tessera-data/admin.json")).unwrap()).unwrap();
    assert_eq!(admin["issuer"], "http://127.0.0.1:8080");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            (mode("tessera-data"), mode("tessera-data/admin.json"), mode("tessera-data/master.key")),
            (0o700, 0o600, 0o600)
        );
    }
    assert_eq!(admin["admin_url"], "http://127.0.0.1:8081");
}

/// Defaults < tessera.toml < TESSERA_* < flags.
#[test]
fn configuration_layers_in_the_documented_order() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port, flag_port, admin_port) = (free_port(), free_port(), free_port(), free_port());
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:{file_port}\"\nadmin_listen = \"127.0.0.1:{admin_port}\"\nissuer = \"http://127.0.0.1:{file_port}\"\nlog_format = \"json\"\n"),
    )
    .unwrap();
    let start = |env_listen: Option<u16>, flag_listen: Option<u16>| {
        let mut command = Command::new(BIN);
        command.arg("serve").arg("--config").arg(&config).arg("--data-dir").arg(dir.path().join("data"));
        if let Some(port) = env_listen {
            command.env("TESSERA_LISTEN", format!("127.0.0.1:{port}"));
        }
        if let Some(port) = flag_listen {
            command.args(["--listen", &format!("127.0.0.1:{port}")]);
        }
        command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
    };
    for (env_listen, flag_listen, expected) in
        [(None, None, file_port), (Some(env_port), None, env_port), (Some(env_port), Some(flag_port), flag_port)]
    {
        let child = start(env_listen, flag_listen);
        wait_ready(&format!("http://127.0.0.1:{expected}/readyz"));
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        // log_format = "json" came from the file.
        let first = String::from_utf8_lossy(&output.stderr).lines().next().unwrap_or("").to_owned();
        assert!(serde_json::from_str::<Value>(&first).is_ok(), "{first}");
    }
    let out =
        Command::new(BIN).args(["serve", "--config"]).arg(&config).args(["--log-format", "yaml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("log format"));
}

/// The key and secret commands, and `token verify` with a JWKS file, a JWKS URL and `--now`.
#[test]
fn keys_secrets_and_offline_verification_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), free_port());
    let issuer = server.issuer.clone();
    let admin_config = server.admin_config.to_str().unwrap().to_owned();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--admin-config", &admin_config, "--json"]);
        json_out(&tessera(&all))
    };
    let client = cli(&["client", "create", "--scope", "read"]);
    let id = client["client_id"].as_str().unwrap().to_owned();
    let rotated = cli(&["client", "rotate-secret", &id]);
    let secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(client["client_secret"], rotated["client_secret"]);
    let token_url = format!("{issuer}/token");
    let grant = [("grant_type", "client_credentials")];
    assert_eq!(post_form(&token_url, &id, client["client_secret"].as_str().unwrap(), &grant).0, 401);

    // Users: the password comes from standard input only.
    let mut child = Command::new(BIN)
        .args([
            "user",
            "create",
            "--username",
            "erin",
            "--password-stdin",
            "--email",
            "erin@example.com",
            "--admin-config",
            &admin_config,
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"correct horse battery\n").unwrap();
    let erin = json_out(&child.wait_with_output().unwrap());
    let erin_id = erin["id"].as_str().unwrap();
    assert_eq!(cli(&["user", "disable", erin_id])["disabled"], true);
    assert_eq!(cli(&["user", "enable", erin_id])["disabled"], false);
    assert_eq!(cli(&["user", "list"])["users"][0]["username"], "erin");
    assert_eq!(cli(&["user", "show", erin_id])["email"], "erin@example.com");
    cli(&["user", "delete", erin_id]);
    assert!(!tessera(&["user", "create", "--username", "x", "--admin-config", &admin_config]).status.success());

    let key = cli(&["key", "create", "--alg", "EdDSA"]);
    assert_eq!(key["status"], "published");
    let kid = key["kid"].as_str().unwrap();
    assert_eq!(cli(&["key", "activate", kid])["status"], "active");
    let keys = cli(&["key", "list"]);
    assert_eq!(keys["keys"].as_array().unwrap().len(), 3);

    let (status, body) = post_form(&token_url, &id, &secret, &grant);
    assert_eq!(status, 200);
    let token = body["access_token"].as_str().unwrap().to_owned();
    let jwks_url = format!("{issuer}/jwks.json");
    let jwks_file = dir.path().join("jwks.json");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let jwks_text = runtime.block_on(async { reqwest::get(&jwks_url).await.unwrap().text().await.unwrap() });
    std::fs::write(&jwks_file, jwks_text).unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["token", "verify", &token, "--issuer", &issuer, "--audience", &issuer];
        args.extend(extra);
        tessera(&args)
    };
    let claims = json_out(&verify(&["--jwks", jwks_file.to_str().unwrap()]));
    let exp = claims["exp"].as_u64().unwrap();
    json_out(&verify(&["--jwks", &jwks_url]));
    // Just inside and just outside the default 60 s leeway, then with no leeway at all.
    let at = |t: u64| t.to_string();
    assert!(verify(&["--jwks", &jwks_url, "--now", &at(exp + 59)]).status.success());
    let out = verify(&["--jwks", &jwks_url, "--now", &at(exp + 61)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));
    assert_eq!(verify(&["--jwks", &jwks_url, "--now", &at(exp + 1), "--leeway", "0"]).status.code(), Some(1));
    let out = verify(&["--jwks", &jwks_url, "--now", &at(exp + 61), "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["valid"].as_bool(), report["error"].as_str()), (Some(false), Some("invalid_token")));
    // The token from standard input.
    let mut child = Command::new(BIN)
        .args(["token", "verify", "-", "--issuer", &issuer, "--audience", &issuer, "--jwks", &jwks_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), token.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    // An issuer whose metadata names another issuer is refused by --discover.
    let out =
        tessera(&["token", "verify", &token, "--issuer", &format!("{issuer}/"), "--audience", &issuer, "--discover"]);
    assert!(!out.status.success());
    server.stop();
}

/// `tessera client create --require-dpop` and `tessera token verify --dpop`: a DPoP-bound token
/// verifies only with a proof by its key for the request named (SECURITY-TESTS.md JW-20a).
#[test]
fn dpop_bound_tokens_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), free_port());
    let issuer = server.issuer.clone();
    let admin_config = server.admin_config.to_str().unwrap().to_owned();
    let client = json_out(&tessera(&[
        "client",
        "create",
        "--scope",
        "read",
        "--require-dpop",
        "--admin-config",
        &admin_config,
        "--json",
    ]));
    assert_eq!(client["dpop_bound_access_tokens"], true);
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let token_url = format!("{issuer}/token");
    let grant = [("grant_type", "client_credentials")];
    assert_eq!(post_form(&token_url, id, secret, &grant).1["error"], "invalid_dpop_proof");
    // The server's own clock: the iat of a token it just issued to the admin client.
    let admin: tessera_proto::admin::AdminConfig =
        serde_json::from_slice(&std::fs::read(&admin_config).unwrap()).unwrap();
    let (_, admin_token) = post_form(&token_url, &admin.client_id, &admin.client_secret, &grant);
    let now = tessera_test_support::jwt_claims(admin_token["access_token"].as_str().unwrap())["iat"].as_u64().unwrap();
    let key = tessera_test_support::DpopKey::default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let body: Value = runtime.block_on(async {
        let res = reqwest::Client::new()
            .post(&token_url)
            .header("authorization", basic(id, secret))
            .header("dpop", key.proof("POST", &token_url, now, None))
            .form(&grant)
            .send()
            .await
            .unwrap();
        res.json().await.unwrap()
    });
    assert_eq!(body["token_type"], "DPoP", "{body}");
    let token = body["access_token"].as_str().unwrap();
    let api = "https://api.example.test/orders";
    let at = now.to_string();
    let verify = |extra: &[&str]| {
        let mut args =
            vec!["token", "verify", token, "--issuer", &issuer, "--audience", &issuer, "--discover", "--now", &at];
        args.extend(extra);
        tessera(&args)
    };
    let proof = key.proof("GET", api, now, Some(token));
    let claims = json_out(&verify(&["--dpop", &proof, "--method", "GET", "--url", api]));
    assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str());
    // Without a proof, with another key's proof, for another method: exit 1.
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sender-constrained"));
    let other = tessera_test_support::DpopKey::default().proof("GET", api, now, Some(token));
    assert_eq!(verify(&["--dpop", &other, "--method", "GET", "--url", api]).status.code(), Some(1));
    assert_eq!(verify(&["--dpop", &proof, "--method", "POST", "--url", api]).status.code(), Some(1));
    // --dpop needs --method and --url.
    assert_eq!(verify(&["--dpop", &proof]).status.code(), Some(2));
    server.stop();
}

/// SIGTERM ends open revocation-feed streams, so the server still stops promptly.
#[test]
fn shutdown_ends_open_revocation_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), free_port());
    let admin_config = server.admin_config.to_str().unwrap().to_owned();
    let reader =
        json_out(&tessera(&["client", "create", "--introspection", "--admin-config", &admin_config, "--json"]));
    let (id, secret) =
        (reader["client_id"].as_str().unwrap().to_owned(), reader["client_secret"].as_str().unwrap().to_owned());
    let url = format!("{}/revocations/stream", server.issuer);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let ended = runtime.block_on(async {
        let res = reqwest::Client::new().get(&url).header("authorization", basic(&id, &secret)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let mut stream = tessera_test_support::SseReader::new(res);
        assert_eq!(stream.next(Duration::from_secs(5)).await.unwrap().event.as_deref(), Some("caught-up"));
        let stopped = Instant::now();
        let stopper = std::thread::spawn(move || server.stop());
        // The stream ends (no event, end of body) once the server stops.
        assert!(stream.next(Duration::from_secs(10)).await.is_none());
        stopper.join().unwrap();
        stopped.elapsed()
    });
    assert!(ended < Duration::from_secs(5), "shutdown took {ended:?}");
}

/// The README walkthrough with the binary: `tessera user create`, `tessera client create` for a
/// code-flow client, sign-in through the pages, code → tokens, userinfo, refresh, and
/// `tessera revoke --user`.
#[test]
fn readme_walkthrough_sign_in_refresh_and_sign_out_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), free_port());
    let issuer = server.issuer.clone();
    let admin_config = server.admin_config.to_str().unwrap().to_owned();
    let mut child = Command::new(BIN)
        .args(["user", "create", "--username", "alice", "--email", "alice@example.com", "--password-stdin"])
        .args(["--admin-config", &admin_config, "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"correct horse battery staple\n").unwrap();
    let alice = json_out(&child.wait_with_output().unwrap());
    let alice_id = alice["id"].as_str().unwrap().to_owned();
    let callback = "https://app.example.com/callback";
    let client = json_out(&tessera(&[
        "client",
        "create",
        "--name",
        "Example App",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        callback,
        "--post-logout-redirect-uri",
        "https://app.example.com/",
        "--scope",
        "openid profile email offline_access",
        "--admin-config",
        &admin_config,
        "--json",
    ]));
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    assert_eq!(client["response_types"], serde_json::json!(["code"]));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let code = runtime.block_on(async {
        tessera_test_support::install_crypto_provider();
        let mut browser = tessera_test_support::Browser::at(&issuer);
        let query = [
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", callback),
            ("scope", "openid profile offline_access"),
            ("state", "xyz"),
            ("code_challenge", tessera_test_support::CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        let redirect = browser.authorize(&query, "alice").await;
        assert!(redirect.starts_with(callback));
        assert_eq!(tessera_test_support::query_param(&redirect, "state").as_deref(), Some("xyz"));
        tessera_test_support::query_param(&redirect, "code").unwrap()
    });
    let token_url = format!("{issuer}/token");
    let (status, tokens) = post_form(
        &token_url,
        id,
        secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", callback),
            ("code_verifier", tessera_test_support::VERIFIER),
        ],
    );
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].is_string());
    let (status, refreshed) = post_form(
        &token_url,
        id,
        secret,
        &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())],
    );
    assert_eq!(status, 200, "{refreshed}");
    let access = refreshed["access_token"].as_str().unwrap();
    let introspect = |token: &str| post_form(&format!("{issuer}/introspect"), id, secret, &[("token", token)]).1;
    assert_eq!(introspect(access)["active"], true);

    let revoked = json_out(&tessera(&["revoke", "--user", &alice_id, "--admin-config", &admin_config, "--json"]));
    assert_eq!((revoked["sessions"].as_u64(), revoked["grants"].as_u64()), (Some(1), Some(1)));
    assert_eq!(introspect(access), serde_json::json!({"active": false}));
    assert!(!tessera(&["revoke", "--admin-config", &admin_config]).status.success());
    server.stop();
}

/// `tessera audit verify|query|tail|export` against a running server; `verify` exits 1 and
/// names the record when the database was tampered with behind the server's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_commands_verify_query_tail_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let server = tokio::task::block_in_place(|| Server::start(dir.path(), public, admin));
    let admin_config = server.admin_config.to_str().unwrap().to_owned();
    let client =
        json_out(&tessera(&["client", "create", "--admin-config", &admin_config, "--json", "--scope", "read"]));
    let client_id = client["client_id"].as_str().unwrap();
    let auth = basic(client_id, client["client_secret"].as_str().unwrap());
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let res = http
            .post(format!("{}/token", server.issuer))
            .header("authorization", &auth)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let run = |args: &[&str]| {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--admin-config", &admin_config]);
        tessera(&all)
    };

    let out = run(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("audit log intact"), "{text}");
    let anchor = text.lines().find_map(|l| l.strip_prefix("anchor: ")).unwrap().to_owned();
    assert!(run(&["verify", "--anchor", &anchor]).status.success());

    let out = run(&["query", "--client", client_id, "--event", "token.issued", "--json"]);
    assert!(out.status.success());
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["client_id"] == client_id && l["actor"] == format!("client:{client_id}")));
    let out = run(&["tail", "-n", "2"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    let out = run(&["export"]);
    let exported = String::from_utf8(out.stdout).unwrap();
    assert!(exported.lines().count() >= 6);
    assert!(exported.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
    assert!(!exported.contains(client["client_secret"].as_str().unwrap()));
    let out = run(&["query", "--event", "no.such.event"]);
    assert!(!out.status.success());

    // Tampering: record 3's outcome changed in the database file.
    use sqlx::Connection as _;
    let url = format!("sqlite:{}", dir.path().join("data/tessera.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    // A row, or a record in a segment of records moved from the outbox (migration 0016).
    for sql in [
        "UPDATE audit_log SET outcome = 'failure' WHERE seq = 3",
        "UPDATE audit_segments SET records = json_set(records, '$[' || (3 - first) || '].outcome', 'failure')
         WHERE first <= 3 AND last >= 3",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    drop(conn);
    let out = run(&["verify"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("BROKEN at record 3"), "{text}");
    let out = run(&["verify", "--json"]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["first_break"]["seq"], 3);
    tokio::task::block_in_place(|| server.stop());
}

/// The README's audit section names every event the server records, and its commands exist.
#[test]
fn readme_documents_every_audit_event_and_command() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme.split("### Audit log").nth(1).expect("README section").split("\n### ").next().unwrap();
    for event in tessera_server::audit::Event::ALL {
        assert!(section.contains(&format!("`{}`", event.as_str())), "README does not name {}", event.as_str());
    }
    let commands: Vec<&str> = section.lines().filter(|l| l.starts_with("tessera audit ")).collect();
    assert!(commands.len() >= 4, "{commands:?}");
    for command in commands {
        let sub = command.split_whitespace().nth(2).unwrap();
        let out = tessera(&["audit", sub, "--help"]);
        assert!(out.status.success(), "tessera audit {sub}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `tessera serve --registration token`: an initial access token from the CLI registers a
/// client at `/register`, and `tessera client list` says how each client was created.
#[test]
fn a_registration_token_from_the_cli_registers_a_client_listed_as_registered() {
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let server = Server::start_with(dir.path(), public, admin, &["--registration", "token"]);
    let admin_config = server.admin_config.to_str().unwrap().to_owned();
    let created = json_out(&tessera(&[
        "client",
        "registration-token",
        "create",
        "--admin-config",
        &admin_config,
        "--json",
        "--uses",
        "1",
    ]));
    assert_eq!(created["uses"], 1);
    let token = created["token"].as_str().unwrap().to_owned();
    let register = |token: &str| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let res = reqwest::Client::new()
                .post(format!("{}/register", server.issuer))
                .bearer_auth(token)
                .json(&serde_json::json!({
                    "client_name": "registered by a developer",
                    "redirect_uris": ["https://app.example/cb"],
                    "token_endpoint_auth_method": "none",
                }))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        })
    };
    let (status, registered) = register(&token);
    assert_eq!(status, 201, "{registered}");
    assert_eq!(register(&token).0, 401, "one use");
    let listed = json_out(&tessera(&["client", "list", "--admin-config", &admin_config, "--json"]));
    let origins: Vec<(&str, &str)> = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["client_id"].as_str().unwrap(), c["origin"].as_str().unwrap()))
        .collect();
    assert!(origins.contains(&(registered["client_id"].as_str().unwrap(), "token_registration")), "{origins:?}");
    assert!(origins.iter().any(|(_, origin)| *origin == "admin"), "the bootstrap admin client: {origins:?}");
    let table = tessera(&["client", "list", "--admin-config", &admin_config]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("CREATED_BY") && table.contains("token_registration"), "{table}");
}
