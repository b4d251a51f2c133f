//! The `/connect` WebSocket: handshake, heartbeat, events to watchers (the actor included),
//! presence of watchers, connection caps and a clean close on shutdown.

use serde_json::json;
use ward::auth::token;

use crate::helpers::{Db, TestApp, on_both_databases};

async fn the_first_frame_is_a_health_check_with_an_own_user(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    let ws = app.connect("a").await;
    assert!(!ws.connection_id.is_empty());
    assert_eq!(ws.me["id"], "a");
    assert_eq!(ws.me["mutes"], json!([]));
    assert_eq!(ws.me["channel_mutes"], json!([]));
    assert_eq!(ws.me["total_unread_count"], 0);
    assert_eq!(ws.me["online"], true);
}

async fn connecting_creates_and_updates_the_user_from_user_details(db: Db) {
    let app = TestApp::spawn(db).await;
    let details = json!({"user_id": "new", "user_details": {"id": "new", "name": "New+Person", "role": "admin"}}).to_string();
    let url = format!(
        "{}/connect?json={}&api_key={}&authorization={}&stream-auth-type=jwt",
        app.ws_base,
        crate::helpers::url_encode(&details),
        crate::helpers::KEY,
        app.token("new")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = crate::helpers::next_json(&mut ws).await;
    assert_eq!(first["me"]["name"], "New+Person");
    assert_eq!(
        first["me"]["role"], "user",
        "clients cannot grant themselves a role"
    );
}

async fn pings_are_answered_with_health_checks(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    let mut ws = app.connect("a").await;
    ws.send_text(r#"[{"type":"health.check","client_id":"a--1"}]"#)
        .await;
    let hc = ws.wait_for("health.check").await;
    assert_eq!(hc["connection_id"], ws.connection_id.as_str());
}

async fn a_bad_token_gets_an_error_frame_then_close_1000(db: Db) {
    let app = TestApp::spawn(db).await;
    let wrong = token::user_token("a", None, b"wrong secret");
    let (mut ws, first) = app.connect_raw("a", &wrong).await;
    assert_eq!(first["error"]["code"], 43);
    assert_eq!(first["error"]["StatusCode"], 401);
    let mut w = crate::helpers::Ws {
        stream: ws,
        connection_id: String::new(),
        me: json!(null),
    };
    assert_eq!(w.closed_with().await, 1000);
    let expired = token::user_token(
        "a",
        Some(chrono::Utc::now().timestamp() - 100),
        crate::helpers::SECRET.as_bytes(),
    );
    let (s, first) = app.connect_raw("a", &expired).await;
    ws = s;
    drop(ws);
    assert_eq!(first["error"]["code"], 40);
    let (_, first) = app.connect_raw("b", &app.token("a")).await;
    assert_eq!(
        first["error"]["code"], 43,
        "json.user_id must match the token"
    );
}

async fn connections_per_user_are_capped_with_code_71(db: Db) {
    let app = TestApp::spawn_with(db, |c| c.limits.max_connections_per_user = 2).await;
    app.users(&["a"]).await;
    let _one = app.connect("a").await;
    let two = app.connect("a").await;
    let (_, third) = app.connect_raw("a", &app.token("a")).await;
    assert_eq!(third["error"]["code"], 71);
    drop(two);
    // The server notices the close asynchronously; wait (bounded) until it has.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while app.state.bus.connection_count() > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed connection is released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (_, frame) = app.connect_raw("a", &app.token("a")).await;
    assert_eq!(
        frame["type"], "health.check",
        "a slot frees up after a close"
    );
}

async fn channel_events_reach_every_watcher_including_the_actor(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("live", "a", &["a", "b"]).await;
    let mut wa = app.connect("a").await;
    let mut wb = app.connect("b").await;
    for (user, ws) in [("a", &wa), ("b", &wb)] {
        let (status, body) = app
            .post(
                &format!(
                    "/channels/messaging/live/query?connection_id={}",
                    ws.connection_id
                ),
                &app.token(user),
                json!({"watch": true, "presence": true}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let started = wa
        .wait_for_where("user.watching.start", |e| e["user"]["id"] == "b")
        .await;
    assert_eq!(started["watcher_count"], 2);

    app.send(
        "messaging:live",
        "a",
        json!({"id": "hello", "text": "hello"}),
    )
    .await;
    for ws in [&mut wa, &mut wb] {
        let ev = ws.wait_for("message.new").await;
        assert_eq!(ev["message"]["id"], "hello");
        assert_eq!(ev["cid"], "messaging:live");
        assert_eq!(ev["channel_type"], "messaging");
        assert_eq!(ev["user"]["id"], "a");
        assert_eq!(ev["watcher_count"], 2);
    }

    let (status, _) = app
        .post(
            "/channels/messaging/live/event",
            &app.token("b"),
            json!({"event": {"type": "typing.start", "parent_id": "hello"}}),
        )
        .await;
    assert_eq!(status, 201);
    let typing = wa.wait_for("typing.start").await;
    assert_eq!(
        (typing["user"]["id"].as_str(), typing["parent_id"].as_str()),
        (Some("b"), Some("hello"))
    );

    app.post(
        "/messages/hello/reaction",
        &app.token("b"),
        json!({"reaction": {"type": "like"}}),
    )
    .await;
    let ev = wa.wait_for("reaction.new").await;
    assert_eq!(ev["reaction"]["user_id"], "b");
    assert_eq!(ev["message"]["reaction_groups"]["like"]["count"], 1);

    app.post("/channels/messaging/live/read", &app.token("b"), json!({}))
        .await;
    let read = wa.wait_for("message.read").await;
    assert_eq!(read["user"]["id"], "b");
    let note = wb.wait_for("notification.mark_read").await;
    assert_eq!(note["total_unread_count"], 0);

    let (status, _) = app
        .post(
            "/channels/messaging/live/event",
            &app.token("b"),
            json!({"event": {"type": "message.new"}}),
        )
        .await;
    assert_eq!(status, 400, "clients cannot forge server events");

    drop(wb);
    let stopped = wa
        .wait_for_where("user.watching.stop", |e| e["user"]["id"] == "b")
        .await;
    assert_eq!(stopped["user"]["id"], "b");
    assert_eq!(stopped["watcher_count"], 1);
    let presence = wa.wait_for("user.presence.changed").await;
    assert_eq!(
        (
            presence["user"]["id"].as_str(),
            presence["user"]["online"].as_bool()
        ),
        (Some("b"), Some(false))
    );
}

async fn members_not_watching_get_notification_message_new(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("note", "a", &["a", "b"]).await;
    let mut wb = app.connect("b").await;
    app.send("messaging:note", "a", json!({"text": "ping"}))
        .await;
    let ev = wb.wait_for("notification.message_new").await;
    assert_eq!(ev["channel"]["cid"], "messaging:note");
    assert_eq!(ev["total_unread_count"], 1);
    assert_eq!(ev["unread_channels"], 1);
}

async fn member_changes_are_announced(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "c"]).await;
    app.channel("m", "a", &["a", "b"]).await;
    let mut wa = app.connect("a").await;
    let mut wc = app.connect("c").await;
    app.post(
        &format!(
            "/channels/messaging/m/query?connection_id={}",
            wa.connection_id
        ),
        &app.token("a"),
        json!({"watch": true}),
    )
    .await;
    app.post(
        "/channels/messaging/m",
        &app.token("a"),
        json!({"add_members": ["c"]}),
    )
    .await;
    let added = wa.wait_for("member.added").await;
    assert_eq!(added["member"]["user"]["id"], "c");
    let note = wc.wait_for("notification.added_to_channel").await;
    assert_eq!(note["channel"]["cid"], "messaging:m");
    app.post(
        "/channels/messaging/m",
        &app.token("a"),
        json!({"remove_members": ["c"]}),
    )
    .await;
    let removed = wa.wait_for("member.removed").await;
    assert_eq!(
        removed["user"]["id"], "c",
        "member.removed is keyed by the top-level user"
    );
    wc.wait_for("notification.removed_from_channel").await;
}

async fn reconnecting_recovers_watches_through_query_channels(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("rc", "a", &["a", "b"]).await;
    let first = app.connect("b").await;
    drop(first);
    let mut again = app.connect("b").await;
    let body = json!({"filter_conditions": {"cid": {"$in": ["messaging:rc"]}}, "sort": [{"field": "last_message_at", "direction": -1}], "limit": 30, "state": true, "watch": true, "presence": false});
    let (status, res) = app
        .post(
            &format!("/channels?connection_id={}", again.connection_id),
            &app.token("b"),
            body,
        )
        .await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(res["channels"][0]["channel"]["cid"], "messaging:rc");
    app.send(
        "messaging:rc",
        "a",
        json!({"id": "after", "text": "after reconnect"}),
    )
    .await;
    assert_eq!(
        again.wait_for("message.new").await["message"]["id"],
        "after"
    );
}

async fn shutdown_closes_websockets_with_a_close_frame(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    let mut ws = app.connect("a").await;
    app.shutdown().await;
    assert_eq!(ws.closed_with().await, 1001);
}

async fn oversized_websocket_frames_close_the_connection(db: Db) {
    let app = TestApp::spawn_with(db, |c| c.limits.max_ws_frame_bytes = 1024).await;
    app.users(&["a"]).await;
    let mut ws = app.connect("a").await;
    ws.send_text(&"x".repeat(4096)).await;
    let code = ws.closed_with().await;
    assert_ne!(
        code, 1000,
        "the SDK must treat it as a drop, not a rejection"
    );
}

on_both_databases!(
    the_first_frame_is_a_health_check_with_an_own_user,
    connecting_creates_and_updates_the_user_from_user_details,
    pings_are_answered_with_health_checks,
    a_bad_token_gets_an_error_frame_then_close_1000,
    connections_per_user_are_capped_with_code_71,
    channel_events_reach_every_watcher_including_the_actor,
    members_not_watching_get_notification_message_new,
    member_changes_are_announced,
    reconnecting_recovers_watches_through_query_channels,
    shutdown_closes_websockets_with_a_close_frame,
    oversized_websocket_frames_close_the_connection,
);
