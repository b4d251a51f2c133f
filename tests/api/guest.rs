//! Guest users (`POST /guest`) and anonymous connections: off unless the deployment enables
//! them; where enabled, they read public (livestream) channels and never a messaging or
//! `phi` channel.

use serde_json::{Value, json};

use crate::helpers::{Db, KEY, TestApp, next_json, on_both_databases, url_encode};

/// A REST call as the SDK makes it for an anonymous client: no Authorization header.
async fn anonymous(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let res = reqwest::Client::new()
        .request(method, format!("{}{path}{sep}api_key={KEY}", app.base))
        .header("stream-auth-type", "anonymous")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// Opens a WebSocket as `connectAnonymousUser` does; returns it and its first frame.
async fn connect_anonymous(app: &TestApp) -> (crate::helpers::WsStream, Value) {
    let id = "0b6d9e3c-1f2a-4c3b-9d8e-7f6a5b4c3d2e";
    let json = json!({"user_id": id, "user_details": {"id": id, "anon": true}}).to_string();
    let url = format!(
        "{}/connect?json={}&api_key={KEY}&authorization=undefined&stream-auth-type=anonymous",
        app.ws_base,
        url_encode(&json)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let first = next_json(&mut ws).await;
    (ws, first)
}

async fn guests_and_anonymous_connections_are_off_by_default(db: Db) {
    let app = TestApp::spawn(db).await;
    let (s, body) = anonymous(
        &app,
        reqwest::Method::POST,
        "/guest",
        json!({"user": {"id": "g"}}),
    )
    .await;
    assert_eq!((s, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (_, first) = connect_anonymous(&app).await;
    assert!(first["error"].is_object(), "{first}");
}

async fn a_guest_reads_livestream_but_no_messaging_or_phi_channel(db: Db) {
    let app = TestApp::spawn_with(db, |c| c.guest_users = true).await;
    app.users(&["doc"]).await;
    app.channel("private", "doc", &["doc"]).await;
    let server = app.server_token();
    for (kind, id) in [("livestream", "town-hall"), ("phi", "clinic")] {
        let (s, body) = app
            .post(
                &format!("/channels/{kind}/{id}/query"),
                &server,
                json!({"data": {"created_by_id": "doc", "members": ["doc"]}}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let (s, body) = anonymous(
        &app,
        reqwest::Method::POST,
        "/guest",
        json!({"user": {"id": "doc", "name": "Visitor", "role": "admin"}}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let id = body["user"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("guest-"), "never the id asked for: {id}");
    assert_eq!(body["user"]["role"], "guest");
    assert_eq!(body["user"]["name"], "Visitor");
    let token = body["access_token"].as_str().unwrap().to_string();

    let (_, first) = app.connect_raw(&id, &token).await;
    assert_eq!(first["type"], "health.check", "{first}");
    assert_eq!(first["me"]["role"], "guest");

    let (s, body) = app
        .post(
            "/channels/livestream/town-hall/query",
            &token,
            json!({"state": true}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    for path in [
        "/channels/messaging/private/query",
        "/channels/phi/clinic/query",
    ] {
        let (s, body) = app.post(path, &token, json!({"state": true})).await;
        assert_eq!(s, 403, "{path}: {body}");
    }
    // Nor can a guest be made a member of a phi channel.
    let (s, body) = app
        .post(
            "/channels/phi/clinic",
            &server,
            json!({"add_members": [id]}),
        )
        .await;
    assert_eq!(s, 403, "{body}");
}

async fn an_anonymous_connection_watches_livestream_and_never_phi(db: Db) {
    let app = TestApp::spawn_with(db, |c| c.anonymous_users = true).await;
    app.users(&["doc"]).await;
    app.channel("private", "doc", &["doc"]).await;
    let server = app.server_token();
    for (kind, id) in [("livestream", "town-hall"), ("phi", "clinic")] {
        let (s, body) = app
            .post(
                &format!("/channels/{kind}/{id}/query"),
                &server,
                json!({"data": {"created_by_id": "doc", "members": ["doc"]}}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let (mut ws, first) = connect_anonymous(&app).await;
    assert_eq!(first["type"], "health.check", "{first}");
    assert_eq!(first["me"]["role"], "anonymous");
    let conn = first["connection_id"].as_str().unwrap().to_string();

    let (s, body) = anonymous(
        &app,
        reqwest::Method::POST,
        &format!("/channels/livestream/town-hall/query?connection_id={conn}"),
        json!({"watch": true, "state": true, "presence": false}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    for path in [
        "/channels/phi/clinic/query",
        "/channels/messaging/private/query",
    ] {
        let (s, body) = anonymous(
            &app,
            reqwest::Method::POST,
            &format!("{path}?connection_id={conn}"),
            json!({"watch": true, "state": true}),
        )
        .await;
        assert_eq!(s, 403, "{path}: {body}");
    }
    // Anonymous users only read.
    let (s, body) = anonymous(
        &app,
        reqwest::Method::POST,
        "/channels/livestream/town-hall/message",
        json!({"message": {"text": "hi"}}),
    )
    .await;
    assert!(s == 403 || s == 400, "{s} {body}");

    app.send(
        "messaging:private",
        "doc",
        json!({"id": "secret", "text": "private note"}),
    )
    .await;
    app.send(
        "livestream:town-hall",
        "doc",
        json!({"id": "public", "text": "welcome all"}),
    )
    .await;
    loop {
        let ev = next_json(&mut ws).await;
        assert_ne!(ev["message"]["id"], "secret", "{ev}");
        if ev["type"] == "message.new" && ev["message"]["id"] == "public" {
            break;
        }
    }
}

on_both_databases!(
    guests_and_anonymous_connections_are_off_by_default,
    a_guest_reads_livestream_but_no_messaging_or_phi_channel,
    an_anonymous_connection_watches_livestream_and_never_phi,
);
