//! Several nodes sharing one database and one Redis bus: events, presence, watcher counts
//! and the connection cap hold across nodes; a Redis outage degrades to local delivery and
//! heals.

use serde_json::json;

use crate::helpers::{Db, RedisServer, TestApp, eventually, on_both_databases, redis_url};

async fn watch(app: &TestApp, user: &str, conn: &str, cid: &str) {
    let path = format!(
        "/channels/{}/query?connection_id={conn}",
        cid.replacen(':', "/", 1)
    );
    let (status, body) = app
        .post(
            &path,
            &app.token(user),
            json!({"watch": true, "presence": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn bus_is_up(app: &TestApp) -> bool {
    app.get("/healthz", "").await.1["bus"] == "up"
}

async fn events_made_on_one_node_reach_watchers_on_the_other(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &redis_url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        bus_is_up(a).await && bus_is_up(b).await
    })
    .await;
    a.users(&["alice", "bob"]).await;
    a.channel("ward", "alice", &["alice", "bob"]).await;

    let mut alice = a.connect("alice").await;
    watch(a, "alice", &alice.connection_id, "messaging:ward").await;
    // Node state travels the bus asynchronously (milliseconds): wait until b has heard.
    eventually(5, "node b sees alice watching", async || {
        b.state.bus.is_watching("messaging:ward", "alice")
    })
    .await;
    let mut bob = b.connect("bob").await;
    watch(b, "bob", &bob.connection_id, "messaging:ward").await;

    let started = alice
        .wait_for_where("user.watching.start", |e| e["user"]["id"] == "bob")
        .await;
    assert_eq!(
        started["watcher_count"], 2,
        "watchers are counted across nodes"
    );

    b.send(
        "messaging:ward",
        "bob",
        json!({"id": "x1", "text": "from node b"}),
    )
    .await;
    assert_eq!(alice.wait_for("message.new").await["message"]["id"], "x1");
    assert_eq!(bob.wait_for("message.new").await["message"]["id"], "x1");

    b.post(
        "/messages/x1/reaction",
        &b.token("bob"),
        json!({"reaction": {"type": "like"}}),
    )
    .await;
    assert_eq!(
        alice.wait_for("reaction.new").await["reaction"]["user_id"],
        "bob"
    );
    b.post(
        "/channels/messaging/ward/event",
        &b.token("bob"),
        json!({"event": {"type": "typing.start"}}),
    )
    .await;
    assert_eq!(alice.wait_for("typing.start").await["user"]["id"], "bob");

    // Presence: a's view of bob comes from node b's report.
    eventually(5, "node a sees bob online", async || {
        a.state.bus.is_online("bob")
    })
    .await;
    let (_, state) = a
        .post(
            "/channels/messaging/ward/query",
            &a.token("alice"),
            json!({}),
        )
        .await;
    assert_eq!(state["watcher_count"], 2);
    let bob_member = state["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(bob_member["user"]["online"], true);
    drop(bob);
    let offline = alice
        .wait_for_where("user.presence.changed", |e| e["user"]["id"] == "bob")
        .await;
    assert_eq!(offline["user"]["online"], false);
}

async fn the_connection_cap_holds_across_nodes(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &redis_url(), |c| {
        c.limits.max_connections_per_user = 2
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        bus_is_up(a).await && bus_is_up(b).await
    })
    .await;
    a.users(&["u"]).await;
    let _on_a = a.connect("u").await;
    let _on_b = b.connect("u").await;
    eventually(5, "each node sees the other's connection", async || {
        a.state.bus.remote_connection_count() == 1 && b.state.bus.remote_connection_count() == 1
    })
    .await;
    let (_, frame) = a.connect_raw("u", &a.token("u")).await;
    assert_eq!(frame["error"]["code"], 71);
    let (_, frame) = b.connect_raw("u", &b.token("u")).await;
    assert_eq!(frame["error"]["code"], 71);
}

async fn a_redis_outage_degrades_to_local_delivery_and_heals(db: Db) {
    let mut redis = RedisServer::start().await;
    let nodes = TestApp::spawn_cluster(db, 2, &redis.url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        bus_is_up(a).await && bus_is_up(b).await
    })
    .await;
    a.users(&["alice", "bob"]).await;
    a.channel("ops", "alice", &["alice", "bob"]).await;
    let mut alice = a.connect("alice").await;
    watch(a, "alice", &alice.connection_id, "messaging:ops").await;

    redis.stop();
    eventually(10, "node a reports degraded health", async || {
        a.get("/healthz", "").await.1["status"] == "degraded"
    })
    .await;
    assert_eq!(
        a.get("/healthz", "").await.0,
        200,
        "a degraded node still serves"
    );
    // Local delivery goes on, and no request hangs.
    a.send(
        "messaging:ops",
        "bob",
        json!({"id": "local", "text": "during the outage"}),
    )
    .await;
    assert_eq!(
        alice.wait_for("message.new").await["message"]["id"],
        "local"
    );
    b.send(
        "messaging:ops",
        "bob",
        json!({"id": "lost-on-bus", "text": "stored, not fanned out"}),
    )
    .await;

    redis.resume().await;
    eventually(15, "both nodes are back on the bus", async || {
        bus_is_up(a).await && bus_is_up(b).await
    })
    .await;
    // Clients are told to resync (close 1012) and recover through POST /channels.
    assert_eq!(alice.closed_with().await, 1012);
    let mut alice = a.connect("alice").await;
    let recovered = a
        .post(
            &format!("/channels?connection_id={}", alice.connection_id),
            &a.token("alice"),
            json!({"filter_conditions": {"cid": {"$in": ["messaging:ops"]}}, "watch": true, "state": true}),
        )
        .await
        .1;
    let ids: Vec<&str> = recovered["channels"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"lost-on-bus"), "nothing is lost: {ids:?}");
    b.send(
        "messaging:ops",
        "bob",
        json!({"id": "after", "text": "across nodes again"}),
    )
    .await;
    assert_eq!(
        alice.wait_for("message.new").await["message"]["id"],
        "after"
    );
}

on_both_databases!(
    events_made_on_one_node_reach_watchers_on_the_other,
    the_connection_cap_holds_across_nodes,
    a_redis_outage_degrades_to_local_delivery_and_heals,
);
