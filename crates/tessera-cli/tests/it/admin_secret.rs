//! Rotating the bootstrap admin client's secret never locks the CLI out (#30 item 6): through
//! the API (`tessera client rotate-secret`), the server rewrites its `admin.json`; with
//! `tessera admin rotate-secret`, the CLI also rewrites the file it used. Both are audited.

use serde_json::Value;

use crate::e2e::{Server, free_port, json_out, tessera};

fn read(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn rotating_the_admin_clients_secret_never_locks_the_cli_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), free_port(), free_port());
    let path = server.admin_config.clone();
    let admin = path.to_str().unwrap().to_owned();
    let before = read(&path);
    let id = before["client_id"].as_str().unwrap().to_owned();
    let works = |config: &str| json_out(&tessera(&["client", "list", "--admin-config", config, "--json"]));

    // Through the API, as any admin caller could: the server rewrites its admin.json.
    let rotated = json_out(&tessera(&["client", "rotate-secret", &id, "--admin-config", &admin, "--json"]));
    let after = read(&path);
    assert_ne!(after["client_secret"], before["client_secret"]);
    assert_eq!(after["client_secret"], rotated["client_secret"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    works(&admin);

    // A copy of admin.json elsewhere (an operator's laptop): `tessera admin rotate-secret`
    // rewrites the copy it used; the server rewrites its own.
    let copy = dir.path().join("copy-admin.json");
    std::fs::copy(&path, &copy).unwrap();
    let out = json_out(&tessera(&["admin", "rotate-secret", "--admin-config", copy.to_str().unwrap(), "--json"]));
    assert_eq!(out["client_id"], id.as_str());
    let (copied, own) = (read(&copy), read(&path));
    assert_ne!(copied["client_secret"], after["client_secret"]);
    assert_eq!(copied["client_secret"], own["client_secret"], "both files hold the new secret");
    works(copy.to_str().unwrap());
    works(&admin);

    let out = tessera(&["audit", "query", "--event", "admin.change", "--json", "--admin-config", &admin]);
    assert!(out.status.success());
    let rotations = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["details"].to_string().contains("client.rotate_secret"))
        .count();
    assert_eq!(rotations, 2, "each rotation is audited");
}
