//! Retention (`policies/retention.toml`): livestream messages older than 30 days are
//! deleted by the `gdpr.retention` task, messaging ones are kept, legal holds (on a channel
//! or a user) keep what they cover until released; a dry run only counts; every run is in
//! the audit log; only compliance officers (or the API secret) start runs.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, eventually, on_both_databases};

on_both_databases!(
    retention_deletes_expired_unheld_messages_and_a_dry_run_deletes_nothing,
    users_cannot_read_the_retention_policy_or_start_a_run,
);

const DAY_MICROS: i64 = 86_400 * 1_000_000;

/// Moves messages `days` days into the past.
async fn backdate(app: &TestApp, db: Db, ids: &[&str], days: i64) {
    let url = &app.state.config.database_url;
    let at = ward::time::now_micros() - days * DAY_MICROS;
    let sql = "UPDATE messages SET created_at = $1, updated_at = $1 WHERE id = $2";
    for id in ids {
        match db {
            Db::Sqlite => {
                let pool = sqlx::SqlitePool::connect(url).await.unwrap();
                sqlx::query(sql)
                    .bind(at)
                    .bind(*id)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
            Db::Postgres => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                sqlx::query(sql)
                    .bind(at)
                    .bind(*id)
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
            }
        }
    }
}

/// Rows of `table` whose `message_id` is `id` (reactions, search tokens).
async fn rows_for(app: &TestApp, db: Db, table: &str, id: &str) -> i64 {
    let url = &app.state.config.database_url;
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM {table} WHERE message_id = $1"
    ));
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query_scalar(sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_scalar(sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    }
}

