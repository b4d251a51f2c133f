//! One read decision for every delivery: an event carrying a channel's content reaches a
//! socket only if its user may read the channel (the `ReadChannel` policy REST uses), on the
//! node that delivers it. A guest seeded into a `phi` channel and an auditor member of a
//! `messaging` channel get nothing of it, whichever path targets them (watchers, the
//! notification to members not watching), on one node and across two; role and membership
//! changes take effect at the next delivery.
//!
//! "Receives nothing" is checked against a later marker event the user may receive
//! (`user.updated` to themselves, published after the forbidden ones through the same node):
//! every frame before the marker is inspected.

use serde_json::{Value, json};
use ward::store::MemberRow;

use crate::helpers::{Db, TestApp, Ws, eventually, on_both_databases, redis_url};

const PHI: &str = "phi:clinic";
const OPS: &str = "messaging:ops";

fn channel_path(cid: &str) -> String {
    cid.replacen(':', "/", 1)
}

/// Creates users with app roles (server-side).
async fn users_with_roles(app: &TestApp, users: &[(&str, &str)]) {
    let users: serde_json::Map<String, Value> = users
        .iter()
        .map(|(id, role)| (id.to_string(), json!({"id": id, "role": role})))
        .collect();
    let (status, body) = app
        .post("/users", &app.server_token(), json!({ "users": users }))
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn set_role(app: &TestApp, user: &str, role: &str) {
    users_with_roles(app, &[(user, role)]).await;
}

async fn create(app: &TestApp, cid: &str, creator: &str, members: &[&str]) {
    let (status, body) = app
        .post(
            &format!("/channels/{}/query", channel_path(cid)),
            &app.token(creator),
            json!({"data": {"members": members}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Watches through REST, as the SDK does; returns the status and body.
async fn watch(app: &TestApp, user: &str, ws: &Ws, cid: &str) -> (u16, Value) {
    app.post(
        &format!(
            "/channels/{}/query?connection_id={}",
            channel_path(cid),
            ws.connection_id
        ),
        &app.token(user),
        json!({"watch": true}),
    )
    .await
}

/// Makes a member directly in the store, past every check (to prove the delivery decision
/// holds by itself, whatever let the member in).
async fn seed_member(app: &TestApp, cid: &str, user: &str) {
    let now = ward::time::now_micros();
    let row = MemberRow {
        cid: cid.into(),
        user_id: user.into(),
        channel_role: "channel_member".into(),
        created_at: now,
        updated_at: now,
        ..Default::default()
    };
    let added = app
        .state
        .store
        .channels
        .add_members(cid, &[row], &|_| None)
        .await
        .unwrap();
    assert_eq!(added.len(), 1);
}

/// Sends a `user.updated` to `user` (no channel in it: always delivered) carrying `marker`.
async fn send_marker(app: &TestApp, user: &str, marker: &str) {
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            "/users",
            &app.server_token(),
            Some(json!({"users": [{"id": user, "set": {"marker": marker}}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Every frame before the marker.
async fn frames_until_marker(ws: &mut Ws, marker: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let ev = crate::helpers::next_json(&mut ws.stream).await;
        if ev["type"] == "user.updated" && ev["user"]["marker"] == marker {
            return seen;
        }
        seen.push(ev);
    }
}

/// Fails if any frame names `cid` or carries `secret`.
fn assert_nothing_of(frames: &[Value], cid: &str, secret: &str, who: &str) {
    for f in frames {
        assert!(
            f["cid"] != cid && f["channel"]["cid"] != cid && !f.to_string().contains(secret),
            "{who} received content of {cid}: {f}"
        );
    }
}

async fn message(app: &TestApp, cid: &str, user: &str, id: &str, text: &str) {
    app.send(cid, user, json!({"id": id, "text": text})).await;
}

/// The whole attempt: users connect to `receiver`, every change and message goes through
/// `sender` (the same node, or another one through Redis).
async fn forbidden_members_get_no_content(sender: &TestApp, receiver: &TestApp) {
    users_with_roles(
        sender,
        &[
            ("doc", "user"),
            ("alice", "user"),
            ("guest", "guest"),
            ("auditor", "auditor"),
        ],
    )
    .await;
    create(sender, PHI, "doc", &["doc", "alice"]).await;
    seed_member(sender, PHI, "guest").await;
    create(sender, OPS, "doc", &["doc", "alice", "auditor"]).await;

    let mut doc = receiver.connect("doc").await;
    let mut alice = receiver.connect("alice").await;
    let mut guest = receiver.connect("guest").await;
    let mut auditor = receiver.connect("auditor").await;
    for cid in [PHI, OPS] {
        let (status, body) = watch(receiver, "doc", &doc, cid).await;
        assert_eq!(status, 201, "{body}");
    }
    // Notifications go to members the sending node knows are online.
    eventually(5, "the sending node sees every socket", async || {
        ["doc", "alice", "guest", "auditor"]
            .iter()
            .all(|u| sender.state.bus.is_online(u))
    })
    .await;

    // Watching is reading: refused, also when a server-side call asks for them.
    for (user, ws, cid) in [("guest", &guest, PHI), ("auditor", &auditor, OPS)] {
        let (status, body) = watch(receiver, user, ws, cid).await;
        assert_eq!((status, &body["code"]), (403, &json!(17)), "{body}");
        let (status, body) = receiver
            .post(
                &format!(
                    "/channels/{}/query?connection_id={}",
                    channel_path(cid),
                    ws.connection_id
                ),
                &receiver.server_token(),
                json!({"watch": true, "data": {"created_by_id": user}}),
            )
            .await;
        assert_eq!((status, &body["code"]), (403, &json!(17)), "{body}");
        assert!(!receiver.state.bus.is_watching(cid, user));
    }

    // Not watching: members online get notification.message_new, the allowed ones only.
    message(sender, PHI, "doc", "phi-1", "phi-secret-1").await;
    message(sender, OPS, "doc", "ops-1", "ops-secret-1").await;
    for id in ["phi-1", "ops-1"] {
        let note = alice
            .wait_for_where("notification.message_new", |e| e["message"]["id"] == id)
            .await;
        assert!(note["message"]["text"].as_str().unwrap().contains("secret"));
    }

    // Watching (seeded past the refusal, on the node that holds the sockets): every
    // channel event is refused to them too.
    receiver.state.bus.watch(&guest.connection_id, PHI).unwrap();
    receiver
        .state
        .bus
        .watch(&auditor.connection_id, OPS)
        .unwrap();
    for (cid, secret) in [(PHI, "phi-secret-2"), (OPS, "ops-secret-2")] {
        let id = format!("{}-2", &cid[..3]);
        message(sender, cid, "doc", &id, secret).await;
        let token = sender.token("doc");
        let (status, body) = sender
            .post(
                &format!("/messages/{id}/reaction"),
                &token,
                json!({"reaction": {"type": "like"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = sender
            .post(
                &format!("/messages/{id}"),
                &token,
                json!({"message": {"id": id, "text": format!("{secret} edited")}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = sender
            .post(
                &format!("/channels/{}/event", channel_path(cid)),
                &token,
                json!({"event": {"type": "typing.start"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = sender
            .call(
                reqwest::Method::PATCH,
                &format!("/channels/{}", channel_path(cid)),
                &token,
                Some(json!({"set": {"topic": format!("{secret} topic")}})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // The allowed watcher gets each of them.
        for kind in [
            "message.new",
            "reaction.new",
            "message.updated",
            "typing.start",
            "channel.updated",
        ] {
            doc.wait_for_where(kind, |e| e["cid"] == cid).await;
        }
    }
    send_marker(sender, "guest", "m1").await;
    send_marker(sender, "auditor", "m1").await;
    let frames = frames_until_marker(&mut guest, "m1").await;
    assert_nothing_of(&frames, PHI, "phi-secret", "a guest of a phi channel");
    let frames = frames_until_marker(&mut auditor, "m1").await;
    assert_nothing_of(&frames, OPS, "ops-secret", "an auditor member");
    assert!(
        receiver
            .state
            .bus
            .local()
            .refused
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
}

async fn forbidden_members_get_no_content_on_one_node(db: Db) {
    let app = TestApp::spawn(db).await;
    forbidden_members_get_no_content(&app, &app).await;
}

async fn forbidden_members_get_no_content_from_another_node(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &redis_url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        a.get("/healthz", "").await.1["bus"] == "up" && b.get("/healthz", "").await.1["bus"] == "up"
    })
    .await;
    forbidden_members_get_no_content(a, b).await;
}

/// A role change or a removal made through `sender` governs the next delivery on
/// `receiver` (the cached decision is dropped on every node), and so does the way back.
async fn changes_take_effect_at_the_next_delivery(sender: &TestApp, receiver: &TestApp) {
    sender.users(&["doc", "bob"]).await;
    create(sender, "messaging:team", "doc", &["doc", "bob"]).await;
    let mut bob = receiver.connect("bob").await;
    let (status, body) = watch(receiver, "bob", &bob, "messaging:team").await;
    assert_eq!(status, 201, "{body}");
    let cid = "messaging:team";
    eventually(5, "the sending node sees bob watching", async || {
        sender.state.bus.is_watching(cid, "bob")
    })
    .await;

    message(sender, cid, "doc", "t-1", "allowed one").await;
    bob.wait_for_where("message.new", |e| e["message"]["id"] == "t-1")
        .await;

    set_role(sender, "bob", "auditor").await;
    message(sender, cid, "doc", "t-2", "team-secret-2").await;
    send_marker(sender, "bob", "demoted").await;
    let frames = frames_until_marker(&mut bob, "demoted").await;
    assert_nothing_of(&frames, cid, "team-secret", "a user demoted to auditor");

    set_role(sender, "bob", "user").await;
    message(sender, cid, "doc", "t-3", "allowed again").await;
    bob.wait_for_where("message.new", |e| e["message"]["id"] == "t-3")
        .await;

    let (status, body) = sender
        .post(
            &format!("/channels/{}", channel_path(cid)),
            &sender.token("doc"),
            json!({"remove_members": ["bob"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    bob.wait_for("notification.removed_from_channel").await;
    message(sender, cid, "doc", "t-4", "team-secret-4").await;
    send_marker(sender, "bob", "removed").await;
    let frames = frames_until_marker(&mut bob, "removed").await;
    assert_nothing_of(&frames, cid, "team-secret", "a removed member");

    let (status, body) = sender
        .post(
            &format!("/channels/{}", channel_path(cid)),
            &sender.token("doc"),
            json!({"add_members": ["bob"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    message(sender, cid, "doc", "t-5", "member again").await;
    // Still watching on another node, or notified as a member who is not: either way the
    // message arrives.
    loop {
        let ev = crate::helpers::next_json(&mut bob.stream).await;
        if ev["message"]["id"] == "t-5" {
            break;
        }
    }
}

async fn changes_take_effect_at_the_next_delivery_on_one_node(db: Db) {
    let app = TestApp::spawn(db).await;
    changes_take_effect_at_the_next_delivery(&app, &app).await;
}

async fn changes_take_effect_at_the_next_delivery_on_another_node(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &redis_url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        a.get("/healthz", "").await.1["bus"] == "up" && b.get("/healthz", "").await.1["bus"] == "up"
    })
    .await;
    changes_take_effect_at_the_next_delivery(a, b).await;
}

async fn phi_channels_refuse_guest_and_anonymous_members(db: Db) {
    let app = TestApp::spawn(db).await;
    users_with_roles(
        &app,
        &[
            ("doc", "user"),
            ("nurse", "user"),
            ("guest", "guest"),
            ("anon", "anonymous"),
        ],
    )
    .await;
    let refused = |status: u16, body: &Value| {
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], 17, "{body}");
        assert_eq!(body["StatusCode"], 403, "{body}");
        assert!(body["message"].as_str().unwrap().contains("phi"), "{body}");
    };

    // Creating a phi channel with them, as a user or server-side.
    for member in ["guest", "anon"] {
        let (status, body) = app
            .post(
                "/channels/phi/ward-a/query",
                &app.token("doc"),
                json!({"data": {"members": ["doc", member]}}),
            )
            .await;
        refused(status, &body);
        let (status, body) = app
            .post(
                "/channels/phi/ward-b/query",
                &app.server_token(),
                json!({"data": {"members": ["doc", member], "created_by_id": "doc"}}),
            )
            .await;
        refused(status, &body);
    }
    for cid in ["phi:ward-a", "phi:ward-b"] {
        let found = app.state.store.channels.find_channel(cid).await.unwrap();
        assert!(found.is_none(), "{cid} was not created");
    }

    // Adding them later.
    create(&app, "phi:ward", "doc", &["doc"]).await;
    for member in ["guest", "anon"] {
        let (status, body) = app
            .post(
                "/channels/phi/ward",
                &app.token("doc"),
                json!({"add_members": [member]}),
            )
            .await;
        refused(status, &body);
        let (status, body) = app
            .post(
                "/channels/phi/ward",
                &app.server_token(),
                json!({"add_members": [member]}),
            )
            .await;
        refused(status, &body);
    }
    let members: Vec<String> = app
        .state
        .store
        .channels
        .find_members(&["phi:ward".to_string()])
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(members, ["doc"]);

    // Other members, and guests in other channel types, are fine.
    let (status, body) = app
        .post(
            "/channels/phi/ward",
            &app.token("doc"),
            json!({"add_members": ["nurse"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    create(&app, "messaging:lobby", "doc", &["doc", "guest"]).await;
}

on_both_databases!(
    forbidden_members_get_no_content_on_one_node,
    forbidden_members_get_no_content_from_another_node,
    changes_take_effect_at_the_next_delivery_on_one_node,
    changes_take_effect_at_the_next_delivery_on_another_node,
    phi_channels_refuse_guest_and_anonymous_members,
);
