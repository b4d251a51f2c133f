//! Operating Ward from the shell, through the real binary: start-up refusals that name their
//! fix, `ward config check`, the backup → wipe → restore drill while messages are sent, and
//! root-key escrow.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use ward::auth::token;

use crate::helpers::{Db, KEY, SECRET, eventually, fresh_database, on_both_databases};

on_both_databases!(
    at_trace_level_no_message_text_reaches_the_log,
    a_backup_taken_while_messages_are_sent_restores_readable_searchable_and_verifiable,
    config_check_reports_redis_down_and_a_wrong_database_url,
    the_root_key_escrow_round_trip_restores_access_and_a_wrong_passphrase_changes_nothing,
);

#[tokio::test]
async fn a_second_node_with_another_root_key_fails_to_start_naming_the_fix() {
    let (url, _cleanup) = fresh_database(Db::Postgres);
    let first = TempDir::new("first");
    drop(Server::start(&url, &first.0).await);
    // A second node on the same database with its own (new) local root key.
    let second = TempDir::new("second");
    std::fs::create_dir_all(&second.0).unwrap();
    std::fs::write(second.0.join("root.key"), [42u8; 32]).unwrap();
    let out = ward(&second.0, &url, &["serve"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("\"level\"")).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    let first_id = ward::crypto::root::fingerprint(
        &std::fs::read(first.0.join("root.key"))
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let line = lines[0];
    assert!(
        line.contains(&format!(
            "this database's keys are wrapped by another root key (key id {first_id};"
        )),
        "{line}"
    );
    assert!(
        line.ends_with(
            "copy root.key from the first node (or import its escrow: ward keys import-root), or use WARD_KEY_PROVIDER=aws-kms"
        ),
        "{line}"
    );
    assert!(
        !err.contains("Caused by") && !err.contains("backtrace"),
        "{err}"
    );

    // Without any root key file the node does not make a new one.
    let third = TempDir::new("third");
    let out = ward(&third.0, &url, &["serve"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("there is no root key at"), "{err}");
    assert!(
        err.contains(&format!("wrapped by root key id {first_id}")),
        "{err}"
    );
    assert!(!third.0.join("root.key").exists());
}

#[tokio::test]
async fn start_up_refusals_are_one_line_naming_the_cause_and_the_fix() {
    let dir = TempDir::new("refusals");
    // The port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (url, _cleanup) = fresh_database(Db::Sqlite);
    let out = ward_env(
        &dir.0,
        &url,
        &["serve"],
        "",
        &[("WARD_BIND", &format!("127.0.0.1:{port}"))],
    );
    assert_one_line(
        &out,
        &format!("cannot listen on 127.0.0.1:{port}: the port is in use by another process"),
        "set WARD_BIND to a free address",
    );
    // PostgreSQL is not there; the password never shows.
    let out = ward(
        &dir.0,
        "postgres://ward:hunter2hunter2@127.0.0.1:1/ward",
        &["serve"],
        "",
    );
    assert_one_line(
        &out,
        "cannot reach PostgreSQL at postgres://ward@127.0.0.1:1/ward (connection refused)",
        "start PostgreSQL, or correct the host and port in WARD_DATABASE_URL",
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    // A malformed configuration file names the file, the line and the key.
    let file = dir.0.join("ward.toml");
    std::fs::write(&file, "bind = \"127.0.0.1:0\"\nredis_url = 7\n").unwrap();
    let out = ward(
        &dir.0,
        &url,
        &["--config", file.to_str().unwrap(), "serve"],
        "",
    );
    assert_one_line(
        &out,
        &format!("config file {}, line 2, key `redis_url`", file.display()),
        "correct that line",
    );
    // A second server on the same SQLite data dir.
    let running = Server::start(&url, &dir.0).await;
    let out = ward(&dir.0, &url, &["serve"], "");
    assert_one_line(
        &out,
        "is in use by a running ward process",
        "stop that process first",
    );
    drop(running);
}

/// WARD_LOG=trace on the real binary: the WebSocket and HTTP libraries would log whole
/// frames and bodies; they are capped, so the text of a message sent over REST and pushed
/// over a WebSocket appears in no log line.
async fn at_trace_level_no_message_text_reaches_the_log(db: Db) {
    use futures_util::StreamExt;
    const MARKER: &str = "Warfarin 5mg for Jane Roe";
    let (url, _cleanup) = fresh_database(db);
    let dir = TempDir::new("trace");
    let server = Server::start_with(&url, &dir.0, &[("WARD_LOG", "trace")]).await;
    let http = reqwest::Client::new();
    setup_channel(&http, &server.base).await;
    let json = json!({"user_id": "bob", "user_details": {"id": "bob"}}).to_string();
    let ws_url = format!(
        "{}/connect?json={}&api_key={KEY}&authorization={}&stream-auth-type=jwt",
        server.base.replacen("http", "ws", 1),
        crate::helpers::url_encode(&json),
        crate::helpers::url_encode(&user("bob"))
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    send(&http, &server.base, "m-trace", MARKER).await;
    // Bob's socket receives the notification with the text: the frame went through the
    // WebSocket library while it logs at trace.
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(frame)) = ws.next().await {
            if frame.to_text().is_ok_and(|t| t.contains(MARKER)) {
                return;
            }
        }
        panic!("the socket closed before the message arrived");
    })
    .await
    .expect("the message reaches bob's socket");
    // Ward's own verbose lines are there (the level took effect).
    eventually(10, "debug lines are logged", async || {
        server.stderr().contains("message stored")
    })
    .await;
    let log = server.stderr();
    assert!(!log.contains(MARKER), "message text in the log");
    assert!(!log.contains("Warfarin"), "message text in the log");
    drop(server);
}

fn assert_one_line(out: &Output, cause: &str, fix: &str) {
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("\"level\"")).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("ward: "), "{err}");
    assert!(lines[0].contains(cause), "{err}");
    assert!(lines[0].contains(fix), "{err}");
}

