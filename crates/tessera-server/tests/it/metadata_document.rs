//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document): a document
//! served by the test on loopback (`cimd_allow_loopback`) drives a whole code flow and refresh
//! with its URL as `client_id`; every bad document is refused on a page, never by a redirect to
//! the client, and stores nothing; fetches are cached and bounded per address.
//! docs/threat-model.md T-17.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tessera_test_support::http_from as from;
use tessera_test_support::{
    Browser, CHALLENGE, PASSWORD, T0, TestApp, VERIFIER, location, query_param, spawn_app_with,
};

const REDIRECT: &str = "http://127.0.0.1:45112/callback";

/// Documents by path, with how often each was fetched.
#[derive(Clone, Default)]
struct Documents {
    base: Arc<Mutex<String>>,
    served: Arc<Mutex<HashMap<String, Value>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    any: Arc<AtomicUsize>,
}

impl Documents {
    async fn start() -> Documents {
        let documents = Documents::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *documents.base.lock().unwrap() = format!("http://{}", listener.local_addr().unwrap());
        let served = documents.clone();
        let router = axum::Router::new().route(
            "/{name}",
            axum::routing::get(move |Path(name): Path<String>| {
                let served = served.clone();
                async move { served.answer(&name).await }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        documents
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base.lock().unwrap())
    }

    fn hits(&self, name: &str) -> usize {
        self.hits.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// A valid public client's document at `name`.
    fn serve(&self, name: &str, client_name: &str) {
        let doc = json!({
            "client_id": self.url(name),
            "client_name": client_name,
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        self.served.lock().unwrap().insert(name.to_owned(), doc);
    }

    async fn answer(&self, name: &str) -> Response {
        *self.hits.lock().unwrap().entry(name.to_owned()).or_default() += 1;
        self.any.fetch_add(1, Ordering::SeqCst);
        match name {
            "redirect.json" => return (axum::http::StatusCode::FOUND, [("location", "/good.json")]).into_response(),
            "big.json" => {
                let mut doc = self.served.lock().unwrap()["good.json"].clone();
                doc["client_uri"] = json!(format!("https://app.example/{}", "x".repeat(6000)));
                return axum::Json(doc).into_response();
            }
            "slow.json" => {
                // Longer than the server's 5 s timeout: the test waits for the server, not a clock.
                tokio::time::sleep(std::time::Duration::from_secs(8)).await;
            }
            _ => {}
        }
        match self.served.lock().unwrap().get(name) {
            Some(doc) => ([("cache-control", "public, max-age=3600")], axum::Json(doc.clone())).into_response(),
            None => axum::http::StatusCode::NOT_FOUND.into_response(),
        }
    }
}

async fn app_with_documents() -> (TestApp, Documents) {
    let app = spawn_app_with(T0, |c| c.cimd_allow_loopback = true).await;
    let documents = Documents::start().await;
    (app, documents)
}

fn authorize_url(app: &TestApp, client_id: &str, redirect_uri: &str) -> String {
    let query = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid"),
        ("state", "s-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    reqwest::Url::parse_with_params(&app.url("/authorize"), &query).unwrap().to_string()
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app.http.post(app.url("/token")).form(form).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_metadata_document_client_completes_a_code_flow_and_refresh_and_is_cached() {
    let (app, documents) = app_with_documents().await;
    let discovery: Value =
        app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["client_id_metadata_document_supported"], true);
    documents.serve("good.json", "Example MCP client");
    let client_id = documents.url("good.json");
    app.create_user("alice").await;

    let mut browser = Browser::new(&app);
    let res = browser.get(&authorize_url(&app, &client_id, REDIRECT)).await;
    let login = location(&res).unwrap();
    let res = browser.login(&login, "alice", PASSWORD).await;
    let consent = location(&res).unwrap();
    assert!(consent.starts_with("/consent"), "a document's client is always asked: {consent}");
    let page = browser.get(&consent).await.text().await.unwrap();
    assert!(page.contains("Example MCP client"), "{page}");
    assert!(page.contains("not verified by this server"), "{page}");
    assert!(page.contains("a document published at <strong>127.0.0.1</strong>"), "the document's host: {page}");
    let res = browser.consent(&consent, "allow").await;
    let redirect = location(&res).unwrap();
    assert!(redirect.starts_with(REDIRECT), "{redirect}");
    let code = query_param(&redirect, "code").unwrap();
    let (status, tokens) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) =
        token(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id)]).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(documents.hits("good.json"), 1, "authorize, code and refresh used one fetch");

    // It is a client like any other: listed with its origin, on the sessions page with its host.
    let stored = app.state.store.client(&client_id).await.unwrap().unwrap();
    assert_eq!(stored.client.origin.as_str(), "metadata_document");
    let account = browser.get("/account").await.text().await.unwrap();
    assert!(account.contains("Example MCP client (127.0.0.1)"), "{account}");

    // Its max-age (an hour) passes: the next use fetches again and takes the new name.
    documents.serve("good.json", "Renamed MCP client");
    app.clock.advance(3599);
    let res = browser.get(&authorize_url(&app, &client_id, REDIRECT)).await;
    assert!(location(&res).unwrap().starts_with("/consent"));
    assert_eq!(documents.hits("good.json"), 1, "still fresh");
    app.clock.advance(1);
    let res = browser.get(&authorize_url(&app, &client_id, REDIRECT)).await;
    let consent = location(&res).unwrap();
    let page = browser.get(&consent).await.text().await.unwrap();
    assert!(page.contains("Renamed MCP client"), "{page}");
    assert_eq!(documents.hits("good.json"), 2);

    // Revoking works as for any client: its refresh token dies with the client's deletion.
    let refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    let res = app.admin_delete(&format!("/admin/clients/{}", urlencoding(&client_id))).await;
    assert_eq!(res.status(), 204);
    documents.served.lock().unwrap().clear();
    let (status, _) =
        token(&app, &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id)]).await;
    assert_eq!(status, 401);
    let events: Vec<String> =
        app.state.store.audit_tail(200).await.unwrap().into_iter().map(|e| e.event.as_str().to_owned()).collect();
    assert!(events.iter().any(|e| e == "client.registered"), "{events:?}");
    assert!(events.iter().any(|e| e == "client.registration_managed"), "the changed document: {events:?}");
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every document that must not become a client is refused on a page (no redirect to the
/// client), stores nothing, and a failure is remembered for a minute.
#[tokio::test]
async fn bad_documents_are_refused_without_a_redirect_and_store_nothing() {
    let (app, documents) = app_with_documents().await;
    documents.serve("good.json", "Good");
    let mut mismatch = documents.served.lock().unwrap()["good.json"].clone();
    mismatch["client_id"] = json!("https://other.example/client.json");
    documents.served.lock().unwrap().insert("mismatch.json".into(), mismatch);
    let mut secret = documents.served.lock().unwrap()["good.json"].clone();
    secret["client_id"] = json!(documents.url("secret.json"));
    secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    secret["client_secret"] = json!("s3cret");
    documents.served.lock().unwrap().insert("secret.json".into(), secret);
    let mut privileged = documents.served.lock().unwrap()["good.json"].clone();
    privileged["client_id"] = json!(documents.url("privileged.json"));
    privileged["scope"] = json!("openid tessera:admin");
    documents.served.lock().unwrap().insert("privileged.json".into(), privileged);
    let mut no_redirect = documents.served.lock().unwrap()["good.json"].clone();
    no_redirect["client_id"] = json!(documents.url("evil-redirect.json"));
    no_redirect["redirect_uris"] = json!(["http://evil.example/cb"]);
    documents.served.lock().unwrap().insert("evil-redirect.json".into(), no_redirect);
    let clients_before = app.state.store.count_rows("clients").await.unwrap();

    let refused = [
        documents.url("mismatch.json"),
        documents.url("secret.json"),
        documents.url("privileged.json"),
        documents.url("evil-redirect.json"),
        documents.url("big.json"),
        documents.url("redirect.json"),
        documents.url("missing.json"),
        documents.url("slow.json"),
        "https://10.0.0.1/client.json".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "http://192.168.1.1/client.json".to_owned(),
        format!("{}/../good.json", documents.url("a")),
        format!("{}#x", documents.url("good.json")),
        documents.base.lock().unwrap().clone() + "/",
    ];
    let mut handles = Vec::new();
    for (i, client_id) in refused.iter().enumerate() {
        let source = format!("127.0.1.{}", i + 1);
        let url = authorize_url(&app, client_id, REDIRECT);
        handles.push(tokio::spawn(async move {
            let res = from(&source).get(&url).send().await.unwrap();
            (res.status().as_u16(), res.headers().get("location").is_some(), res.text().await.unwrap())
        }));
    }
    for (client_id, handle) in refused.iter().zip(handles) {
        let (status, redirected, page) = handle.await.unwrap();
        assert!(!redirected, "{client_id} was redirected");
        assert_eq!(status, 400, "{client_id}: {page}");
        assert!(page.contains("cannot be used") || page.contains("not registered here"), "{client_id}: {page}");
    }
    assert_eq!(app.state.store.count_rows("clients").await.unwrap(), clients_before, "nothing stored");

    // A redirect URI the document does not list is refused on a page too.
    let url = authorize_url(&app, &documents.url("good.json"), "http://127.0.0.1:45112/other");
    let res = from("127.0.2.1").get(&url).send().await.unwrap();
    assert!(res.headers().get("location").is_none());
    assert_eq!(res.status(), 400);

    // A failed URL is not fetched again within a minute, from any address.
    let hits = documents.hits("mismatch.json");
    let url = authorize_url(&app, &documents.url("mismatch.json"), REDIRECT);
    assert_eq!(from("127.0.2.2").get(&url).send().await.unwrap().status(), 400);
    assert_eq!(documents.hits("mismatch.json"), hits);
    // At /token the same document is an unknown client.
    let (status, body) = token(
        &app,
        &[("grant_type", "authorization_code"), ("code", "x"), ("client_id", &documents.url("mismatch.json"))],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
}

/// One address can make the server fetch a few documents, then one every six seconds; another
/// address is not held up.
#[tokio::test]
async fn document_fetches_are_bounded_per_address() {
    let (app, documents) = app_with_documents().await;
    let attacker = from("127.0.3.1");
    let mut throttled = 0;
    for i in 0..30 {
        let url = authorize_url(&app, &documents.url(&format!("junk-{i}.json")), REDIRECT);
        let page = attacker.get(&url).send().await.unwrap().text().await.unwrap();
        if page.contains("Too many applications") {
            throttled += 1;
        }
    }
    assert!(throttled >= 19, "{throttled} of 30 throttled");
    assert!(documents.any.load(Ordering::SeqCst) <= 11, "fetches: {}", documents.any.load(Ordering::SeqCst));
    documents.serve("good.json", "Good");
    let url = authorize_url(&app, &documents.url("good.json"), REDIRECT);
    let res = from("127.0.3.2").get(&url).send().await.unwrap();
    assert_eq!(res.status(), 303, "another address is served");
}

/// With the setting off, a URL is an ordinary (unknown) client id and nothing is fetched.
#[tokio::test]
async fn documents_can_be_turned_off() {
    let app = spawn_app_with(T0, |c| {
        c.cimd_allow_loopback = true;
        c.client_id_metadata_documents = false;
    })
    .await;
    let documents = Documents::start().await;
    documents.serve("good.json", "Good");
    let discovery: Value =
        app.http.get(app.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["client_id_metadata_document_supported"], false);
    let res = app.http.get(authorize_url(&app, &documents.url("good.json"), REDIRECT)).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(documents.any.load(Ordering::SeqCst), 0);
}

/// A metadata document's client pushes its request (RFC 9126) with the URL as `client_id`, and
/// a document that is refused is refused at `/par` too.
#[tokio::test]
async fn a_metadata_document_client_uses_par() {
    let (app, documents) = app_with_documents().await;
    documents.serve("good.json", "PAR client");
    let client_id = documents.url("good.json");
    let form = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let res = app.http.post(app.url("/par")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let pushed: Value = res.json().await.unwrap();
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let url = reqwest::Url::parse_with_params(
        &app.url("/authorize"),
        &[("client_id", client_id.as_str()), ("request_uri", request_uri)],
    )
    .unwrap();
    let res = from("127.0.5.1").get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).unwrap().starts_with("/login"), "{:?}", location(&res));
    assert_eq!(documents.hits("good.json"), 1);

    let missing = documents.url("missing.json");
    let mut refused = form;
    refused[1] = ("client_id", missing.as_str());
    let res = app.http.post(app.url("/par")).form(&refused).send().await.unwrap();
    assert_eq!(res.status(), 401);
}
