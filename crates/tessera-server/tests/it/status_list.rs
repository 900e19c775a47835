//! Token Status List (draft-ietf-oauth-status-list): JWT access tokens carry a `status` claim;
//! `GET /statuslists/{n}` serves a signed, ZLIB-compressed list in which a token revoked by its
//! client, or with its grant, has its bit set, and no other bit is.

use std::io::Read as _;

use base64::Engine as _;
use serde_json::{Value, json};
use tessera_test_support::{Browser, TestApp, code_request, jwt_claims, query_param, spawn_app};

/// The list token at `uri`, verified with the issuer's keys; its claims and bits.
async fn fetch_list(app: &TestApp, uri: &str) -> (Value, Vec<u8>) {
    let res = app.http.get(uri).header("accept", "application/statuslist+jwt").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/statuslist+jwt");
    assert_eq!(res.headers()["cache-control"], "public, max-age=60");
    let jwt = res.text().await.unwrap();
    let jwks: tessera_proto::jwks::JwkSet = app.jwks().await.json().await.unwrap();
    let keys = tessera_verify::KeySet::from_jwks(&jwks).unwrap();
    let claims = keys.verify_signature(&jwt, "statuslist+jwt").expect("a status list token signed by the issuer");
    let claims = Value::Object(claims);
    assert!(keys.verify_signature(&jwt, "at+jwt").is_err(), "a list is no access token");
    let lst = claims["status_list"]["lst"].as_str().unwrap();
    let compressed = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(lst).unwrap();
    let mut bits = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..]).read_to_end(&mut bits).unwrap();
    (claims, bits)
}

fn bit(bits: &[u8], idx: u64) -> u8 {
    let idx = usize::try_from(idx).unwrap();
    (bits[idx / 8] >> (idx % 8)) & 1
}

fn reference(token: &str) -> (u64, String) {
    let claims = jwt_claims(token);
    let list = &claims["status"]["status_list"];
    (list["idx"].as_u64().unwrap(), list["uri"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn revoked_tokens_and_only_they_are_invalid_in_the_list() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let tokens = [app.access_token(&client).await, app.access_token(&client).await, app.access_token(&client).await];
    let refs: Vec<(u64, String)> = tokens.iter().map(|t| reference(t)).collect();
    let uri = format!("{}/statuslists/0", app.issuer);
    assert!(refs.iter().all(|(_, u)| *u == uri), "{refs:?}");
    let mut indexes: Vec<u64> = refs.iter().map(|(i, _)| *i).collect();
    indexes.dedup();
    assert_eq!(indexes.len(), 3, "each token has its own index: {indexes:?}");

    let (claims, bits) = fetch_list(&app, &uri).await;
    assert_eq!(bits.len(), 1 << 14, "2^17 one-bit entries");
    assert!(bits.iter().all(|b| *b == 0));
    let now = app.clock.now_secs();
    assert_eq!((claims["sub"].as_str(), claims["iss"].as_str()), (Some(uri.as_str()), Some(app.issuer.as_str())));
    assert_eq!(
        (claims["iat"].as_u64(), claims["exp"].as_u64(), claims["ttl"].as_u64()),
        (Some(now), Some(now + 600), Some(60))
    );
    assert_eq!(claims["status_list"]["bits"], 1);

    // The middle token revoked by its client: its bit, no other.
    assert_eq!(app.revoke(&client, &tokens[1]).await.status(), 200);
    let (_, bits) = fetch_list(&app, &uri).await;
    assert_eq!([bit(&bits, refs[0].0), bit(&bits, refs[1].0), bit(&bits, refs[2].0)], [0, 1, 0]);
    assert_eq!(bits.iter().map(|b| b.count_ones()).sum::<u32>(), 1);

    // A token of a grant: revoking the refresh token revokes the grant, and the access token's
    // bit is set although the access token itself was never presented.
    app.create_user("alice").await;
    let code_client = app.code_client(json!({"first_party": true})).await;
    let mut browser = Browser::new(&app);
    let redirect = browser.authorize(&code_request(&code_client.id, "openid offline_access"), "alice").await;
    let issued: Value = app.redeem(&code_client, &query_param(&redirect, "code").unwrap()).await.json().await.unwrap();
    let (grant_idx, grant_uri) = reference(issued["access_token"].as_str().unwrap());
    assert_eq!(grant_uri, uri);
    assert_eq!(app.revoke(&code_client, issued["refresh_token"].as_str().unwrap()).await.status(), 200);
    let (_, bits) = fetch_list(&app, &uri).await;
    assert_eq!((bit(&bits, grant_idx), bits.iter().map(|b| b.count_ones()).sum::<u32>()), (1, 2));

    // Once the revoked tokens have expired their bits clear (an index is never handed out
    // again), before and after the janitor drops their events.
    app.clock.advance(601);
    let (_, bits) = fetch_list(&app, &uri).await;
    assert!(bits.iter().all(|b| *b == 0));
    app.state.store.purge_expired(app.clock.now_secs()).await.unwrap();
    let (_, bits) = fetch_list(&app, &uri).await;
    assert!(bits.iter().all(|b| *b == 0));

    // Lists no index was handed out of, and nonsense, are 404.
    for path in
        ["/statuslists/1", "/statuslists/99999999999999", "/statuslists/x", "/statuslists/-1", "/statuslists/+0"]
    {
        assert_eq!(app.http.get(app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }
}

#[tokio::test]
async fn indexes_come_from_reserved_blocks_without_a_write_per_token() {
    let app = spawn_app().await;
    let client = app.jwt_client().await;
    let first = reference(&app.access_token(&client).await).0;
    let blocks = app.state.store.status_blocks().await.unwrap();
    for _ in 0..20 {
        app.access_token(&client).await;
    }
    assert_eq!(app.state.store.status_blocks().await.unwrap(), blocks, "no reservation for tokens inside a block");
    let next = reference(&app.access_token(&client).await).0;
    assert_eq!(next, first + 21);
    // Opaque tokens have no status claim (introspection answers for them).
    let opaque = app.opaque_client().await;
    assert!(app.access_token(&opaque).await.starts_with("tat_"));
}
