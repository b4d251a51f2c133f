//! Erasure (Stream's `DELETE /users/{id}`): the subject's keys are shredded and rows gone,
//! other users untouched, search and tokens no longer reach them, a certificate is in the
//! audit log, which still verifies and no longer names them; legal holds block it until
//! released.

use serde_json::{Value, json};
use ward_audit::bundle;
use ward_audit::note::Verifier;

use crate::helpers::{Db, TestApp, eventually, on_both_databases};

on_both_databases!(
    erasure_shreds_the_subject_keeps_others_and_the_log_verifies,
    a_legal_hold_blocks_erasure_until_it_is_released,
    deleting_users_runs_as_a_task,
    the_cli_erases_a_user,
);

const MARKER: &str = "zebra-quartz-7431";

async fn bundle_of(app: &TestApp, since: Option<u64>) -> bundle::Bundle {
    app.state.audit.sync().await.unwrap();
    ward::audit::tree::export_bundle(
        app.state.store.audit.as_ref(),
        &app.state.audit.origin,
        0,
        u64::MAX,
        since,
    )
    .await
    .unwrap()
}

async fn raw_contains(app: &TestApp, db: Db, needle: &str) -> bool {
    let url = &app.state.config.database_url;
    match db {
        Db::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            // The file and its write-ahead log, as bytes.
            [path.to_string(), format!("{path}-wal")].iter().any(|p| {
                std::fs::read(p)
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            })
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            for t in tables {
                let found: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT EXISTS (SELECT 1 FROM \"{t}\" x WHERE x::text LIKE '%{needle}%')"
                )))
                .fetch_one(&pool)
                .await
                .unwrap();
                if found {
                    return true;
                }
            }
            false
        }
    }
}

async fn erasure_shreds_the_subject_keeps_others_and_the_log_verifies(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["leaver", "stayer"]).await;
    app.channel("ward-7", "stayer", &["leaver", "stayer"]).await;
    let gone = app
        .send(
            "messaging:ward-7",
            "leaver",
            json!({"text": format!("{MARKER} leaving note")}),
        )
        .await;
    let kept = app
        .send(
            "messaging:ward-7",
            "stayer",
            json!({"text": "stayer note about zebra"}),
        )
        .await;
    let mut ws = app.connect("leaver").await;
    drop(ws.stream.close(None).await);
    let leaver_token = app.token("leaver");
    let before = bundle_of(&app, None).await;
    let verifier = Verifier::parse(&app.state.audit.verifier_key).unwrap();
    let state = bundle::verify(&before, &verifier, None)
        .unwrap()
        .new_state();
    assert!(
        !raw_contains(&app, db, MARKER).await,
        "message text is sealed at rest"
    );

    let (s, body) = app
        .call(
            reqwest::Method::DELETE,
            "/users/leaver?hard_delete=true",
            &app.server_token(),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body["erasure"]["keys_destroyed"].as_u64().unwrap() >= 1);
    assert_eq!(body["erasure"]["removed"]["messages"], 1);

    // Gone from the database and the API; the other user is intact.
    assert!(
        app.state
            .store
            .users
            .find_user("leaver")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        app.state
            .store
            .messages
            .find_message(gone["id"].as_str().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let still = app
        .state
        .store
        .messages
        .find_message(kept["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.text, "stayer note about zebra");
    assert!(!raw_contains(&app, db, MARKER).await);
    let (_, found) = app
        .get_payload(
            "/search",
            &app.token("stayer"),
            json!({"filter_conditions": {"cid": "messaging:ward-7"}, "query": "zebra"}),
        )
        .await;
    let ids: Vec<&Value> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["message"]["id"])
        .collect();
    assert_eq!(ids, [&kept["id"]], "search finds only the stayer's message");
    // Their old token no longer authenticates (and cannot recreate the user).
    let (s, _) = app.get("/users", &leaver_token).await;
    assert_eq!(s, 401);
    assert!(
        app.state
            .store
            .users
            .find_user("leaver")
            .await
            .unwrap()
            .is_none()
    );

    // The log still verifies, consistent with what an auditor held before; it holds the
    // certificate, and no entry names the leaver any more.
    let after = bundle_of(&app, Some(state.size)).await;
    let report = bundle::verify(&after, &verifier, Some(&state)).expect("the log still verifies");
    assert_eq!(report.consistent_with, Some(state.size));
    assert_eq!(&after.entries[..before.entries.len()], &before.entries[..]);
    let entries = app.audit_entries().await;
    let cert = entries
        .iter()
        .find(|e| e["event"] == "gdpr.erase" && e["meta"]["step"] == "completed")
        .expect("a certificate of erasure");
    assert!(cert["subject"]["pseudonym"].is_string());
    assert!(cert["subject"]["id"].is_null(), "unlinked: {cert}");
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains("\"leaver\"")
    );
    let connect = entries.iter().find(|e| e["event"] == "ws.connect").unwrap();
    assert_eq!(connect["pii_state"], "shredded");
    // Erasing again (a retried request) is harmless and finds nothing more to remove.
    let (s, again) = app
        .call(
            reqwest::Method::DELETE,
            "/users/leaver?hard_delete=true",
            &app.server_token(),
            None,
        )
        .await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["erasure"]["removed"]["messages"], 0);
    assert_eq!(again["erasure"]["keys_destroyed"], 0);
}

