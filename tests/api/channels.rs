//! Channels: get-or-create, membership rules, queries with filters and sorts, updates,
//! truncation and deletion.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, on_both_databases};

fn cids(body: &Value) -> Vec<String> {
    body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"]["cid"].as_str().unwrap().to_string())
        .collect()
}

async fn querying_a_channel_creates_it_once_with_its_members(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    let first = app.channel("room", "a", &["a", "b"]).await;
    assert_eq!(first["channel"]["cid"], "messaging:room");
    assert_eq!(first["channel"]["member_count"], 2);
    assert_eq!(first["channel"]["config"]["typing_events"], true);
    assert_eq!(first["channel"]["config"]["delivery_events"], true);
    assert!(first["messages"].as_array().unwrap().is_empty());
    let caps: Vec<&str> = first["channel"]["own_capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        caps.contains(&"read-events") && caps.contains(&"send-message"),
        "{caps:?}"
    );
    assert_eq!(first["membership"]["user"]["id"], "a");
    // A second query with other data changes nothing.
    let (_, again) = app
        .post(
            "/channels/messaging/room/query",
            &app.token("b"),
            json!({"data": {"members": ["b"], "name": "ignored"}}),
        )
        .await;
    assert_eq!(again["channel"]["member_count"], 2);
    assert!(again["channel"].get("name").is_none());
}

async fn members_must_exist_to_create_a_channel(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    let (status, body) = app
        .post(
            "/channels/messaging/x/query",
            &app.token("a"),
            json!({"data": {"members": ["a", "ghost"]}}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64().unwrap()), (400, 4), "{body}");
}

async fn distinct_channels_get_the_same_id_for_the_same_members(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    let (_, one) = app
        .post(
            "/channels/messaging/query",
            &app.token("a"),
            json!({"data": {"members": ["a", "b"]}}),
        )
        .await;
    let (_, two) = app
        .post(
            "/channels/messaging/query",
            &app.token("b"),
            json!({"data": {"members": ["b", "a"]}}),
        )
        .await;
    let id = one["channel"]["id"].as_str().unwrap();
    assert!(id.starts_with("!members-"), "{id}");
    assert_eq!(one["channel"]["cid"], two["channel"]["cid"]);
}

