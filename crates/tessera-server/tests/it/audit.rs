//! The audit log: every kind of event comes from a real flow with its actor, subject, client,
//! session, address and request id, and no secret; `GET /admin/audit/verify` passes on the
//! honest log and names the exact position of a modified, a deleted, a swapped and a truncated
//! record, and of a log that no longer matches a kept anchor; concurrent writers (and, on
//! PostgreSQL, two nodes) keep one unbroken chain. Runs on SQLite and on PostgreSQL.

use serde_json::{Value, json};
use tessera_test_support::{
    Browser, PASSWORD, T0, TestApp, basic, code_request, hidden_field, jwt_claims, query_param, spawn_app_with,
};

const API: &str = "https://api.example.test";

async fn body(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// An admin GET with one admin token for the whole test: every new token is a record of its
/// own, which would make the log grow while it is read.
async fn read(app: &TestApp, path: &str) -> reqwest::Response {
    static TOKENS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let known = TOKENS.lock().unwrap().iter().find(|(admin, _)| *admin == app.admin_url("")).map(|(_, t)| t.clone());
    let token = match known {
        Some(token) => token,
        None => {
            let token = app.admin_token().await;
            TOKENS.lock().unwrap().push((app.admin_url(""), token.clone()));
            token
        }
    };
    app.http.get(app.admin_url(path)).bearer_auth(token).send().await.unwrap()
}

/// Every record, oldest first, through the admin API.
async fn all_entries(app: &TestApp) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = body(read(app, &format!("/admin/audit?limit=1000&after={after}")).await).await;
        assert_eq!(status, 200, "{page}");
        let got = page["entries"].as_array().unwrap().clone();
        if got.is_empty() {
            return entries;
        }
        after = page["next_after"].as_u64().unwrap();
        entries.extend(got);
    }
}

async fn verify(app: &TestApp, anchor: Option<&str>) -> Value {
    let path = match anchor {
        Some(anchor) => format!("/admin/audit/verify?anchor={anchor}"),
        None => "/admin/audit/verify".to_owned(),
    };
    let (status, result) = body(read(app, &path).await).await;
    assert_eq!(status, 200, "{result}");
    result
}

fn details(entry: &Value) -> Value {
    serde_json::from_str(entry["details"].as_str().unwrap()).unwrap()
}

fn of<'a>(entries: &'a [Value], event: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["event"] == event).collect()
}

