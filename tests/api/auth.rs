//! Stream-compatible authentication: api_key, HS256 tokens, error codes 2 and 40–43.

use serde_json::json;
use ward::auth::token;

use crate::helpers::{Db, KEY, SECRET, TestApp, on_both_databases};

async fn a_wrong_or_missing_api_key_is_code_2(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = app
        .http
        .get(format!("{}/app?api_key=nope", app.base))
        .header("Authorization", app.token("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], 2);
    assert_eq!(body["StatusCode"], 401);
    assert!(body["duration"].as_str().unwrap().ends_with("ms"));
    assert!(body["more_info"].is_string());
    let res = app
        .http
        .get(format!("{}/app", app.base))
        .header("Authorization", app.token("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

async fn token_failures_answer_401_with_their_stream_code(db: Db) {
    let app = TestApp::spawn(db).await;
    let now = chrono::Utc::now().timestamp();
    let expired = token::user_token("a", Some(now - 60), SECRET.as_bytes());
    let not_yet = token::sign(
        &json!({"user_id": "a", "nbf": now + 600}),
        SECRET.as_bytes(),
    );
    let future_iat = token::sign(
        &json!({"user_id": "a", "iat": now + 600}),
        SECRET.as_bytes(),
    );
    let wrong = token::user_token("a", None, b"another secret");
    for (tok, code) in [(expired, 40), (not_yet, 41), (future_iat, 42), (wrong, 43)] {
        let (status, body) = app.get("/app", &tok).await;
        assert_eq!(
            (status, body["code"].as_i64().unwrap()),
            (401, code),
            "{body}"
        );
    }
    let (status, body) = app.get("/app", "").await;
    assert_eq!((status, body["code"].as_i64().unwrap()), (401, 2));
}

async fn dev_tokens_work_only_when_enabled(db: Db) {
    use base64::Engine;
    let payload = base64::engine::general_purpose::STANDARD.encode(br#"{"user_id":"dev"}"#);
    let dev = format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{payload}.devtoken");
    let app = TestApp::spawn(db).await;
    assert_eq!(app.get("/app", &dev).await.0, 401);
    let app = TestApp::spawn_with(db, |c| c.dev_tokens = true).await;
    assert_eq!(app.get("/app", &dev).await.0, 200);
}

async fn server_calls_act_for_the_user_named_in_the_body(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob"]).await;
    app.channel("srv", "alice", &["alice", "bob"]).await;
    let (status, body) = app
        .post(
            "/channels/messaging/srv/message",
            &app.server_token(),
            json!({"message": {"text": "from backend", "user_id": "bob"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"]["user"]["id"], "bob");
    let (status, body) = app
        .post(
            "/channels/messaging/srv/message",
            &app.server_token(),
            json!({"message": {"text": "nobody"}}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_i64().unwrap()),
        (400, 4),
        "a server call must name its user"
    );
    // A user token cannot act for someone else.
    let (status, body) = app
        .post(
            "/channels/messaging/srv/message",
            &app.token("alice"),
            json!({"message": {"text": "x", "user_id": "bob"}}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64().unwrap()), (403, 17));
    let _ = KEY;
}

async fn only_server_calls_upsert_users(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, body) = app
        .post(
            "/users",
            &app.token("mallory"),
            json!({"users": {"mallory": {"id": "mallory", "role": "admin"}}}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64().unwrap()), (403, 17));
}

on_both_databases!(
    a_wrong_or_missing_api_key_is_code_2,
    token_failures_answer_401_with_their_stream_code,
    dev_tokens_work_only_when_enabled,
    server_calls_act_for_the_user_named_in_the_body,
    only_server_calls_upsert_users,
);
