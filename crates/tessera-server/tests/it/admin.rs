//! The admin API: authentication, clients, keys and the OpenAPI document.

use serde_json::{Value, json};
use tessera_proto::jwks::JwkSet;
use tessera_test_support::{T0, spawn_app};
use tessera_verify::Verifier;

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn admin_api_requires_an_admin_token() {
    let app = spawn_app().await;
    let res = app.http.get(app.admin_url("/admin/clients")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let res = app.http.get(app.admin_url("/admin/clients")).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(res.status(), 401);
    // A valid token without tessera:admin: 403.
    let client = app.jwt_client().await;
    let token = app.access_token(&client).await;
    let res = app.http.get(app.admin_url("/admin/clients")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(body(res).await["error"], "insufficient_scope");
    // An expired admin token: 401. A revoked one: 401.
    let admin_token = app.admin_token().await;
    let res = app.http.get(app.admin_url("/admin/clients")).bearer_auth(&admin_token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.revoke(&app.admin_client(), &admin_token).await;
    let res = app.http.get(app.admin_url("/admin/clients")).bearer_auth(&admin_token).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let admin_token = app.admin_token().await;
    app.clock.advance(601);
    let res = app.http.get(app.admin_url("/admin/clients")).bearer_auth(&admin_token).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // The admin API is not served on the public listener.
    let res = app.http.get(app.url("/admin/clients")).bearer_auth(app.admin_token().await).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn clients_can_be_created_listed_shown_rotated_and_deleted() {
    let app = spawn_app().await;
    let metadata = json!({"client_name":"billing","scope":"read write","access_token_format":"opaque","access_token_ttl":120,
        "audience":["https://billing.example.test"],"introspection":true,"token_endpoint_auth_method":"client_secret_post",
        "redirect_uris":["https://billing.example.test/cb"]});
    let res = app.admin_post("/admin/clients", &metadata).await;
    assert_eq!(res.status(), 201);
    let created = body(res).await;
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.starts_with("tcs_") && secret.len() >= 4 + 43);
    for field in [
        "client_name",
        "scope",
        "access_token_format",
        "access_token_ttl",
        "audience",
        "introspection",
        "token_endpoint_auth_method",
        "redirect_uris",
    ] {
        assert_eq!(created[field], metadata[field], "{field}");
    }
    let shown = body(app.admin_get(&format!("/admin/clients/{id}")).await).await;
    assert!(shown.get("client_secret").is_none(), "the secret is shown only once");
    assert_eq!(shown["client_name"], "billing");
    let list = body(app.admin_get("/admin/clients").await).await;
    let ids: Vec<&str> = list["clients"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&id) && ids.contains(&app.admin.client_id.as_str()));
    assert!(list["clients"].as_array().unwrap().iter().all(|c| c.get("client_secret").is_none()));

    let rotated = body(app.admin_post(&format!("/admin/clients/{id}/secret"), &json!({})).await).await;
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let form = |s: &str| {
        [
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), id.to_owned()),
            ("client_secret".to_owned(), s.to_owned()),
        ]
    };
    let old = app.http.post(app.url("/token")).form(&form(secret)).send().await.unwrap();
    assert_eq!(old.status(), 401);
    let new = app.http.post(app.url("/token")).form(&form(new_secret)).send().await.unwrap();
    assert_eq!(new.status(), 200);

    assert_eq!(app.admin_delete(&format!("/admin/clients/{id}")).await.status(), 204);
    assert_eq!(app.admin_get(&format!("/admin/clients/{id}")).await.status(), 404);
    assert_eq!(app.admin_delete(&format!("/admin/clients/{id}")).await.status(), 404);
    assert_eq!(app.admin_post(&format!("/admin/clients/{id}/secret"), &json!({})).await.status(), 404);
}

#[tokio::test]
async fn invalid_metadata_is_named() {
    let app = spawn_app().await;
    let cases = [
        (json!({"access_token_format":"paseto"}), "access_token_format"),
        (json!({"audience":"https://single.example"}), "invalid type"),
        (json!({"unknown_field":1}), "unknown field"),
        (json!({"redirect_uris":["javascript:alert(1)"]}), "redirect_uris"),
        (json!({"scope":"a\"b"}), "scope"),
        (json!({"token_endpoint_auth_method":"none"}), "token_endpoint_auth_method"),
        (json!({"access_token_ttl":-1}), "invalid value"),
    ];
    for (metadata, field) in cases {
        let res = app.admin_post("/admin/clients", &metadata).await;
        assert_eq!(res.status(), 400, "{metadata}");
        let json = body(res).await;
        assert_eq!(json["error"], "invalid_client_metadata");
        assert!(json["error_description"].as_str().unwrap().contains(field), "{json}");
    }
    let token = app.admin_token().await;
    let res = app.http.post(app.admin_url("/admin/clients")).bearer_auth(token).body("{not json").send().await.unwrap();
    assert_eq!((res.status().as_u16(), body(res).await["error"].clone()), (400, json!("invalid_client_metadata")));
}