#[tokio::test]
async fn every_event_kind_comes_from_a_real_flow_with_context_and_without_secrets() {
    let app = spawn_app_with(T0, |c| c.refresh_token_grace_period = 0).await;
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned(), app.admin.client_secret.clone()];

    // Admin changes, keys.
    let user_id = app.create_user("alice").await;
    let (_, key) = body(app.admin_post("/admin/keys", &json!({"alg": "ES256"})).await).await;
    let kid = key["kid"].as_str().unwrap().to_owned();
    assert_eq!(app.admin_post(&format!("/admin/keys/{kid}/activate"), &json!({})).await.status(), 200);
    let service = app.create_client(json!({"scope": "read", "audience": [API]})).await;
    let opaque = app.create_client(json!({"scope": "read", "audience": [API], "access_token_format": "opaque"})).await;
    let rs = app.create_client(json!({"introspection": true, "audience": [API]})).await;
    let (_, rotated) = body(app.admin_post(&format!("/admin/clients/{}/secret", service.id), &json!({})).await).await;
    let service = tessera_test_support::TestClient {
        id: service.id.clone(),
        secret: rotated["client_secret"].as_str().unwrap().to_owned(),
    };
    secrets.extend([service.secret.clone(), opaque.secret.clone(), rs.secret.clone()]);

    // Issuance (JWT and opaque), a refused client, an inactive token at introspection,
    // revocations.
    let (status, jwt) = body(app.client_credentials(&service).await).await;
    assert_eq!(status, 200);
    let jwt = jwt["access_token"].as_str().unwrap().to_owned();
    let (_, opaque_token) = body(app.client_credentials(&opaque).await).await;
    let opaque_token = opaque_token["access_token"].as_str().unwrap().to_owned();
    let wrong = app
        .http
        .post(app.url("/token"))
        .header("authorization", basic(&service.id, "tcs_wrong-secret-000"))
        .header("x-request-id", "req-wrong-secret")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.revoke(&service, &jwt).await.status(), 200);
    assert_eq!(app.revoke(&opaque, &opaque_token).await.status(), 200);
    let (_, inactive) = body(app.introspect(&rs, &opaque_token).await).await;
    assert_eq!(inactive["active"], false);
    secrets.extend([jwt.clone(), opaque_token.clone()]);

    // Sign-in: wrong passwords until locked out, then (after the lock) a sign-in, consent,
    // code, refresh with rotation, reuse of the old refresh token, sign-out.
    let client = app.code_client(json!({})).await;
    secrets.push(client.secret.clone());
    let mut browser = Browser::new(&app);
    let url =
        reqwest::Url::parse_with_params(&app.url("/authorize"), &code_request(&client.id, "openid offline_access"))
            .unwrap();
    let login = tessera_test_support::location(&browser.get(url.as_str()).await).unwrap();
    for _ in 0..5 {
        let res = browser.login(&login, "alice", "not-the-password").await;
        assert!(res.status() == 401 || res.status() == 200 || res.status() == 429, "{}", res.status());
    }
    app.clock.advance(3_600);
    let redirect = browser.follow_authorization(url.as_str(), "alice").await;
    let code = query_param(&redirect, "code").unwrap();
    let (status, tokens) = body(app.redeem(&client, &code).await).await;
    assert_eq!(status, 200, "{tokens}");
    let first_rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = body(app.refresh(&client, &first_rt).await).await;
    assert_eq!(status, 200, "{refreshed}");
    let (status, _) = body(app.refresh(&client, &first_rt).await).await;
    assert_eq!(status, 400, "reuse of a rotated refresh token");
    secrets.extend(
        [&tokens["access_token"], &tokens["id_token"], &refreshed["access_token"], &refreshed["refresh_token"]]
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned)),
    );
    secrets.extend([code, first_rt]);
    let page = browser.get("/logout").await.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    assert_eq!(browser.post("/logout", &[("csrf_token", csrf.as_str())]).await.status(), 200);

    // API keys; a user disabled and enabled; a client deleted.
    let (status, created) =
        body(app.admin_post("/admin/api-keys", &json!({"client_id": service.id, "name": "export"})).await).await;
    assert_eq!(status, 201, "{created}");
    secrets.push(created["key"].as_str().unwrap().to_owned());
    let key_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(app.admin_delete(&format!("/admin/api-keys/{key_id}")).await.status(), 204);
    assert_eq!(app.admin_post(&format!("/admin/users/{user_id}/disable"), &json!({})).await.status(), 200);
    assert_eq!(app.admin_post(&format!("/admin/users/{user_id}/enable"), &json!({})).await.status(), 200);
    assert_eq!(app.admin_delete(&format!("/admin/clients/{}", opaque.id)).await.status(), 204);

    let entries = all_entries(&app).await;
    let names: std::collections::BTreeSet<&str> = entries.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for event in [
        "token.issued",
        "token.refreshed",
        "token.reuse_detected",
        "token.revoked",
        "introspection.inactive",
        "client.auth_failed",
        "user.login",
        "user.login_failed",
        "user.locked_out",
        "user.logout",
        "consent.granted",
        "key.created",
        "key.activated",
        "api_key.created",
        "api_key.revoked",
        "admin.change",
    ] {
        assert!(names.contains(event), "no {event} record in {names:?}");
    }
    // Numbered 1, 2, 3, … and every request's record names its address and request id.
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["seq"], i as u64 + 1);
        if entry["actor"] != "server" {
            assert_eq!(entry["ip"], "127.0.0.1", "{entry}");
            assert!(entry["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{entry}");
        }
    }

    // Who, whom, what.
    let admin = format!("admin:{}", app.admin.client_id);
    let issued = of(&entries, "token.issued");
    let jwt_jti = jwt_claims(&jwt)["jti"].as_str().unwrap().to_owned();
    let cc = issued.iter().find(|e| details(e)["jti"] == jwt_jti.as_str()).expect("the JWT's issuance");
    assert_eq!(
        (cc["actor"].as_str(), cc["client_id"].as_str()),
        (Some(&*format!("client:{}", service.id)), Some(&*service.id))
    );
    assert_eq!(details(cc)["grant_type"], "client_credentials");
    assert_eq!(details(cc)["format"], "jwt");
    assert!(issued.iter().any(|e| details(e)["format"] == "opaque"));
    let code_issued: Vec<_> = issued.iter().filter(|e| e["client_id"] == client.id.as_str()).collect();
    assert!(
        code_issued.iter().all(|e| e["subject"] == user_id.as_str() && e["session_id"].is_string()),
        "{code_issued:?}"
    );
    let failed = &of(&entries, "client.auth_failed")[0];
    assert_eq!((failed["client_id"].as_str(), failed["outcome"].as_str()), (Some(&*service.id), Some("failure")));
    assert_eq!(failed["request_id"], "req-wrong-secret");
    assert_eq!(details(failed)["endpoint"], "/token");
    let inactive = &of(&entries, "introspection.inactive")[0];
    assert_eq!(inactive["actor"], format!("client:{}", rs.id));
    let revoked = of(&entries, "token.revoked");
    assert!(revoked.iter().any(|e| details(e)["jti"] == jwt_jti.as_str()), "{revoked:?}");
    let reuse = &of(&entries, "token.reuse_detected")[0];
    assert_eq!((reuse["subject"].as_str(), reuse["outcome"].as_str()), (Some(&*user_id), Some("failure")));
    let login_failed = of(&entries, "user.login_failed");
    assert!(login_failed.len() >= 5 && login_failed.iter().all(|e| e["subject"] == user_id.as_str()));
    assert_eq!(of(&entries, "user.locked_out")[0]["subject"], user_id.as_str());
    let login = &of(&entries, "user.login")[0];
    assert_eq!(login["actor"], format!("user:{user_id}"));
    let logout = &of(&entries, "user.logout")[0];
    assert_eq!(logout["session_id"], login["session_id"]);
    assert_eq!(of(&entries, "consent.granted")[0]["client_id"], client.id.as_str());
    assert!(
        of(&entries, "key.created")
            .iter()
            .any(|e| e["actor"] == admin.as_str() && e["subject"] == format!("key:{kid}"))
    );
    assert!(of(&entries, "key.created").iter().any(|e| e["actor"] == "server"), "start-up keys");
    assert_eq!(of(&entries, "key.activated")[0]["actor"], admin.as_str());
    assert_eq!(of(&entries, "api_key.created")[0]["client_id"], service.id.as_str());
    assert_eq!(of(&entries, "api_key.revoked")[0]["subject"], key_id.as_str());
    let actions: Vec<String> =
        of(&entries, "admin.change").iter().map(|e| details(e)["action"].as_str().unwrap().to_owned()).collect();
    for action in
        ["user.create", "client.create", "client.rotate_secret", "user.disable", "user.enable", "client.delete"]
    {
        assert!(actions.iter().any(|a| a == action), "no admin.change {action}: {actions:?}");
    }

    // Filters: by user, client, event and time range.
    let (_, by_user) = body(read(&app, &format!("/admin/audit?user={user_id}&limit=1000")).await).await;
    let by_user = by_user["entries"].as_array().unwrap();
    assert!(!by_user.is_empty());
    assert!(by_user.iter().all(|e| e["subject"] == user_id.as_str() || e["actor"] == format!("user:{user_id}")));
    let (_, by_client) =
        body(read(&app, &format!("/admin/audit?client={}&event=token.issued", service.id)).await).await;
    let by_client = by_client["entries"].as_array().unwrap();
    assert!(
        !by_client.is_empty()
            && by_client.iter().all(|e| e["client_id"] == service.id.as_str() && e["event"] == "token.issued")
    );
    let (_, early) = body(read(&app, &format!("/admin/audit?until={}&limit=1000", T0 + 10)).await).await;
    let (_, late) = body(read(&app, &format!("/admin/audit?since={}&limit=1000", T0 + 10)).await).await;
    assert_eq!(early["entries"].as_array().unwrap().len() + late["entries"].as_array().unwrap().len(), entries.len());
    let (status, _) = body(read(&app, "/admin/audit?event=no.such.event").await).await;
    assert_eq!(status, 400);
    let (_, tail) = body(read(&app, "/admin/audit?tail=true&limit=3").await).await;
    let tail: Vec<u64> = tail["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let n = entries.len() as u64;
    assert_eq!(tail, vec![n - 2, n - 1, n]);
    // The admin API is for admins only.
    assert_eq!(app.http.get(app.admin_url("/admin/audit")).send().await.unwrap().status(), 401);

    // No secret anywhere in the log.
    let export = serde_json::to_string(&entries).unwrap();
    for secret in &secrets {
        assert!(!secret.is_empty());
        assert!(!export.contains(secret.as_str()), "a secret is in the audit log: {}…", &secret[..8.min(secret.len())]);
    }
    let result = verify(&app, None).await;
    assert_eq!(result["first_break"], Value::Null, "{result}");
    assert_eq!(result["verified"], n);
}

