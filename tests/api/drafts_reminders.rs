//! Drafts and message reminders (issue 16 item 8): one's own, behind the channel's
//! decisions, announced to one's own connections, sealed (drafts) at rest; due reminders
//! are delivered once from the database.

use reqwest::Method;
use serde_json::json;

use crate::encryption::raw_database_contains;
use crate::helpers::{Db, TestApp, on_both_databases};

on_both_databases!(
    drafts_are_saved_per_thread_and_follow_the_user,
    drafts_need_the_channel_and_are_sealed,
    reminders_are_kept_queried_and_announced,
    a_due_reminder_is_delivered_once,
    hostile_draft_and_reminder_input_is_refused,
);

const MARKER: &str = "heron-tundra-9013";

async fn drafts_are_saved_per_thread_and_follow_the_user(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("d", "a", &["a", "b"]).await;
    app.send("messaging:d", "a", json!({"id": "root", "text": "root"}))
        .await;
    let mut ws = app.connect("a").await;
    let (status, body) = app
        .post(
            "/channels/messaging/d/draft",
            &app.token("a"),
            json!({"message": {"text": "half a thought", "custom_field": 1}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["draft"]["channel_cid"], "messaging:d");
    assert_eq!(body["draft"]["message"]["text"], "half a thought");
    assert!(body["draft"]["message"]["id"].is_string());
    let ev = ws.wait_for("draft.updated").await;
    assert_eq!(ev["draft"]["message"]["text"], "half a thought");

    let (status, body) = app
        .post(
            "/channels/messaging/d/draft",
            &app.token("a"),
            json!({"message": {"text": "in the thread", "parent_id": "root"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["draft"]["parent_id"], "root");
    let (_, got) = app
        .get("/channels/messaging/d/draft", &app.token("a"))
        .await;
    assert_eq!(got["draft"]["message"]["text"], "half a thought");
    let (_, got) = app
        .get(
            "/channels/messaging/d/draft?parent_id=root",
            &app.token("a"),
        )
        .await;
    assert_eq!(got["draft"]["message"]["text"], "in the thread");
    let (status, _) = app
        .get("/channels/messaging/d/draft", &app.token("b"))
        .await;
    assert_eq!(status, 404, "drafts are the user's own");

    let (status, q) = app.post("/drafts/query", &app.token("a"), json!({})).await;
    assert_eq!(status, 201, "{q}");
    assert_eq!(q["drafts"].as_array().unwrap().len(), 2);
    let (_, q) = app
        .post(
            "/drafts/query",
            &app.token("a"),
            json!({"filter": {"parent_id": "root"}}),
        )
        .await;
    assert_eq!(q["drafts"].as_array().unwrap().len(), 1);

    let (status, _) = app
        .call(
            Method::DELETE,
            "/channels/messaging/d/draft?parent_id=root",
            &app.token("a"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let ev = ws.wait_for("draft.deleted").await;
    assert_eq!(ev["draft"]["parent_id"], "root");
    let (status, _) = app
        .call(
            Method::DELETE,
            "/channels/messaging/d/draft?parent_id=root",
            &app.token("a"),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

async fn drafts_need_the_channel_and_are_sealed(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "c"]).await;
    app.channel("d", "a", &["a"]).await;
    let (status, body) = app
        .post(
            "/channels/messaging/d/draft",
            &app.token("c"),
            json!({"message": {"text": "not a member"}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = app
        .post(
            "/channels/messaging/d/draft",
            &app.token("a"),
            json!({"message": {"text": format!("draft {MARKER}")}}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(
        !raw_database_contains(&app, db, MARKER).await,
        "drafts are sealed at rest"
    );
}

async fn reminders_are_kept_queried_and_announced(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "c"]).await;
    app.channel("r", "a", &["a", "b"]).await;
    app.send("messaging:r", "a", json!({"id": "m1", "text": "one"}))
        .await;
    app.send("messaging:r", "a", json!({"id": "m2", "text": "two"}))
        .await;
    let mut ws = app.connect("b").await;
    let (status, body) = app
        .post(
            "/messages/m1/reminders",
            &app.token("b"),
            json!({"remind_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reminder"]["message_id"], "m1");
    assert_eq!(body["reminder"]["channel_cid"], "messaging:r");
    assert_eq!(body["reminder"]["message"]["text"], "one");
    assert_eq!(body["reminder"]["remind_at"], "2099-01-01T00:00:00.000000Z");
    ws.wait_for("reminder.created").await;
    let (status, _) = app
        .post("/messages/m1/reminders", &app.token("b"), json!({}))
        .await;
    assert_eq!(status, 400, "one reminder per message");
    let (status, _) = app
        .post("/messages/m2/reminders", &app.token("b"), json!({}))
        .await;
    assert_eq!(status, 201, "save for later: no remind_at");
    let (status, _) = app
        .post("/messages/m1/reminders", &app.token("c"), json!({}))
        .await;
    assert_eq!(status, 403, "only on messages one may read");

    let (status, q) = app
        .post("/reminders/query", &app.token("b"), json!({}))
        .await;
    assert_eq!(status, 201, "{q}");
    let ids: Vec<_> = q["reminders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message_id"].clone())
        .collect();
    assert_eq!(ids, [json!("m1"), json!("m2")]);
    let (_, q) = app
        .post(
            "/reminders/query",
            &app.token("b"),
            json!({"filter": {"remind_at": {"$exists": false}}}),
        )
        .await;
    assert_eq!(q["reminders"].as_array().unwrap().len(), 1);
    let (_, q) = app
        .post("/reminders/query", &app.token("a"), json!({}))
        .await;
    assert_eq!(
        q["reminders"].as_array().unwrap().len(),
        0,
        "one's own only"
    );

    let (status, body) = app
        .call(
            Method::PATCH,
            "/messages/m2/reminders",
            &app.token("b"),
            Some(json!({"remind_at": "2098-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    ws.wait_for("reminder.updated").await;
    let (status, _) = app
        .call(
            Method::DELETE,
            "/messages/m2/reminders",
            &app.token("b"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let ev = ws.wait_for("reminder.deleted").await;
    assert_eq!(ev["message_id"], "m2");
    let (status, _) = app
        .call(
            Method::DELETE,
            "/messages/m2/reminders",
            &app.token("b"),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

async fn a_due_reminder_is_delivered_once(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("due", "a", &["a"]).await;
    app.send(
        "messaging:due",
        "a",
        json!({"id": "dm", "text": "call back"}),
    )
    .await;
    let mut ws = app.connect("a").await;
    let soon = ward::time::rfc3339(ward::time::now_micros() + 1_000_000);
    let (status, body) = app
        .post(
            "/messages/dm/reminders",
            &app.token("a"),
            json!({"remind_at": soon}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let due = ws.wait_for("notification.reminder_due").await;
    assert_eq!(due["reminder"]["message_id"], "dm");
    assert_eq!(due["reminder"]["message"]["text"], "call back");
    // Claimed: a second sweep finds nothing.
    let again = ward::chat::reminder::deliver_due(&app.state.chat())
        .await
        .unwrap();
    assert_eq!(again, 0);
}

async fn hostile_draft_and_reminder_input_is_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("h", "a", &["a"]).await;
    app.send("messaging:h", "a", json!({"id": "hm", "text": "x"}))
        .await;
    for body in [
        json!({"message": "text"}),
        json!({"message": {"text": 5}}),
        json!({"message": {"text": "x", "parent_id": 3}}),
        json!({"message": {"text": "x", "parent_id": "missing"}}),
        json!({"message": {"text": "x", "id": "bad id"}}),
        json!({"message": {"text": "x", "attachments": "no"}}),
        json!({"message": {"text": "x", "blob": "y".repeat(70_000)}}),
    ] {
        let (status, reply) = app
            .post("/channels/messaging/h/draft", &app.token("a"), body.clone())
            .await;
        assert_eq!(status, 400, "{body} → {reply}");
    }
    for body in [
        json!({"remind_at": "tomorrow"}),
        json!({"remind_at": 5}),
        json!({"remind_at": {"a": 1}}),
    ] {
        let (status, reply) = app
            .post("/messages/hm/reminders", &app.token("a"), body.clone())
            .await;
        assert_eq!(status, 400, "{body} → {reply}");
    }
    let (status, _) = app
        .post("/messages/nope/reminders", &app.token("a"), json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(
            "/reminders/query",
            &app.token("a"),
            json!({"filter": {"remind_at": {"$gt": "x"}}}),
        )
        .await;
    assert_eq!(status, 400);
}
