//! Authorization through the real HTTP and WebSocket paths: roles, the `phi` channel type,
//! separation of duties, `own_capabilities`, and denials recorded for the audit log.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, on_both_databases};

/// Creates users with the given roles through the server API.
async fn users_with_roles(app: &TestApp, users: &[(&str, &str)]) {
    let map: serde_json::Map<String, Value> = users
        .iter()
        .map(|(id, role)| (id.to_string(), json!({"id": id, "role": role})))
        .collect();
    let (status, body) = app
        .post("/users", &app.server_token(), json!({ "users": map }))
        .await;
    assert_eq!(status, 201, "{body}");
}

fn assert_denied(status: u16, body: &Value, action: &str) {
    assert_eq!(
        (status, body["code"].as_i64().unwrap_or(0)),
        (403, 17),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains(action),
        "the message names {action}: {body}"
    );
}

fn caps(state: &Value) -> Vec<String> {
    state["channel"]["own_capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

async fn a_guest_cannot_read_a_phi_channel_even_as_a_member(db: Db) {
    let app = TestApp::spawn(db).await;
    users_with_roles(&app, &[("nurse", "user"), ("visitor", "guest")]).await;
    let (status, body) = app
        .post(
            "/channels/phi/bed-12/query",
            &app.token("nurse"),
            json!({"data": {"members": ["nurse"]}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // phi channels refuse guests as members (delivery_gate.rs); made one in the store, the
    // policies still refuse them.
    let now = ward::time::now_micros();
    let visitor = ward::store::MemberRow {
        cid: "phi:bed-12".into(),
        user_id: "visitor".into(),
        channel_role: "channel_member".into(),
        created_at: now,
        updated_at: now,
        ..Default::default()
    };
    app.state
        .store
        .channels
        .add_members("phi:bed-12", &[visitor], &|_| None)
        .await
        .unwrap();
    let (status, body) = app
        .post(
            "/channels/phi/bed-12/query",
            &app.token("visitor"),
            json!({}),
        )
        .await;
    assert_denied(status, &body, "ReadChannel");
    let (status, body) = app
        .post(
            "/channels/phi/bed-12/message",
            &app.token("visitor"),
            json!({"message": {"text": "hi"}}),
        )
        .await;
    assert_denied(status, &body, "SendMessage");
    let recorded = app.audit_entries().await;
    assert!(
        recorded.iter().any(|e| e["event"] == "authz.denied"
            && e["outcome"] == "denied"
            && e["actor"]["id"] == "visitor"
            && e["meta"]["action"] == "ReadChannel"
            && e["object"]["kind"] == "channel"
            && e["object"]["id"] == "phi:bed-12"),
        "the denial is recorded in the audit log: {recorded:?}"
    );
}

async fn phi_channels_are_for_members_only_admins_included(db: Db) {
    let app = TestApp::spawn(db).await;
    users_with_roles(
        &app,
        &[("nurse", "user"), ("doctor", "user"), ("root", "admin")],
    )
    .await;
    app.post(
        "/channels/phi/case-7/query",
        &app.token("nurse"),
        json!({"data": {"members": ["nurse", "doctor"]}}),
    )
    .await;
    app.send("phi:case-7", "nurse", json!({"text": "potassium 6.1"}))
        .await;
    let (status, body) = app
        .post("/channels/phi/case-7/query", &app.token("root"), json!({}))
        .await;
    assert_denied(status, &body, "ReadChannel");
    let (_, found) = app
        .get_payload(
            "/search",
            &app.token("root"),
            json!({"filter_conditions": {"cid": "phi:case-7"}, "query": "potassium"}),
        )
        .await;
    assert!(
        found["results"].as_array().unwrap().is_empty(),
        "no search outside membership: {found}"
    );
    let (_, found) = app
        .get_payload(
            "/search",
            &app.token("doctor"),
            json!({"filter_conditions": {"cid": "phi:case-7"}, "query": "potassium"}),
        )
        .await;
    assert_eq!(found["results"].as_array().unwrap().len(), 1);
}

async fn a_non_member_cannot_send(db: Db) {
    let app = TestApp::spawn(db).await;
    users_with_roles(&app, &[("a", "user"), ("b", "user"), ("c", "user")]).await;
    app.channel("ab", "a", &["a", "b"]).await;
    let (status, body) = app
        .post(
            "/channels/messaging/ab/message",
            &app.token("c"),
            json!({"message": {"text": "let me in"}}),
        )
        .await;
    assert_denied(status, &body, "SendMessage");
}

async fn an_auditor_reads_no_messages(db: Db) {
    let app = TestApp::spawn(db).await;
    users_with_roles(&app, &[("a", "user"), ("audit", "auditor")]).await;
    app.channel("board", "a", &["a"]).await;
    let m = app
        .send("messaging:board", "a", json!({"text": "minutes"}))
        .await;
    // Even added as a member, an auditor gets no content.
    app.post(
        "/channels/messaging/board",
        &app.token("a"),
        json!({"add_members": ["audit"]}),
    )
    .await;
    let (status, body) = app
        .post(
            "/channels/messaging/board/query",
            &app.token("audit"),
            json!({}),
        )
        .await;
    assert_denied(status, &body, "ReadChannel");
    let (status, body) = app
        .get(
            &format!("/messages/{}", m["id"].as_str().unwrap()),
            &app.token("audit"),
        )
        .await;
    assert_denied(status, &body, "ReadChannel");
    let (status, body) = app
        .get_payload(
            "/search",
            &app.token("audit"),
            json!({"filter_conditions": {"cid": "messaging:board"}, "query": "minutes"}),
        )
        .await;
    assert_denied(status, &body, "QueryChannels");
    let (status, body) = app
        .post(
            "/channels",
            &app.token("audit"),
            json!({"filter_conditions": {}}),
        )
        .await;
    assert_denied(status, &body, "QueryChannels");
    let (status, body) = app
        .get_payload(
            "/users",
            &app.token("audit"),
            json!({"filter_conditions": {}}),
        )
        .await;
    assert_denied(status, &body, "QueryUsers");
}

async fn a_moderator_deletes_others_messages_in_their_channels_only(db: Db) {
    let app = TestApp::spawn(db).await;
    users_with_roles(&app, &[("mod", "moderator"), ("a", "user"), ("b", "user")]).await;
    app.channel("theirs", "a", &["a", "mod"]).await;
    app.channel("other", "b", &["b"]).await;
    let in_theirs = app
        .send("messaging:theirs", "a", json!({"text": "spam"}))
        .await;
    let in_other = app
        .send("messaging:other", "b", json!({"text": "fine"}))
        .await;
    let path = |m: &Value| format!("/messages/{}", m["id"].as_str().unwrap());
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &path(&in_other),
            &app.token("mod"),
            None,
        )
        .await;
    assert_denied(status, &body, "ReadChannel");
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &path(&in_theirs),
            &app.token("mod"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // A plain member cannot delete someone else's message.
    let again = app
        .send("messaging:theirs", "mod", json!({"text": "notice"}))
        .await;
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            &path(&again),
            &app.token("a"),
            None,
        )
        .await;
    assert_denied(status, &body, "DeleteAnyMessage");
}

async fn own_capabilities_follow_the_policies(db: Db) {
    let app = TestApp::spawn(db).await;
    users_with_roles(&app, &[("a", "user"), ("g", "guest")]).await;
    app.channel("mixed", "a", &["a", "g"]).await;
    let (_, as_user) = app
        .post(
            "/channels/messaging/mixed/query",
            &app.token("a"),
            json!({}),
        )
        .await;
    let (_, as_guest) = app
        .post(
            "/channels/messaging/mixed/query",
            &app.token("g"),
            json!({}),
        )
        .await;
    let user_caps = caps(&as_user);
    let guest_caps = caps(&as_guest);
    for c in [
        "send-message",
        "read-events",
        "typing-events",
        "update-channel",
        "delete-own-message",
    ] {
        assert!(
            user_caps.contains(&c.to_string()),
            "user has {c}: {user_caps:?}"
        );
    }
    assert!(guest_caps.contains(&"send-message".to_string()));
    for c in ["read-events", "typing-events", "update-channel"] {
        assert!(
            !guest_caps.contains(&c.to_string()),
            "guest lacks {c}: {guest_caps:?}"
        );
    }
    // What is hidden is also refused.
    let (status, body) = app
        .post(
            "/channels/messaging/mixed/event",
            &app.token("g"),
            json!({"event": {"type": "typing.start"}}),
        )
        .await;
    assert_denied(status, &body, "SendTypingEvents");
    let (status, body) = app
        .post("/channels/messaging/mixed/read", &app.token("g"), json!({}))
        .await;
    assert_denied(status, &body, "MarkRead");
}

async fn usage_reports_follow_separation_of_duties(db: Db) {
    let app = TestApp::spawn(db).await;
    users_with_roles(
        &app,
        &[
            ("boss", "admin"),
            ("officer", "compliance_officer"),
            ("audit", "auditor"),
        ],
    )
    .await;
    assert_eq!(app.get("/usage", &app.token("boss")).await.0, 200);
    assert_denied(
        app.get("/usage", &app.token("officer")).await.0,
        &app.get("/usage", &app.token("officer")).await.1,
        "ReadUsage",
    );
    let (status, body) = app
        .post(
            "/users",
            &app.token("officer"),
            json!({"users": {"x": {"id": "x", "role": "admin"}}}),
        )
        .await;
    assert_denied(status, &body, "UpsertUsers");
    let (status, body) = app
        .post(
            "/users",
            &app.token("boss"),
            json!({"users": {"x": {"id": "x"}}}),
        )
        .await;
    assert_eq!(status, 201, "admins administer users: {body}");
}

async fn an_invalid_policy_directory_stops_the_server(db: Db) {
    let dir = std::env::temp_dir().join(format!("ward_policies_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/policies")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let chat = dir.join("chat.cedar");
    let mut text = std::fs::read_to_string(&chat).unwrap();
    text.push_str("\npermit (principal is Ward::User, action == Ward::Action::\"ReadChannel\", resource) when { principal.rank > 1 };\n");
    std::fs::write(&chat, text).unwrap();
    let (url, _cleanup) = crate::helpers::fresh_database(db);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["serve"])
        .env("WARD_BIND", "127.0.0.1:0")
        .env("WARD_DATABASE_URL", &url)
        .env("WARD_DATA_DIR", &dir)
        .env("WARD_POLICY_DIR", &dir)
        .env("WARD_API_KEY", "k")
        .env("WARD_API_SECRET", "s")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server refuses to start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("do not validate") && err.contains("rank"),
        "the message says why: {err}"
    );
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["policy", "check", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!check.status.success());
    let good = std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
        .args([
            "policy",
            "check",
            "--dir",
            concat!(env!("CARGO_MANIFEST_DIR"), "/policies"),
        ])
        .output()
        .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

on_both_databases!(
    a_guest_cannot_read_a_phi_channel_even_as_a_member,
    phi_channels_are_for_members_only_admins_included,
    a_non_member_cannot_send,
    an_auditor_reads_no_messages,
    a_moderator_deletes_others_messages_in_their_channels_only,
    own_capabilities_follow_the_policies,
    usage_reports_follow_separation_of_duties,
    an_invalid_policy_directory_stops_the_server,
);