async fn non_members_cannot_read_a_messaging_channel_but_anyone_reads_livestream(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "outsider"]).await;
    app.channel("private", "a", &["a", "b"]).await;
    let (status, body) = app
        .post(
            "/channels/messaging/private/query",
            &app.token("outsider"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_i64().unwrap()),
        (403, 17),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/channels/messaging/private/message",
            &app.token("outsider"),
            json!({"message": {"text": "hi"}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = app
        .post(
            "/channels/livestream/stage/query",
            &app.token("a"),
            json!({}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, body) = app
        .post(
            "/channels/livestream/stage/query",
            &app.token("outsider"),
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["channel"]["config"]["read_events"], false);
}

async fn query_channels_filters_sorts_and_paginates(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "c"]).await;
    for (id, members, color) in [
        ("one", vec!["a", "b"], "red"),
        ("two", vec!["a", "c"], "blue"),
        ("three", vec!["a"], "red"),
        ("other", vec!["b", "c"], "red"),
    ] {
        let (status, body) = app
            .post(
                &format!("/channels/messaging/{id}/query"),
                &app.token(members[0]),
                json!({"data": {"members": members, "color": color}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    app.send("messaging:two", "a", json!({"text": "newest activity"}))
        .await;
    let a = app.token("a");
    let (_, all) = app
        .post(
            "/channels",
            &a,
            json!({"filter_conditions": {"members": {"$in": ["a"]}}}),
        )
        .await;
    assert_eq!(cids(&all)[0], "messaging:two", "last activity first");
    assert_eq!(cids(&all).len(), 3, "b and c's channel is not a's");
    let (_, red) = app.post("/channels", &a, json!({"filter_conditions": {"color": "red", "members": {"$in": ["a"]}}, "sort": [{"field": "cid", "direction": 1}]})).await;
    assert_eq!(cids(&red), ["messaging:one", "messaging:three"]);
    let (_, or) = app
        .post("/channels", &a, json!({"filter_conditions": {"$or": [{"cid": "messaging:two"}, {"$and": [{"id": {"$eq": "three"}}, {"type": "messaging"}]}]}, "sort": [{"field": "id", "direction": -1}]}))
        .await;
    assert_eq!(cids(&or), ["messaging:two", "messaging:three"]);
    let (_, exact) = app
        .post(
            "/channels",
            &a,
            json!({"filter_conditions": {"members": {"$eq": ["b", "a"]}}}),
        )
        .await;
    assert_eq!(cids(&exact), ["messaging:one"]);
    let (_, page) = app.post("/channels", &a, json!({"filter_conditions": {"type": "messaging"}, "sort": [{"field": "cid", "direction": 1}], "limit": 1, "offset": 1})).await;
    assert_eq!(cids(&page), ["messaging:three"]);
    let (_, srv) = app
        .post(
            "/channels",
            &app.server_token(),
            json!({"filter_conditions": {"cid": {"$in": ["messaging:other", "messaging:one"]}}}),
        )
        .await;
    assert_eq!(cids(&srv).len(), 2, "server calls see every channel");
}

async fn updates_replace_data_and_partial_updates_set_and_unset(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("upd", "a", &["a", "b"]).await;
    let (status, body) = app
        .post(
            "/channels/messaging/upd",
            &app.token("a"),
            json!({"data": {"name": "Ward 4", "topic": "night shift"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["channel"]["name"], "Ward 4");
    let (_, body) = app
        .call(
            reqwest::Method::PATCH,
            "/channels/messaging/upd",
            &app.token("a"),
            Some(json!({"set": {"topic": "day"}, "unset": ["name"]})),
        )
        .await;
    assert_eq!(body["channel"]["topic"], "day");
    assert!(body["channel"].get("name").is_none());
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            "/channels/messaging/upd",
            &app.token("b"),
            Some(json!({"set": {"topic": "b's"}})),
        )
        .await;
    assert_eq!(status, 403, "a plain member cannot change the channel");
}

async fn adding_and_removing_members_changes_who_can_read(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "c"]).await;
    app.channel("team", "a", &["a", "b"]).await;
    let (status, body) = app
        .post(
            "/channels/messaging/team",
            &app.token("a"),
            json!({"add_members": ["c"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["members"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.post("/channels/messaging/team/query", &app.token("c"), json!({}))
            .await
            .0,
        201
    );
    app.post(
        "/channels/messaging/team",
        &app.token("a"),
        json!({"remove_members": ["c"]}),
    )
    .await;
    assert_eq!(
        app.post("/channels/messaging/team/query", &app.token("c"), json!({}))
            .await
            .0,
        403
    );
    let (status, _) = app
        .post(
            "/channels/messaging/team",
            &app.token("b"),
            json!({"remove_members": ["b"]}),
        )
        .await;
    assert_eq!(status, 201, "members may leave");
}

async fn truncation_hides_history_and_deletion_hides_the_channel(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("gone", "a", &["a", "b"]).await;
    let old = app
        .send("messaging:gone", "a", json!({"text": "before"}))
        .await;
    let (status, _) = app
        .post(
            "/channels/messaging/gone/truncate",
            &app.token("a"),
            json!({}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, state) = app
        .post("/channels/messaging/gone/query", &app.token("b"), json!({}))
        .await;
    assert!(state["messages"].as_array().unwrap().is_empty());
    assert!(state["channel"]["truncated_at"].is_string());
    assert_eq!(
        app.get(
            &format!("/messages/{}", old["id"].as_str().unwrap()),
            &app.token("b")
        )
        .await
        .0,
        404
    );
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            "/channels/messaging/gone",
            &app.token("b"),
            None,
        )
        .await;
    assert_eq!(status, 403, "a plain member cannot delete");
    let (status, body) = app
        .call(
            reqwest::Method::DELETE,
            "/channels/messaging/gone",
            &app.token("a"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = app
        .post(
            "/channels",
            &app.token("a"),
            json!({"filter_conditions": {"members": {"$in": ["a"]}}}),
        )
        .await;
    assert!(cids(&list).is_empty());
    assert_eq!(
        app.post("/channels/messaging/gone/query", &app.token("a"), json!({}))
            .await
            .0,
        404
    );
}

on_both_databases!(
    querying_a_channel_creates_it_once_with_its_members,
    members_must_exist_to_create_a_channel,
    distinct_channels_get_the_same_id_for_the_same_members,
    non_members_cannot_read_a_messaging_channel_but_anyone_reads_livestream,
    query_channels_filters_sorts_and_paginates,
    updates_replace_data_and_partial_updates_set_and_unset,
    adding_and_removing_members_changes_who_can_read,
    truncation_hides_history_and_deletion_hides_the_channel,
);
