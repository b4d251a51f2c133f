//! User groups and `POST /sync` (issue 16 item 8), on both databases.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Db, TestApp, on_both_databases};

on_both_databases!(
    user_groups_are_read_by_users_and_managed_by_admins,
    sync_returns_missed_messages_and_hides_unreadable_channels,
);

async fn user_groups_are_read_by_users_and_managed_by_admins(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    let (status, body) = app
        .post("/usergroups", &app.token("a"), json!({"name": "Nope"}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (status, body) = app
        .post(
            "/usergroups",
            &app.server_token(),
            json!({"id": "ward-7", "name": "Ward 7 nurses", "member_ids": ["a"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user_group"]["members"][0]["user_id"], "a");
    let (status, _) = app
        .post(
            "/usergroups",
            &app.server_token(),
            json!({"name": "x", "member_ids": ["ghost"]}),
        )
        .await;
    assert_eq!(status, 400, "members must exist");
    let (_, found) = app
        .get("/usergroups/search?query=ward", &app.token("b"))
        .await;
    assert_eq!(found["user_groups"][0]["id"], "ward-7", "{found}");
    let (status, _) = app
        .post(
            "/usergroups/ward-7/members",
            &app.server_token(),
            json!({"member_ids": ["b"], "as_admin": true}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, got) = app.get("/usergroups/ward-7", &app.token("b")).await;
    assert_eq!(got["user_group"]["members"].as_array().unwrap().len(), 2);
    let (status, _) = app
        .call(
            Method::PUT,
            "/usergroups/ward-7",
            &app.server_token(),
            Some(json!({"name": "\u{0007}"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .call(
            Method::DELETE,
            "/usergroups/ward-7",
            &app.server_token(),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/usergroups/ward-7", &app.token("b")).await;
    assert_eq!(status, 404);
}

async fn sync_returns_missed_messages_and_hides_unreadable_channels(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "c"]).await;
    app.channel("s", "a", &["a", "b"]).await;
    app.send("messaging:s", "a", json!({"id": "old", "text": "before"}))
        .await;
    let since = ward::time::rfc3339(ward::time::now_micros());
    app.send("messaging:s", "a", json!({"id": "new", "text": "after"}))
        .await;
    let (status, body) = app
        .post(
            "/sync",
            &app.token("b"),
            json!({"channel_cids": ["messaging:s"], "last_sync_at": since}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ids: Vec<_> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].clone(), e["message"]["id"].clone()))
        .collect();
    assert_eq!(ids, [(json!("message.new"), json!("new"))]);
    let (_, body) = app
        .post(
            "/sync",
            &app.token("c"),
            json!({"channel_cids": ["messaging:s"], "last_sync_at": since, "with_inaccessible_cids": true}),
        )
        .await;
    assert_eq!(body["inaccessible_cids"], json!(["messaging:s"]));
    assert_eq!(
        body["events"],
        json!([]),
        "nothing of a channel c may not read"
    );
    let (status, _) = app
        .post(
            "/sync",
            &app.token("b"),
            json!({"channel_cids": ["messaging:s"], "last_sync_at": "yesterday"}),
        )
        .await;
    assert_eq!(status, 400);
}
