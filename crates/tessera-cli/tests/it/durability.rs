//! An acknowledged opaque token or revocation survives `kill -9` of the server, even when the
//! kill lands in the middle of a stream of issuance and revocation (issue #3).

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tessera_test_support::basic;

use crate::e2e::{Server, free_port, tessera};

#[derive(Default)]
struct Acknowledged {
    active: Vec<String>,
    revoked: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tokens_and_revocations_survive_kill_9() {
    tessera_test_support::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let server = Server::start(dir.path(), public, admin);
    let admin_config = server.admin_config.to_str().unwrap().to_owned();
    let create = |format: &str| {
        let out = tessera(&[
            "client",
            "create",
            "--admin-config",
            &admin_config,
            "--json",
            "--format",
            format,
            "--scope",
            "read",
        ]);
        let client: Value = serde_json::from_slice(&out.stdout).unwrap();
        basic(client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap())
    };
    let (opaque, jwt) = (create("opaque"), create("jwt"));
    let base = server.issuer.clone();
    let http = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));

    // 16 workers issue tokens and revoke every fourth one until the server disappears.
    let mut workers = Vec::new();
    for worker in 0..16 {
        let (http, base, acknowledged) = (http.clone(), base.clone(), acknowledged.clone());
        let auth = if worker % 4 == 3 { jwt.clone() } else { opaque.clone() };
        workers.push(tokio::spawn(async move {
            for n in 0.. {
                let res = http
                    .post(format!("{base}/token"))
                    .header("authorization", &auth)
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let Ok(res) = res else { return };
                let Ok(body) = res.json::<Value>().await else { return };
                let token = body["access_token"].as_str().unwrap().to_owned();
                if n % 4 == 0 {
                    let res = http
                        .post(format!("{base}/revoke"))
                        .header("authorization", &auth)
                        .form(&[("token", &token)])
                        .send()
                        .await;
                    match res {
                        Ok(res) if res.status() == 200 => acknowledged.lock().unwrap().revoked.push(token),
                        // Not acknowledged: the token is in no list, so either outcome is allowed.
                        _ => return,
                    }
                } else {
                    acknowledged.lock().unwrap().active.push(token);
                }
            }
        }));
    }
    // Kill in mid-stream once enough has been acknowledged.
    loop {
        if acknowledged.lock().unwrap().active.len() >= 400 {
            break;
        }
        tokio::task::yield_now().await;
    }
    server.kill();
    for worker in workers {
        worker.await.unwrap();
    }

    let server = Server::start(dir.path(), public, admin);
    let acknowledged = std::mem::take(&mut *acknowledged.lock().unwrap());
    assert!(acknowledged.active.len() >= 400 && !acknowledged.revoked.is_empty());
    let introspect = |token: String, auth: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let res = http
                .post(format!("{base}/introspect"))
                .header("authorization", auth)
                .form(&[("token", &token)])
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()["active"].as_bool().unwrap()
        }
    };
    let auth_for = |token: &str| if token.starts_with("tat_") { opaque.clone() } else { jwt.clone() };
    for token in &acknowledged.active {
        assert!(introspect(token.clone(), auth_for(token)).await, "an acknowledged token was lost");
    }
    for token in &acknowledged.revoked {
        assert!(!introspect(token.clone(), auth_for(token)).await, "an acknowledged revocation was lost");
    }
    server.stop();
}
