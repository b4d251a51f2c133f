//! The smaller security findings, one test each: the generated API secret is sealed at rest
//! and survives a restart (a clear one from an older version is sealed in place, audited);
//! data files are 0600 and directories 0700 whatever the umask; `/metrics` is served on its
//! own listener only; every response carries the security headers; NUL in a filter, cursor,
//! user id or path is a 400, never a 500, on both databases.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use ward::auth::token;
use ward::config::Config;

use crate::helpers::{Cleanup, Db, KEY, SECRET, TestApp, fresh_database, on_both_databases};

on_both_databases!(
    the_generated_api_secret_is_sealed_at_rest_and_signs_after_a_restart,
    a_clear_api_secret_from_an_older_version_is_sealed_in_place_and_audited,
    nul_in_a_filter_cursor_user_id_or_path_is_a_400_not_a_500,
);

fn temp_dir(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ward_{what}_{}", uuid::Uuid::new_v4().simple()))
}

/// The app credentials are generated (none configured); the root key lives in `data_dir`,
/// so a restart opens what the first start sealed.
fn generated_credentials(data_dir: &Path) -> impl FnOnce(&mut Config) {
    let data_dir = data_dir.to_path_buf();
    move |c: &mut Config| {
        c.api_key = None;
        c.api_secret = None;
        c.data_dir = data_dir;
    }
}

fn secret_of(app: &TestApp) -> String {
    String::from_utf8(app.state.credentials.secret_bytes().to_vec()).unwrap()
}

/// The API secret as the settings table holds it.
async fn stored_secret(app: &TestApp) -> String {
    let settings = &app.state.store.settings;
    settings.find_setting("api_secret").await.unwrap().unwrap()
}

/// GET /app as a server-side caller with the app's own (generated) credentials.
async fn app_settings_status(app: &TestApp) -> u16 {
    let server = token::server_token(app.state.credentials.secret_bytes());
    app.http
        .get(format!(
            "{}/app?api_key={}",
            app.base, app.state.credentials.api_key
        ))
        .header("Authorization", server)
        .header("stream-auth-type", "jwt")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Every byte SQLite keeps for the database at `url` (the file and its write-ahead log).
fn sqlite_bytes(url: &str) -> Vec<u8> {
    let db = ward::ops::backup::sqlite_path(url).unwrap();
    let mut bytes = std::fs::read(&db).unwrap();
    bytes.extend(std::fs::read(format!("{}-wal", db.display())).unwrap_or_default());
    bytes
}

async fn the_generated_api_secret_is_sealed_at_rest_and_signs_after_a_restart(db: Db) {
    let (url, cleanup) = fresh_database(db);
    let data_dir = temp_dir("sealed");
    let mut first = TestApp::spawn_on(url.clone(), cleanup, generated_credentials(&data_dir)).await;
    let secret = secret_of(&first);
    assert_eq!(secret.len(), 64, "a generated secret");
    assert_eq!(app_settings_status(&first).await, 200);
    let stored = stored_secret(&first).await;
    assert!(stored.starts_with("sealed:v1:"), "{stored}");
    assert!(!stored.contains(&secret));
    first.shutdown().await;
    if db == Db::Sqlite {
        let bytes = sqlite_bytes(&url);
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is not in the database file in clear"
        );
    }

    let again = TestApp::spawn_on(url, Cleanup::Shared, generated_credentials(&data_dir)).await;
    assert_eq!(secret_of(&again), secret, "the same secret after a restart");
    assert_eq!(
        again.state.credentials.api_key,
        first.state.credentials.api_key
    );
    assert_eq!(app_settings_status(&again).await, 200);
    drop(again);
    drop(first);
    let _ = std::fs::remove_dir_all(data_dir);
}

async fn a_clear_api_secret_from_an_older_version_is_sealed_in_place_and_audited(db: Db) {
    let (url, cleanup) = fresh_database(db);
    let data_dir = temp_dir("legacy");
    // What an older version left: generated credentials, the secret in clear.
    let legacy = "legacy-clear-secret-0123456789abcdef";
    let store = ward::store::Store::connect(&url).await.unwrap();
    for (name, value) in [("api_key", "legacy-key"), ("api_secret", legacy)] {
        store.settings.upsert_setting(name, value).await.unwrap();
    }
    drop(store);

    let app = TestApp::spawn_on(url, cleanup, generated_credentials(&data_dir)).await;
    assert_eq!(secret_of(&app), legacy, "tokens signed before still verify");
    assert_eq!(app_settings_status(&app).await, 200);
    let stored = stored_secret(&app).await;
    assert!(
        stored.starts_with("sealed:v1:") && !stored.contains(legacy),
        "{stored}"
    );
    let entries = app.audit_entries().await;
    assert!(
        entries.iter().any(|e| {
            e["event"] == "key.operation" && e["meta"]["operation"] == "secret_sealed"
        }),
        "the sealing is audited: {entries:#?}"
    );
    drop(app);
    let _ = std::fs::remove_dir_all(data_dir);
}

