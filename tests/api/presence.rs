//! Presence as Stream delivers it: the watchers of a channel hear its members come online and
//! go offline without asking for `presence`, on every node, and no one hears of a user they
//! share no readable channel with.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, Ws, eventually, on_both_databases, redis_url};

/// Watches a channel the way stream-chat-react's ChannelList and `channel.watch()` do:
/// `presence: false`.
async fn watch(app: &TestApp, user: &str, conn: &str, cid: &str) {
    let path = format!(
        "/channels/{}/query?connection_id={conn}",
        cid.replacen(':', "/", 1)
    );
    let (status, body) = app
        .post(
            &path,
            &app.token(user),
            json!({"watch": true, "state": true, "presence": false}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

fn presence_of(user: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["user"]["id"] == user
}

/// Reads events up to the `message.new` with id `marker` and returns the presence events
/// received before it (events reach one connection in order).
async fn presence_before(ws: &mut Ws, marker: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let ev = crate::helpers::next_json(&mut ws.stream).await;
        if ev["type"] == "message.new" && ev["message"]["id"] == marker {
            return seen;
        }
        if ev["type"] == "user.presence.changed" {
            seen.push(ev);
        }
    }
}

async fn watchers_hear_members_come_online_and_go_offline_without_asking(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    app.channel("ward", "alice", &["alice", "bob", "dave"])
        .await;
    app.channel("elsewhere", "carol", &["carol"]).await;

    let mut alice = app.connect("alice").await;
    watch(&app, "alice", &alice.connection_id, "messaging:ward").await;
    let mut carol = app.connect("carol").await;
    watch(&app, "carol", &carol.connection_id, "messaging:elsewhere").await;
    let mut dave = app.connect("dave").await;
    watch(&app, "dave", &dave.connection_id, "messaging:ward").await;
    // dave leaves the ward: he no longer hears of its members.
    let (status, body) = app
        .post(
            "/channels/messaging/ward",
            &app.token("alice"),
            json!({"remove_members": ["dave"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let bob = app.connect("bob").await;
    let online = alice
        .wait_for_where("user.presence.changed", presence_of("bob"))
        .await;
    assert_eq!(online["user"]["online"], true, "{online}");
    assert!(online.get("cid").is_none(), "presence names no channel");

    drop(bob);
    let offline = alice
        .wait_for_where("user.presence.changed", presence_of("bob"))
        .await;
    assert_eq!(offline["user"]["online"], false, "{offline}");
    assert!(offline["user"]["last_active"].is_string(), "{offline}");

    // Anything for carol or dave would have been queued before these markers.
    app.send(
        "messaging:elsewhere",
        "carol",
        json!({"id": "carol-marker", "text": "marker"}),
    )
    .await;
    let leaked = presence_before(&mut carol, "carol-marker").await;
    assert!(
        !leaked.iter().any(presence_of("bob")),
        "no presence of a user carol shares no channel with: {leaked:?}"
    );
    app.channel("dave-own", "dave", &["dave"]).await;
    watch(&app, "dave", &dave.connection_id, "messaging:dave-own").await;
    app.send(
        "messaging:dave-own",
        "dave",
        json!({"id": "dave-marker", "text": "marker"}),
    )
    .await;
    let leaked = presence_before(&mut dave, "dave-marker").await;
    assert!(
        !leaked.iter().any(presence_of("bob")),
        "a removed member hears no more: {leaked:?}"
    );
}

async fn one_event_per_connection_however_many_channels_are_shared(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob"]).await;
    app.channel("one", "alice", &["alice", "bob"]).await;
    app.channel("two", "alice", &["alice", "bob"]).await;
    let mut alice = app.connect("alice").await;
    watch(&app, "alice", &alice.connection_id, "messaging:one").await;
    watch(&app, "alice", &alice.connection_id, "messaging:two").await;
    let bob = app.connect("bob").await;
    let mut heard = vec![
        alice
            .wait_for_where("user.presence.changed", presence_of("bob"))
            .await,
    ];
    drop(bob);
    heard.push(
        alice
            .wait_for_where("user.presence.changed", presence_of("bob"))
            .await,
    );
    // A duplicate of either would have been queued before this message.
    app.send(
        "messaging:one",
        "alice",
        json!({"id": "marker", "text": "marker"}),
    )
    .await;
    heard.extend(
        presence_before(&mut alice, "marker")
            .await
            .into_iter()
            .filter(presence_of("bob")),
    );
    let states: Vec<&Value> = heard.iter().map(|e| &e["user"]["online"]).collect();
    assert_eq!(states, [&json!(true), &json!(false)], "{heard:?}");
}

async fn a_member_coming_online_on_one_node_is_seen_by_a_watcher_on_the_other(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &redis_url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        a.get("/healthz", "").await.1["bus"] == "up" && b.get("/healthz", "").await.1["bus"] == "up"
    })
    .await;
    a.users(&["alice", "bob", "carol"]).await;
    a.channel("ward", "alice", &["alice", "bob"]).await;
    a.channel("elsewhere", "carol", &["carol"]).await;
    let mut alice = a.connect("alice").await;
    watch(a, "alice", &alice.connection_id, "messaging:ward").await;
    let mut carol = a.connect("carol").await;
    watch(a, "carol", &carol.connection_id, "messaging:elsewhere").await;
    eventually(5, "node b sees alice and carol online", async || {
        b.state.bus.is_online("alice") && b.state.bus.is_online("carol")
    })
    .await;

    let bob = b.connect("bob").await;
    let online = alice
        .wait_for_where("user.presence.changed", presence_of("bob"))
        .await;
    assert_eq!(online["user"]["online"], true);
    drop(bob);
    let offline = alice
        .wait_for_where("user.presence.changed", presence_of("bob"))
        .await;
    assert_eq!(offline["user"]["online"], false);

    // Frames from b reach a in order: anything for carol came before this message.
    b.send(
        "messaging:elsewhere",
        "carol",
        json!({"id": "carol-marker", "text": "marker"}),
    )
    .await;
    let leaked = presence_before(&mut carol, "carol-marker").await;
    assert!(!leaked.iter().any(presence_of("bob")), "{leaked:?}");
}

on_both_databases!(
    watchers_hear_members_come_online_and_go_offline_without_asking,
    one_event_per_connection_however_many_channels_are_shared,
    a_member_coming_online_on_one_node_is_seen_by_a_watcher_on_the_other,
);
