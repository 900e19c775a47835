//! Interoperability: the independent npm clients `oauth4webapi` and `openid-client` drive
//! Tessera over real HTTP (tests/interop). `scripts/test` installs them from the committed
//! lockfile; a missing install fails these tests rather than skipping them.

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use tessera_server::clock::{Clock, SystemClock};
use tessera_test_support::{PASSWORD, REDIRECT_URI, spawn_app_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth4webapi_completes_client_credentials_introspection_and_revocation() {
    let interop = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop"));
    assert!(
        interop.join("node_modules/oauth4webapi").exists(),
        "oauth4webapi is not installed: run `npm ci --prefix tests/interop` (scripts/test does)"
    );
    // oauth4webapi checks exp and iat against its own wall clock, so this server's clock is
    // fixed at the real current time.
    let app = spawn_app_at(SystemClock.now().secs()).await;
    let api = "https://api.example.test";
    let jwt = app.create_client(json!({"scope":"read write","audience":[api]})).await;
    let opaque = app.create_client(json!({"scope":"read write","access_token_format":"opaque"})).await;
    let output = Command::new("node")
        .arg("client_credentials.mjs")
        .current_dir(&interop)
        .env("ISSUER", &app.issuer)
        .env("AUDIENCE", api)
        .env("JWT_CLIENT_ID", &jwt.id)
        .env("JWT_CLIENT_SECRET", &jwt.secret)
        .env("OPAQUE_CLIENT_ID", &opaque.id)
        .env("OPAQUE_CLIENT_SECRET", &opaque.secret)
        .output()
        .expect("node is required for the interop tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "oauth4webapi failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("interop: 1 passed, 0 failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_completes_the_code_flow_with_par_refresh_revocation_and_logout() {
    let interop = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop"));
    assert!(
        interop.join("node_modules/openid-client").exists(),
        "openid-client is not installed: run `npm ci --prefix tests/interop` (scripts/test does)"
    );
    // openid-client checks the ID token's iat and exp against its own wall clock.
    let app = spawn_app_at(SystemClock.now().secs()).await;
    let user_id = app.create_user("olivia").await;
    let client = app.code_client(json!({})).await;
    let output = tokio::task::spawn_blocking({
        let (issuer, id, secret) = (app.issuer.clone(), client.id.clone(), client.secret.clone());
        move || {
            Command::new("node")
                .arg("code_flow.mjs")
                .current_dir(&interop)
                .env("ISSUER", issuer)
                .env("CLIENT_ID", id)
                .env("CLIENT_SECRET", secret)
                .env("REDIRECT_URI", REDIRECT_URI)
                .env("POST_LOGOUT_REDIRECT_URI", "https://client.example.org/bye")
                .env("USERNAME", "olivia")
                .env("PASSWORD", PASSWORD)
                .env("USER_ID", user_id)
                .output()
                .expect("node is required for the interop tests")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "openid-client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("code-flow interop: 10 passed, 0 failed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth4webapi_obtains_and_uses_dpop_and_mtls_bound_tokens() {
    let interop = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop"));
    for module in ["oauth4webapi", "undici", "jose"] {
        assert!(
            interop.join("node_modules").join(module).exists(),
            "{module} is not installed: run `npm ci --prefix tests/interop` (scripts/test does)"
        );
    }
    // oauth4webapi checks token and proof times against its own wall clock.
    let now = SystemClock.now().secs();
    let app = spawn_app_at(now).await;
    let user_id = app.create_user("dora").await;
    let admin_token = app.admin_token().await;
    let tls = tessera_test_support::spawn_tls_app_at(now).await;
    let pki = tls.pki.as_ref().unwrap();
    let cert = pki.client_cert("interop-client", &[]);
    let mtls_client = tls
        .create_client(json!({"scope":"read","token_endpoint_auth_method":"tls_client_auth",
            "tls_client_auth_subject_dn":"CN=interop-client,O=Tessera Tests","tls_client_certificate_bound_access_tokens":true}))
        .await
        .id;
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca, cert_file, key_file) =
        (write("ca.pem", &pki.ca_pem), write("client.pem", &cert.cert_pem), write("client-key.pem", &cert.key_pem));
    let output = tokio::task::spawn_blocking({
        let envs = [
            ("ISSUER", app.issuer.clone()),
            ("ADMIN_URL", app.admin_url("")),
            ("ADMIN_TOKEN", admin_token),
            ("REDIRECT_URI", REDIRECT_URI.to_owned()),
            ("USERNAME", "dora".to_owned()),
            ("PASSWORD", PASSWORD.to_owned()),
            ("USER_ID", user_id),
            ("MTLS_ISSUER", tls.issuer.clone()),
            ("MTLS_CLIENT_ID", mtls_client),
            ("CERT_THUMBPRINT", cert.thumbprint()),
        ];
        let paths = [("CA_FILE", ca), ("CERT_FILE", cert_file), ("KEY_FILE", key_file)];
        move || {
            Command::new("node")
                .arg("sender_constrained.mjs")
                .current_dir(&interop)
                .envs(envs)
                .envs(paths)
                .output()
                .expect("node is required for the interop tests")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "oauth4webapi failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("sender-constrained interop: 11 passed, 0 failed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_registers_itself_and_completes_the_code_flow() {
    let interop = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop"));
    assert!(
        interop.join("node_modules/openid-client").exists(),
        "openid-client is not installed: run `npm ci --prefix tests/interop` (scripts/test does)"
    );
    // openid-client checks the ID token's iat and exp against its own wall clock.
    let app = tessera_test_support::spawn_app_with(SystemClock.now().secs(), |c| {
        c.registration = tessera_server::config::Registration::Open;
    })
    .await;
    app.create_user("rita").await;
    let output = tokio::task::spawn_blocking({
        let issuer = app.issuer.clone();
        move || {
            Command::new("node")
                .arg("registration.mjs")
                .current_dir(&interop)
                .env("ISSUER", issuer)
                .env("USERNAME", "rita")
                .env("PASSWORD", PASSWORD)
                .output()
                .expect("node is required for the interop tests")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "openid-client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("registration interop: 4 passed, 0 failed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_completes_the_device_authorization_grant() {
    let interop = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop"));
    assert!(
        interop.join("node_modules/openid-client").exists(),
        "openid-client is not installed: run `npm ci --prefix tests/interop` (scripts/test does)"
    );
    // openid-client checks the ID token's iat and exp against its own wall clock.
    let app = tessera_test_support::spawn_app_with(SystemClock.now().secs(), |_| {}).await;
    app.create_user("dana").await;
    let device = app
        .code_client(serde_json::json!({
            "client_name": "openid-client on a TV",
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            "redirect_uris": [],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let output = tokio::task::spawn_blocking({
        let issuer = app.issuer.clone();
        move || {
            Command::new("node")
                .arg("device.mjs")
                .current_dir(&interop)
                .env("ISSUER", issuer)
                .env("CLIENT_ID", device.id)
                .env("USERNAME", "dana")
                .env("PASSWORD", PASSWORD)
                .output()
                .expect("node is required for the interop tests")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "openid-client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("device interop: 5 passed, 0 failed"), "{stdout}");
}
