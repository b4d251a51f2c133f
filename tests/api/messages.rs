//! Messages: client ids, duplicates, get, update, partial update, delete, threads, search,
//! users.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, on_both_databases};

async fn client_supplied_ids_are_kept_and_duplicates_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("c", "a", &["a", "b"]).await;
    let m = app.send("messaging:c", "a", json!({"id": "client-uuid-1", "text": "BP 120/80", "attachments": [{"type": "file", "title": "chart.pdf"}], "priority": "high"})).await;
    assert_eq!(m["id"], "client-uuid-1");
    assert_eq!(m["type"], "regular");
    assert_eq!(m["user"]["id"], "a");
    assert_eq!(m["priority"], "high", "custom fields are flattened");
    assert_eq!(m["attachments"][0]["title"], "chart.pdf");
    assert_eq!(m["mentioned_users"], json!([]));
    let (status, body) = app
        .post(
            "/channels/messaging/c/message",
            &app.token("a"),
            json!({"message": {"id": "client-uuid-1", "text": "again"}}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64().unwrap()), (400, 4));
    let (_, got) = app.get("/messages/client-uuid-1", &app.token("b")).await;
    assert_eq!(
        got["message"]["text"], "BP 120/80",
        "the original is untouched"
    );
    let generated = app.send("messaging:c", "a", json!({"text": "no id"})).await;
    assert!(uuid::Uuid::parse_str(generated["id"].as_str().unwrap()).is_ok());
}

async fn empty_messages_are_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("e", "a", &["a"]).await;
    let (status, _) = app
        .post(
            "/channels/messaging/e/message",
            &app.token("a"),
            json!({"message": {"text": "   "}}),
        )
        .await;
    assert_eq!(status, 400);
}

