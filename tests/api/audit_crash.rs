//! Killing the server (SIGKILL) during a burst of audited writes loses no audit record:
//! every message the server acknowledged has its `message.create` entry after a restart,
//! and the whole log exported with the CLI verifies offline.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use ward::auth::token;

use crate::helpers::{Db, KEY, SECRET, eventually, fresh_database, on_both_databases};

on_both_databases!(a_killed_server_loses_no_audit_record);

struct Server {
    child: Child,
    base: String,
}

async fn start(url: &str, data_dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .arg("serve")
        .env("WARD_BIND", "127.0.0.1:0")
        .env("WARD_DATA_DIR", data_dir)
        .env("WARD_DATABASE_URL", url)
        .env("WARD_API_KEY", KEY)
        .env("WARD_API_SECRET", SECRET)
        .env("WARD_LOG_FORMAT", "json")
        .env("WARD_LOG", crate::helpers::spawned_log_level("info"))
        .stdout(Stdio::piped())
        .stderr(crate::helpers::spawned_stderr())
        .kill_on_drop(true)
        .spawn()
        .expect("the ward binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.strip_prefix("ward: listening on ") {
                return addr.to_string();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens in time");
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server { child, base }
}

/// One API call with the test key; `Err` when the server does not answer.
pub(crate) async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut req = http
        .request(method, format!("{base}{path}{sep}api_key={KEY}"))
        .header("Authorization", token)
        .header("stream-auth-type", "jwt");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

async fn a_killed_server_loses_no_audit_record(db: Db) {
    let (url, _cleanup) = fresh_database(db);
    let data_dir =
        std::env::temp_dir().join(format!("ward_crash_{}", uuid::Uuid::new_v4().simple()));
    let http = reqwest::Client::new();
    let server_token = token::server_token(SECRET.as_bytes());
    let user = |id: &str| token::user_token(id, None, SECRET.as_bytes());

    let mut server = start(&url, &data_dir).await;
    let base = server.base.clone();
    let (s, body) = call(
        &http,
        &base,
        reqwest::Method::POST,
        "/users",
        &server_token,
        Some(json!({"users": {
            "ann": {"id": "ann"}, "bob": {"id": "bob"}, "aud": {"id": "aud", "role": "auditor"}
        }})),
    )
    .await
    .unwrap();
    assert_eq!(s, 201, "{body}");
    let (s, body) = call(
        &http,
        &base,
        reqwest::Method::POST,
        "/channels/messaging/burst/query",
        &user("ann"),
        Some(json!({"data": {"members": ["ann", "bob"]}})),
    )
    .await
    .unwrap();
    assert_eq!(s, 201, "{body}");

    // A burst of sends from 8 clients; the server is killed while they run.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut senders = Vec::new();
    for n in 0..8 {
        let (http, base, acked, token) = (
            http.clone(),
            base.clone(),
            acked.clone(),
            user(if n % 2 == 0 { "ann" } else { "bob" }),
        );
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("m-{n}-{i}");
                match call(
                    &http,
                    &base,
                    reqwest::Method::POST,
                    "/channels/messaging/burst/message",
                    &token,
                    Some(json!({"message": {"id": id, "text": "vitals stable"}})),
                )
                .await
                {
                    Ok((201, _)) => acked.lock().unwrap().push(id),
                    _ => return,
                }
            }
        }));
    }
    eventually(60, "the burst is under way", async || {
        acked.lock().unwrap().len() >= 150
    })
    .await;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // After a restart every acknowledged message has its entry.
    let server = start(&url, &data_dir).await;
    let base = server.base.clone();
    let mut missing = acked.clone();
    eventually(
        30,
        "every acknowledged message has its audit entry",
        async || {
            let mut cursor: Option<u64> = None;
            let mut seen = std::collections::HashSet::new();
            loop {
                let path = match cursor {
                    None => "/audit/entries?action=message.create&limit=1000".to_string(),
                    Some(c) => {
                        format!("/audit/entries?action=message.create&limit=1000&cursor={c}")
                    }
                };
                let Ok((200, page)) = call(
                    &http,
                    &base,
                    reqwest::Method::GET,
                    &path,
                    &user("aud"),
                    None,
                )
                .await
                else {
                    return false;
                };
                for e in page["entries"].as_array().unwrap() {
                    if let Some(id) = e["object"]["id"].as_str() {
                        seen.insert(id.to_string());
                    }
                }
                match page["next"].as_u64() {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            missing.retain(|id| !seen.contains(id));
            missing.is_empty()
        },
    )
    .await;

    // The CLI exports the whole log and it verifies against the pinned verifier key.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(args)
            .env("WARD_DATA_DIR", &data_dir)
            .env("WARD_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let vkey = cli(&["audit", "verifier-key"]);
    let out = data_dir.join("bundle");
    cli(&["audit", "export", "--out", out.to_str().unwrap()]);
    let bundle = ward_audit::bundle::Bundle::read(&out).unwrap();
    let verifier = ward_audit::note::Verifier::parse(vkey.trim()).unwrap();
    let report = ward_audit::bundle::verify(&bundle, &verifier, None)
        .expect("the log verifies after the crash");
    assert!(report.count as usize > acked.len());

    // The auditor's own tool, built from the `ward-audit` crate alone, says the same; with a
    // state file it accepts the same checkpoint again and refuses a tampered bundle.
    let tool = std::path::Path::new(env!("CARGO_BIN_EXE_ward")).with_file_name("ward-audit");
    assert!(
        tool.exists(),
        "build it first: cargo build -p ward-audit ({})",
        tool.display()
    );
    let state = data_dir.join("auditor.state");
    let verify = |dir: &std::path::Path| {
        std::process::Command::new(&tool)
            .args([
                "verify",
                dir.to_str().unwrap(),
                "--key",
                vkey.trim(),
                "--state",
                state.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let out = verify(&out);
        let line = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success() && line.starts_with("OK "), "{line}");
    }
    let entries = out.join("entries");
    let mut bytes = std::fs::read(&entries).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x01;
    std::fs::write(&entries, bytes).unwrap();
    let refused = verify(&out);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).starts_with("FAIL "));
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
}
