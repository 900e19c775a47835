//! An acknowledged opaque token, revocation or refresh survives `kill -9` of the server, even
//! when the kill lands in the middle of a stream of issuance, revocation and refresh (issues #3
//! and #5), on SQLite and on PostgreSQL; no refresh family ever has two live tokens.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tessera_test_support::basic;

use crate::e2e::{Server, free_port, tessera};

#[derive(Default)]
struct Acknowledged {
    active: Vec<String>,
    revoked: Vec<String>,
    /// The last acknowledged refresh token of each family.
    refresh: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tokens_and_revocations_survive_kill_9() {
    kill_9_mid_stream(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tokens_revocations_and_refreshes_survive_kill_9_on_postgres() {
    let schema = tessera_test_support::PostgresSchema::create(&crate::multinode::postgres_url()).await;
    let url = schema.url();
    kill_9_mid_stream(&["--database-url", &url]).await;
    // No refresh family has two live tokens.
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&schema.base_url).await.unwrap();
    let sql = format!(
        "SELECT grant_id FROM {}.refresh_tokens WHERE rotated_at IS NULL GROUP BY grant_id HAVING COUNT(*) > 1",
        schema.schema
    );
    let forks = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap();
    assert!(forks.is_empty(), "{} families have two live refresh tokens", forks.len());
    drop(conn);
    schema.drop_blocking();
}

async fn kill_9_mid_stream(extra: &[&str]) {
    tessera_test_support::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (public, admin) = (free_port(), free_port());
    let server = tokio::task::block_in_place(|| Server::start_with(dir.path(), public, admin, extra));
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

    // Four refresh families, each refreshed in a loop by one worker.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["user", "create", "--username", "alice", "--password-stdin", "--admin-config", &admin_config])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let password = format!("{}\n", tessera_test_support::PASSWORD);
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), password.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let out = tessera(&[
        "client",
        "create",
        "--admin-config",
        &admin_config,
        "--json",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        tessera_test_support::REDIRECT_URI,
        "--scope",
        "openid",
        "--first-party",
    ]);
    let code_client: Value = serde_json::from_slice(&out.stdout).unwrap();
    let code_auth = basic(code_client["client_id"].as_str().unwrap(), code_client["client_secret"].as_str().unwrap());
    let mut families = Vec::new();
    for _ in 0..4 {
        let mut browser = tessera_test_support::Browser::at(&base);
        let query = tessera_test_support::code_request(code_client["client_id"].as_str().unwrap(), "openid");
        let redirect = browser.authorize(&query, "alice").await;
        let code = tessera_test_support::query_param(&redirect, "code").unwrap();
        let res = http
            .post(format!("{base}/token"))
            .header("authorization", &code_auth)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", tessera_test_support::REDIRECT_URI),
                ("code_verifier", tessera_test_support::VERIFIER),
            ])
            .send()
            .await
            .unwrap();
        let tokens: Value = res.json().await.unwrap();
        families.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    acknowledged.lock().unwrap().refresh = families.clone();

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
    for (family, first) in families.into_iter().enumerate() {
        let (http, base, acknowledged, auth) = (http.clone(), base.clone(), acknowledged.clone(), code_auth.clone());
        workers.push(tokio::spawn(async move {
            let mut rt = first;
            loop {
                let res = http
                    .post(format!("{base}/token"))
                    .header("authorization", &auth)
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
                    .send()
                    .await;
                let Ok(res) = res else { return };
                let Ok(body) = res.json::<Value>().await else { return };
                let Some(next) = body["refresh_token"].as_str() else { return };
                rt = next.to_owned();
                acknowledged.lock().unwrap().refresh[family] = rt.clone();
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

    let server = tokio::task::block_in_place(|| Server::start_with(dir.path(), public, admin, extra));
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
    // The last acknowledged refresh token of each family still refreshes (an unacknowledged
    // rotation committed just before the kill is retried within the grace window).
    for rt in &acknowledged.refresh {
        let res = http
            .post(format!("{base}/token"))
            .header("authorization", &code_auth)
            .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "an acknowledged refresh token stopped working");
    }
    server.stop();
}
