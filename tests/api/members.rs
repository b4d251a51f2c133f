//! Members (issue 16, item 4): the member's own state (pin, archive, hide/show) and the
//! channel list filters on it, member queries, invites, slow mode, and deleting several
//! channels; the state changes that decide who may read hold on two nodes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, eventually, on_both_databases, redis_url};

fn cids(body: &Value) -> Vec<String> {
    body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"]["cid"].as_str().unwrap().to_string())
        .collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_string())
        .collect()
}

async fn query(app: &TestApp, user: &str, filter: Value, sort: Value) -> Vec<String> {
    let (status, body) = app
        .post(
            "/channels",
            &app.token(user),
            json!({"filter_conditions": filter, "sort": sort}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    cids(&body)
}

async fn patch_member(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    app.call(Method::PATCH, path, token, Some(body)).await
}

async fn watch(app: &TestApp, user: &str, conn: &str, cid: &str) -> (u16, Value) {
    let path = format!(
        "/channels/{}/query?connection_id={conn}",
        cid.replacen(':', "/", 1)
    );
    app.post(&path, &app.token(user), json!({"watch": true}))
        .await
}

async fn pinning_and_archiving_are_the_members_own_and_filter_the_channel_list(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("one", "a", &["a", "b"]).await;
    app.channel("two", "a", &["a", "b"]).await;
    app.channel("three", "a", &["a", "b"]).await;
    let mut ws = app.connect("a").await;

    let (status, body) = patch_member(
        &app,
        &app.token("a"),
        "/channels/messaging/two/member/a",
        json!({"set": {"pinned": true}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channel_member"]["user_id"], "a");
    assert!(body["channel_member"]["pinned_at"].is_string(), "{body}");
    let ev = ws
        .wait_for_where("member.updated", |e| e["cid"] == "messaging:two")
        .await;
    assert!(ev["member"]["pinned_at"].is_string(), "{ev}");

    // updateMemberPartial (no user id in the path) archives the caller's own membership.
    let (status, body) = patch_member(
        &app,
        &app.token("a"),
        "/channels/messaging/three/member",
        json!({"set": {"archived": true}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["channel_member"]["archived_at"].is_string(), "{body}");

    assert_eq!(
        query(&app, "a", json!({"pinned": true}), Value::Null).await,
        ["messaging:two"]
    );
    assert_eq!(
        query(&app, "a", json!({"archived": true}), Value::Null).await,
        ["messaging:three"]
    );
    let unarchived = query(&app, "a", json!({"archived": false}), Value::Null).await;
    assert!(!unarchived.contains(&"messaging:three".to_string()));
    // b's list is b's own: nothing is pinned for b.
    assert!(
        query(&app, "b", json!({"pinned": true}), Value::Null)
            .await
            .is_empty()
    );
    // The React ChannelList sort: pinned first.
    let sorted = query(
        &app,
        "a",
        json!({"type": "messaging"}),
        json!([{"field": "pinned_at", "direction": -1}, {"field": "last_updated", "direction": -1}]),
    )
    .await;
    assert_eq!(sorted[0], "messaging:two", "{sorted:?}");
    // The channel state carries the membership with its times.
    let (_, state) = app
        .post(
            "/channels/messaging/two/query",
            &app.token("a"),
            json!({"state": true}),
        )
        .await;
    assert!(state["membership"]["pinned_at"].is_string(), "{state}");

    // A member may not change someone else's membership.
    let (status, body) = patch_member(
        &app,
        &app.token("b"),
        "/channels/messaging/two/member/a",
        json!({"set": {"pinned": false}}),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");
    // Unknown fields and wrong types are refused, not dropped.
    for bad in [
        json!({"set": {"color": "red"}}),
        json!({"set": {"pinned": "yes"}}),
        json!({"unset": ["channel_role"]}),
        json!({"set": {"channel_role": "owner"}}),
    ] {
        let (status, body) = patch_member(
            &app,
            &app.token("a"),
            "/channels/messaging/two/member/a",
            bad.clone(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (400, Some(4)),
            "{bad}: {body}"
        );
    }
    // Unpinning clears the time.
    let (_, body) = patch_member(
        &app,
        &app.token("a"),
        "/channels/messaging/two/member/a",
        json!({"unset": ["pinned"]}),
    )
    .await;
    assert!(body["channel_member"]["pinned_at"].is_null(), "{body}");
    let audit = app.audit_entries().await;
    assert!(
        audit.iter().any(|e| e["meta"]["member_change"] == "state"),
        "member state changes are audited"
    );
}

async fn member_queries_filter_sort_and_page(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann", "bob", "cat", "dan", "out"]).await;
    app.channel("team", "ann", &["ann", "bob", "cat", "dan"])
        .await;
    app.post(
        "/channels/messaging/team",
        &app.server_token(),
        json!({"add_moderators": ["bob"]}),
    )
    .await;
    let token = app.token("ann");
    let q = |payload: Value| {
        let token = token.clone();
        let app = &app;
        async move { app.get_payload("/members", &token, payload).await }
    };
    let (status, all) = q(json!({"type": "messaging", "id": "team"})).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), ["ann", "bob", "cat", "dan"]);

    let (_, body) = q(json!({"type": "messaging", "id": "team",
        "filter_conditions": {"name": {"$autocomplete": "user c"}}}))
    .await;
    assert_eq!(ids(&body), ["cat"]);
    let (_, body) = q(json!({"type": "messaging", "id": "team",
        "filter_conditions": {"channel_role": "channel_moderator"}}))
    .await;
    assert_eq!(ids(&body), ["bob"]);
    let (_, body) = q(json!({"type": "messaging", "id": "team",
        "filter_conditions": {"id": {"$in": ["dan", "ann"]}}}))
    .await;
    assert_eq!(ids(&body), ["ann", "dan"]);
    let (_, body) = q(json!({"type": "messaging", "id": "team",
        "sort": [{"field": "user_id", "direction": -1}], "limit": 2, "offset": 1}))
    .await;
    assert_eq!(ids(&body), ["cat", "bob"]);
    let (_, body) = q(json!({"type": "messaging", "id": "team", "user_id_gt": "bob"})).await;
    assert_eq!(ids(&body), ["cat", "dan"]);
    let (_, body) = q(json!({"type": "messaging", "id": "team",
        "filter_conditions": {"is_moderator": true}}))
    .await;
    assert_eq!(ids(&body), ["bob"]);

    // Only those who may read the channel see its members.
    let (status, body) = app
        .get_payload(
            "/members",
            &app.token("out"),
            json!({"type": "messaging", "id": "team"}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (status, _) = q(json!({"type": "messaging", "id": "nowhere"})).await;
    assert_eq!(status, 404);
    // Hostile payloads: 400 with code 4.
    for bad in [
        json!({"id": "team"}),
        json!({"type": "messaging"}),
        json!({"type": "messaging", "id": "team", "limit": 100000}),
        json!({"type": "messaging", "id": "team", "offset": -1}),
        json!({"type": "messaging", "id": "team", "filter_conditions": {"name": {"$regex": "."}}}),
        json!({"type": "messaging", "id": "team", "filter_conditions": [1, 2]}),
        json!({"type": "messaging", "id": "team", "created_at_after": "yesterday"}),
        json!({"type": "messaging", "id": "team", "limit": "ten"}),
        json!({"type": "messaging", "id": "te\u{1}am"}),
        json!({"type": "messaging", "id": "team", "sort": [{"field": "name", "direction": 7}]}),
    ] {
        let (status, body) = q(bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (400, Some(4)),
            "{bad}: {body}"
        );
    }
    let (status, body) = app
        .get("/members?payload=%7Bnot-json", &app.token("ann"))
        .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
    let deep = (0..50).fold(json!({"id": "ann"}), |f, _| json!({"$and": [f]}));
    let (status, _) =
        q(json!({"type": "messaging", "id": "team", "filter_conditions": deep})).await;
    assert_eq!(status, 400);
}

async fn a_hidden_channel_leaves_the_list_until_the_next_message(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("quiet", "a", &["a", "b"]).await;
    app.channel("busy", "a", &["a", "b"]).await;
    let mut ws = app.connect("a").await;

    let (status, body) = app
        .post(
            "/channels/messaging/quiet/hide",
            &app.token("a"),
            json!({"user_id": null, "clear_history": false}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let ev = ws.wait_for("channel.hidden").await;
    assert_eq!(ev["cid"], "messaging:quiet");
    assert_eq!(
        query(&app, "a", json!({"type": "messaging"}), Value::Null).await,
        ["messaging:busy"]
    );
    assert_eq!(
        query(&app, "a", json!({"hidden": true}), Value::Null).await,
        ["messaging:quiet"]
    );
    // b still sees it.
    assert_eq!(
        query(&app, "b", json!({"type": "messaging"}), Value::Null)
            .await
            .len(),
        2
    );
    let (_, state) = app
        .post(
            "/channels/messaging/quiet/query",
            &app.token("a"),
            json!({"state": true}),
        )
        .await;
    assert_eq!(state["channel"]["hidden"], true, "{state}");
    assert_eq!(state["hidden"], true, "{state}");

    // A new message shows it again (with channel.visible).
    app.send("messaging:quiet", "b", json!({"text": "back"}))
        .await;
    let ev = ws.wait_for("channel.visible").await;
    assert_eq!(ev["cid"], "messaging:quiet");
    assert_eq!(
        query(&app, "a", json!({"type": "messaging"}), Value::Null)
            .await
            .len(),
        2
    );

    // Hide then show.
    app.post("/channels/messaging/busy/hide", &app.token("a"), json!({}))
        .await;
    let (status, _) = app
        .post("/channels/messaging/busy/show", &app.token("a"), json!({}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        query(&app, "a", json!({"type": "messaging"}), Value::Null)
            .await
            .len(),
        2
    );
    // clear_history is refused rather than ignored; non-members may not hide.
    let (status, body) = app
        .post(
            "/channels/messaging/busy/hide",
            &app.token("a"),
            json!({"clear_history": true}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
    app.users(&["c"]).await;
    let (status, _) = app
        .post("/channels/messaging/busy/hide", &app.token("c"), json!({}))
        .await;
    assert_eq!(status, 403);
}

async fn invitees_read_only_after_accepting_and_may_reject(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["owner", "ivy", "rex"]).await;
    app.channel("club", "owner", &["owner"]).await;
    app.send("messaging:club", "owner", json!({"text": "members only"}))
        .await;
    let mut ivy_ws = app.connect("ivy").await;

    let (status, body) = app
        .post(
            "/channels/messaging/club",
            &app.token("owner"),
            json!({"invites": ["ivy", "rex"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let invited = ivy_ws.wait_for("notification.invited").await;
    assert_eq!(invited["cid"], "messaging:club");
    assert_eq!(invited["member"]["invited"], true);
    assert!(
        invited["channel"].get("name").is_none() && invited.get("message").is_none(),
        "the invite carries no channel content: {invited}"
    );

    // Pending: not readable, not writable, but listed as a pending member.
    let (status, _) = app
        .post(
            "/channels/messaging/club/query",
            &app.token("ivy"),
            json!({"state": true}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            "/channels/messaging/club/message",
            &app.token("ivy"),
            json!({"message": {"text": "hi"}}),
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        query(&app, "ivy", json!({"type": "messaging"}), Value::Null)
            .await
            .is_empty()
    );
    let (_, pending) = app
        .get_payload(
            "/members",
            &app.token("owner"),
            json!({"type": "messaging", "id": "club", "filter_conditions": {"invite": "pending"}}),
        )
        .await;
    assert_eq!(ids(&pending), ["ivy", "rex"]);

    // Accepting makes ivy a member.
    let (status, body) = app
        .post(
            "/channels/messaging/club",
            &app.token("ivy"),
            json!({"accept_invite": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let accepted = ivy_ws.wait_for("notification.invite_accepted").await;
    assert_eq!(accepted["member"]["status"], "accepted");
    assert!(accepted["member"]["invite_accepted_at"].is_string());
    let (status, state) = app
        .post(
            "/channels/messaging/club/query",
            &app.token("ivy"),
            json!({"state": true}),
        )
        .await;
    assert_eq!(status, 201, "{state}");
    assert_eq!(state["messages"][0]["text"], "members only");
    // A second answer is refused.
    let (status, _) = app
        .post(
            "/channels/messaging/club",
            &app.token("ivy"),
            json!({"reject_invite": true}),
        )
        .await;
    assert_eq!(status, 400);

    // rex rejects: still not a reader.
    let (status, body) = app
        .post(
            "/channels/messaging/club",
            &app.token("rex"),
            json!({"reject_invite": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["members"], json!([]));
    let (status, _) = app
        .post(
            "/channels/messaging/club/query",
            &app.token("rex"),
            json!({"state": true}),
        )
        .await;
    assert_eq!(status, 403);
    // Someone never invited cannot accept; both answers at once are refused.
    app.users(&["zed"]).await;
    let (status, _) = app
        .post(
            "/channels/messaging/club",
            &app.token("zed"),
            json!({"accept_invite": true}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post(
            "/channels/messaging/club",
            &app.token("owner"),
            json!({"accept_invite": true, "reject_invite": true}),
        )
        .await;
    assert_eq!(status, 400);
    // Only who may manage members invites.
    let (status, _) = app
        .post(
            "/channels/messaging/club",
            &app.token("ivy"),
            json!({"invites": ["zed"]}),
        )
        .await;
    assert_eq!(status, 403);
}

async fn slow_mode_refuses_a_second_message_within_the_cooldown(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "m"]).await;
    app.channel("slow", "a", &["a", "b", "m"]).await;
    app.post(
        "/channels/messaging/slow",
        &app.server_token(),
        json!({"add_moderators": ["m"]}),
    )
    .await;
    // A plain member (even the creator) may not set it; bad values are refused.
    let (status, _) = app
        .post(
            "/channels/messaging/slow",
            &app.token("a"),
            json!({"cooldown": 30}),
        )
        .await;
    assert_eq!(status, 403);
    for bad in [json!(-1), json!(121), json!("30"), json!(1.5)] {
        let (status, body) = app
            .post(
                "/channels/messaging/slow",
                &app.token("m"),
                json!({"cooldown": bad}),
            )
            .await;
        assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
    }
    let (status, body) = app
        .post(
            "/channels/messaging/slow",
            &app.token("m"),
            json!({"cooldown": 60}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["channel"]["cooldown"], 60);

    app.send("messaging:slow", "b", json!({"text": "one"}))
        .await;
    let (status, body) = app
        .post(
            "/channels/messaging/slow/message",
            &app.token("b"),
            json!({"message": {"text": "two"}}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(60)), "{body}");
    // Another user has their own cooldown; moderators are exempt.
    app.send("messaging:slow", "a", json!({"text": "mine"}))
        .await;
    app.send("messaging:slow", "m", json!({"text": "mod 1"}))
        .await;
    app.send("messaging:slow", "m", json!({"text": "mod 2"}))
        .await;
    // A full update keeps the cooldown; disableSlowMode turns it off.
    let (_, body) = app
        .post(
            "/channels/messaging/slow",
            &app.token("m"),
            json!({"data": {"name": "renamed"}}),
        )
        .await;
    assert_eq!(body["channel"]["cooldown"], 60, "{body}");
    let (status, body) = app
        .post(
            "/channels/messaging/slow",
            &app.token("m"),
            json!({"cooldown": 0}),
        )
        .await;
    assert_eq!(status, 201);
    assert!(body["channel"].get("cooldown").is_none(), "{body}");
    app.send("messaging:slow", "b", json!({"text": "free again"}))
        .await;
}

async fn delete_channels_deletes_each_channel_the_actor_may_delete(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("mine", "a", &["a", "b"]).await;
    app.channel("theirs", "b", &["a", "b"]).await;
    let (status, body) = app
        .post(
            "/channels/delete",
            &app.token("a"),
            json!({"cids": ["messaging:mine", "messaging:theirs"], "hard_delete": false}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["result"]["messaging:mine"], "ok");
    assert_ne!(body["result"]["messaging:theirs"], "ok");
    assert_eq!(
        query(&app, "a", json!({"type": "messaging"}), Value::Null).await,
        ["messaging:theirs"]
    );
    for bad in [
        json!({"cids": []}),
        json!({"cids": ["nocolon"]}),
        json!({"cids": "messaging:theirs"}),
        json!({"cids": (0..101).map(|i| format!("messaging:c{i}")).collect::<Vec<_>>()}),
    ] {
        let (status, body) = app.post("/channels/delete", &app.token("a"), bad).await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = app
        .post(
            "/channels/delete",
            &app.server_token(),
            json!({"cids": ["messaging:theirs"], "hard_delete": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["result"]["messaging:theirs"], "ok");
}

async fn invites_and_slow_mode_hold_on_two_nodes(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &redis_url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        a.get("/healthz", "").await.1["bus"] == "up" && b.get("/healthz", "").await.1["bus"] == "up"
    })
    .await;
    a.users(&["owner", "ivy"]).await;
    a.channel("ward", "owner", &["owner"]).await;
    let mut owner = a.connect("owner").await;
    let (status, _) = watch(a, "owner", &owner.connection_id, "messaging:ward").await;
    assert_eq!(status, 201);
    // The invite is made on a; ivy, connected to b, hears of it there.
    let mut ivy = b.connect("ivy").await;
    a.post(
        "/channels/messaging/ward",
        &a.token("owner"),
        json!({"invites": ["ivy"]}),
    )
    .await;
    ivy.wait_for("notification.invited").await;
    let (status, _) = watch(b, "ivy", &ivy.connection_id, "messaging:ward").await;
    assert_eq!(
        status, 403,
        "a pending invitee may not watch on either node"
    );
    // Accepted on b; a's watchers learn of it, and ivy may now watch and read on b.
    let (status, _) = b
        .post(
            "/channels/messaging/ward",
            &b.token("ivy"),
            json!({"accept_invite": true}),
        )
        .await;
    assert_eq!(status, 201);
    owner
        .wait_for_where("member.updated", |e| e["member"]["user_id"] == "ivy")
        .await;
    let (status, _) = watch(b, "ivy", &ivy.connection_id, "messaging:ward").await;
    assert_eq!(status, 201);
    a.send("messaging:ward", "owner", json!({"text": "welcome"}))
        .await;
    let ev = ivy.wait_for("message.new").await;
    assert_eq!(ev["message"]["text"], "welcome");

    // Slow mode: the cooldown claimed on a holds on b.
    a.post(
        "/channels/messaging/ward",
        &a.server_token(),
        json!({"cooldown": 120}),
    )
    .await;
    a.send("messaging:ward", "ivy", json!({"text": "first"}))
        .await;
    let (status, body) = b
        .post(
            "/channels/messaging/ward/message",
            &b.token("ivy"),
            json!({"message": {"text": "second"}}),
        )
        .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(60)), "{body}");
}

on_both_databases!(
    pinning_and_archiving_are_the_members_own_and_filter_the_channel_list,
    member_queries_filter_sort_and_page,
    a_hidden_channel_leaves_the_list_until_the_next_message,
    invitees_read_only_after_accepting_and_may_reject,
    slow_mode_refuses_a_second_message_within_the_cooldown,
    delete_channels_deletes_each_channel_the_actor_may_delete,
    invites_and_slow_mode_hold_on_two_nodes,
);
