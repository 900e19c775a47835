//! Discovery documents, JWKS and health endpoints.

use expect_test::expect;
use serde_json::Value;
use tessera_test_support::spawn_app;

#[tokio::test]
async fn both_metadata_documents_advertise_only_what_works() {
    let app = spawn_app().await;
    let a: Value =
        app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let res = app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let b: Value = res.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["issuer"], app.issuer);
    // Snapshot with the ephemeral address replaced by a placeholder.
    let doc = serde_json::to_string_pretty(&a).unwrap().replace(&app.issuer, "ISSUER");
    expect![[r#"
        {
          "authorization_endpoint": "ISSUER/authorize",
          "authorization_response_iss_parameter_supported": true,
          "claims_parameter_supported": false,
          "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "name",
            "preferred_username",
            "email",
            "email_verified"
          ],
          "client_id_metadata_document_supported": true,
          "code_challenge_methods_supported": [
            "S256"
          ],
          "device_authorization_endpoint": "ISSUER/device_authorization",
          "dpop_signing_alg_values_supported": [
            "ES256",
            "EdDSA",
            "PS256",
            "RS256"
          ],
          "end_session_endpoint": "ISSUER/logout",
          "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
          ],
          "id_token_signing_alg_values_supported": [
            "RS256",
            "ES256"
          ],
          "introspection_endpoint": "ISSUER/introspect",
          "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "tls_client_auth",
            "self_signed_tls_client_auth"
          ],
          "issuer": "ISSUER",
          "jwks_uri": "ISSUER/jwks.json",
          "mtls_endpoint_aliases": {
            "introspection_endpoint": "ISSUER/introspect",
            "pushed_authorization_request_endpoint": "ISSUER/par",
            "revocation_endpoint": "ISSUER/revoke",
            "token_endpoint": "ISSUER/token",
            "userinfo_endpoint": "ISSUER/userinfo"
          },
          "pushed_authorization_request_endpoint": "ISSUER/par",
          "pushed_authorization_request_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "tls_client_auth",
            "self_signed_tls_client_auth",
            "none"
          ],
          "request_parameter_supported": false,
          "request_uri_parameter_supported": true,
          "response_modes_supported": [
            "query"
          ],
          "response_types_supported": [
            "code"
          ],
          "revocation_endpoint": "ISSUER/revoke",
          "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "tls_client_auth",
            "self_signed_tls_client_auth",
            "none"
          ],
          "scopes_supported": [
            "openid",
            "profile",
            "email",
            "offline_access"
          ],
          "subject_types_supported": [
            "public"
          ],
          "tls_client_certificate_bound_access_tokens": true,
          "token_endpoint": "ISSUER/token",
          "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "tls_client_auth",
            "self_signed_tls_client_auth",
            "none"
          ],
          "token_endpoint_auth_signing_alg_values_supported": [
            "PS256",
            "ES256",
            "EdDSA"
          ],
          "userinfo_endpoint": "ISSUER/userinfo"
        }"#]]
    .assert_eq(&doc);
}

#[tokio::test]
async fn jwks_publishes_public_keys_with_cache_control() {
    let app = spawn_app().await;
    let res = app.jwks().await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["cache-control"].to_str().unwrap().contains("max-age="));
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["alg"] == "RS256" && k["kty"] == "RSA" && k.get("d").is_none()));
    let key = keys.iter().find(|k| k["alg"] == "ES256").unwrap();
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"), Some("sig"))
    );
    assert!(key.get("d").is_none());
    assert!(key["kid"].is_string());
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    app.state.store.close().await;
    assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 503);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = app.http.get(app.url("/token")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}