async fn authors_update_and_others_cannot(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("u", "a", &["a", "b"]).await;
    let m = app
        .send(
            "messaging:u",
            "a",
            json!({"id": "m1", "text": "first", "mood": "ok"}),
        )
        .await;
    assert_eq!(m["text"], "first");
    let (status, body) = app
        .post(
            "/messages/m1",
            &app.token("a"),
            json!({"message": {"id": "m1", "text": "edited"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"]["text"], "edited");
    assert!(
        body["message"].get("mood").is_none(),
        "a full update replaces custom fields"
    );
    let (status, _) = app
        .post(
            "/messages/m1",
            &app.token("b"),
            json!({"message": {"text": "hijack"}}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/messages/m1",
            &app.token("a"),
            Some(json!({"set": {"pinned": true, "mood": "good"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["pinned"], true);
    assert_eq!(body["message"]["pinned_by"]["id"], "a");
    assert_eq!(body["message"]["mood"], "good");
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/messages/m1",
            &app.token("a"),
            Some(json!({"set": {"user_id": "b"}})),
        )
        .await;
    assert_eq!(status, 400, "the author cannot be changed");
    let (_, state) = app
        .post("/channels/messaging/u/query", &app.token("b"), json!({}))
        .await;
    assert_eq!(state["pinned_messages"][0]["id"], "m1");
}

/// `message_text_updated_at` (stream-chat-react's "Edited" label) appears once an edit
/// changes the text, survives a pin, stays out of custom data, and moves with the next edit.
async fn edits_of_the_text_are_dated(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("e", "a", &["a", "b"]).await;
    let m = app
        .send(
            "messaging:e",
            "a",
            json!({"id": "e1", "text": "5 mg", "message_text_updated_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert!(m.get("message_text_updated_at").is_none(), "{m}");
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/messages/e1",
            &app.token("a"),
            Some(json!({"set": {"pinned": true}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["message"].get("message_text_updated_at").is_none(),
        "a pin is no text edit"
    );
    let (status, body) = app
        .post(
            "/messages/e1",
            &app.token("a"),
            json!({"message": {"id": "e1", "text": "10 mg"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let first = body["message"]["message_text_updated_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first.as_str() > "2001", "{first}");
    let (_, got) = app.get("/messages/e1", &app.token("b")).await;
    assert_eq!(got["message"]["message_text_updated_at"], first.as_str());
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/messages/e1",
            &app.token("a"),
            Some(json!({"set": {"text": "15 mg"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let second = body["message"]["message_text_updated_at"].as_str().unwrap();
    assert!(second > first.as_str(), "{first} then {second}");
}

async fn soft_deletes_keep_a_tombstone_and_hard_deletes_remove(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("d", "a", &["a", "b"]).await;
    app.send("messaging:d", "a", json!({"id": "soft", "text": "secret"}))
        .await;
    app.send("messaging:d", "a", json!({"id": "hard", "text": "gone"}))
        .await;
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            "/messages/soft",
            &app.token("b"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (_, body) = app
        .call(
            reqwest::Method::DELETE,
            "/messages/soft",
            &app.token("a"),
            None,
        )
        .await;
    assert_eq!(body["message"]["type"], "deleted");
    assert!(body["message"]["deleted_at"].is_string());
    assert_eq!(body["message"]["text"], "", "deleted content is not served");
    let (_, body) = app
        .call(
            reqwest::Method::DELETE,
            "/messages/hard?hard=true",
            &app.token("a"),
            None,
        )
        .await;
    assert_eq!(body["message"]["id"], "hard");
    assert_eq!(app.get("/messages/hard", &app.token("a")).await.0, 404);
    assert_eq!(app.get("/messages/soft", &app.token("a")).await.0, 200);
}

async fn replies_form_threads_with_reply_counts(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("t", "a", &["a", "b"]).await;
    app.send(
        "messaging:t",
        "a",
        json!({"id": "root", "text": "question"}),
    )
    .await;
    let r1 = app
        .send(
            "messaging:t",
            "b",
            json!({"id": "r1", "text": "answer", "parent_id": "root"}),
        )
        .await;
    assert_eq!(r1["type"], "reply");
    assert_eq!(r1["parent_id"], "root");
    app.send(
        "messaging:t",
        "a",
        json!({"id": "r2", "text": "thanks", "parent_id": "root", "show_in_channel": true}),
    )
    .await;
    let (status, body) = app
        .post(
            "/channels/messaging/t/message",
            &app.token("a"),
            json!({"message": {"text": "deep", "parent_id": "r1"}}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64().unwrap()), (400, 21));
    let (_, parent) = app.get("/messages/root", &app.token("b")).await;
    assert_eq!(parent["message"]["reply_count"], 2);
    let (_, replies) = app
        .get("/messages/root/replies?limit=10", &app.token("b"))
        .await;
    let ids: Vec<&str> = replies["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["r1", "r2"]);
    let (_, replies) = app
        .get("/messages/root/replies?id_gt=r1", &app.token("b"))
        .await;
    assert_eq!(replies["messages"].as_array().unwrap().len(), 1);
    let (_, state) = app
        .post("/channels/messaging/t/query", &app.token("b"), json!({}))
        .await;
    let in_channel: Vec<&str> = state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        in_channel,
        ["root", "r2"],
        "only replies shown in the channel appear there"
    );
}

async fn channel_message_pages_follow_the_cursor(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("pg", "a", &["a"]).await;
    for i in 0..5 {
        app.send(
            "messaging:pg",
            "a",
            json!({"id": format!("p{i}"), "text": format!("n{i}")}),
        )
        .await;
    }
    let page = |v: &Value| {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (_, latest) = app
        .post(
            "/channels/messaging/pg/query",
            &app.token("a"),
            json!({"messages": {"limit": 2}}),
        )
        .await;
    assert_eq!(page(&latest), ["p3", "p4"]);
    let (_, older) = app
        .post(
            "/channels/messaging/pg/query",
            &app.token("a"),
            json!({"messages": {"limit": 2, "id_lt": "p3"}}),
        )
        .await;
    assert_eq!(page(&older), ["p1", "p2"]);
    let (_, newer) = app
        .post(
            "/channels/messaging/pg/query",
            &app.token("a"),
            json!({"messages": {"limit": 10, "id_gt": "p2"}}),
        )
        .await;
    assert_eq!(page(&newer), ["p3", "p4"]);
    let (_, around) = app
        .post(
            "/channels/messaging/pg/query",
            &app.token("a"),
            json!({"messages": {"limit": 3, "id_around": "p2"}}),
        )
        .await;
    assert_eq!(page(&around), ["p1", "p2", "p3"]);
}

async fn search_finds_text_only_in_the_callers_channels(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "c"]).await;
    app.channel("ab", "a", &["a", "b"]).await;
    app.channel("bc", "b", &["b", "c"]).await;
    app.send(
        "messaging:ab",
        "a",
        json!({"text": "Insulin dose adjusted"}),
    )
    .await;
    app.send("messaging:bc", "b", json!({"text": "insulin elsewhere"}))
        .await;
    let (status, body) = app
        .get_payload(
            "/search",
            &app.token("a"),
            json!({"filter_conditions": {"members": {"$in": ["a"]}}, "query": "INSULIN"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["message"]["channel"]["cid"], "messaging:ab");
    let (_, body) = app
        .get_payload(
            "/search",
            &app.token("a"),
            json!({"filter_conditions": {"cid": "messaging:bc"}, "query": "insulin"}),
        )
        .await;
    assert!(
        body["results"].as_array().unwrap().is_empty(),
        "a is not a member of bc"
    );
    let (_, body) = app
        .get_payload("/search", &app.token("b"), json!({"filter_conditions": {"members": {"$in": ["b"]}}, "message_filter_conditions": {"text": {"$autocomplete": "insulin"}}, "limit": 1}))
        .await;
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert!(body["next"].is_string(), "more results are signalled");
}

async fn users_are_queried_with_filters_and_partially_updated(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, _) = app
        .post("/users", &app.server_token(), json!({"users": {"nurse": {"id": "nurse", "name": "Nurse Joy", "unit": "icu", "role": "user"}, "doc": {"id": "doc", "name": "Dr. Who", "unit": "er"}}}))
        .await;
    assert_eq!(status, 201);
    let (_, body) = app
        .get_payload(
            "/users",
            &app.token("nurse"),
            json!({"filter_conditions": {"unit": {"$in": ["icu"]}}}),
        )
        .await;
    let ids: Vec<&str> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["nurse"]);
    let (_, body) = app
        .get_payload(
            "/users",
            &app.token("nurse"),
            json!({"filter_conditions": {"name": {"$autocomplete": "dr"}}}),
        )
        .await;
    assert_eq!(body["users"][0]["id"], "doc");
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            "/users",
            &app.token("nurse"),
            Some(json!({"users": [{"id": "nurse", "set": {"shift": "night"}, "unset": ["unit"]}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"]["nurse"]["shift"], "night");
    assert!(body["users"]["nurse"].get("unit").is_none());
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            "/users",
            &app.token("nurse"),
            Some(json!({"users": [{"id": "nurse", "set": {"role": "admin"}}]})),
        )
        .await;
    assert_eq!(status, 403, "users cannot promote themselves");
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            "/users",
            &app.token("nurse"),
            Some(json!({"users": [{"id": "doc", "set": {"x": 1}}]})),
        )
        .await;
    assert_eq!(status, 403, "users cannot change others");
}

on_both_databases!(
    client_supplied_ids_are_kept_and_duplicates_refused,
    empty_messages_are_refused,
    authors_update_and_others_cannot,
    edits_of_the_text_are_dated,
    soft_deletes_keep_a_tombstone_and_hard_deletes_remove,
    replies_form_threads_with_reply_counts,
    channel_message_pages_follow_the_cursor,
    search_finds_text_only_in_the_callers_channels,
    users_are_queried_with_filters_and_partially_updated,
);