/// `sh -c 'umask <umask>; exec ward <args>'` with the test's data dir and credentials.
fn ward_under_umask(umask: &str, data_dir: &Path, args: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "umask {umask}; exec \"{}\" {args}",
            env!("CARGO_BIN_EXE_ward")
        ))
        .env("WARD_BIND", "127.0.0.1:0")
        .env("WARD_DATA_DIR", data_dir)
        .env("WARD_API_KEY", KEY)
        .env("WARD_API_SECRET", SECRET)
        .env_remove("WARD_DATABASE_URL")
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Serves from `data_dir` under `umask`, creates two users, and stops (SIGKILL: the files a
/// crash leaves count too).
async fn serve_and_create_users(umask: &str, data_dir: &Path) {
    let mut child = ward_under_umask(umask, data_dir, "serve")
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh and ward start");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("ward: listening on ") {
                return addr.to_string();
            }
        }
        panic!("ward serve exited before listening");
    })
    .await
    .expect("ward serve listens in time");
    let status = reqwest::Client::new()
        .post(format!("{base}/users?api_key={KEY}"))
        .header("Authorization", token::server_token(SECRET.as_bytes()))
        .header("stream-auth-type", "jwt")
        .json(&json!({"users": {"a": {"id": "a"}, "b": {"id": "b"}}}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    child.kill().await.unwrap();
}

async fn run_under_umask(umask: &str, data_dir: &Path, args: &str) {
    let out = ward_under_umask(umask, data_dir, args)
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(out.success(), "ward {args} succeeds");
}

/// Every directory under `dir` (itself included) and every file, with its mode.
fn modes(dir: &Path, out: &mut Vec<(PathBuf, bool, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(dir).unwrap();
    out.push((dir.to_path_buf(), true, meta.permissions().mode() & 0o777));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            modes(&path, out);
        } else {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            out.push((path, false, mode));
        }
    }
}