#[tokio::test]
async fn the_bootstrap_client_cannot_be_deleted() {
    let app = spawn_app().await;
    let res = app.admin_delete(&format!("/admin/clients/{}", app.admin.client_id)).await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.admin_get("/admin/clients").await.status(), 200);
}

#[tokio::test]
async fn keys_of_every_algorithm_can_be_added_and_activated() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let first = app.access_token(&client).await;
    let keys = body(app.admin_get("/admin/keys").await).await;
    // The ES256 signing key, and the RS256 key OpenID Connect's default ID-token algorithm needs.
    let keys = keys["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2);
    let active: Vec<_> = keys.iter().filter(|k| k["status"] == "active").collect();
    assert_eq!((active.len(), active[0]["alg"].as_str()), (1, Some("ES256")));
    assert!(keys.iter().any(|k| k["alg"] == "RS256" && k["status"] == "published"));
    let mut tokens = vec![first];
    for alg in ["EdDSA", "RS256", "PS256", "ES256"] {
        let res = app.admin_post("/admin/keys", &json!({ "alg": alg })).await;
        assert_eq!(res.status(), 201);
        let key = body(res).await;
        assert_eq!((key["alg"].as_str(), key["status"].as_str()), (Some(alg), Some("published")));
        let kid = key["kid"].as_str().unwrap();
        // Published before it signs.
        let jwks: Value = app.jwks().await.json().await.unwrap();
        assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid));
        let res = app.admin_post(&format!("/admin/keys/{kid}/activate"), &json!({})).await;
        assert_eq!(body(res).await["status"], "active");
        let token = app.access_token(&client).await;
        let header: Value = serde_json::from_slice(&base64_url(token.split('.').next().unwrap())).unwrap();
        assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some(alg), Some(kid)));
        tokens.push(token);
    }
    // Every token, from every key, still verifies and introspects.
    let jwks: JwkSet = app.jwks().await.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 6);
    let verifier = Verifier::new(&app.issuer, &app.issuer, &jwks).unwrap();
    for token in &tokens {
        verifier.verify(token, tessera_proto::UnixTime(T0)).unwrap();
        assert_eq!(body(app.introspect(&client, token).await).await["active"], true);
    }
    let active: Vec<Value> = body(app.admin_get("/admin/keys").await).await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == "active")
        .cloned()
        .collect();
    assert_eq!(active.len(), 1);
    // Private material never appears in JWKS.
    let raw = app.jwks().await.text().await.unwrap();
    for member in ["\"d\"", "\"p\"", "\"q\"", "\"dp\""] {
        assert!(!raw.contains(member));
    }
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

#[tokio::test]
async fn bad_key_requests_are_rejected() {
    let app = spawn_app().await;
    for alg in ["HS256", "none", "RS512"] {
        let res = app.admin_post("/admin/keys", &json!({ "alg": alg })).await;
        assert_eq!(res.status(), 400, "{alg}");
        assert_eq!(body(res).await["error"], "invalid_request");
    }
    assert_eq!(app.admin_post("/admin/keys/no-such-kid/activate", &json!({})).await.status(), 404);
}

#[tokio::test]
async fn the_openapi_document_describes_the_admin_api() {
    let app = spawn_app().await;
    let res = app.http.get(app.admin_url("/admin/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc = body(res).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/admin/clients",
        "/admin/clients/{client_id}",
        "/admin/clients/{client_id}/secret",
        "/admin/keys",
        "/admin/keys/{kid}/activate",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    assert!(doc["components"]["schemas"].get("ClientMetadata").is_some());
    // #30: every operation documents 401 and 403.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["401", "403"] {
                assert!(operation["responses"].get(status).is_some(), "{method} {path} lacks {status}");
            }
        }
    }
}

// #30: a query string the handler cannot read was a `text/plain` 400.
#[tokio::test]
async fn an_unreadable_query_string_is_a_json_error() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for path in ["/admin/audit?until=99999999999999999999999", "/admin/audit?limit=-1", "/admin/audit?tail=maybe"] {
        let res = app.http.get(app.admin_url(path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 400, "{path}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "{path}");
        let error = body(res).await;
        assert_eq!(error["error"], "invalid_request", "{path}");
    }
}

#[tokio::test]
async fn admin_json_is_private_and_complete() {
    let app = spawn_app().await;
    let path = app.data_dir.path().join("admin.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["admin_url", "client_id", "client_secret", "issuer", "token_endpoint"]);
    assert_eq!(json["token_endpoint"], format!("{}/token", app.issuer));
    assert_eq!(json["admin_url"], format!("http://{}", app.admin_addr));
}