async fn send(app: &TestApp, cid: &str, user: &str, text: &str) -> String {
    app.send(cid, user, json!({ "text": text })).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn exists(app: &TestApp, id: &str) -> bool {
    app.state
        .store
        .messages
        .find_message(id)
        .await
        .unwrap()
        .is_some()
}

/// Starts a run and returns the finished task.
async fn run(app: &TestApp, dry_run: bool) -> Value {
    let server = app.server_token();
    let (s, body) = app
        .post(
            "/compliance/retention/run",
            &server,
            json!({ "dry_run": dry_run }),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let task = body["task_id"].as_str().unwrap().to_string();
    let mut last = Value::Null;
    eventually(30, "the retention task finishes", async || {
        let (s, t) = app.get(&format!("/tasks/{task}"), &server).await;
        assert_eq!(s, 200, "{t}");
        last = t;
        matches!(last["status"].as_str(), Some("completed" | "failed"))
    })
    .await;
    assert_eq!(last["status"], "completed", "{last}");
    last
}

async fn place_hold(app: &TestApp, scope: &str, target: &str) -> String {
    let (s, placed) = app
        .post(
            "/compliance/holds",
            &app.server_token(),
            json!({"scope": scope, "target": target, "reason": "Doe v. Hospital"}),
        )
        .await;
    assert_eq!(s, 201, "{placed}");
    placed["hold"]["id"].as_str().unwrap().to_string()
}

async fn livestream(app: &TestApp, id: &str, creator: &str) {
    let (s, body) = app
        .post(
            &format!("/channels/livestream/{id}/query"),
            &app.server_token(),
            json!({"data": {"created_by_id": creator, "members": [creator]}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
}

async fn retention_deletes_expired_unheld_messages_and_a_dry_run_deletes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["anna", "ben", "cleo"]).await;
    livestream(&app, "show", "anna").await;
    livestream(&app, "trial", "anna").await;
    app.channel("chat", "anna", &["anna", "ben"]).await;

    let old1 = send(&app, "livestream:show", "anna", "old one").await;
    let old2 = send(&app, "livestream:show", "ben", "old two").await;
    let by_held_user = send(&app, "livestream:show", "cleo", "old, held author").await;
    let fresh = send(&app, "livestream:show", "anna", "fresh").await;
    let held1 = send(&app, "livestream:trial", "anna", "evidence one").await;
    let held2 = send(&app, "livestream:trial", "ben", "evidence two").await;
    let chat1 = send(&app, "messaging:chat", "anna", "kept one").await;
    let chat2 = send(&app, "messaging:chat", "ben", "kept two").await;
    backdate(&app, db, &[&old1, &old2, &by_held_user, &held1, &held2], 40).await;
    let (s, body) = app
        .post(
            &format!("/messages/{old1}/reaction"),
            &app.token("ben"),
            json!({"reaction": {"type": "like"}}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(rows_for(&app, db, "reactions", &old1).await, 1);
    assert!(rows_for(&app, db, "message_search_tokens", &old1).await > 0);
    backdate(&app, db, &[&fresh], 29).await;
    backdate(&app, db, &[&chat1, &chat2], 400).await;
    let channel_hold = place_hold(&app, "channel", "livestream:trial").await;
    place_hold(&app, "user", "cleo").await;
    let all = [
        &old1,
        &old2,
        &by_held_user,
        &fresh,
        &held1,
        &held2,
        &chat1,
        &chat2,
    ];

    // The policy as configured.
    let (s, policy) = app.get("/compliance/retention", &app.server_token()).await;
    assert_eq!(s, 200, "{policy}");
    assert_eq!(
        policy["policy"]["channel_types"]["livestream"]["keep_days"],
        30
    );
    assert_eq!(policy["policy"]["channel_types"]["phi"]["keep_days"], 2190);
    assert!(policy["policy"]["channel_types"]["messaging"]["keep_days"].is_null());

    // A dry run counts and deletes nothing.
    let dry = run(&app, true).await;
    let live = &dry["result"]["channel_types"]["livestream"];
    assert_eq!(
        (live["expired"].as_i64(), live["held_skipped"].as_i64()),
        (Some(2), Some(3)),
        "{dry}"
    );
    assert_eq!(dry["result"]["channel_types"]["phi"]["expired"], 0);
    assert!(dry["result"]["channel_types"].get("messaging").is_none());
    for id in all {
        assert!(exists(&app, id).await, "a dry run deleted {id}");
    }

    // A real run deletes exactly the expired, unheld livestream messages.
    let done = run(&app, false).await;
    let live = &done["result"]["channel_types"]["livestream"];
    assert_eq!(
        (live["deleted"].as_i64(), live["held_skipped"].as_i64()),
        (Some(2), Some(3)),
        "{done}"
    );
    assert_eq!(done["result"]["deleted"], 2);
    assert!(!exists(&app, &old1).await && !exists(&app, &old2).await);
    assert_eq!(rows_for(&app, db, "reactions", &old1).await, 0);
    assert_eq!(rows_for(&app, db, "message_search_tokens", &old1).await, 0);
    for id in [&by_held_user, &fresh, &held1, &held2, &chat1, &chat2] {
        assert!(exists(&app, id).await, "{id} must be kept");
    }

    // Released, the channel's messages go at the next run; the held author's stay.
    let (s, _) = app
        .post(
            &format!("/compliance/holds/{channel_hold}/release"),
            &app.server_token(),
            json!({}),
        )
        .await;
    assert_eq!(s, 201);
    let again = run(&app, false).await;
    let live = &again["result"]["channel_types"]["livestream"];
    assert_eq!(
        (live["deleted"].as_i64(), live["held_skipped"].as_i64()),
        (Some(2), Some(1)),
        "{again}"
    );
    assert!(!exists(&app, &held1).await && !exists(&app, &held2).await);
    for id in [&by_held_user, &fresh, &chat1, &chat2] {
        assert!(exists(&app, id).await, "{id} must be kept");
    }

    // Every run is in the audit log: counts per channel type, dry or not, and what holds
    // kept (as denied).
    let entries = app.audit_entries().await;
    let runs: Vec<[String; 4]> = entries
        .iter()
        .filter(|e| e["event"] == "retention.run" && e["meta"]["channel_type"] == "livestream")
        .map(|e| {
            let m = |k: &str| e["meta"][k].as_str().unwrap_or("").to_string();
            let outcome = e["outcome"].as_str().unwrap_or("ok").to_string();
            [m("dry_run"), m("count"), m("held_skipped"), outcome]
        })
        .collect();
    let expected = [
        ["true", "2", "3", "ok"],
        ["false", "2", "0", "ok"],
        ["false", "0", "3", "denied"],
        ["false", "2", "0", "ok"],
        ["false", "0", "1", "denied"],
    ];
    assert_eq!(
        runs,
        expected.map(|r| r.map(str::to_string)),
        "{entries:#?}"
    );
}

async fn users_cannot_read_the_retention_policy_or_start_a_run(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["dora"]).await;
    let token = app.token("dora");
    let (s, body) = app
        .post(
            "/compliance/retention/run",
            &token,
            json!({"dry_run": true}),
        )
        .await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = app.get("/compliance/retention", &token).await;
    assert_eq!(s, 403, "{body}");
}