async fn config_check_reports_redis_down_and_a_wrong_database_url(db: Db) {
    let (url, _cleanup) = fresh_database(db);
    let dir = TempDir::new("check");
    drop(Server::start(&url, &dir.0).await);
    let redis = crate::helpers::redis_url();
    let out = ward_env(
        &dir.0,
        &url,
        &["config", "check"],
        "",
        &[("WARD_REDIS_URL", &redis), ("WARD_BIND", "127.0.0.1:0")],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    for name in [
        "configuration",
        "database",
        "root key",
        "redis",
        "audit checkpoints",
    ] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(name) && l.contains(" ok ")),
            "{name}: {table}"
        );
    }
    assert!(table.contains("all checks passed"), "{table}");

    // Redis is down (nothing listens on port 1) and the database URL is wrong.
    let wrong = match db {
        Db::Sqlite => format!(
            "sqlite://{}",
            dir.0.join("no-such-dir").join("ward.db").display()
        ),
        Db::Postgres => "postgres://postgres@127.0.0.1:1/ward".to_string(),
    };
    let out = ward_env(
        &dir.0,
        &wrong,
        &["config", "check"],
        "",
        &[
            ("WARD_REDIS_URL", "redis://127.0.0.1:1"),
            ("WARD_BIND", "127.0.0.1:0"),
        ],
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row: {table}"))
            .to_string()
    };
    assert!(row("redis").contains("FAILED"), "{table}");
    assert!(row("database").contains("FAILED"), "{table}");
    assert!(row("configuration").contains(" ok "), "{table}");
    assert!(table.contains("checks failed"), "{table}");
    if db == Db::Postgres {
        assert!(
            row("database").contains("cannot reach PostgreSQL"),
            "{table}"
        );
    }
    // Nothing was created by the check.
    assert!(!dir.0.join("no-such-dir").exists());
}