#[tokio::test]
async fn verify_names_the_first_modified_deleted_swapped_or_cut_off_record() {
    let app = spawn_app_with(T0, |_| {}).await;
    let service = app.create_client(json!({"scope": "read"})).await;
    for _ in 0..20 {
        assert_eq!(app.client_credentials(&service).await.status(), 200);
    }
    let honest = verify(&app, None).await;
    assert_eq!(honest["first_break"], Value::Null, "{honest}");
    let n = honest["verified"].as_u64().unwrap();
    assert!(n >= 22, "{honest}");
    let anchor = format!("{}:{}", honest["head_seq"], honest["head_hash"].as_str().unwrap());
    assert_eq!(verify(&app, Some(&anchor)).await["first_break"], Value::Null);
    let broken_at = |result: &Value| result["first_break"]["seq"].as_u64();
    if app.postgres.is_none() {
        tamper_inside_segments(&app, n).await;
    }
    app.execute_sql(&[
        "CREATE TABLE audit_backup AS SELECT * FROM audit_log",
        "CREATE TABLE head_backup AS SELECT * FROM audit_head",
    ])
    .await;
    let restore = [
        "DELETE FROM audit_log",
        "INSERT INTO audit_log SELECT * FROM audit_backup ORDER BY seq",
        "UPDATE audit_head SET seq = (SELECT seq FROM head_backup), hash = (SELECT hash FROM head_backup)",
    ];

    // Modified: one character of record 5.
    app.execute_sql(&[
        "UPDATE audit_log SET details = replace(details, 'client_credentials', 'client_credentialz') WHERE seq = 5",
    ])
    .await;
    let result = verify(&app, None).await;
    assert_eq!(broken_at(&result), Some(5), "{result}");
    assert_eq!(result["verified"], 4);
    app.execute_sql(&restore).await;
    assert_eq!(verify(&app, None).await["first_break"], Value::Null);

    // Its actor, its time.
    app.execute_sql(&["UPDATE audit_log SET at = at + 1 WHERE seq = 9"]).await;
    assert_eq!(broken_at(&verify(&app, None).await), Some(9));
    app.execute_sql(&restore).await;

    // Deleted: record 7; and record 7 deleted with the later ones renumbered to close the gap.
    app.execute_sql(&["DELETE FROM audit_log WHERE seq = 7"]).await;
    let result = verify(&app, None).await;
    assert_eq!(broken_at(&result), Some(7), "{result}");
    assert!(result["first_break"]["reason"].as_str().unwrap().contains("missing"), "{result}");
    app.execute_sql(&[
        "UPDATE audit_log SET seq = -seq WHERE seq > 7",
        "UPDATE audit_log SET seq = -seq - 1 WHERE seq < 0",
    ])
    .await;
    assert_eq!(broken_at(&verify(&app, None).await), Some(7));
    app.execute_sql(&restore).await;

    // Swapped: records 10 and 11 exchange places.
    app.execute_sql(&[
        "UPDATE audit_log SET seq = -1 WHERE seq = 10",
        "UPDATE audit_log SET seq = 10 WHERE seq = 11",
        "UPDATE audit_log SET seq = 11 WHERE seq = -1",
    ])
    .await;
    assert_eq!(broken_at(&verify(&app, None).await), Some(10));
    app.execute_sql(&restore).await;

    // Cut off: the last record.
    app.execute_sql(&[&format!("DELETE FROM audit_log WHERE seq = {n}")]).await;
    assert_eq!(broken_at(&verify(&app, None).await), Some(n));
    app.execute_sql(&restore).await;
    assert_eq!(verify(&app, None).await["first_break"], Value::Null);

    // A record written by hand past the head, skipping a position, with the head moved over it,
    // is reported where the gap is; on SQLite one at a position already taken is refused.
    let skip = "INSERT INTO audit_log (seq, at, event, outcome, actor, details, hash)
        VALUES ((SELECT seq + 2 FROM audit_head), 0, 'user.login', 'success', 'server', '{}', ?)";
    let skip = skip.replace('?', if app.postgres.is_some() { "decode('00', 'hex')" } else { "zeroblob(32)" });
    app.execute_sql(&[&skip, "UPDATE audit_head SET seq = seq + 2"]).await;
    let result = verify(&app, None).await;
    assert_eq!(broken_at(&result), Some(n + 1), "{result}");
    assert!(result["first_break"]["reason"].as_str().unwrap().contains("missing"), "{result}");
    app.execute_sql(&restore).await;
    if app.postgres.is_none() {
        let taken = skip.replace("seq + 2", "seq");
        let refused = app.try_execute_sql(&[&taken]).await.unwrap_err();
        assert!(refused.contains("UNIQUE"), "{refused}");
    }

    // An anchor the log does not contain (a rewritten history), or beyond its end.
    let forged = format!("{}:{}", n - 1, "0".repeat(64));
    assert_eq!(broken_at(&verify(&app, Some(&forged)).await), Some(n - 1));
    let beyond = format!("{}:{}", n + 50, "0".repeat(64));
    assert_eq!(broken_at(&verify(&app, Some(&beyond)).await), Some(n + 1));
    let (status, _) = body(read(&app, "/admin/audit/verify?anchor=12:nothex").await).await;
    assert_eq!(status, 400);

    // The log goes on after the check.
    assert_eq!(app.client_credentials(&service).await.status(), 200);
    let result = verify(&app, Some(&anchor)).await;
    assert_eq!((result["first_break"].clone(), result["verified"].as_u64()), (Value::Null, Some(n + 1)));
}

