//! A database outage: PostgreSQL stops during a stream of refreshes and starts again. The test
//! owns that PostgreSQL (its own `initdb`, port and data directory; the shared one is untouched).
//! During the outage every request is a 503 with `Retry-After` and `/readyz` says not ready;
//! afterwards the node recovers by itself, and the refresh token in hand still works: nothing
//! was burned, no family revoked (strict rotation, no grace window, so any of that would show).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tessera_test_support::{Browser, PASSWORD, REDIRECT_URI, VERIFIER, code_request, query_param};

use crate::e2e::free_port;
use crate::multinode::Node;

/// A PostgreSQL cluster of this test's own.
struct OwnPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg(bin: &Path, program: &str, args: &[&str]) {
    let path = bin.join(program);
    let status = if is_root() {
        Command::new("runuser").arg("-u").arg("postgres").arg("--").arg(&path).args(args).status()
    } else {
        Command::new(&path).args(args).status()
    }
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(status.success(), "{program} {args:?} failed");
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl OwnPostgres {
    fn init() -> OwnPostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries are required (Debian: apt-get install postgresql)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("no initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            assert!(Command::new("chown").arg("postgres").arg(dir.path()).status().unwrap().success());
        }
        let data = dir.path().join("data");
        pg(
            &bin,
            "initdb",
            &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
        );
        let cluster = OwnPostgres { bin, data, port: free_port(), _dir: dir };
        cluster.start();
        cluster
    }

    fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.data.display());
        let log = self.data.join("server.log");
        pg(
            &self.bin,
            "pg_ctl",
            &["-D", self.data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &options, "-w", "start"],
        );
    }

    fn stop(&self) {
        pg(&self.bin, "pg_ctl", &["-D", self.data.to_str().unwrap(), "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap_or(""), "-m", "immediate", "stop"])
            .status();
    }
}

async fn refresh(node: &Node, client: &(String, String), rt: &str) -> (u16, Option<String>, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/token", node.issuer))
        .header("authorization", tessera_test_support::basic(&client.0, &client.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
        .send()
        .await
        .unwrap();
    let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), retry_after, res.json().await.unwrap_or(Value::Null))
}

async fn ready(node: &Node) -> u16 {
    reqwest::get(format!("{}/readyz", node.issuer)).await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_gives_503s_and_burns_nothing() {
    let cluster = tokio::task::block_in_place(OwnPostgres::init);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let extra = ["--refresh-token-grace-period", "0", "--database-acquire-timeout", "1"];
    let node = tokio::task::block_in_place(|| {
        Node::start_on(dir.path(), port, &issuer, &cluster.url(), &dir.path().join("master.key"), &extra)
    });
    let (status, _) =
        node.admin(reqwest::Method::POST, "/admin/users", Some(json!({"username":"alice","password":PASSWORD}))).await;
    assert_eq!(status, 201);
    let client = node
        .create_client(json!({"grant_types":["authorization_code","refresh_token"],"redirect_uris":[REDIRECT_URI],
                              "scope":"openid","first_party":true}))
        .await;
    let mut browser = Browser::at(&node.issuer);
    let redirect = browser.authorize(&code_request(&client.0, "openid"), "alice").await;
    let code = query_param(&redirect, "code").unwrap();
    let tokens = node
        .form(
            "/token",
            &client.0,
            &client.1,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let rotate = async |rt: &mut String| {
        let (status, _, body) = refresh(&node, &client, rt).await;
        assert_eq!(status, 200, "{body}");
        *rt = body["refresh_token"].as_str().unwrap().to_owned();
    };
    for _ in 0..5 {
        rotate(&mut rt).await;
    }

    tokio::task::block_in_place(|| cluster.stop());
    for _ in 0..4 {
        let (status, retry_after, body) = refresh(&node, &client, &rt).await;
        assert_eq!(status, 503, "during the outage: {body}");
        assert!(retry_after.is_some());
    }
    assert_eq!(ready(&node).await, 503);

    tokio::task::block_in_place(|| cluster.start());
    // The node reconnects by itself; wait (bounded) for it to say so.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready(&node).await != 200 {
        assert!(Instant::now() < deadline, "the node did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The token in hand was not burned, and its family was not revoked.
    for _ in 0..5 {
        rotate(&mut rt).await;
    }
}