async fn a_legal_hold_blocks_erasure_until_it_is_released(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["subject", "other"]).await;
    app.channel("case-1", "subject", &["subject", "other"])
        .await;
    app.send("messaging:case-1", "subject", json!({"text": "evidence"}))
        .await;
    let server = app.server_token();

    // A hold on the channel the subject wrote in blocks their erasure.
    let (s, placed) = app
        .post(
            "/compliance/holds",
            &server,
            json!({"scope": "channel", "target": "messaging:case-1", "reason": "Doe v. Hospital"}),
        )
        .await;
    assert_eq!(s, 201, "{placed}");
    let hold_id = placed["hold"]["id"].as_str().unwrap().to_string();
    assert_eq!(placed["hold"]["reason"], "Doe v. Hospital");
    let (s, refused) = app
        .call(reqwest::Method::DELETE, "/users/subject", &server, None)
        .await;
    assert_eq!((s, refused["code"].as_i64()), (409, Some(17)), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains(&hold_id));
    assert!(
        app.state
            .store
            .users
            .find_user("subject")
            .await
            .unwrap()
            .is_some()
    );
    // A user token cannot place or release holds.
    let (s, _) = app
        .post(
            "/compliance/holds",
            &app.token("other"),
            json!({"scope": "user", "target": "subject", "reason": "x"}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .post(
            "/compliance/holds",
            &server,
            json!({"scope": "team", "target": "x", "reason": "x"}),
        )
        .await;
    assert_eq!(s, 400);

    // Released: the erasure runs.
    let (s, released) = app
        .post(
            &format!("/compliance/holds/{hold_id}/release"),
            &server,
            json!({}),
        )
        .await;
    assert_eq!(s, 201, "{released}");
    assert_eq!(released["hold"]["active"], false);
    let (s, again) = app
        .post(
            &format!("/compliance/holds/{hold_id}/release"),
            &server,
            json!({}),
        )
        .await;
    assert_eq!(s, 400, "{again}");
    let (s, body) = app
        .call(reqwest::Method::DELETE, "/users/subject", &server, None)
        .await;
    assert_eq!(s, 200, "{body}");
    let soft = app
        .state
        .store
        .users
        .find_user("subject")
        .await
        .unwrap()
        .unwrap();
    assert!(
        soft.deleted_at.is_some() && soft.data.is_empty(),
        "a soft erasure keeps an empty row"
    );

    let entries = app.audit_entries().await;
    let steps: Vec<(&str, &str)> = entries
        .iter()
        .filter_map(|e| {
            Some((
                e["event"].as_str()?,
                e["meta"]["step"].as_str().unwrap_or(""),
            ))
        })
        .filter(|(e, _)| e.starts_with("legal_hold") || e.starts_with("gdpr"))
        .collect();
    assert_eq!(
        steps,
        [
            ("legal_hold.place", ""),
            ("gdpr.erase", "blocked_by_legal_hold"),
            ("legal_hold.release", ""),
            ("gdpr.erase", "completed")
        ]
    );
    let (s, list) = app.get("/compliance/holds", &server).await;
    assert_eq!(s, 200);
    assert_eq!(list["holds"].as_array().unwrap().len(), 1);
}

/// Stream's `deleteUsers` + `getTask`, through the job queue.
async fn deleting_users_runs_as_a_task(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "c"]).await;
    app.channel("t", "a", &["a", "b", "c"]).await;
    app.send("messaging:t", "a", json!({"text": "from a"}))
        .await;
    let server = app.server_token();
    let (s, body) = app
        .post(
            "/users/delete",
            &server,
            json!({"user_ids": ["a", "b"], "user": "hard", "messages": "hard"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let task = body["task_id"].as_str().unwrap().to_string();
    let t = finished(&app, &task).await;
    assert_eq!(t["status"], "completed", "{t}");
    assert_eq!(t["result"]["deleted_users"], 2);
    assert!(
        app.state
            .store
            .users
            .find_user("a")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        app.state
            .store
            .users
            .find_user("c")
            .await
            .unwrap()
            .is_some()
    );
    // Bad input and unknown tasks.
    let (s, _) = app
        .post(
            "/users/delete",
            &server,
            json!({"user_ids": [], "user": "hard"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .post(
            "/users/delete",
            &server,
            json!({"user_ids": ["c"], "user": "shred"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app.get("/tasks/nope", &server).await;
    assert_eq!(s, 404);
    // A hold makes the task fail, with no personal data in its error.
    app.post(
        "/compliance/holds",
        &server,
        json!({"scope": "user", "target": "c", "reason": "audit"}),
    )
    .await;
    let (_, body) = app
        .post("/users/delete", &server, json!({"user_ids": ["c"]}))
        .await;
    let task = body["task_id"].as_str().unwrap().to_string();
    let t = finished(&app, &task).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert!(
        !t["error"]["description"]
            .as_str()
            .unwrap()
            .contains("\"c\"")
    );
    assert!(
        app.state
            .store
            .users
            .find_user("c")
            .await
            .unwrap()
            .is_some()
    );
}

/// The task once it is completed or failed (the server's own workers run it).
async fn finished(app: &TestApp, task: &str) -> Value {
    let mut last = Value::Null;
    eventually(30, "the task finishes", async || {
        let (s, t) = app
            .get(&format!("/tasks/{task}"), &app.server_token())
            .await;
        assert_eq!(s, 200, "{t}");
        last = t;
        matches!(last["status"].as_str(), Some("completed" | "failed"))
    })
    .await;
    last
}

async fn the_cli_erases_a_user(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.users(&["cli-subject", "other"]).await;
    app.channel("c", "other", &["cli-subject", "other"]).await;
    app.send("messaging:c", "cli-subject", json!({"text": "note"}))
        .await;
    let config = app.state.config.clone();
    app.shutdown().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["gdpr", "erase", "--user-id", "cli-subject", "--hard"])
        .env("WARD_DATABASE_URL", &config.database_url)
        .env("WARD_DATA_DIR", &config.data_dir)
        .env("WARD_API_KEY", crate::helpers::KEY)
        .env("WARD_API_SECRET", crate::helpers::SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let certificate: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(certificate["removed"]["messages"], 1);
    let store = ward::store::Store::connect(&config.database_url)
        .await
        .unwrap();
    assert!(
        store
            .users
            .find_user("cli-subject")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.users.find_user("other").await.unwrap().is_some());
}