async fn files_are_private_under_umask(umask: &str) {
    let parent = temp_dir("modes");
    std::fs::create_dir_all(&parent).unwrap();
    let data_dir = parent.join("data");
    serve_and_create_users(umask, &data_dir).await;
    let backup = data_dir.join("backup.db");
    run_under_umask(
        umask,
        &data_dir,
        &format!("backup --out {}", backup.display()),
    )
    .await;
    let exports = data_dir.join("exports-cli");
    run_under_umask(
        umask,
        &data_dir,
        &format!(
            "gdpr export --user-id a --user-id b --out {}",
            exports.display()
        ),
    )
    .await;

    let mut found = Vec::new();
    modes(&data_dir, &mut found);
    let names: Vec<String> = found
        .iter()
        .map(|(p, _, _)| p.strip_prefix(&data_dir).unwrap().display().to_string())
        .collect();
    for want in [
        "ward.db",
        "root.key",
        "ward.lock",
        "audit-checkpoints",
        "audit-checkpoints/checkpoints",
        "backup.db",
        "exports-cli",
        "exports-cli/a.zip",
        "exports-cli/b.zip",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let open: Vec<_> = found
        .iter()
        .filter(|(_, is_dir, mode)| *mode != if *is_dir { 0o700 } else { 0o600 })
        .map(|(p, _, mode)| format!("{} {mode:o}", p.display()))
        .collect();
    assert!(
        open.is_empty(),
        "under umask {umask}, not owner-only: {open:?}"
    );
    std::fs::remove_dir_all(parent).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_0600_and_directories_0700_under_umask_022() {
    files_are_private_under_umask("022").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_0600_and_directories_0700_under_umask_000() {
    files_are_private_under_umask("000").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_their_own_listener_and_not_on_the_api_port() {
    let app = TestApp::spawn_with(Db::Sqlite, |c| {
        c.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let res = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], 16, "{body}");
    let metrics = app.metrics_base.clone().expect("a metrics listener");
    let res = app
        .http
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("ward_open_connections 0")
    );
    // The metrics listener serves nothing else.
    let res = app
        .http
        .get(format!("{metrics}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let off = TestApp::spawn(Db::Sqlite).await;
    assert!(off.metrics_base.is_none(), "no metrics listener by default");
}

fn assert_security_headers(res: &reqwest::Response, hsts: bool) {
    let h = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let what = res.url().path().to_string();
    assert_eq!(
        h("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        h("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(h("cache-control").as_deref(), Some("no-store"), "{what}");
    let csp = h("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{what}: {csp}"
    );
    assert_eq!(
        h("strict-transport-security").is_some(),
        hsts,
        "{what}: HSTS only over HTTPS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_nosniff_no_referrer_no_store_and_a_strict_csp() {
    let app = TestApp::spawn(Db::Sqlite).await;
    app.users(&["a"]).await;
    let token = app.token("a");
    for path in ["/healthz", "/users", "/no/such/route"] {
        let res = app
            .http
            .get(format!("{}{path}?api_key={KEY}", app.base))
            .header("Authorization", &token)
            .header("stream-auth-type", "jwt")
            .send()
            .await
            .unwrap();
        assert_security_headers(&res, false);
    }

    // Behind a TLS-terminating balancer browsers reach Ward over HTTPS: HSTS is sent.
    let behind_tls = TestApp::spawn_with(Db::Sqlite, |c| {
        c.public_url = "https://chat.example.org".into();
    })
    .await;
    let res = behind_tls
        .http
        .get(format!("{}/healthz", behind_tls.base))
        .send()
        .await
        .unwrap();
    assert_security_headers(&res, true);
    let hsts = res.headers()["strict-transport-security"].to_str().unwrap();
    assert!(hsts.starts_with("max-age=31536000"), "{hsts}");
}

fn assert_code_4(status: u16, body: &Value, what: &str) {
    assert_eq!(
        (status, body["code"].as_i64()),
        (400, Some(4)),
        "{what}: {body}"
    );
}

async fn nul_in_a_filter_cursor_user_id_or_path_is_a_400_not_a_500(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("c", "a", &["a"]).await;
    let a = app.token("a");
    let server = app.server_token();

    let (status, body) = app
        .post(
            "/channels",
            &a,
            json!({"filter_conditions": {"members": {"$in": ["a\u{0}"]}}}),
        )
        .await;
    assert_code_4(status, &body, "a filter value");
    let (status, body) = app
        .post(
            "/channels",
            &a,
            json!({"filter_conditions": {"id\u{0}": "c"}}),
        )
        .await;
    assert_code_4(status, &body, "a filter field");
    let (status, body) = app
        .post(
            "/channels/messaging/c/query",
            &a,
            json!({"messages": {"limit": 10, "id_lt": "m\u{0}"}}),
        )
        .await;
    assert_code_4(status, &body, "a message cursor");
    let (status, body) = app
        .get_payload(
            "/search",
            &a,
            json!({"filter_conditions": {"cid": "messaging:c"}, "query": "x\u{0}y"}),
        )
        .await;
    assert_code_4(status, &body, "a search query");
    let (status, body) = app
        .get_payload(
            "/search",
            &a,
            json!({"filter_conditions": {"cid": "messaging:c"}, "query": "x", "next": "\u{0}"}),
        )
        .await;
    assert_code_4(status, &body, "a search cursor");
    let (status, body) = app
        .post(
            "/users",
            &server,
            json!({"users": {"b\u{0}": {"id": "b\u{0}"}}}),
        )
        .await;
    assert_code_4(status, &body, "a user id in a body");
    let (status, body) = app.post("/users/a%00/deactivate", &server, json!({})).await;
    assert_code_4(status, &body, "a user id in a path");
    let (status, body) = app.get("/users?user_id=a%00", &server).await;
    assert_code_4(status, &body, "a query parameter");
    let (status, body) = app
        .post(
            "/channels",
            &app.token("z\u{0}"),
            json!({"filter_conditions": {}}),
        )
        .await;
    assert_code_4(status, &body, "a user id in a token");
    let (_ws, first) = app.connect_raw("a\u{0}", &a).await;
    assert_eq!(
        first["error"]["code"], 4,
        "a user id in connect json=: {first}"
    );

    // Nothing was stored, and the server still answers.
    let (status, body) = app
        .get_payload("/users", &server, json!({"filter_conditions": {}}))
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, ["a"], "{body}");
}

/// The safety net behind the edge's checks: PostgreSQL's refusal of a character it cannot
/// store (SQLSTATE 22021) is a 400, not a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_character_postgres_cannot_store_maps_to_a_400() {
    use sqlx::Connection;
    let mut conn =
        sqlx::PgConnection::connect(&format!("{}/postgres", crate::helpers::pg_base_url()))
            .await
            .expect("PostgreSQL is reachable");
    let err = sqlx::query("SELECT convert_from('\\x610062'::bytea, 'UTF8')")
        .execute(&mut conn)
        .await
        .expect_err("NUL is not valid UTF-8 text for PostgreSQL");
    let sqlx::Error::Database(db_err) = &err else {
        panic!("a database error: {err}");
    };
    assert_eq!(db_err.code().as_deref(), Some("22021"));
    let api = ward::http::error::ApiError::from(ward::store::StoreError::Database(err));
    assert_eq!((api.status.as_u16(), api.code), (400, 4), "{api}");
}
