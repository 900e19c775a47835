//! `tessera serve --tls-cert --tls-key` as a real process: HTTPS with a certificate from a test
//! CA, a new certificate taken up on SIGHUP without a restart, and plain http refused on a
//! listener that is not on loopback.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tessera_test_support::TestPki;

use crate::e2e::{free_port, tessera};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

fn client_trusting(pki: &TestPki) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Polls until `client` completes a request to `url` (a TLS handshake it accepts), bounded.
async fn reachable(client: &reqwest::Client, url: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_certificate_that_is_replaced_without_a_restart() {
    tessera_test_support::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (TestPki::default(), TestPki::default());
    let (cert_file, key_file) = (dir.path().join("server.pem"), dir.path().join("server-key.pem"));
    let install = |pki: &TestPki| {
        let cert = pki.server_cert();
        std::fs::write(&cert_file, &cert.cert_pem).unwrap();
        std::fs::write(&key_file, &cert.key_pem).unwrap();
    };
    install(&first);
    let port = free_port();
    let issuer = format!("https://127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .args(["--issuer", &issuer])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert_file)
        .arg("--tls-key")
        .arg(&key_file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    let discovery = format!("{issuer}/.well-known/openid-configuration");
    let (trusts_first, trusts_second) = (client_trusting(&first), client_trusting(&second));
    assert!(reachable(&trusts_first, &format!("{issuer}/readyz"), Duration::from_secs(20)).await, "never ready");
    let metadata: serde_json::Value = trusts_first.get(&discovery).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
    assert!(trusts_second.get(&discovery).send().await.is_err(), "the second CA is not in use yet");

    // Renewal: new files, then SIGHUP (the file watcher would also notice within seconds).
    install(&second);
    let status = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(
        reachable(&trusts_second, &discovery, Duration::from_secs(10)).await,
        "the new certificate was not taken up"
    );
    // Open connections keep their session; a new connection gets the new certificate.
    assert!(client_trusting(&first).get(&discovery).send().await.is_err(), "the old certificate is gone");
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

#[test]
fn plain_http_is_refused_off_loopback_and_tls_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--data-dir", data.to_str().unwrap(), "--admin-listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        tessera(&args)
    };
    let out = serve(&["--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tls_cert") && stderr.contains("trusted_proxies"), "{stderr}");
    let out = serve(&[
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
        "--issuer",
        "https://127.0.0.1:1",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/cert.pem"));
    let out = serve(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
    assert!(!out.status.success(), "an http issuer with TLS is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
    let out = serve(&["--listen", "0.0.0.0:0", "--trusted-proxies", "10.0.0.0/8,not-an-address"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-an-address"));
}

/// The `tessera client create` examples of the README's sender-constrained section, word for
/// word (continuation lines joined), against a running server.
#[test]
fn readme_sender_constrained_examples_register() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section =
        readme.split("### Sender-constrained tokens").nth(1).expect("README section").split("\n### ").next().unwrap();
    let joined = section.replace("\\\n", " ");
    let commands: Vec<Vec<String>> =
        joined.lines().filter(|l| l.trim_start().starts_with("tessera client create")).map(shell_words).collect();
    assert_eq!(commands.len(), 3, "the README shows three client examples");
    let dir = tempfile::tempdir().unwrap();
    let server = crate::e2e::Server::start(dir.path(), free_port(), free_port());
    let admin_config = server.admin_config.to_str().unwrap().to_owned();
    let mut created = Vec::new();
    for words in commands {
        let mut args: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
        args.extend(["--admin-config", &admin_config, "--json"]);
        let out = tessera(&args);
        assert!(out.status.success(), "{words:?}: {}", String::from_utf8_lossy(&out.stderr));
        created.push(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap());
    }
    assert_eq!(
        (created[0]["dpop_bound_access_tokens"].as_bool(), created[0]["dpop_nonce_required"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(created[1]["tls_client_auth_subject_dn"], "CN=billing,O=Example");
    assert_eq!(created[1]["tls_client_certificate_bound_access_tokens"], true);
    assert!(created[1].get("client_secret").is_none(), "an mTLS client gets no secret");
    assert_eq!(
        (created[2]["profile"].as_str(), created[2]["token_endpoint_auth_method"].as_str()),
        (Some("fapi2"), Some("private_key_jwt"))
    );
    server.stop();
}

/// Splits a command line the way a POSIX shell would for these examples: spaces, double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut started) = (Vec::new(), String::new(), false, false);
    for c in line.trim().chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}
