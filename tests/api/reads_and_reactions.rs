//! Reactions, read state and unread counters.

use serde_json::json;

use crate::helpers::{Db, TestApp, on_both_databases};

async fn reactions_group_count_and_stay_unique_when_asked(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("r", "a", &["a", "b"]).await;
    app.send(
        "messaging:r",
        "a",
        json!({"id": "m", "text": "lab results are in"}),
    )
    .await;
    let (status, body) = app
        .post(
            "/messages/m/reaction",
            &app.token("b"),
            json!({"reaction": {"type": "like"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["reaction"]["user_id"], "b");
    assert_eq!(body["message"]["reaction_groups"]["like"]["count"], 1);
    assert_eq!(body["message"]["own_reactions"][0]["type"], "like");
    app.post(
        "/messages/m/reaction",
        &app.token("a"),
        json!({"reaction": {"type": "like", "score": 3}}),
    )
    .await;
    let (_, body) = app
        .post(
            "/messages/m/reaction",
            &app.token("b"),
            json!({"reaction": {"type": "love"}, "enforce_unique": true}),
        )
        .await;
    let groups = &body["message"]["reaction_groups"];
    assert_eq!(
        groups["like"]["count"], 1,
        "b's like was replaced: {groups}"
    );
    assert_eq!(groups["like"]["sum_scores"], 3);
    assert_eq!(groups["love"]["count"], 1);
    assert_eq!(
        body["message"]["latest_reactions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            "/messages/m/reaction/love",
            &app.token("b"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["message"]["reaction_groups"].get("love").is_none());
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            "/messages/m/reaction/love",
            &app.token("b"),
            None,
        )
        .await;
    assert_eq!((status, body["code"].as_i64().unwrap()), (404, 16));
    let (status, _) = app
        .post(
            "/messages/m/reaction",
            &app.token("b"),
            json!({"reaction": {"type": "bad type!"}}),
        )
        .await;
    assert_eq!(status, 400);
}

/// stream-chat-react re-renders a message only when its `updated_at` moves, so a reaction
/// (added or removed) must move it, as Stream's does; an edit still moves it past that.
async fn reactions_move_the_messages_updated_at(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("u", "a", &["a", "b"]).await;
    let sent = app
        .send(
            "messaging:u",
            "a",
            json!({"id": "mu", "text": "dose changed"}),
        )
        .await;
    let mut seen = vec![sent["updated_at"].as_str().unwrap().to_owned()];
    let (status, body) = app
        .post(
            "/messages/mu/reaction",
            &app.token("b"),
            json!({"reaction": {"type": "like"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    seen.push(body["message"]["updated_at"].as_str().unwrap().to_owned());
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            "/messages/mu/reaction/like",
            &app.token("b"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    seen.push(body["message"]["updated_at"].as_str().unwrap().to_owned());
    let (_, got) = app.get("/messages/mu", &app.token("a")).await;
    assert_eq!(
        got["message"]["updated_at"], seen[2],
        "stored, not only answered"
    );
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "updated_at moves with every reaction change: {seen:?}"
    );
}

async fn unread_counts_grow_per_message_and_reset_on_read(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("x", "a", &["a", "b"]).await;
    app.channel("y", "a", &["a", "b"]).await;
    for cid in ["messaging:x", "messaging:x", "messaging:y"] {
        app.send(cid, "a", json!({"text": "vitals"})).await;
    }
    let (_, unread) = app.get("/unread", &app.token("b")).await;
    assert_eq!(unread["total_unread_count"], 3);
    assert_eq!(unread["channels"].as_array().unwrap().len(), 2);
    assert_eq!(unread["channel_type"][0]["unread_count"], 3);
    let (_, mine) = app.get("/unread", &app.token("a")).await;
    assert_eq!(
        mine["total_unread_count"], 0,
        "your own messages are not unread"
    );
    let (status, body) = app
        .post("/channels/messaging/x/read", &app.token("b"), json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["event"]["type"], "message.read");
    assert_eq!(body["event"]["user"]["id"], "b");
    let (_, unread) = app.get("/unread", &app.token("b")).await;
    assert_eq!(unread["total_unread_count"], 1);
    let (_, state) = app
        .post("/channels/messaging/x/query", &app.token("b"), json!({}))
        .await;
    let read_b = state["read"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"]["id"] == "b")
        .unwrap()
        .clone();
    assert_eq!(read_b["unread_messages"], 0);
    assert_eq!(read_b["last_read_message_id"], state["messages"][1]["id"]);
}

async fn marking_unread_counts_from_the_chosen_message(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("mu", "a", &["a", "b"]).await;
    for id in ["u1", "u2", "u3"] {
        app.send("messaging:mu", "a", json!({"id": id, "text": id}))
            .await;
    }
    app.post("/channels/messaging/mu/read", &app.token("b"), json!({}))
        .await;
    let (status, body) = app
        .post(
            "/channels/messaging/mu/unread",
            &app.token("b"),
            json!({"message_id": "u2"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, unread) = app.get("/unread", &app.token("b")).await;
    assert_eq!(unread["total_unread_count"], 2);
}

async fn silent_messages_do_not_count_as_unread(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("s", "a", &["a", "b"]).await;
    app.send("messaging:s", "a", json!({"text": "quiet", "silent": true}))
        .await;
    let (_, unread) = app.get("/unread", &app.token("b")).await;
    assert_eq!(unread["total_unread_count"], 0);
}

on_both_databases!(
    reactions_group_count_and_stay_unique_when_asked,
    reactions_move_the_messages_updated_at,
    unread_counts_grow_per_message_and_reset_on_read,
    marking_unread_counts_from_the_chosen_message,
    silent_messages_do_not_count_as_unread,
);
