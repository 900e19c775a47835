//! A real browser: headless Chromium (Debian's `chromium`, driven by npm `playwright-core` from
//! tests/browser) signs in, consents, lands on the client's redirect, uses the account page and
//! signs out of all devices. Screenshots of the login, consent and account pages are saved under
//! `target/screenshots/`. `scripts/test` installs Chromium and playwright-core; a missing install
//! fails this test rather than skipping it.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use tessera_test_support::{CHALLENGE, PASSWORD, REDIRECT_URI, VERIFIER, code_request, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_consents_and_signs_out_everywhere() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(PathBuf::from(&chromium).exists(), "{chromium} is missing: install Debian's chromium (scripts/test does)");
    let app = spawn_app().await;
    app.create_user("alice").await;
    let client = app.code_client(json!({})).await;
    let query = code_request(&client.id, "openid profile email");
    assert!(query.contains(&("code_challenge", CHALLENGE)));
    let authorize = reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap();
    let screenshots = root.join("target/screenshots");
    let output = tokio::task::spawn_blocking({
        let (issuer, id, secret) = (app.issuer.clone(), client.id.clone(), client.secret.clone());
        move || {
            Command::new("node")
                .arg("sign_in.mjs")
                .current_dir(&dir)
                .env("ISSUER", issuer)
                .env("AUTHORIZE_URL", authorize.as_str())
                .env("REDIRECT_URI", REDIRECT_URI)
                .env("CLIENT_ID", id)
                .env("CLIENT_SECRET", secret)
                .env("USERNAME", "alice")
                .env("PASSWORD", PASSWORD)
                .env("VERIFIER", VERIFIER)
                .env("SCREENSHOTS", &screenshots)
                .env("CHROMIUM", chromium)
                .output()
                .expect("node is required for the browser test")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(seen.get("error").is_none(), "{seen:#}");
    assert_eq!(seen["login_title"], "Sign in");
    assert_eq!(seen["consent_title"], "Allow access");
    assert_eq!((seen["state"].as_str(), seen["iss"].as_str()), (Some("s-123"), Some(app.issuer.as_str())));
    assert_eq!(seen["code_prefix"], "tac_");
    assert_eq!((seen["token_status"].as_u64(), seen["active_before"].as_bool()), (Some(200), Some(true)));
    assert_eq!(seen["account_sessions"], 1);
    assert!(seen["account_text"].as_str().unwrap().contains("Example App"), "{seen:#}");
    assert_eq!(seen["after_sign_out"], "/login");
    assert_eq!(seen["active_after"], false);
    assert_eq!(seen["account_after"], "/login");
    for page in ["login", "consent", "account"] {
        let shot = root.join(format!("target/screenshots/{page}.png"));
        assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000), "{}", shot.display());
    }
}

/// The consent page of a client that registered itself, in Chromium at 390 px wide, light and
/// dark: the not-verified notice with the redirect host, no sideways scroll, AA contrast, and
/// keyboard-only approval. Screenshots: `target/screenshots/consent-unverified-{light,dark}.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_shows_a_self_registered_client_as_not_verified() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let app = tessera_test_support::spawn_app_with(tessera_test_support::T0, |c| {
        c.registration = tessera_server::config::Registration::Open;
    })
    .await;
    app.create_user("uma").await;
    // Registered without a port: the script serves it on an ephemeral one (RFC 8252 §7.3).
    let redirect = "http://127.0.0.1/callback";
    let res = app
        .http
        .post(app.url("/register"))
        .json(&json!({"client_name": "Unverified Tool", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let client_id = res.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_owned();
    let screenshots = root.join("target/screenshots");
    let issuer = app.issuer.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("unverified_consent.mjs")
            .current_dir(&dir)
            .env("ISSUER", issuer)
            .env("CLIENT_ID", client_id)
            .env("CHALLENGE", CHALLENGE)
            .env("USERNAME", "uma")
            .env("PASSWORD", PASSWORD)
            .env("SCREENSHOTS", &screenshots)
            .env("CHROMIUM", chromium)
            .output()
            .expect("node is required for the browser test")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(seen.get("error").is_none(), "{seen:#}");
    for scheme in ["light", "dark"] {
        let note = seen[format!("{scheme}_note")].as_str().unwrap();
        assert!(note.contains("not verified by this server") && note.contains("127.0.0.1"), "{note}");
        assert!(seen[format!("{scheme}_overflow")].as_i64().unwrap() <= 0, "{seen:#}");
        assert!(seen[format!("{scheme}_contrast")].as_f64().unwrap() >= 4.5, "{seen:#}");
        assert!(seen[format!("{scheme}_deny_contrast")].as_f64().unwrap() >= 4.5, "{seen:#}");
        assert_eq!(seen[format!("{scheme}_code")], true, "{seen:#}");
        let shot = root.join(format!("target/screenshots/consent-unverified-{scheme}.png"));
        assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000), "{}", shot.display());
    }
}

/// The device authorization grant's `/device` page in Chromium at 390 px wide, light and dark:
/// sign in on the way, type the device's code (forgivingly), confirm, allow with the keyboard;
/// no sideways scroll, AA contrast; then the device's poll gets its tokens. Screenshots:
/// `target/screenshots/device-{enter,confirm,done}-{light,dark}.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_approves_a_device_at_the_device_page() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let dir = root.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/browser` (scripts/test does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let app = tessera_test_support::spawn_app_with(tessera_test_support::T0, |_| {}).await;
    app.create_user("devi").await;
    let device = app
        .code_client(json!({
            "client_name": "Kitchen Display",
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
            "redirect_uris": [],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let mut started = Vec::new();
    for _ in 0..2 {
        let res = app
            .http
            .post(app.url("/device_authorization"))
            .form(&[("client_id", device.id.as_str()), ("scope", "openid profile")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        started.push(res.json::<Value>().await.unwrap());
    }
    let codes: Vec<&str> = started.iter().map(|s| s["user_code"].as_str().unwrap()).collect();
    let screenshots = root.join("target/screenshots");
    let issuer = app.issuer.clone();
    let user_codes = codes.join(",");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("device.mjs")
            .current_dir(&dir)
            .env("ISSUER", issuer)
            .env("USER_CODES", user_codes)
            .env("USERNAME", "devi")
            .env("PASSWORD", PASSWORD)
            .env("SCREENSHOTS", &screenshots)
            .env("CHROMIUM", chromium)
            .output()
            .expect("node is required for the browser test")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(seen.get("error").is_none(), "{seen:#}");
    for (scheme, code) in ["light", "dark"].into_iter().zip(&codes) {
        let text = seen[format!("{scheme}_confirm_text")].as_str().unwrap();
        assert!(text.contains("Kitchen Display") && text.contains(code), "{text}");
        for page in ["enter", "confirm", "done"] {
            assert!(seen[format!("{scheme}_{page}_overflow")].as_i64().unwrap() <= 0, "{seen:#}");
            let shot = root.join(format!("target/screenshots/device-{page}-{scheme}.png"));
            assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 1000), "{}", shot.display());
        }
        for measure in ["label_contrast", "code_contrast", "deny_contrast"] {
            assert!(seen[format!("{scheme}_{measure}")].as_f64().unwrap() >= 4.5, "{measure}: {seen:#}");
        }
        assert!(seen[format!("{scheme}_done")].as_str().unwrap().contains("Kitchen Display"), "{seen:#}");
    }
    // The device's side: each code now redeems.
    for started in &started {
        let res = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", started["device_code"].as_str().unwrap()),
                ("client_id", device.id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
}
