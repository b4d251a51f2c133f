//! Messages and reactions beyond send and edit (issue 16, items 5 and 6): who reacted,
//! pinning by `PinMessage` with expiry, pinned messages, messages by id, `delete_for_me`
//! (on two nodes), message actions, and search as the stock UI sends it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Db, TestApp, eventually, next_json, on_both_databases, redis_url, url_encode,
};

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|x| x[key].as_str().unwrap().to_string())
        .collect()
}

async fn react(app: &TestApp, user: &str, message: &str, kind: &str) {
    let (status, body) = app
        .post(
            &format!("/messages/{message}/reaction"),
            &app.token(user),
            json!({"reaction": {"type": kind}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn who_reacted_is_listed_filtered_sorted_and_paged_for_readers_only(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "c", "outsider"]).await;
    app.channel("wr", "a", &["a", "b", "c"]).await;
    app.send(
        "messaging:wr",
        "a",
        json!({"id": "m", "text": "who saw this"}),
    )
    .await;
    react(&app, "b", "m", "like").await;
    react(&app, "c", "m", "love").await;
    react(&app, "a", "m", "like").await;

    let (status, body) = app
        .get("/messages/m/reactions?limit=2", &app.token("c"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body["reactions"], "user_id"), ["b", "c"]);
    assert_eq!(body["reactions"][0]["user"]["id"], "b");
    let (_, body) = app
        .get("/messages/m/reactions?limit=2&offset=2", &app.token("c"))
        .await;
    assert_eq!(ids(&body["reactions"], "user_id"), ["a"]);

    let (status, body) = app
        .post(
            "/messages/m/reactions",
            &app.token("b"),
            json!({"filter": {"type": "like"}, "sort": [{"field": "created_at", "direction": 1}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(ids(&body["reactions"], "user_id"), ["b", "a"]);
    let (_, body) = app
        .post(
            "/messages/m/reactions",
            &app.token("b"),
            json!({"filter": {"user_id": {"$in": ["c"]}}}),
        )
        .await;
    assert_eq!(ids(&body["reactions"], "type"), ["love"]);
    // Newest first by default, one per page, with a cursor to the next page.
    let (_, first) = app
        .post(
            "/messages/m/reactions",
            &app.token("b"),
            json!({"filter": {}, "limit": 1}),
        )
        .await;
    assert_eq!(ids(&first["reactions"], "user_id"), ["a"]);
    let next = first["next"].as_str().expect("a next cursor").to_string();
    let (_, second) = app
        .post(
            "/messages/m/reactions",
            &app.token("b"),
            json!({"filter": {}, "limit": 1, "next": next}),
        )
        .await;
    assert_eq!(ids(&second["reactions"], "user_id"), ["c"]);

    for (method, body) in [
        (Method::GET, None),
        (Method::POST, Some(json!({"filter": {}}))),
    ] {
        let (status, reply) = app
            .call(
                method,
                "/messages/m/reactions",
                &app.token("outsider"),
                body,
            )
            .await;
        assert_eq!((status, reply["code"].as_i64()), (403, Some(17)), "{reply}");
    }
    for bad in [
        json!({"filter": {"score": 1}}),
        json!({"filter": []}),
        json!({"filter": {}, "limit": 0}),
        json!({"filter": {}, "next": "x"}),
        json!({"filter": {}, "sort": [{"field": "text", "direction": 1}]}),
    ] {
        let (status, reply) = app
            .post("/messages/m/reactions", &app.token("b"), bad.clone())
            .await;
        assert_eq!(
            (status, reply["code"].as_i64()),
            (400, Some(4)),
            "{bad}: {reply}"
        );
    }
    let (status, _) = app.get("/messages/nope/reactions", &app.token("b")).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get("/messages/m/reactions?limit=abc", &app.token("b"))
        .await;
    assert_eq!(status, 400);
}

async fn pin(app: &TestApp, user: &str, message: &str, set: Value) -> (u16, Value) {
    app.call(
        Method::PUT,
        &format!("/messages/{message}"),
        &app.token(user),
        Some(json!({ "set": set })),
    )
    .await
}

async fn a_member_pins_another_members_message_but_may_not_edit_it(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "outsider"]).await;
    app.channel("pn", "a", &["a", "b"]).await;
    app.send(
        "messaging:pn",
        "a",
        json!({"id": "p1", "text": "handover at 7"}),
    )
    .await;

    let (status, body) = pin(
        &app,
        "b",
        "p1",
        json!({"pinned": true, "pin_expires": null, "pinned_at": null}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["pinned"], true);
    assert_eq!(body["message"]["pinned_by"]["id"], "b");
    assert_eq!(body["message"]["text"], "handover at 7");
    // Pinning is not editing: b still may not change a's text, with or without a pin.
    let (status, _) = pin(&app, "b", "p1", json!({"text": "changed"})).await;
    assert_eq!(status, 403);
    let (status, _) = pin(&app, "b", "p1", json!({"pinned": false, "text": "changed"})).await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(
            "/messages/p1",
            &app.token("b"),
            json!({"message": {"text": "changed", "pinned": true}}),
        )
        .await;
    assert_eq!(status, 403);
    // The full update that only unpins is a pin change too.
    let (status, body) = app
        .post(
            "/messages/p1",
            &app.token("b"),
            json!({"message": {"text": "handover at 7", "phi_probe": "WARDPHI note", "pinned": false}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"]["pinned"], false);
    let (status, _) = pin(&app, "outsider", "p1", json!({"pinned": true})).await;
    assert_eq!(status, 403);
    let (status, body) = pin(
        &app,
        "b",
        "p1",
        json!({"pinned": true, "pin_expires": "soon"}),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
}

async fn an_expired_pin_is_not_pinned_in_any_read(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("ex", "a", &["a", "b"]).await;
    app.send(
        "messaging:ex",
        "a",
        json!({"id": "old", "text": "expired pin"}),
    )
    .await;
    app.send(
        "messaging:ex",
        "a",
        json!({"id": "live", "text": "live pin"}),
    )
    .await;
    let (status, body) = pin(
        &app,
        "b",
        "old",
        json!({"pinned": true, "pin_expires": "2001-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["message"]["pinned"], false,
        "an expired pin reads as none"
    );
    let (status, _) = pin(
        &app,
        "b",
        "live",
        json!({"pinned": true, "pin_expires": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, 200);

    let (_, m) = app.get("/messages/old", &app.token("a")).await;
    assert_eq!(m["message"]["pinned"], false);
    assert!(m["message"]["pinned_at"].is_null());
    let (_, m) = app.get("/messages/live", &app.token("a")).await;
    assert_eq!(m["message"]["pinned"], true);
    assert!(
        m["message"]["pin_expires"]
            .as_str()
            .is_some_and(|t| t.starts_with("2999-01-01T00:00:00")),
        "{m}"
    );

    let (_, state) = app
        .post(
            "/channels/messaging/ex/query",
            &app.token("a"),
            json!({"state": true}),
        )
        .await;
    assert_eq!(ids(&state["pinned_messages"], "id"), ["live"]);
    let (status, pinned) = app
        .get_payload(
            "/channels/messaging/ex/pinned_messages",
            &app.token("a"),
            json!({"limit": 10}),
        )
        .await;
    assert_eq!(status, 200, "{pinned}");
    assert_eq!(ids(&pinned["messages"], "id"), ["live"]);
    let (status, found) = app
        .get_payload(
            "/search",
            &app.token("a"),
            json!({"filter_conditions": {"cid": "messaging:ex"}, "message_filter_conditions": {"pinned": true}}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    let found: Vec<&str> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["live"]);
}

async fn pinned_messages_page_by_pin_time_and_sort(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "outsider"]).await;
    app.channel("pp", "a", &["a", "b"]).await;
    for id in ["p1", "p2", "p3", "unpinned"] {
        app.send("messaging:pp", "a", json!({"id": id, "text": id}))
            .await;
    }
    // Pinned in the order p2, p3, p1.
    for id in ["p2", "p3", "p1"] {
        let (status, _) = pin(&app, "b", id, json!({"pinned": true})).await;
        assert_eq!(status, 200);
    }
    let path = "/channels/messaging/pp/pinned_messages";
    let t = app.token("b");
    let (_, body) = app.get_payload(path, &t, json!({})).await;
    assert_eq!(
        ids(&body["messages"], "id"),
        ["p1", "p3", "p2"],
        "newest pin first"
    );
    let (_, body) = app
        .get_payload(
            path,
            &t,
            json!({"sort": [{"field": "pinned_at", "direction": 1}]}),
        )
        .await;
    assert_eq!(ids(&body["messages"], "id"), ["p2", "p3", "p1"]);
    let (_, body) = app
        .get_payload(path, &t, json!({"id_lt": "p1", "limit": 1}))
        .await;
    assert_eq!(ids(&body["messages"], "id"), ["p3"]);
    let (_, body) = app.get_payload(path, &t, json!({"id_gte": "p3"})).await;
    assert_eq!(ids(&body["messages"], "id"), ["p1", "p3"]);
    let (_, body) = app
        .get_payload(path, &t, json!({"pinned_at_after": "2999-01-01T00:00:00Z"}))
        .await;
    assert_eq!(ids(&body["messages"], "id"), Vec::<String>::new());
    let (_, body) = app.get_payload(path, &t, json!({"offset": 2})).await;
    assert_eq!(ids(&body["messages"], "id"), ["p2"]);

    let (status, _) = app
        .get_payload(path, &app.token("outsider"), json!({}))
        .await;
    assert_eq!(status, 403);
    for bad in [
        json!({"limit": 0}),
        json!({"id_lt": "unpinned"}),
        json!({"pinned_at_before": "yesterday"}),
        json!({"sort": [{"field": "created_at", "direction": 1}]}),
        json!({"limit": "ten"}),
        json!({"id_around": "p1"}),
    ] {
        let (status, reply) = app.get_payload(path, &t, bad.clone()).await;
        assert_eq!(
            (status, reply["code"].as_i64()),
            (400, Some(4)),
            "{bad}: {reply}"
        );
    }
}

async fn messages_are_fetched_by_id_within_the_channel(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b", "outsider"]).await;
    app.channel("byid", "a", &["a", "b"]).await;
    app.channel("other", "a", &["a"]).await;
    for id in ["x1", "x2", "x3"] {
        app.send("messaging:byid", "a", json!({"id": id, "text": id}))
            .await;
    }
    app.send(
        "messaging:other",
        "a",
        json!({"id": "elsewhere", "text": "no"}),
    )
    .await;
    let path = "/channels/messaging/byid/messages";
    let (status, body) = app
        .get(
            &format!("{path}?ids=x3,x1,elsewhere,missing"),
            &app.token("b"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body["messages"], "id"), ["x3", "x1"]);
    assert_eq!(body["messages"][0]["text"], "x3");
    let (status, _) = app
        .get(&format!("{path}?ids=x1"), &app.token("outsider"))
        .await;
    assert_eq!(status, 403);
    let many: Vec<String> = (0..101).map(|i| format!("m{i}")).collect();
    for bad in [
        String::new(),
        "?ids=".to_string(),
        format!("?ids={}", many.join(",")),
        format!("?ids={}", url_encode("bad id\u{0}")),
    ] {
        let (status, reply) = app.get(&format!("{path}{bad}"), &app.token("b")).await;
        assert_eq!(
            (status, reply["code"].as_i64()),
            (400, Some(4)),
            "{bad}: {reply}"
        );
    }
}

async fn delete_for_me_hides_only_for_the_caller_across_nodes(db: Db) {
    let nodes = TestApp::spawn_cluster(db, 2, &redis_url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    eventually(10, "both nodes joined the bus", async || {
        a.get("/healthz", "").await.1["bus"] == "up" && b.get("/healthz", "").await.1["bus"] == "up"
    })
    .await;
    a.users(&["alice", "bob"]).await;
    a.channel("dfm", "alice", &["alice", "bob"]).await;
    let mut alice = a.connect("alice").await;
    let mut bob = b.connect("bob").await;
    for (node, user, ws) in [(a, "alice", &alice), (b, "bob", &bob)] {
        let (status, body) = node
            .post(
                &format!(
                    "/channels/messaging/dfm/query?connection_id={}",
                    ws.connection_id
                ),
                &node.token(user),
                json!({"watch": true}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    eventually(5, "node a sees bob watching", async || {
        a.state.bus.is_watching("messaging:dfm", "bob")
    })
    .await;
    b.send(
        "messaging:dfm",
        "bob",
        json!({"id": "d1", "text": "only alice hides this"}),
    )
    .await;

    let (status, body) = a
        .call(
            Method::DELETE,
            "/messages/d1?delete_for_me=true",
            &a.token("alice"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"]["type"], "deleted");
    assert_eq!(body["message"]["deleted_for_me"], true);
    let ev = alice.wait_for("message.deleted").await;
    assert_eq!(ev["deleted_for_me"], true);
    assert_eq!(ev["message"]["id"], "d1");

    // Bob hears the next message, and no deletion before it.
    b.send(
        "messaging:dfm",
        "bob",
        json!({"id": "d2", "text": "still here"}),
    )
    .await;
    loop {
        let ev = next_json(&mut bob.stream).await;
        assert_ne!(ev["type"], "message.deleted", "bob is not told: {ev}");
        if ev["type"] == "message.new" && ev["message"]["id"] == "d2" {
            break;
        }
    }
    let (_, seen) = b.get("/messages/d1", &b.token("bob")).await;
    assert_eq!(seen["message"]["text"], "only alice hides this");
    assert_eq!(seen["message"]["type"], "regular");
    let (_, seen) = b.get("/messages/d1", &b.token("alice")).await;
    assert_eq!(seen["message"]["type"], "deleted");
    assert_eq!(seen["message"]["text"], "");
    let (_, state) = b
        .post(
            "/channels/messaging/dfm/query",
            &b.token("alice"),
            json!({"state": true}),
        )
        .await;
    let d1 = state["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "d1")
        .expect("the message is listed, as deleted");
    assert_eq!(d1["deleted_for_me"], true);
    let (_, state) = a
        .post(
            "/channels/messaging/dfm/query",
            &a.token("bob"),
            json!({"state": true}),
        )
        .await;
    assert_eq!(state["messages"][0]["text"], "only alice hides this");

    let entries = a.audit_entries().await;
    assert!(
        entries.iter().any(|e| e.to_string().contains("for_me")),
        "the hiding is audited"
    );
    let (status, reply) = a
        .call(
            Method::DELETE,
            "/messages/d1?delete_for_me=true&hard=true",
            &a.token("alice"),
            None,
        )
        .await;
    assert_eq!((status, reply["code"].as_i64()), (400, Some(4)));
    drop(alice);
}

async fn message_actions_are_refused_as_there_are_no_commands(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "outsider"]).await;
    let created = app.channel("act", "a", &["a"]).await;
    assert_eq!(created["channel"]["config"]["commands"], json!([]));
    app.send("messaging:act", "a", json!({"id": "c1", "text": "hello"}))
        .await;
    let body = json!({"message_id": "c1", "form_data": {"image_action": "shuffle"}, "id": "act", "type": "messaging"});
    let (status, reply) = app
        .post("/messages/c1/action", &app.token("a"), body.clone())
        .await;
    assert_eq!((status, reply["code"].as_i64()), (400, Some(4)), "{reply}");
    let (status, _) = app
        .post("/messages/c1/action", &app.token("outsider"), body.clone())
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post("/messages/none/action", &app.token("a"), body)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(
            "/messages/c1/action",
            &app.token("a"),
            json!({"form_data": "x"}),
        )
        .await;
    assert_eq!(status, 400);
}

async fn search_results(app: &TestApp, user: &str, conditions: Value) -> Vec<String> {
    let (status, body) = app
        .get_payload(
            "/search",
            &app.token(user),
            json!({"filter_conditions": {"members": {"$in": [user]}}, "message_filter_conditions": conditions, "sort": [{"field": "created_at", "direction": 1}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search_as_the_stock_ui_sends_it(app: TestApp) {
    app.users(&["a", "b", "c"]).await;
    app.channel("s1", "a", &["a", "b"]).await;
    app.channel("s2", "b", &["b", "c"]).await;
    app.channel("s3", "c", &["c"]).await;
    app.send(
        "messaging:s1",
        "a",
        json!({"id": "w1", "text": "Warfarin stock is low"}),
    )
    .await;
    app.send(
        "messaging:s2",
        "c",
        json!({"id": "w2", "text": "check the WARFARIN dose"}),
    )
    .await;
    app.send(
        "messaging:s3",
        "c",
        json!({"id": "w3", "text": "warfarin in a channel b is not in"}),
    )
    .await;
    app.send("messaging:s1", "b", json!({"id": "w4", "text": "stock is fine", "attachments": [{"type": "image", "image_url": "https://example.invalid/x.png"}]}))
        .await;

    assert_eq!(
        search_results(&app, "b", json!({"type": "regular", "text": "Warfarin"})).await,
        ["w1", "w2"]
    );
    assert_eq!(
        search_results(&app, "b", json!({"text": {"$q": "warfarin"}})).await,
        ["w1", "w2"]
    );
    assert_eq!(
        search_results(&app, "b", json!({"text": {"$autocomplete": "warf"}})).await,
        ["w1", "w2"]
    );
    assert_eq!(
        search_results(&app, "b", json!({"text": {"$autocomplete": "WARF sto"}})).await,
        ["w1"]
    );
    assert_eq!(
        search_results(&app, "b", json!({"text": "stock low"})).await,
        ["w1"]
    );
    assert_eq!(
        search_results(&app, "b", json!({"text": {"$autocomplete": "dose"}})).await,
        ["w2"]
    );
    assert_eq!(
        search_results(&app, "b", json!({"text": {"$autocomplete": "wa"}})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        search_results(&app, "b", json!({"text": "aspirin"})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        search_results(&app, "b", json!({"attachments.type": "image"})).await,
        ["w4"]
    );
    assert_eq!(
        search_results(
            &app,
            "b",
            json!({"text": "stock", "attachments.type": {"$in": ["image"]}})
        )
        .await,
        ["w4"]
    );
    // Newest first when asked.
    let (_, body) = app
        .get_payload(
            "/search",
            &app.token("b"),
            json!({"filter_conditions": {"members": {"$in": ["b"]}}, "message_filter_conditions": {"text": {"$autocomplete": "warf"}}, "sort": [{"field": "created_at", "direction": -1}]}),
        )
        .await;
    let newest: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(newest, ["w2", "w1"]);
    for bad in [
        json!({"text": 5}),
        json!({"text": {"$regex": "w.*"}}),
        json!({"text": {"$q": ["w"]}}),
    ] {
        let (status, reply) = app
            .get_payload(
                "/search",
                &app.token("b"),
                json!({"filter_conditions": {"members": {"$in": ["b"]}}, "message_filter_conditions": bad}),
            )
            .await;
        assert_eq!((status, reply["code"].as_i64()), (400, Some(4)), "{reply}");
    }
}

async fn search_finds_words_and_prefixes_in_sealed_text(db: Db) {
    search_as_the_stock_ui_sends_it(TestApp::spawn(db).await).await;
}

async fn search_finds_words_and_prefixes_in_plain_text(db: Db) {
    search_as_the_stock_ui_sends_it(TestApp::spawn_with(db, |c| c.encryption = false).await).await;
}

/// A loopback web server for link previews: a page with OpenGraph tags, a redirect to a
/// private address, a JSON document and a page whose tags lie past the size cap.
async fn link_server() -> String {
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;
    let page = "<html><head><title>fallback</title><meta property=\"og:title\" content=\"Ward &amp; friends\"><meta property=\"og:description\" content=\"Self-hosted chat\"><meta property=\"og:image\" content=\"http://127.0.0.1/i.png\"></head></html>";
    let big = format!(
        "<html>{}<meta property=\"og:title\" content=\"too far\"></html>",
        " ".repeat(600 * 1024)
    );
    let app = axum::Router::new()
        .route(
            "/page",
            get(move || async move {
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
            }),
        )
        .route(
            "/to-private",
            get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [(header::LOCATION, "http://10.0.0.1/")],
                )
                    .into_response()
            }),
        )
        .route(
            "/to-page",
            get(|| async {
                (axum::http::StatusCode::FOUND, [(header::LOCATION, "/page")]).into_response()
            }),
        )
        .route(
            "/json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{}").into_response() }),
        )
        .route(
            "/big",
            get(move || {
                let big = big.clone();
                async move { ([(header::CONTENT_TYPE, "text/html")], big).into_response() }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn og(app: &TestApp, user: &str, url: &str) -> (u16, Value) {
    app.get(&format!("/og?url={}", url_encode(url)), &app.token(user))
        .await
}

async fn link_previews_are_off_by_default_and_bounded_when_on(db: Db) {
    let site = link_server().await;
    let off = TestApp::spawn(db).await;
    off.users(&["a"]).await;
    let (status, body) = og(&off, "a", &format!("{site}/page")).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
    drop(off);

    let app = TestApp::spawn_with(db, |c| {
        c.url_enrichment.enabled = true;
        c.url_enrichment.allow_loopback = true;
    })
    .await;
    app.users(&["a"]).await;
    let (status, body) = og(&app, "a", &format!("{site}/page")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["title"], "Ward & friends");
    assert_eq!(body["text"], "Self-hosted chat");
    assert_eq!(body["image_url"], "http://127.0.0.1/i.png");
    assert_eq!(body["og_scrape_url"], format!("{site}/page"));
    let (status, body) = og(&app, "a", &format!("{site}/to-page")).await;
    assert_eq!(
        (status, body["title"].as_str()),
        (200, Some("Ward & friends"))
    );
    let (status, body) = og(&app, "a", &format!("{site}/big")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["title"],
        Value::Null,
        "nothing past the size cap is read"
    );
    for refused in [
        format!("{site}/to-private"),
        format!("{site}/json"),
        "http://10.0.0.1/".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::1]:1/".to_string(),
        "file:///etc/passwd".to_string(),
        "http://user:pw@127.0.0.1/".to_string(),
        "ftp://127.0.0.1/".to_string(),
        "not a url".to_string(),
        format!("http://127.0.0.1/{}", "a".repeat(3000)),
    ] {
        let (status, body) = og(&app, "a", &refused).await;
        assert_eq!(
            (status, body["code"].as_i64()),
            (400, Some(4)),
            "{refused}: {body}"
        );
    }
    let (status, _) = app.get("/og", &app.token("a")).await;
    assert_eq!(status, 400);

    // Loopback is refused unless the test setting allows it.
    let strict = TestApp::spawn_with(db, |c| c.url_enrichment.enabled = true).await;
    strict.users(&["a"]).await;
    let (status, body) = og(&strict, "a", &format!("{site}/page")).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
}

on_both_databases!(
    who_reacted_is_listed_filtered_sorted_and_paged_for_readers_only,
    a_member_pins_another_members_message_but_may_not_edit_it,
    an_expired_pin_is_not_pinned_in_any_read,
    pinned_messages_page_by_pin_time_and_sort,
    messages_are_fetched_by_id_within_the_channel,
    delete_for_me_hides_only_for_the_caller_across_nodes,
    message_actions_are_refused_as_there_are_no_commands,
    search_finds_words_and_prefixes_in_sealed_text,
    search_finds_words_and_prefixes_in_plain_text,
    link_previews_are_off_by_default_and_bounded_when_on,
);