/// SQLite keeps the records moved from the outbox in segments, many to a row (migration 0016):
/// `verify` names the exact record modified, deleted, moved or cut off inside one. Afterwards the
/// segments are unpacked into rows of `audit_log`, which the rest of the test tampers with as on
/// PostgreSQL.
async fn tamper_inside_segments(app: &TestApp, n: u64) {
    let (_, issued) = body(read(app, "/admin/audit?event=token.issued&limit=100").await).await;
    let issued: Vec<u64> = issued["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(issued.len() >= 20, "{issued:?}");
    // Four consecutive records of one segment, and the last record of the log.
    let four = issued.windows(4).find(|w| w[3] == w[0] + 3).expect("four consecutive records");
    let (a, b, c, d) = (four[0], four[1], four[2], four[3]);
    assert_eq!(issued.last(), Some(&n), "the log ends with a token's record");
    let broken = |result: Value| (result["first_break"]["seq"].as_u64(), result["first_break"]["reason"].to_string());
    let element = |seq: u64| format!("'$[' || ({seq} - first) || ']'");
    let edit = |seq: u64, records: String| {
        format!("UPDATE audit_segments SET records = {records} WHERE first <= {seq} AND last >= {seq}")
    };
    app.execute_sql(&["CREATE TABLE segments_backup AS SELECT * FROM audit_segments"]).await;
    let restore = ["DELETE FROM audit_segments", "INSERT INTO audit_segments SELECT * FROM segments_backup"];
    let cases = [
        // Modified: one character of a record's details, or its time.
        (
            edit(
                a,
                format!(
                    "json_replace(records, {p} || '.details', \
                     replace(records ->> ({p} || '.details'), 'client_credentials', 'client_credentialz'))",
                    p = element(a)
                ),
            ),
            a,
            "hash",
        ),
        (
            edit(b, format!("json_set(records, {p} || '.at', (records ->> ({p} || '.at')) + 1)", p = element(b))),
            b,
            "hash",
        ),
        // Deleted.
        (edit(b, format!("json_remove(records, {})", element(b))), b, "missing"),
        // Moved: two records exchange positions.
        (
            edit(c, format!("json_set(records, {} || '.seq', {d}, {} || '.seq', {c})", element(c), element(d))),
            c,
            "hash",
        ),
        // Cut off: the last record.
        (edit(n, format!("json_remove(records, {})", element(n))), n, "removed from the end"),
    ];
    for (sql, at, reason) in cases {
        app.execute_sql(&[&sql]).await;
        let (seq, why) = broken(verify(app, None).await);
        assert_eq!(seq, Some(at), "{sql}: {why}");
        assert!(why.contains(reason), "{sql}: {why}");
        app.execute_sql(&restore).await;
        assert_eq!(verify(app, None).await["first_break"], Value::Null, "restored after {sql}");
    }
    // Unpacked into rows, the log verifies as it did.
    app.execute_sql(&[
        "INSERT INTO audit_log SELECT r.value ->> 'seq', r.value ->> 'at', r.value ->> 'event', r.value ->> 'outcome',
            r.value ->> 'actor', r.value ->> 'subject', r.value ->> 'client_id', r.value ->> 'session_id',
            r.value ->> 'ip', r.value ->> 'request_id', r.value ->> 'details', substr(s.hashes, 32 * r.key + 1, 32)
         FROM audit_segments s, json_each(s.records) r",
        "DELETE FROM audit_segments",
        "DROP TABLE segments_backup",
    ])
    .await;
    let result = verify(app, None).await;
    assert_eq!((result["first_break"].clone(), result["verified"].as_u64()), (Value::Null, Some(n)), "{result}");
}

#[tokio::test]
async fn concurrent_writers_keep_one_unbroken_chain() {
    let app = spawn_app_with(T0, |_| {}).await;
    // On PostgreSQL a second node on the same database writes at the same time.
    let second = match &app.postgres {
        Some(pg) => {
            let (url, key) = (pg.url(), app.data_dir.path().join("master.key"));
            Some(
                spawn_app_with(T0, move |c| {
                    c.database_url = url;
                    c.master_key_file = key;
                })
                .await,
            )
        }
        None => None,
    };
    let jwt = app.create_client(json!({"scope": "read"})).await;
    let opaque = app.create_client(json!({"scope": "read", "access_token_format": "opaque"})).await;
    let rs = app.create_client(json!({"introspection": true})).await;
    let mut tasks = Vec::new();
    for worker in 0..24 {
        let node = if worker % 2 == 1 { second.as_ref().unwrap_or(&app) } else { &app };
        let (http, base) = (node.http.clone(), node.url(""));
        let (client, rs) = (if worker % 3 == 0 { opaque.clone() } else { jwt.clone() }, rs.clone());
        tasks.push(tokio::spawn(async move {
            let mut issued = 0;
            for i in 0..10 {
                let secret = if i % 5 == 4 { "tcs_wrong" } else { client.secret.as_str() };
                let res = http
                    .post(format!("{base}/token"))
                    .header("authorization", basic(&client.id, secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap();
                if res.status() == 200 {
                    let token: Value = res.json().await.unwrap();
                    issued += 1;
                    if i % 3 == 0 {
                        let res = http
                            .post(format!("{base}/revoke"))
                            .header("authorization", basic(&client.id, &client.secret))
                            .form(&[("token", token["access_token"].as_str().unwrap())])
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(res.status(), 200);
                    }
                } else {
                    assert_eq!(res.status(), 401);
                }
                if i % 4 != 0 {
                    continue;
                }
                let res = http
                    .post(format!("{base}/introspect"))
                    .header("authorization", basic(&rs.id, &rs.secret))
                    .form(&[("token", "tat_unknown")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
            }
            issued
        }));
    }
    let mut issued = 0;
    for task in tasks {
        issued += task.await.unwrap();
    }
    assert_eq!(issued, 24 * 8);
    let entries = all_entries(&app).await;
    let count = |event: &str| of(&entries, event).len();
    let cc_issued = of(&entries, "token.issued")
        .iter()
        .filter(|e| details(e)["grant_type"] == "client_credentials" && e["client_id"] != app.admin.client_id.as_str())
        .count();
    assert_eq!(cc_issued, issued);
    assert_eq!(count("client.auth_failed"), 24 * 2);
    // i in {0, 4, 8}: under the token-scanning allowance.
    assert_eq!(count("introspection.inactive"), 24 * 3);
    let revocations = of(&entries, "token.revoked").len();
    // Per worker, i in {0, 3, 6} (9 is a wrong secret).
    assert_eq!(revocations, 24 * 3);
    let result = verify(&app, None).await;
    assert_eq!(result["first_break"], Value::Null, "{result}");
    assert_eq!(result["verified"], entries.len() as u64);
}
