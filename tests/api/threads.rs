//! Threads, thread read state, replies paging, and the many-channel read and delivery
//! marks: what the SDK's `Thread`, `ThreadManager` and delivery reporter rely on.

use serde_json::{Value, json};

use crate::helpers::{Db, TestApp, eventually, on_both_databases, redis_url};

async fn watch(app: &TestApp, user: &str, conn: &str, cid: &str) -> Value {
    let path = format!(
        "/channels/{}/query?connection_id={conn}",
        cid.replacen(':', "/", 1)
    );
    let (status, body) = app
        .post(
            &path,
            &app.token(user),
            json!({"watch": true, "state": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

fn reply(id: &str, parent: &str, text: &str) -> Value {
    json!({"id": id, "parent_id": parent, "text": text})
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

async fn patch(app: &TestApp, path: &str, user: &str, body: Value) -> (u16, Value) {
    app.call(reqwest::Method::PATCH, path, &app.token(user), Some(body))
        .await
}

async fn a_reply_updates_its_parent_for_watchers_with_count_and_participants(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob"]).await;
    app.channel("t", "alice", &["alice", "bob"]).await;
    let mut alice = app.connect("alice").await;
    watch(&app, "alice", &alice.connection_id, "messaging:t").await;
    app.send("messaging:t", "alice", json!({"id": "p", "text": "dose?"}))
        .await;
    app.send("messaging:t", "bob", reply("r1", "p", "5mg"))
        .await;
    let updated = alice
        .wait_for_where("message.updated", |e| e["message"]["id"] == "p")
        .await;
    assert_eq!(updated["message"]["reply_count"], 1, "{updated}");
    let who: Vec<&str> = updated["message"]["thread_participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["alice", "bob"]);
    let (_, got) = app.get("/messages/p", &app.token("bob")).await;
    assert_eq!(got["message"]["reply_count"], 1);
    assert_eq!(got["message"]["thread_participants"][1]["id"], "bob");
}

async fn participants_not_watching_get_thread_message_new_with_their_unread_threads(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob", "carol"]).await;
    app.channel("n", "alice", &["alice", "bob", "carol"]).await;
    app.send("messaging:n", "alice", json!({"id": "p", "text": "dose?"}))
        .await;
    let mut alice = app.connect("alice").await;
    let mut carol = app.connect("carol").await;
    app.send("messaging:n", "bob", reply("r1", "p", "5mg"))
        .await;
    let ev = alice.wait_for("notification.thread_message_new").await;
    assert_eq!(ev["message"]["id"], "r1");
    assert_eq!(ev["message"]["parent_id"], "p");
    assert_eq!(ev["cid"], "messaging:n");
    assert_eq!(ev["unread_threads"], 1);
    // carol takes no part in the thread: the next thing she hears is the channel message.
    app.send("messaging:n", "bob", json!({"id": "c1", "text": "hi"}))
        .await;
    loop {
        let ev = crate::helpers::next_json(&mut carol.stream).await;
        assert_ne!(ev["type"], "notification.thread_message_new", "{ev}");
        if ev["type"] == "notification.message_new" {
            assert_eq!(ev["message"]["id"], "c1");
            break;
        }
    }
    let (_, threads) = app.post("/threads", &app.token("carol"), json!({})).await;
    assert_eq!(threads["threads"], json!([]));
}

async fn query_threads_lists_the_threads_the_caller_takes_part_in(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob", "carol", "dave"]).await;
    app.channel("one", "alice", &["alice", "bob", "carol"])
        .await;
    app.channel("two", "bob", &["alice", "bob"]).await;
    app.channel("secret", "dave", &["dave"]).await;
    app.send("messaging:one", "alice", json!({"id": "p1", "text": "a"}))
        .await;
    app.send("messaging:two", "bob", json!({"id": "p2", "text": "b"}))
        .await;
    app.send("messaging:secret", "dave", json!({"id": "p3", "text": "c"}))
        .await;
    app.send(
        "messaging:one",
        "alice",
        json!({"id": "lonely", "text": "d"}),
    )
    .await;
    app.send("messaging:one", "bob", reply("r1", "p1", "x"))
        .await;
    app.send("messaging:one", "bob", reply("r2", "p1", "y"))
        .await;
    app.send("messaging:two", "alice", reply("r3", "p2", "z"))
        .await;
    app.send("messaging:secret", "dave", reply("r4", "p3", "w"))
        .await;

    let (status, body) = app
        .post("/threads", &app.token("alice"), json!({"reply_limit": 1}))
        .await;
    assert_eq!(status, 201, "{body}");
    let threads = body["threads"].as_array().unwrap();
    let parents: Vec<&str> = threads
        .iter()
        .map(|t| t["parent_message_id"].as_str().unwrap())
        .collect();
    assert_eq!(parents, ["p2", "p1"], "newest reply first: {body}");
    let t = &threads[1];
    assert_eq!(t["channel_cid"], "messaging:one");
    assert_eq!(t["channel"]["cid"], "messaging:one");
    assert_eq!(t["parent_message"]["id"], "p1");
    assert_eq!(t["reply_count"], 2);
    assert_eq!(t["participant_count"], 2);
    assert_eq!(t["created_by_user_id"], "alice");
    assert_eq!(ids(&t["latest_replies"]), ["r2"]);
    assert_eq!(t["thread_participants"][0]["user_id"], "alice");
    assert_eq!(t["thread_participants"][1]["user"]["id"], "bob");
    assert!(t["last_message_at"].is_string() && t["title"].is_string());
    let alice_read = t["read"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"]["id"] == "alice")
        .unwrap();
    assert_eq!(alice_read["unread_messages"], 2, "{t}");

    let (_, page) = app
        .post("/threads", &app.token("alice"), json!({"limit": 1}))
        .await;
    assert_eq!(page["threads"][0]["parent_message_id"], "p2");
    let next = page["next"].as_str().unwrap().to_string();
    let (_, page) = app
        .post(
            "/threads",
            &app.token("alice"),
            json!({"limit": 1, "next": next}),
        )
        .await;
    assert_eq!(page["threads"][0]["parent_message_id"], "p1");
    assert!(
        page.get("next").is_none() && page["prev"].is_string(),
        "{page}"
    );

    let (_, only) = app
        .post(
            "/threads",
            &app.token("alice"),
            json!({"filter": {"channel_cid": {"$eq": "messaging:one"}}}),
        )
        .await;
    assert_eq!(only["threads"].as_array().unwrap().len(), 1);
    let (_, carol) = app.post("/threads", &app.token("carol"), json!({})).await;
    assert_eq!(carol["threads"], json!([]), "carol took part in none");
    let (_, dave) = app.post("/threads", &app.token("dave"), json!({})).await;
    assert_eq!(ids_of_threads(&dave), ["p3"]);
    let (status, denied) = app.get("/threads/p3", &app.token("alice")).await;
    assert_eq!((status, denied["code"].as_i64()), (403, Some(17)));
    let (status, none) = app.get("/threads/lonely", &app.token("alice")).await;
    assert_eq!((status, none["code"].as_i64()), (404, Some(16)));
}

fn ids_of_threads(body: &Value) -> Vec<String> {
    body["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["parent_message_id"].as_str().unwrap().to_string())
        .collect()
}

async fn a_thread_is_fetched_and_its_title_and_custom_data_updated(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob", "eve"]).await;
    app.channel("t", "alice", &["alice", "bob"]).await;
    app.send("messaging:t", "alice", json!({"id": "p", "text": "dose?"}))
        .await;
    app.send("messaging:t", "bob", reply("r1", "p", "5mg"))
        .await;
    let mut bob = app.connect("bob").await;
    watch(&app, "bob", &bob.connection_id, "messaging:t").await;

    let (status, got) = app
        .get(
            "/threads/p?reply_limit=5&participant_limit=1",
            &app.token("alice"),
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["thread"]["parent_message_id"], "p");
    assert_eq!(ids(&got["thread"]["latest_replies"]), ["r1"]);
    assert_eq!(
        got["thread"]["thread_participants"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (status, body) = patch(
        &app,
        "/threads/p",
        "alice",
        json!({"set": {"title": "Dosing", "priority": "high", "drop": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["thread"]["title"], "Dosing");
    assert_eq!(body["thread"]["priority"], "high");
    let ev = bob.wait_for("thread.updated").await;
    assert_eq!(ev["thread"]["parent_message_id"], "p");
    assert_eq!(ev["thread"]["title"], "Dosing");
    let (_, body) = patch(&app, "/threads/p", "bob", json!({"unset": ["drop"]})).await;
    assert!(body["thread"].get("drop").is_none(), "{body}");
    assert_eq!(body["thread"]["priority"], "high");
    let (_, listed) = app.post("/threads", &app.token("bob"), json!({})).await;
    assert_eq!(listed["threads"][0]["title"], "Dosing");

    let (status, bad) = patch(
        &app,
        "/threads/p",
        "alice",
        json!({"set": {"reply_count": 9}}),
    )
    .await;
    assert_eq!((status, bad["code"].as_i64()), (400, Some(4)));
    let (status, bad) = patch(&app, "/threads/p", "eve", json!({"set": {"title": "x"}})).await;
    assert_eq!((status, bad["code"].as_i64()), (403, Some(17)));
    let entries = app.audit_entries().await;
    assert!(
        entries.iter().any(|e| e["event"] == "channel.update"
            && e["object"]["id"] == "p"
            && e["actor"]["id"] == "alice"),
        "the update is audited: {entries:#?}"
    );
}

async fn a_thread_read_marks_only_the_thread(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob"]).await;
    app.channel("t", "alice", &["alice", "bob"]).await;
    app.send("messaging:t", "alice", json!({"id": "p", "text": "dose?"}))
        .await;
    app.send("messaging:t", "bob", reply("r1", "p", "5mg"))
        .await;
    app.send("messaging:t", "bob", reply("r2", "p", "or 10"))
        .await;
    app.send("messaging:t", "bob", json!({"id": "c1", "text": "also"}))
        .await;
    let (_, unread) = app.get("/unread", &app.token("alice")).await;
    assert_eq!(unread["total_unread_count"], 1, "{unread}");
    assert_eq!(unread["total_unread_threads_count"], 1);
    assert_eq!(unread["threads"][0]["parent_message_id"], "p");
    assert_eq!(unread["threads"][0]["unread_count"], 2);
    let alice_ws = app.connect("alice").await;
    assert_eq!(alice_ws.me["unread_threads"], 1, "{}", alice_ws.me);

    let mut bob = app.connect("bob").await;
    watch(&app, "bob", &bob.connection_id, "messaging:t").await;
    let (status, body) = app
        .post(
            "/channels/messaging/t/read",
            &app.token("alice"),
            json!({"thread_id": "p"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["event"]["thread"]["parent_message_id"], "p");
    let read = bob.wait_for("message.read").await;
    assert_eq!(read["thread"]["parent_message_id"], "p");
    assert_eq!(read["user"]["id"], "alice");
    let (_, unread) = app.get("/unread", &app.token("alice")).await;
    assert_eq!(unread["total_unread_threads_count"], 0, "{unread}");
    assert_eq!(unread["total_unread_count"], 1, "the channel stays unread");

    let (status, body) = app
        .post(
            "/channels/messaging/t/unread",
            &app.token("alice"),
            json!({"thread_id": "p", "message_id": "r2"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, unread) = app.get("/unread", &app.token("alice")).await;
    assert_eq!(unread["threads"][0]["unread_count"], 1, "{unread}");
    assert_eq!(unread["total_unread_count"], 1);
    let (status, bad) = app
        .post(
            "/channels/messaging/t/read",
            &app.token("alice"),
            json!({"thread_id": "c1x"}),
        )
        .await;
    assert_eq!((status, bad["code"].as_i64()), (404, Some(16)));
}

async fn replies_page_around_a_reply_and_by_sort(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("t", "a", &["a"]).await;
    app.send("messaging:t", "a", json!({"id": "p", "text": "p"}))
        .await;
    for i in 1..=10 {
        app.send("messaging:t", "a", reply(&format!("r{i:02}"), "p", "x"))
            .await;
    }
    let get = async |q: &str| {
        let (status, body) = app
            .get(&format!("/messages/p/replies?{q}"), &app.token("a"))
            .await;
        assert_eq!(status, 200, "{q}: {body}");
        ids(&body["messages"])
    };
    assert_eq!(
        get("id_around=r05&limit=4").await,
        ["r04", "r05", "r06", "r07"]
    );
    assert_eq!(
        get("id_around=r01&limit=4").await,
        ["r01", "r02", "r03", "r04"]
    );
    assert_eq!(get("limit=3").await, ["r08", "r09", "r10"]);
    let asc = crate::helpers::url_encode(r#"[{"field":"created_at","direction":1}]"#);
    assert_eq!(
        get(&format!("limit=3&sort={asc}")).await,
        ["r01", "r02", "r03"]
    );
    let desc = crate::helpers::url_encode(r#"[{"field":"created_at","direction":-1}]"#);
    assert_eq!(
        get(&format!("limit=2&id_lt=r05&sort={desc}")).await,
        ["r03", "r04"]
    );
    let (_, r05) = app.get("/messages/r05", &app.token("a")).await;
    let at = crate::helpers::url_encode(r05["message"]["created_at"].as_str().unwrap());
    assert_eq!(
        get(&format!("limit=2&created_at_after_or_equal={at}")).await,
        ["r05", "r06"]
    );
    assert_eq!(
        get(&format!("limit=2&created_at_before_or_equal={at}")).await,
        ["r04", "r05"]
    );
    for bad in [
        "sort=notjson",
        "id_around=nope",
        "created_at_around=yesterday",
    ] {
        let (status, body) = app
            .get(&format!("/messages/p/replies?{bad}"), &app.token("a"))
            .await;
        assert!(status == 400 || status == 404, "{bad}: {status} {body}");
    }
}

async fn mark_all_read_and_mark_channels_read(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("x", "a", &["a", "b"]).await;
    app.channel("y", "a", &["a", "b"]).await;
    app.send("messaging:x", "a", json!({"id": "x1", "text": "1"}))
        .await;
    app.send("messaging:y", "a", json!({"id": "y1", "text": "1"}))
        .await;
    let (_, unread) = app.get("/unread", &app.token("b")).await;
    assert_eq!(unread["total_unread_count"], 2);
    let (status, body) = app
        .post(
            "/channels/read",
            &app.token("b"),
            json!({"read_by_channel": {"messaging:x": "x1"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, unread) = app.get("/unread", &app.token("b")).await;
    assert_eq!(unread["total_unread_count"], 1);
    let mut b = app.connect("b").await;
    let (status, _) = app.post("/channels/read", &app.token("b"), json!({})).await;
    assert_eq!(status, 201);
    let note = b.wait_for("notification.mark_read").await;
    assert_eq!(note["cid"], "messaging:y");
    let (_, unread) = app.get("/unread", &app.token("b")).await;
    assert_eq!(unread["total_unread_count"], 0);
    let (status, bad) = app
        .post(
            "/channels/read",
            &app.token("b"),
            json!({"read_by_channel": {"messaging:x": 5}}),
        )
        .await;
    assert_eq!((status, bad["code"].as_i64()), (400, Some(4)));
}

async fn delivery_receipts_move_forward_and_reach_watchers(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    let created = app.channel("d", "a", &["a", "b"]).await;
    assert_eq!(created["channel"]["config"]["delivery_events"], true);
    let caps = created["channel"]["own_capabilities"].to_string();
    assert!(caps.contains("delivery-events"), "{caps}");
    app.send("messaging:d", "a", json!({"id": "d1", "text": "1"}))
        .await;
    app.send("messaging:d", "a", json!({"id": "d2", "text": "2"}))
        .await;
    let mut a = app.connect("a").await;
    watch(&app, "a", &a.connection_id, "messaging:d").await;
    let deliver =
        |id: &str| json!({"latest_delivered_messages": [{"cid": "messaging:d", "id": id}]});
    let (status, body) = app
        .post("/channels/delivered", &app.token("b"), deliver("d2"))
        .await;
    assert_eq!(status, 201, "{body}");
    let ev = a.wait_for("message.delivered").await;
    assert_eq!(ev["user"]["id"], "b");
    assert_eq!(ev["last_delivered_message_id"], "d2");
    assert!(ev["last_delivered_at"].is_string());
    app.post("/channels/delivered", &app.token("b"), deliver("d1"))
        .await;
    let state = watch(&app, "a", &a.connection_id, "messaging:d").await;
    let b_read = state["read"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"]["id"] == "b")
        .unwrap()
        .clone();
    assert_eq!(
        b_read["last_delivered_message_id"], "d2",
        "an older message does not move the receipt back: {b_read}"
    );
    let (status, body) = app
        .post(
            "/channels/livestream/ls/query",
            &app.token("a"),
            json!({"state": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["channel"]["config"]["delivery_events"], false);
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"cid": "messaging:d", "id": format!("m{i}")}))
        .collect();
    let (status, bad) = app
        .post(
            "/channels/delivered",
            &app.token("b"),
            json!({"latest_delivered_messages": too_many}),
        )
        .await;
    assert_eq!((status, bad["code"].as_i64()), (400, Some(4)));
    let (status, bad) = app
        .post(
            "/channels/delivered",
            &app.token("b"),
            json!({"latest_delivered_messages": [{"cid": "messaging:d\u{0}", "id": "d1"}]}),
        )
        .await;
    assert_eq!(status, 400, "{bad}");
}

async fn bad_thread_requests_are_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("t", "a", &["a"]).await;
    app.send("messaging:t", "a", json!({"id": "p", "text": "p"}))
        .await;
    app.send("messaging:t", "a", reply("r", "p", "r")).await;
    let huge = "x".repeat(6000);
    let cases = [
        json!({"limit": 0}),
        json!({"limit": "ten"}),
        json!({"next": "abc"}),
        json!({"filter": {"$and": "no"}}),
        json!({"sort": [{"field": "x", "direction": 7}]}),
        json!({"reply_limit": 1000}),
    ];
    for body in cases {
        let (status, reply) = app.post("/threads", &app.token("a"), body.clone()).await;
        assert_eq!((status, reply["code"].as_i64()), (400, Some(4)), "{body}");
    }
    for body in [
        json!({"set": "title"}),
        json!({"set": {"title": 5}}),
        json!({"set": {"title": huge}}),
        json!({"set": {"blob": huge}}),
        json!({"unset": [1]}),
        json!({"set": {"": 1}}),
    ] {
        let (status, reply) = patch(&app, "/threads/p", "a", body.clone()).await;
        assert_eq!((status, reply["code"].as_i64()), (400, Some(4)), "{body}");
    }
    let (status, _) = app.get("/threads/r", &app.token("a")).await;
    assert_eq!(status, 404, "a reply is not a thread");
    let (status, _) = app.get("/threads/%E2%80%AE", &app.token("a")).await;
    assert_eq!(status, 400);
}

async fn a_reply_on_one_node_updates_the_parent_for_a_watcher_on_the_other(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &redis_url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        a.get("/healthz", "").await.1["bus"] == "up" && b.get("/healthz", "").await.1["bus"] == "up"
    })
    .await;
    a.users(&["alice", "bob"]).await;
    a.channel("c", "alice", &["alice", "bob"]).await;
    a.send("messaging:c", "alice", json!({"id": "p", "text": "dose?"}))
        .await;
    let mut alice = a.connect("alice").await;
    watch(a, "alice", &alice.connection_id, "messaging:c").await;
    eventually(5, "node b sees alice watching", async || {
        b.state.bus.is_watching("messaging:c", "alice")
    })
    .await;
    b.send("messaging:c", "bob", reply("r1", "p", "5mg")).await;
    let updated = alice
        .wait_for_where("message.updated", |e| e["message"]["id"] == "p")
        .await;
    assert_eq!(updated["message"]["reply_count"], 1);
    assert_eq!(updated["message"]["thread_participants"][1]["id"], "bob");
}

on_both_databases!(
    a_reply_updates_its_parent_for_watchers_with_count_and_participants,
    participants_not_watching_get_thread_message_new_with_their_unread_threads,
    query_threads_lists_the_threads_the_caller_takes_part_in,
    a_thread_is_fetched_and_its_title_and_custom_data_updated,
    a_thread_read_marks_only_the_thread,
    replies_page_around_a_reply_and_by_sort,
    mark_all_read_and_mark_channels_read,
    delivery_receipts_move_forward_and_reach_watchers,
    bad_thread_requests_are_refused,
    a_reply_on_one_node_updates_the_parent_for_a_watcher_on_the_other,
);