async fn a_backup_taken_while_messages_are_sent_restores_readable_searchable_and_verifiable(
    db: Db,
) {
    let (url, _cleanup) = fresh_database(db);
    let dir = TempDir::new("backup");
    // SQLite: the database lives in the data dir, which the drill wipes.
    let url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.0.join("ward.db").display()),
        Db::Postgres => url,
    };
    let server = Server::start(&url, &dir.0).await;
    let http = reqwest::Client::new();
    let base = server.base.clone();
    setup_channel(&http, &base).await;
    send(&http, &base, "m-first", "warfarin dose adjusted").await;

    // Senders run while the backup is taken.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut senders = Vec::new();
    for n in 0..4 {
        let (http, base, acked, stop) = (http.clone(), base.clone(), acked.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let id = format!("m-{n}-{i}");
                if try_send(&http, &base, &id, &format!("observation {id}")).await {
                    acked.lock().unwrap().push(id);
                }
            }
        }));
    }
    eventually(60, "sends are under way", async || {
        acked.lock().unwrap().len() >= 40
    })
    .await;
    // The auditor's state: the checkpoint published before the backup.
    let before = audit_bundle(&dir.0, &url, None);
    let state = before.state;
    let acked_before: Vec<String> = acked.lock().unwrap().clone();
    let file = dir.0.join("ward.backup");
    let backup = tokio::task::spawn_blocking({
        let (d, u, f) = (dir.0.clone(), url.clone(), file.clone());
        move || match db {
            Db::Sqlite => ward(&d, &u, &["backup", "--out", f.to_str().unwrap()], ""),
            // PostgreSQL deployments back up with pg_dump (README "Backup and restore").
            Db::Postgres => pg("pg_dump", &["-Fc", "-d", &u, "-f", f.to_str().unwrap()]),
        }
    })
    .await
    .unwrap();
    let count_at_backup = acked.lock().unwrap().len();
    eventually(60, "sends go on after the backup", async || {
        acked.lock().unwrap().len() >= count_at_backup + 20
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    drop(server);

    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    if db == Db::Postgres {
        // ward backup says what to use instead.
        let refused = ward(&dir.0, &url, &["backup", "--out", "/nonexistent/x"], "");
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("pg_dump"), "{err}");
    } else {
        assert!(String::from_utf8_lossy(&backup.stdout).contains("backed up to"));
    }
    #[cfg(unix)]
    if db == Db::Sqlite {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the backup is private: {mode:o}");
    }

    // Wipe the data dir but the root key and the backup, then restore.
    let keep = TempDir::new("keep");
    std::fs::create_dir_all(&keep.0).unwrap();
    std::fs::copy(dir.0.join("root.key"), keep.0.join("root.key")).unwrap();
    std::fs::copy(&file, keep.0.join("ward.backup")).unwrap();
    std::fs::remove_dir_all(&dir.0).unwrap();
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::copy(keep.0.join("root.key"), dir.0.join("root.key")).unwrap();
    let backup_file = keep.0.join("ward.backup");
    if db == Db::Postgres {
        // Wipe the database too, then restore it with pg_restore.
        let (base_url, name) = url.rsplit_once('/').unwrap();
        let admin = format!("{base_url}/postgres");
        for sql in [
            format!("DROP DATABASE {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            let out = pg("psql", &["-d", &admin, "-v", "ON_ERROR_STOP=1", "-c", &sql]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = pg(
            "pg_restore",
            &["--exit-on-error", "-d", &url, backup_file.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        let restore = ward(
            &dir.0,
            &url,
            &["restore", backup_file.to_str().unwrap()],
            "",
        );
        assert!(
            restore.status.success(),
            "{}",
            String::from_utf8_lossy(&restore.stderr)
        );
        // A second restore over it needs --replace, and never while a server runs.
        let again = ward(
            &dir.0,
            &url,
            &["restore", backup_file.to_str().unwrap()],
            "",
        );
        assert!(String::from_utf8_lossy(&again.stderr).contains("--replace"));
    }

    let server = Server::start(&url, &dir.0).await;
    let base = server.base.clone();
    if db == Db::Sqlite {
        let running = ward(
            &dir.0,
            &url,
            &["restore", "--replace", backup_file.to_str().unwrap()],
            "",
        );
        assert!(
            String::from_utf8_lossy(&running.stderr).contains("in use by a running ward process")
        );
    }
    // Every message acknowledged before the backup started reads back decrypted.
    for id in acked_before.iter().chain(["m-first".to_string()].iter()) {
        let (s, body) = call(
            &http,
            &base,
            reqwest::Method::GET,
            &format!("/messages/{id}"),
            &user("ann"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{id}: {body}");
        assert!(
            body["message"]["text"]
                .as_str()
                .unwrap()
                .contains(if id == "m-first" { "warfarin" } else { id }),
            "{body}"
        );
    }
    // Search works on the restored blind index.
    let (s, found) = call(
        &http,
        &base,
        reqwest::Method::GET,
        &format!(
            "/search?payload={}",
            crate::helpers::url_encode(
                &json!({"filter_conditions": {"cid": "messaging:drill"}, "query": "warfarin"})
                    .to_string()
            )
        ),
        &user("ann"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["results"].as_array().unwrap().len(), 1, "{found}");
    // The log goes on with new entries, verifies, and is consistent with the checkpoint
    // published before the backup.
    send(&http, &base, "m-after", "after the restore").await;
    let expected = state.size;
    let mut after = None;
    eventually(30, "the restored log grows past the backup", async || {
        let b = audit_bundle(&dir.0, &url, Some(&state));
        let grown = b.state.size > expected;
        after = Some(b);
        grown
    })
    .await;
    let after = after.unwrap();
    if db == Db::Sqlite {
        assert!(after.restore_entry, "the restore is in the audit log");
    }
    drop(server);
}

async fn the_root_key_escrow_round_trip_restores_access_and_a_wrong_passphrase_changes_nothing(
    db: Db,
) {
    let (url, _cleanup) = fresh_database(db);
    let dir = TempDir::new("escrow");
    let server = Server::start(&url, &dir.0).await;
    let http = reqwest::Client::new();
    setup_channel(&http, &server.base).await;
    send(&http, &server.base, "m-escrow", "potassium 3.1").await;
    eventually(
        10,
        "ward serve reminds the operator to escrow a fresh local root key",
        async || server.stderr().contains("has never been exported"),
    )
    .await;
    drop(server);

    let escrow = dir.0.join("root.escrow");
    let weak = ward(
        &dir.0,
        &url,
        &["keys", "export-root", "--out", escrow.to_str().unwrap()],
        "short\n",
    );
    assert!(!weak.status.success());
    assert!(!escrow.exists());
    let out = ward(
        &dir.0,
        &url,
        &["keys", "export-root", "--out", escrow.to_str().unwrap()],
        "correct horse battery staple\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&escrow).unwrap();
    let key = std::fs::read(dir.0.join("root.key")).unwrap();
    assert!(
        text.contains("argon2id") && text.contains("aes-256-gcm"),
        "{text}"
    );
    assert!(!text.contains(&ward_b64(&key)));

    std::fs::remove_file(dir.0.join("root.key")).unwrap();
    let wrong = ward(
        &dir.0,
        &url,
        &["keys", "import-root", escrow.to_str().unwrap()],
        "wrong horse battery staple\n",
    );
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("the passphrase does not open"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!dir.0.join("root.key").exists());

    let ok = ward(
        &dir.0,
        &url,
        &["keys", "import-root", escrow.to_str().unwrap()],
        "correct horse battery staple\n",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(std::fs::read(dir.0.join("root.key")).unwrap(), key);

    let server = Server::start(&url, &dir.0).await;
    let (s, body) = call(
        &http,
        &server.base,
        reqwest::Method::GET,
        "/messages/m-escrow",
        &user("ann"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["message"]["text"], "potassium 3.1");
    // Export and import are in the audit log.
    let mut ops = Vec::new();
    eventually(30, "both escrow operations are audited", async || {
        let (_, page) = call(
            &http,
            &server.base,
            reqwest::Method::GET,
            "/audit/entries?action=key.operation&limit=1000",
            &user("aud"),
            None,
        )
        .await;
        ops = page["entries"]
            .as_array()
            .map(|es| {
                es.iter()
                    .filter_map(|e| e["meta"]["operation"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        ops.iter().any(|o| o == "root_export") && ops.iter().any(|o| o == "root_import")
    })
    .await;
    // The start-up reminder is gone once the key was exported.
    assert!(!server.stderr().contains("has never been exported"));
    drop(server);
}

/// A PostgreSQL client tool (pg_dump, pg_restore, psql).
fn pg(tool: &str, args: &[&str]) -> Output {
    std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool} runs (postgresql-client): {e}"))
}

fn ward_b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- helpers of this file ----

struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        Self(
            std::env::temp_dir().join(format!("ward_ops_{what}_{}", uuid::Uuid::new_v4().simple())),
        )
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn user(id: &str) -> String {
    token::user_token(id, None, SECRET.as_bytes())
}

fn ward(dir: &Path, url: &str, args: &[&str], stdin: &str) -> Output {
    ward_env(dir, url, args, stdin, &[])
}

fn ward_env(dir: &Path, url: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ward"));
    cmd.args(args)
        .env("WARD_DATA_DIR", dir)
        .env("WARD_DATABASE_URL", url)
        .env("WARD_API_KEY", KEY)
        .env("WARD_API_SECRET", SECRET)
        .env("WARD_LOG_FORMAT", "json")
        .env("WARD_LOG", crate::helpers::spawned_log_level("warn"))
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the ward binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    crate::helpers::keep_spawned_log(&String::from_utf8_lossy(&out.stderr));
    out
}

struct Server {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    async fn start(url: &str, dir: &Path) -> Self {
        Self::start_with(url, dir, &[]).await
    }

    async fn start_with(url: &str, dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
            .arg("serve")
            .env("WARD_BIND", "127.0.0.1:0")
            .env("WARD_DATA_DIR", dir)
            .env("WARD_DATABASE_URL", url)
            .env("WARD_API_KEY", KEY)
            .env("WARD_API_SECRET", SECRET)
            .env("WARD_LOG_FORMAT", "json")
            .env("WARD_LOG", crate::helpers::spawned_log_level("warn"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the ward binary starts");
        let stderr: Arc<Mutex<String>> = Arc::default();
        let mut err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(addr) = line.strip_prefix("ward: listening on ") {
                    return Some(addr.to_string());
                }
            }
            None
        })
        .await
        .expect("the server listens in time");
        let Some(base) = waited else {
            let _ = child.wait().await;
            panic!("the server exited: {}", stderr.lock().unwrap());
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        // Users for the tests of this file.
        let http = reqwest::Client::new();
        let (s, body) = call(
            &http,
            &base,
            reqwest::Method::POST,
            "/users",
            &token::server_token(SECRET.as_bytes()),
            Some(json!({"users": {
                "ann": {"id": "ann"}, "bob": {"id": "bob"}, "aud": {"id": "aud", "role": "auditor"}
            }})),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        Self {
            child,
            base,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        crate::helpers::keep_spawned_log(&self.stderr());
        // SIGTERM: the server drains and releases its data dir lock as it exits.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            for _ in 0..200 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        let _ = self.child.start_kill();
    }
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    crate::audit_crash::call(http, base, method, path, token, body)
        .await
        .expect("the server answers")
}

async fn setup_channel(http: &reqwest::Client, base: &str) {
    let (s, body) = call(
        http,
        base,
        reqwest::Method::POST,
        "/channels/messaging/drill/query",
        &user("ann"),
        Some(json!({"data": {"members": ["ann", "bob"]}})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
}

async fn try_send(http: &reqwest::Client, base: &str, id: &str, text: &str) -> bool {
    matches!(
        crate::audit_crash::call(
            http,
            base,
            reqwest::Method::POST,
            "/channels/messaging/drill/message",
            &user("ann"),
            Some(json!({"message": {"id": id, "text": text}})),
        )
        .await,
        Ok((201, _))
    )
}

async fn send(http: &reqwest::Client, base: &str, id: &str, text: &str) {
    assert!(try_send(http, base, id, text).await, "sending {id}");
}

struct Audited {
    state: ward_audit::bundle::State,
    restore_entry: bool,
}

/// Exports the whole log with the CLI and verifies it; with `prior`, also that it is
/// consistent with that earlier state (a consistency proof from its size).
fn audit_bundle(dir: &Path, url: &str, prior: Option<&ward_audit::bundle::State>) -> Audited {
    let vkey = ward(dir, url, &["audit", "verifier-key"], "");
    assert!(
        vkey.status.success(),
        "{}",
        String::from_utf8_lossy(&vkey.stderr)
    );
    let vkey = String::from_utf8(vkey.stdout).unwrap();
    let out = dir.join(format!("bundle-{}", uuid::Uuid::new_v4().simple()));
    let mut args = vec!["audit", "export", "--out", out.to_str().unwrap()];
    let since = prior.map(|p| p.size.to_string());
    if let Some(s) = &since {
        args.extend(["--since", s.as_str()]);
    }
    let export = ward(dir, url, &args, "");
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let bundle = ward_audit::bundle::Bundle::read(&out).unwrap();
    let verifier = ward_audit::note::Verifier::parse(vkey.trim()).unwrap();
    let report = ward_audit::bundle::verify(&bundle, &verifier, prior)
        .expect("the log verifies (and is consistent with the prior state)");
    let restore_code = ward::audit::EventType::OpsRestore.code();
    let restore_entry = bundle
        .entries
        .iter()
        .any(|e| ward_audit::entry::Entry::decode(e).is_ok_and(|d| d.event_type == restore_code));
    let _ = std::fs::remove_dir_all(&out);
    Audited {
        state: ward_audit::bundle::State {
            origin: report.origin.clone(),
            size: report.tree_size,
            root: report.root,
        },
        restore_entry,
    }
}
