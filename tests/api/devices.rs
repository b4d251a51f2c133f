//! Push devices and preferences (registration storage; push delivery is a later issue), and
//! the SDK's warm-up call `GET /hi`.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Db, TestApp, on_both_databases};

const TOKEN: &str = "fcm-token-WARDDEVICE-0123456789abcdef";

async fn a_user_registers_lists_and_removes_their_own_devices(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice"]).await;
    let alice = app.token("alice");
    let (s, body) = app
        .post(
            "/devices",
            &alice,
            json!({"id": TOKEN, "push_provider": "firebase", "push_provider_name": "prod-fcm"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    // Registering the same token again keeps one device.
    let (s, body) = app
        .post(
            "/devices",
            &alice,
            json!({"id": TOKEN, "push_provider": "firebase", "user_id": "alice"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = app
        .post(
            "/devices",
            &alice,
            json!({"id": "apn-2", "push_provider": "apn"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = app.get("/devices", &alice).await;
    assert_eq!(s, 200, "{body}");
    let devices = body["devices"].as_array().unwrap();
    let ids: Vec<&str> = devices.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [TOKEN, "apn-2"], "{body}");
    assert_eq!(devices[0]["push_provider"], "firebase");
    assert_eq!(devices[0]["user_id"], "alice");
    assert!(devices[0]["created_at"].is_string());

    // The own user of a new connection lists them.
    let ws = app.connect("alice").await;
    assert_eq!(ws.me["devices"].as_array().unwrap().len(), 2, "{}", ws.me);

    let path = format!("/devices?id={TOKEN}");
    let (s, body) = app.call(Method::DELETE, &path, &alice, None).await;
    assert_eq!(s, 200, "{body}");
    // Removing it again (every logout does) is not an error.
    let (s, body) = app.call(Method::DELETE, &path, &alice, None).await;
    assert_eq!(s, 200, "{body}");
    let (_, body) = app.get("/devices", &alice).await;
    assert_eq!(body["devices"].as_array().unwrap().len(), 1, "{body}");

    let audit = app.audit_entries().await;
    let changes: Vec<&str> = audit
        .iter()
        .filter(|e| e["event"] == "user.device")
        .map(|e| e["meta"]["change"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        changes,
        ["device.add", "device.add", "device.add", "device.remove"]
    );
    assert!(
        !audit.iter().any(|e| e.to_string().contains("WARDDEVICE")),
        "the token never reaches the audit log"
    );
}

async fn tokens_are_sealed_at_rest_and_erased_with_their_user(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["leaver"]).await;
    let (s, body) = app
        .post(
            "/devices",
            &app.token("leaver"),
            json!({"id": TOKEN, "push_provider": "huawei"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let stored = app
        .state
        .store
        .devices
        .find_devices("leaver")
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].token.contains("WARDDEVICE"),
        "the token is sealed"
    );
    let (s, body) = app
        .post(
            "/push_preferences",
            &app.token("leaver"),
            json!({"preferences": [{"chat_level": "mentions"}]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");

    let (s, body) = app
        .call(
            Method::DELETE,
            "/users/leaver?hard_delete=true",
            &app.server_token(),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(
        app.state
            .store
            .devices
            .find_devices("leaver")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        app.state
            .store
            .devices
            .find_push_preferences("leaver")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn nobody_touches_anothers_devices_but_the_server(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob"]).await;
    let (s, body) = app
        .post(
            "/devices",
            &app.server_token(),
            json!({"id": "bob-token", "push_provider": "xiaomi", "user_id": "bob"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let alice = app.token("alice");
    let (s, body) = app
        .post(
            "/devices",
            &alice,
            json!({"id": "x", "push_provider": "apn", "user_id": "bob"}),
        )
        .await;
    assert_eq!((s, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (s, body) = app.get("/devices?user_id=bob", &alice).await;
    assert_eq!((s, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (s, body) = app
        .call(
            Method::DELETE,
            "/devices?id=bob-token&user_id=bob",
            &alice,
            None,
        )
        .await;
    assert_eq!((s, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (s, body) = app
        .post(
            "/push_preferences",
            &alice,
            json!({"preferences": [{"user_id": "bob", "chat_level": "none"}]}),
        )
        .await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = app.get("/devices?user_id=bob", &app.server_token()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["devices"][0]["id"], "bob-token");
    // Without a user, a server call names none.
    let (s, body) = app.get("/devices", &app.server_token()).await;
    assert_eq!((s, body["code"].as_i64()), (400, Some(4)), "{body}");
}

async fn bad_device_input_gets_code_4(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice"]).await;
    let alice = app.token("alice");
    let long = "a".repeat(5000);
    for body in [
        json!({"push_provider": "firebase"}),
        json!({"id": "", "push_provider": "firebase"}),
        json!({"id": 12, "push_provider": "firebase"}),
        json!({"id": ["t"], "push_provider": "firebase"}),
        json!({"id": "t", "push_provider": "sms"}),
        json!({"id": "t"}),
        json!({"id": "t", "push_provider": {"$ne": 1}}),
        json!({"id": "has space", "push_provider": "apn"}),
        json!({"id": "ctl\u{7}char", "push_provider": "apn"}),
        json!({"id": "ünïcode", "push_provider": "apn"}),
        json!({"id": long, "push_provider": "apn"}),
        json!({"id": "t", "push_provider": "apn", "push_provider_name": "bad name!"}),
        json!({"id": "t", "push_provider": "apn", "user_id": "bad id!"}),
    ] {
        let (s, reply) = app.post("/devices", &alice, body.clone()).await;
        assert_eq!(
            (s, reply["code"].as_i64()),
            (400, Some(4)),
            "{body} → {reply}"
        );
        assert!(
            !reply.to_string().contains(&"a".repeat(100)),
            "the token is not echoed"
        );
    }
    let (s, reply) = app.call(Method::DELETE, "/devices", &alice, None).await;
    assert_eq!((s, reply["code"].as_i64()), (400, Some(4)), "{reply}");
    for body in [
        json!({}),
        json!({"preferences": []}),
        json!({"preferences": "all"}),
        json!({"preferences": [1]}),
        json!({"preferences": [{"chat_level": "loud"}]}),
        json!({"preferences": [{"chat_level": 3}]}),
        json!({"preferences": [{"call_level": "mentions"}]}),
        json!({"preferences": [{"chat_preferences": {"nope": "all"}}]}),
        json!({"preferences": [{"chat_preferences": {"direct_mentions": "some"}}]}),
        json!({"preferences": [{"channel_cid": "no-colon"}]}),
        json!({"preferences": [{"disabled_until": "tomorrow"}]}),
        json!({"preferences": vec![json!({"chat_level": "all"}); 101]}),
    ] {
        let (s, reply) = app.post("/push_preferences", &alice, body.clone()).await;
        assert_eq!(
            (s, reply["code"].as_i64()),
            (400, Some(4)),
            "{body} → {reply}"
        );
    }
}

async fn push_preferences_answer_per_user_and_channel(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice"]).await;
    let (s, body) = app
        .post(
            "/push_preferences",
            &app.token("alice"),
            json!({"preferences": [
                {"chat_level": "mentions", "chat_preferences": {"thread_replies": "none"}},
                {"channel_cid": "messaging:ward", "chat_level": "none",
                 "disabled_until": "2030-01-01T00:00:00Z"},
            ]}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["user_preferences"]["alice"]["chat_level"], "mentions");
    assert_eq!(
        body["user_preferences"]["alice"]["chat_preferences"]["thread_replies"],
        "none"
    );
    let channel = &body["user_channel_preferences"]["alice"]["messaging:ward"];
    assert_eq!(channel["chat_level"], "none", "{body}");
    assert_eq!(channel["disabled_until"], "2030-01-01T00:00:00.000Z");
}

async fn anonymous_callers_have_no_devices_and_hi_answers_everyone(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = reqwest::Client::new()
        .post(format!(
            "{}/devices?api_key={}",
            app.base,
            crate::helpers::KEY
        ))
        .header("stream-auth-type", "anonymous")
        .json(&json!({"id": "t", "push_provider": "apn"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let res = reqwest::Client::new()
        .get(format!("{}/hi?api_key={}", app.base, crate::helpers::KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["duration"].is_string(), "{body}");
}

on_both_databases!(
    a_user_registers_lists_and_removes_their_own_devices,
    tokens_are_sealed_at_rest_and_erased_with_their_user,
    nobody_touches_anothers_devices_but_the_server,
    bad_device_input_gets_code_4,
    push_preferences_answer_per_user_and_channel,
    anonymous_callers_have_no_devices_and_hi_answers_everyone,
);
