//! `POST /revoke` (RFC 7009): own tokens only, 200 for unknown tokens, effective at once.

use serde_json::{Value, json};
use tessera_test_support::spawn_app;

async fn active(app: &tessera_test_support::TestApp, client: &tessera_test_support::TestClient, token: &str) -> bool {
    app.introspect(client, token).await.json::<Value>().await.unwrap()["active"] == true
}

#[tokio::test]
async fn revoked_tokens_are_inactive_at_once_in_both_formats() {
    let app = spawn_app().await;
    for client in [app.jwt_client().await, app.opaque_client().await] {
        let token = app.access_token(&client).await;
        let keep = app.access_token(&client).await;
        assert!(active(&app, &client, &token).await);
        let res = app.revoke(&client, &token).await;
        assert_eq!(res.status(), 200);
        assert!(!active(&app, &client, &token).await);
        assert!(active(&app, &client, &keep).await, "only the named token is revoked");
        // Revoking again is harmless.
        assert_eq!(app.revoke(&client, &token).await.status(), 200);
    }
}

#[tokio::test]
async fn unknown_and_garbage_tokens_get_200() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    for token in ["tat_unknown", "garbage", "a.b.c", "' OR 1=1 --"] {
        assert_eq!(app.revoke(&client, token).await.status(), 200, "{token}");
    }
    let res = app.post_form("/revoke", Some(&client), &[("token", "x"), ("token_type_hint", "bogus")]).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn another_clients_token_is_refused_and_stays_active() {
    let app = spawn_app().await;
    let owner_jwt = app.jwt_client().await;
    let owner_opaque = app.opaque_client().await;
    let attacker = app.create_client(json!({"scope":"read"})).await;
    for owner in [owner_jwt, owner_opaque] {
        let token = app.access_token(&owner).await;
        let res = app.revoke(&attacker, &token).await;
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "unauthorized_client");
        assert!(active(&app, &owner, &token).await);
    }
}

#[tokio::test]
async fn client_secrets_are_an_unsupported_token_type() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let res = app.revoke(&client, &client.secret).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "unsupported_token_type");
}

#[tokio::test]
async fn revocation_requires_client_authentication() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let token = app.access_token(&client).await;
    assert_eq!(app.post_form("/revoke", None, &[("token", &token)]).await.status(), 401);
    assert!(active(&app, &client, &token).await);
}

#[tokio::test]
async fn revocation_survives_a_restart_of_the_state() {
    let app = spawn_app().await;
    let client = app.opaque_client().await;
    let token = app.access_token(&client).await;
    app.revoke(&client, &token).await;
    let reopened =
        tessera_server::AppState::open(app.state.config.clone(), std::sync::Arc::new(app.clock.clone())).await.unwrap();
    let found = tessera_server::flows::introspect::resolve(
        &reopened,
        &token,
        tessera_proto::UnixTime(tessera_test_support::T0),
    )
    .await
    .unwrap();
    assert!(found.is_none());
}

// A forged opaque token that reuses a real selector with a wrong secret revokes nothing and
// does not reveal whose token the selector belongs to.
#[tokio::test]
async fn a_forged_opaque_token_revokes_nothing() {
    let app = spawn_app().await;
    let owner = app.opaque_client().await;
    let attacker = app.opaque_client().await;
    let token = app.access_token(&owner).await;
    let mut forged = token.clone();
    forged.replace_range(token.len() - 4.., "AAAA");
    assert_eq!(app.revoke(&attacker, &forged).await.status(), 200);
    assert_eq!(app.revoke(&owner, &forged).await.status(), 200);
    assert!(active(&app, &owner, &token).await);
}
