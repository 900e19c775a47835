//! Users in the admin API: registration, argon2id at rest, uniqueness, disable and delete.

use serde_json::{Value, json};
use tessera_server::secret::SecretString;
use tessera_test_support::spawn_app;

async fn body(res: reqwest::Response) -> Value {
    res.json().await.unwrap()
}

#[tokio::test]
async fn users_can_be_created_listed_disabled_enabled_and_deleted() {
    let app = spawn_app().await;
    let res = app
        .admin_post(
            "/admin/users",
            &json!({"username":"alice","password":"correct horse battery","email":"alice@example.com","name":"Alice","email_verified":true}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let alice = body(res).await;
    let id = alice["id"].as_str().unwrap();
    assert_eq!(
        (alice["username"].as_str(), alice["email_verified"].as_bool(), alice["disabled"].as_bool()),
        (Some("alice"), Some(true), Some(false))
    );
    assert!(alice.get("password").is_none() && alice.get("password_hash").is_none());

    let list = body(app.admin_get("/admin/users").await).await;
    assert_eq!(list["users"].as_array().unwrap().len(), 1);
    assert_eq!(body(app.admin_get(&format!("/admin/users/{id}")).await).await["name"], "Alice");

    let disabled = body(app.admin_post(&format!("/admin/users/{id}/disable"), &json!({})).await).await;
    assert_eq!(disabled["disabled"], true);
    let enabled = body(app.admin_post(&format!("/admin/users/{id}/enable"), &json!({})).await).await;
    assert_eq!(enabled["disabled"], false);

    assert_eq!(app.admin_delete(&format!("/admin/users/{id}")).await.status(), 204);
    assert_eq!(app.admin_get(&format!("/admin/users/{id}")).await.status(), 404);
    assert_eq!(app.admin_post(&format!("/admin/users/{id}/disable"), &json!({})).await.status(), 404);
}

#[tokio::test]
async fn usernames_are_unique_regardless_of_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.admin_post("/admin/users", &json!({"username":"Bob","password":"correct horse"})).await.status(),
        201
    );
    let res = app.admin_post("/admin/users", &json!({"username":"bob","password":"another password"})).await;
    assert_eq!(res.status(), 409);
    assert_eq!(body(res).await["error"], "conflict");
}

#[tokio::test]
async fn invalid_users_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    for (request, field) in [
        (json!({"username":"carol","password":"short"}), "password"),
        (json!({"username":"c a","password":"correct horse"}), "username"),
        (json!({"username":"carol","password":"correct horse","email":"nope"}), "email"),
        (json!({"username":"carol"}), "missing field `password`"),
        (json!({"username":"carol","password":"correct horse","role":"admin"}), "unknown field"),
    ] {
        let res = app.admin_post("/admin/users", &request).await;
        assert_eq!(res.status(), 400, "{request}");
        let json = body(res).await;
        assert_eq!(json["error"], "invalid_request");
        assert!(json["error_description"].as_str().unwrap().contains(field), "{json}");
    }
}

#[tokio::test]
async fn passwords_are_stored_only_as_argon2id_hashes() {
    let app = spawn_app().await;
    let password = "a very memorable passphrase";
    app.admin_post("/admin/users", &json!({"username":"dave","password":password})).await;
    let (user, hash) = app.state.store.user_by_username("DAVE").await.unwrap().unwrap();
    assert_eq!(user.username, "dave");
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(!hash.contains(password));
    assert!(tessera_server::user::verify_password(Some(hash), SecretString::new(password.into())).await.unwrap());
    for file in ["tessera.db", "tessera.db-wal"] {
        let bytes = std::fs::read(app.data_dir.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "{file}");
    }
}
