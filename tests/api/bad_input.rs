//! Bad input answers with Stream's error body and the right status; nothing panics.

use serde_json::{Value, json};

use crate::helpers::{Db, KEY, TestApp, on_both_databases};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: i64) {
    assert_eq!(
        (status, body["code"].as_i64().unwrap_or(999)),
        (want_status, want_code),
        "{body}"
    );
    assert_eq!(body["StatusCode"], want_status);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn oversized_bodies_are_code_22(db: Db) {
    let app = TestApp::spawn_with(db, |c| c.limits.max_body_bytes = 1024).await;
    app.users(&["a"]).await;
    let big = "x".repeat(4096);
    let (status, body) = app
        .post(
            "/channels/messaging/c/message",
            &app.token("a"),
            json!({"message": {"text": big}}),
        )
        .await;
    assert_error(status, &body, 413, 22);
}

async fn malformed_json_and_wrong_types_are_code_4(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    let res = app
        .http
        .post(format!("{}/channels?api_key={KEY}", app.base))
        .header("Authorization", app.token("a"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert_error(status, &res.json().await.unwrap(), 400, 4);
    let (status, body) = app
        .post("/channels", &app.token("a"), json!({"limit": "ten"}))
        .await;
    assert_error(status, &body, 400, 4);
}

async fn invalid_ids_are_code_4(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    for path in [
        "/channels/messaging/bad:id/query",
        "/channels/bad%20type/x/query",
        "/channels/nosuchtype/x/query",
    ] {
        let (status, body) = app.post(path, &app.token("a"), json!({})).await;
        assert_error(status, &body, 400, 4);
    }
    app.channel("ok", "a", &["a"]).await;
    let (status, body) = app
        .post(
            "/channels/messaging/ok/message",
            &app.token("a"),
            json!({"message": {"id": "has space", "text": "x"}}),
        )
        .await;
    assert_error(status, &body, 400, 4);
}

async fn invalid_filters_and_sorts_are_code_4(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    for bad in [
        json!({"filter_conditions": {"type": {"$regex": ".*"}}}),
        json!({"filter_conditions": {"members": {"$in": "a"}}}),
        json!({"filter_conditions": {"$or": []}}),
        json!({"filter_conditions": {}, "sort": [{"field": "x", "direction": 2}]}),
        json!({"filter_conditions": {}, "limit": 1000}),
    ] {
        let (status, body) = app.post("/channels", &app.token("a"), bad.clone()).await;
        assert_error(status, &body, 400, 4);
    }
    let (status, body) = app
        .get_payload("/search", &app.token("a"), json!({"query": "x"}))
        .await;
    assert_error(status, &body, 400, 4);
}

async fn overlong_messages_are_code_20_and_not_stored(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("long", "a", &["a"]).await;
    let text = "é".repeat(5001);
    let (status, body) = app
        .post(
            "/channels/messaging/long/message",
            &app.token("a"),
            json!({"message": {"id": "too-long", "text": text}}),
        )
        .await;
    assert_error(status, &body, 400, 20);
    let (status, _) = app.get("/messages/too-long", &app.token("a")).await;
    assert_eq!(status, 404);
    let (status, body) = app
        .post(
            "/channels/messaging/long/message",
            &app.token("a"),
            json!({"message": {"text": "é".repeat(5000)}}),
        )
        .await;
    assert_eq!(status, 201, "exactly the limit is accepted: {body}");
}

async fn unknown_routes_and_methods_answer_stream_errors(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, body) = app.get("/no/such/route", &app.token("a")).await;
    assert_error(status, &body, 404, 16);
    let (status, body) = app
        .call(reqwest::Method::PUT, "/users", &app.token("a"), None)
        .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["code"], 4);
}

async fn cors_preflight_allows_the_sdk_headers(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/channels", app.base))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,stream-auth-type,x-stream-client,x-client-request-id,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for h in [
        "authorization",
        "stream-auth-type",
        "x-stream-client",
        "x-client-request-id",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

on_both_databases!(
    oversized_bodies_are_code_22,
    malformed_json_and_wrong_types_are_code_4,
    invalid_ids_are_code_4,
    invalid_filters_and_sorts_are_code_4,
    overlong_messages_are_code_20_and_not_stored,
    unknown_routes_and_methods_answer_stream_errors,
    cors_preflight_allows_the_sdk_headers,
);
