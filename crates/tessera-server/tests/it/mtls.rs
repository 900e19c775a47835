//! HTTPS and mutual TLS (RFC 8705) on the public listener: SECURITY-TESTS.md c.3 (MT-01 to
//! MT-06), certificate-bound tokens at introspection and `/userinfo`, and the TLS versions and
//! suites of a.4's `happy-flow` (BCP 195), with certificates made fresh by each test.

use serde_json::{Value, json};
use tessera_test_support::{
    Browser, REDIRECT_URI, TestApp, TestCert, VERIFIER, code_request, query_param, spawn_app_with, spawn_tls_app,
};

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

/// Registers a client through the admin API; returns its id.
async fn create(app: &TestApp, metadata: Value) -> String {
    app.create_client(metadata).await.id
}

const CC: [(&str, &str); 1] = [("grant_type", "client_credentials")];

/// A client_credentials request naming `client_id` only, over TLS as `cert` (or without one).
async fn token_as(app: &TestApp, cert: Option<&TestCert>, client_id: &str) -> reqwest::Response {
    let http = match cert {
        Some(cert) => app.https_as(cert),
        None => app.http.clone(),
    };
    http.post(app.url("/token")).form(&[CC[0], ("client_id", client_id)]).send().await.unwrap()
}

// MT-01, MT-06: tls_client_auth by subject DN or SAN, chained to the configured CA.
#[tokio::test]
async fn tls_client_auth_needs_a_certificate_from_the_ca_with_the_registered_name() {
    let app = spawn_tls_app(|_| {}).await;
    let pki = app.pki.as_ref().unwrap();
    let by_dn = create(&app,
        json!({"scope":"read","token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=client-a,O=Tessera Tests"}),
    )
    .await;
    let by_dns = create(&app,
        json!({"scope":"read","token_endpoint_auth_method":"tls_client_auth","tls_client_auth_san_dns":"billing.example.org"}),
    )
    .await;
    let client_a = pki.client_cert("client-a", &[]);
    let client_b = pki.client_cert("client-b", &["billing.example.org"]);
    let forged_a = TestCert::self_signed("client-a");

    assert_eq!(token_as(&app, Some(&client_a), &by_dn).await.status(), 200);
    assert_eq!(token_as(&app, Some(&client_b), &by_dns).await.status(), 200);
    for (case, cert, client) in [
        ("another CN from the same CA", Some(&client_b), &by_dn),
        ("the right CN, self-signed", Some(&forged_a), &by_dn),
        ("no certificate", None, &by_dn),
        ("no such SAN", Some(&client_a), &by_dns),
    ] {
        let res = token_as(&app, cert, client).await;
        assert_eq!(res.status(), 401, "{case}");
        assert_eq!(body(res).await["error"], "invalid_client", "{case}");
    }
    // The registration names exactly one identity.
    let res = app
        .admin_post(
            "/admin/clients",
            &json!({"token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=a","tls_client_auth_san_dns":"a.example"}),
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(body(res).await["error_description"].as_str().unwrap().starts_with("tls_client_auth_subject_dn"));
}

// MT-02: self_signed_tls_client_auth with the certificate in the client's JWKS (x5c).
#[tokio::test]
async fn self_signed_tls_client_auth_needs_a_certificate_listed_in_the_client_jwks() {
    let app = spawn_tls_app(|_| {}).await;
    let listed = TestCert::self_signed("device-1");
    let client = create(&app,
        json!({"scope":"read","token_endpoint_auth_method":"self_signed_tls_client_auth","jwks":{"keys":[listed.jwk()]}}),
    )
    .await;
    assert_eq!(token_as(&app, Some(&listed), &client).await.status(), 200);
    let unlisted = TestCert::self_signed("device-1");
    assert_eq!(token_as(&app, Some(&unlisted), &client).await.status(), 401);
    assert_eq!(token_as(&app, None, &client).await.status(), 401);
}

// RFC 8705 §3, MT-03, MT-05: certificate-bound tokens carry cnf.x5t#S256 = SHA-256 of the DER,
// introspection reports it, /userinfo wants the same certificate.
#[tokio::test]
async fn certificate_bound_tokens_work_only_over_a_connection_with_that_certificate() {
    let app = spawn_tls_app(|_| {}).await;
    let pki = app.pki.as_ref().unwrap();
    let cert = pki.client_cert("web-app", &[]);
    let other = pki.client_cert("web-app", &[]);
    app.create_user("alice").await;
    let metadata = json!({
        "client_name": "Example App", "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [REDIRECT_URI], "scope": "openid profile read", "first_party": true,
        "token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=web-app, O=Tessera Tests",
        "tls_client_certificate_bound_access_tokens": true,
    });
    let client_id = create(&app, metadata).await;
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&client_id, "openid profile read"), "alice").await;
    let code = query_param(&redirect, "code").unwrap();
    let http = app.https_as(&cert);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
        ("client_id", client_id.as_str()),
    ];
    let tokens = body(http.post(app.url("/token")).form(&form).send().await.unwrap()).await;
    assert_eq!(tokens["token_type"], "Bearer", "RFC 8705 keeps the Bearer type");
    let access_token = tokens["access_token"].as_str().unwrap();
    let claims = tessera_test_support::jwt_claims(access_token);
    assert_eq!(claims["cnf"], json!({"x5t#S256": cert.thumbprint()}));
    assert_eq!(cert.thumbprint().len(), 43);

    let introspected = body(
        http.post(app.url("/introspect"))
            .form(&[("token", access_token), ("client_id", &client_id)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["cnf"], json!({"x5t#S256": cert.thumbprint()}));

    let userinfo = |http: reqwest::Client| {
        let url = app.url("/userinfo");
        async move { http.get(url).bearer_auth(access_token).send().await.unwrap().status() }
    };
    assert_eq!(userinfo(http.clone()).await, 200);
    assert_eq!(userinfo(app.https_as(&other)).await, 401, "another certificate");
    assert_eq!(userinfo(app.http.clone()).await, 401, "no certificate");
    // Refresh needs the certificate too (the client authenticates with it).
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", &client_id),
    ];
    let refreshed = body(http.post(app.url("/token")).form(&refresh).send().await.unwrap()).await;
    assert_eq!(
        tessera_test_support::jwt_claims(refreshed["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        cert.thumbprint().as_str()
    );
}

// MT-04: a client-certificate header from anyone but a configured proxy is removed; from a
// trusted proxy, RFC 9440's Client-Cert is believed.
#[tokio::test]
async fn forged_certificate_headers_are_ignored_and_trusted_proxies_are_believed() {
    let pki = tessera_test_support::TestPki::default();
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &pki.ca_pem).unwrap();
    let cert = pki.client_cert("client-a", &[]);
    let metadata = json!({"scope":"read","token_endpoint_auth_method":"tls_client_auth","tls_client_auth_subject_dn":"CN=client-a,O=Tessera Tests"});
    let send = |app: &TestApp, client_id: String, header: &'static str, value: String| {
        let request =
            app.http.post(app.url("/token")).header(header, value).form(&[CC[0], ("client_id", client_id.as_str())]);
        async move { request.send().await.unwrap().status() }
    };

    let ca_path = ca.path().to_owned();
    let untrusting = spawn_app_with(tessera_test_support::T0, |config| config.tls_client_ca = Some(ca_path)).await;
    let client = create(&untrusting, metadata.clone()).await;
    for header in ["client-cert", "x-client-cert", "x-ssl-client-cert", "x-forwarded-client-cert"] {
        assert_eq!(send(&untrusting, client.clone(), header, cert.client_cert_header()).await, 401, "{header}");
    }

    let ca_path = ca.path().to_owned();
    let behind_proxy = spawn_app_with(tessera_test_support::T0, |config| {
        config.tls_client_ca = Some(ca_path);
        config.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let client = create(&behind_proxy, metadata).await;
    assert_eq!(send(&behind_proxy, client.clone(), "client-cert", cert.client_cert_header()).await, 200);
    let other = pki.client_cert("client-b", &[]);
    assert_eq!(send(&behind_proxy, client.clone(), "client-cert", other.client_cert_header()).await, 401);
    assert_eq!(send(&behind_proxy, client.clone(), "client-cert", "garbage".into()).await, 401);
    // Only RFC 9440's header is read, even from the proxy.
    assert_eq!(send(&behind_proxy, client, "x-ssl-client-cert", cert.client_cert_header()).await, 401);
}

// a.4 happy-flow TLS checks: TLS 1.3 preferred; TLS 1.2 only with BCP 195 suites; TLS 1.0 and
// 1.1 refused. `openssl s_client` is the independent client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_versions_and_suites_follow_bcp_195() {
    let app = spawn_tls_app(|_| {}).await;
    let connect = app.addr.to_string();
    let s_client = |args: &[&str]| {
        let mut command = std::process::Command::new("openssl");
        command.args(["s_client", "-connect", &connect, "-servername", "localhost"]).args(args);
        command.stdin(std::process::Stdio::null());
        let out = command.output().expect("openssl is installed (scripts/test installs it)");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let tls = |text: &str, needle: &str| text.contains(needle);
    tokio::task::block_in_place(|| {
        let default = s_client(&[]);
        assert!(tls(&default, "New, TLSv1.3"), "TLS 1.3 is preferred: {default}");
        let tls12 = s_client(&["-tls1_2"]);
        assert!(tls(&tls12, "Protocol  : TLSv1.2") && tls(&tls12, "Cipher is ECDHE-"), "{tls12}");
        // SECLEVEL=0 makes OpenSSL really offer the old protocols and suites (checked against an
        // `openssl s_server -tls1_1`, which it then reaches); our server must refuse them.
        for old in ["-tls1_1", "-tls1"] {
            let out = s_client(&[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
            assert!(tls(&out, "Cipher is (NONE)"), "{old}: {out}");
        }
        // A TLS 1.2 client offering only non-AEAD or non-ECDHE suites gets no connection.
        let weak = s_client(&["-tls1_2", "-cipher", "AES128-SHA:AES256-SHA256:DHE-RSA-AES128-SHA:@SECLEVEL=0"]);
        assert!(tls(&weak, "Cipher is (NONE)"), "{weak}");
        let strong = s_client(&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]);
        assert!(tls(&strong, "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "{strong}");
    });
    // Plain http to the TLS listener is no way in.
    let plain = reqwest::get(format!("http://{}/healthz", app.addr)).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // Discovery over HTTPS names https endpoints and the mTLS aliases.
    let metadata = body(app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap()).await;
    assert!(metadata["issuer"].as_str().unwrap().starts_with("https://"));
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(metadata["mtls_endpoint_aliases"]["token_endpoint"], app.url("/token").as_str());
}
