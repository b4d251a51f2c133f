//! Polls (issue 16 item 8): created alone, sent in a message, voted on through it, with the
//! channel's read and write decisions; texts and answers sealed at rest and shredded with
//! their author's key.

use reqwest::Method;
use serde_json::{Value, json};

use crate::encryption::raw_database_contains;
use crate::helpers::{Db, TestApp, on_both_databases};

on_both_databases!(
    a_poll_sent_in_a_message_takes_votes_and_tells_the_watchers,
    unique_votes_replace_and_vote_limits_refuse,
    answers_closing_and_queries,
    poll_access_follows_the_channel_it_is_on,
    poll_texts_are_sealed_and_shredded_with_their_author,
    hostile_poll_input_is_refused,
);

const MARKER: &str = "okapi-lantern-5521";

async fn create(app: &TestApp, user: &str, body: Value) -> Value {
    let (status, body) = app.post("/polls", &app.token(user), body).await;
    assert_eq!(status, 201, "{body}");
    body["poll"].clone()
}

/// Users a, b (members of messaging:p) and c (not); a poll by a sent in message `pm`.
async fn poll_in_channel(app: &TestApp, poll: Value) -> Value {
    app.users(&["a", "b", "c"]).await;
    app.channel("p", "a", &["a", "b"]).await;
    let created = create(app, "a", poll).await;
    let sent = app
        .send(
            "messaging:p",
            "a",
            json!({"id": "pm", "text": "", "poll_id": created["id"]}),
        )
        .await;
    assert_eq!(sent["poll_id"], created["id"], "{sent}");
    created
}

async fn vote(app: &TestApp, user: &str, poll: &str, vote: Value) -> (u16, Value) {
    app.post(
        &format!("/messages/pm/polls/{poll}/vote"),
        &app.token(user),
        json!({ "vote": vote }),
    )
    .await
}

async fn a_poll_sent_in_a_message_takes_votes_and_tells_the_watchers(db: Db) {
    let app = TestApp::spawn(db).await;
    let poll = poll_in_channel(
        &app,
        json!({"id": "lunch", "name": "Lunch?", "options": [{"id": "y", "text": "yes"}, {"id": "n", "text": "no"}], "color": "blue"}),
    )
    .await;
    assert_eq!(poll["name"], "Lunch?");
    assert_eq!(poll["color"], "blue", "custom fields are flattened");
    assert_eq!(poll["options"][1]["text"], "no");
    assert_eq!(poll["created_by"]["id"], "a");

    let (_, ch) = app
        .post(
            "/channels/messaging/p/query",
            &app.token("b"),
            json!({"state": true}),
        )
        .await;
    let caps = ch["channel"]["own_capabilities"].as_array().unwrap();
    assert!(caps.contains(&json!("send-poll")) && caps.contains(&json!("cast-poll-vote")));
    assert_eq!(ch["channel"]["config"]["polls"], true);
    assert_eq!(ch["messages"][0]["poll"]["id"], "lunch", "{ch}");

    let mut wa = app.connect("a").await;
    let (status, body) = app
        .post(
            &format!(
                "/channels/messaging/p/query?connection_id={}",
                wa.connection_id
            ),
            &app.token("a"),
            json!({"watch": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, cast) = vote(&app, "b", "lunch", json!({"option_id": "y"})).await;
    assert_eq!(status, 201, "{cast}");
    assert_eq!(cast["vote"]["option_id"], "y");
    assert_eq!(cast["vote"]["user_id"], "b");
    let ev = wa.wait_for("poll.vote_casted").await;
    assert_eq!(ev["poll"]["vote_counts_by_option"]["y"], 1, "{ev}");
    assert_eq!(ev["poll_vote"]["id"], cast["vote"]["id"]);
    assert_eq!(ev["message_id"], "pm");

    let (_, got) = app.get("/polls/lunch", &app.token("b")).await;
    assert_eq!(got["poll"]["vote_count"], 1);
    assert_eq!(got["poll"]["own_votes"][0]["option_id"], "y");
    assert_eq!(
        got["poll"]["latest_votes_by_option"]["y"][0]["user"]["id"],
        "b"
    );

    let vote_id = cast["vote"]["id"].as_str().unwrap();
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/messages/pm/polls/lunch/vote/{vote_id}"),
            &app.token("a"),
            None,
        )
        .await;
    assert_eq!(status, 403, "one removes only one's own vote: {body}");
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/messages/pm/polls/lunch/vote/{vote_id}"),
            &app.token("b"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ev = wa.wait_for("poll.vote_removed").await;
    assert_eq!(ev["poll"]["vote_count"], 0);
    assert!(
        app.audit_entries()
            .await
            .iter()
            .any(|e| e["object"]["kind"] == "poll_vote"),
        "votes are audited"
    );
}

async fn unique_votes_replace_and_vote_limits_refuse(db: Db) {
    let app = TestApp::spawn(db).await;
    poll_in_channel(
        &app,
        json!({"id": "u", "name": "One only", "enforce_unique_vote": true, "options": [{"id": "1", "text": "one"}, {"id": "2", "text": "two"}, {"id": "3", "text": "three"}]}),
    )
    .await;
    let mut wa = app.connect("a").await;
    app.post(
        &format!(
            "/channels/messaging/p/query?connection_id={}",
            wa.connection_id
        ),
        &app.token("a"),
        json!({"watch": true}),
    )
    .await;
    assert_eq!(vote(&app, "b", "u", json!({"option_id": "1"})).await.0, 201);
    let (status, body) = vote(&app, "b", "u", json!({"option_id": "2"})).await;
    assert_eq!(status, 201, "{body}");
    let ev = wa.wait_for("poll.vote_changed").await;
    assert_eq!(ev["poll"]["vote_counts_by_option"], json!({"2": 1}));
    let (status, body) = vote(&app, "b", "u", json!({"option_id": "nope"})).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");

    let (status, limited) = app
        .post(
            "/polls",
            &app.token("a"),
            json!({"id": "two", "name": "Pick two", "max_votes_allowed": 2, "options": [{"id": "1", "text": "one"}, {"id": "2", "text": "two"}, {"id": "3", "text": "three"}]}),
        )
        .await;
    assert_eq!(status, 201, "{limited}");
    app.send(
        "messaging:p",
        "a",
        json!({"id": "pm2", "text": "vote", "poll_id": "two"}),
    )
    .await;
    let at = |opt: &str| {
        let app = &app;
        let opt = opt.to_string();
        async move {
            app.post(
                "/messages/pm2/polls/two/vote",
                &app.token("b"),
                json!({"vote": {"option_id": opt}}),
            )
            .await
        }
    };
    assert_eq!(at("1").await.0, 201);
    let (status, again) = at("1").await;
    assert_eq!(
        status, 201,
        "voting twice for one option is idempotent: {again}"
    );
    assert_eq!(at("2").await.0, 201);
    let (status, body) = at("3").await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(4)), "{body}");
    let (_, got) = app.get("/polls/two", &app.token("b")).await;
    assert_eq!(got["poll"]["vote_count"], 2);
}

async fn answers_closing_and_queries(db: Db) {
    let app = TestApp::spawn(db).await;
    poll_in_channel(
        &app,
        json!({"id": "q", "name": "Thoughts?", "allow_answers": true, "voting_visibility": "anonymous", "options": [{"id": "x", "text": "x"}]}),
    )
    .await;
    let (status, first) = vote(&app, "b", "q", json!({"answer_text": "first thought"})).await;
    assert_eq!(status, 201, "{first}");
    let (_, second) = vote(&app, "b", "q", json!({"answer_text": "second thought"})).await;
    vote(&app, "a", "q", json!({"option_id": "x"})).await;
    let (status, answers) = app
        .post(
            "/polls/q/votes",
            &app.token("a"),
            json!({"filter": {"is_answer": true}}),
        )
        .await;
    assert_eq!(status, 201, "{answers}");
    let list = answers["votes"].as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "an answer replaces the earlier one: {answers}"
    );
    assert_eq!(list[0]["answer_text"], "second thought");
    assert_eq!(list[0]["id"], second["vote"]["id"]);
    assert!(
        list[0].get("user_id").is_none(),
        "anonymous polls do not name voters to others"
    );
    let (_, own) = app
        .post("/polls/q/votes", &app.token("b"), json!({"filter": {}}))
        .await;
    assert!(
        own["votes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["user_id"] == "b"),
        "one sees one's own vote: {own}"
    );

    let (status, closed) = app
        .call(
            Method::PATCH,
            "/polls/q",
            &app.token("b"),
            Some(json!({"set": {"is_closed": true}})),
        )
        .await;
    assert_eq!(status, 403, "only the creator closes a poll: {closed}");
    let (status, closed) = app
        .call(
            Method::PATCH,
            "/polls/q",
            &app.token("a"),
            Some(json!({"set": {"is_closed": true}})),
        )
        .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["poll"]["is_closed"], true);
    assert_eq!(closed["poll"]["name"], "Thoughts?");
    let (status, _) = vote(&app, "b", "q", json!({"option_id": "x"})).await;
    assert_eq!(status, 400, "a closed poll takes no votes");

    create(&app, "a", json!({"id": "other", "name": "Other"})).await;
    create(&app, "b", json!({"id": "bs", "name": "B's"})).await;
    let (status, mine) = app
        .post("/polls/query", &app.token("a"), json!({"filter": {}}))
        .await;
    assert_eq!(status, 201, "{mine}");
    let ids: Vec<&Value> = mine["polls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(
        ids,
        [&json!("other"), &json!("q")],
        "newest first, own polls"
    );
    let (_, closed_only) = app
        .post(
            "/polls/query",
            &app.token("a"),
            json!({"filter": {"is_closed": true}}),
        )
        .await;
    assert_eq!(closed_only["polls"].as_array().unwrap().len(), 1);

    let (status, opt) = app
        .post(
            "/polls/other/options",
            &app.token("a"),
            json!({"text": "added"}),
        )
        .await;
    assert_eq!(status, 201, "{opt}");
    let option_id = opt["poll_option"]["id"].as_str().unwrap().to_string();
    let (status, got) = app
        .get(
            &format!("/polls/other/options/{option_id}"),
            &app.token("a"),
        )
        .await;
    assert_eq!(
        (status, &got["poll_option"]["text"]),
        (200, &json!("added"))
    );
    let (status, _) = app
        .call(
            Method::PUT,
            "/polls/other/options",
            &app.token("a"),
            Some(json!({"id": option_id, "text": "renamed"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/polls/other/options/{option_id}"),
            &app.token("a"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(
            Method::PUT,
            "/polls",
            &app.token("a"),
            Some(json!({"id": "other", "name": "Renamed", "description": "d"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(Method::DELETE, "/polls/other", &app.token("a"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/polls/other", &app.token("a")).await;
    assert_eq!(status, 404);
}

async fn poll_access_follows_the_channel_it_is_on(db: Db) {
    let app = TestApp::spawn(db).await;
    poll_in_channel(
        &app,
        json!({"id": "secret", "name": "Members only", "options": [{"id": "o", "text": "o"}]}),
    )
    .await;
    let (status, body) = app.get("/polls/secret", &app.token("c")).await;
    assert_eq!(status, 404, "a non-member does not see the poll: {body}");
    let (status, body) = vote(&app, "c", "secret", json!({"option_id": "o"})).await;
    assert_eq!(status, 403, "{body}");
    let (_, q) = app
        .post("/polls/secret/votes", &app.token("c"), json!({}))
        .await;
    assert_eq!(q["code"], 16);

    let unattached = create(&app, "c", json!({"name": "c's own"})).await;
    let (status, body) = app
        .post(
            "/channels/messaging/p/message",
            &app.token("a"),
            json!({"message": {"text": "steal", "poll_id": unattached["id"]}}),
        )
        .await;
    assert_eq!(
        status, 404,
        "another user's unsent poll stays hidden: {body}"
    );
    let (status, body) = app
        .post(
            "/channels/messaging/p/message",
            &app.token("a"),
            json!({"message": {"text": "again", "poll_id": "secret"}}),
        )
        .await;
    assert_eq!(status, 400, "a poll goes on one message: {body}");

    app.post(
        "/users",
        &app.server_token(),
        json!({"users": {"g": {"id": "g", "role": "guest"}}}),
    )
    .await;
    let (status, body) = app
        .post("/polls", &app.token("g"), json!({"name": "guest poll"}))
        .await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(17)), "{body}");

    let (status, body) = app
        .post(
            "/channels/livestream/show/query",
            &app.token("a"),
            json!({"data": {}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mine = create(&app, "a", json!({"name": "on a livestream"})).await;
    let (status, body) = app
        .post(
            "/channels/livestream/show/message",
            &app.token("a"),
            json!({"message": {"text": "x", "poll_id": mine["id"]}}),
        )
        .await;
    assert_eq!(status, 400, "livestream channels have no polls: {body}");
}

async fn poll_texts_are_sealed_and_shredded_with_their_author(db: Db) {
    let app = TestApp::spawn(db).await;
    poll_in_channel(
        &app,
        json!({"id": "s", "name": format!("name {MARKER}"), "allow_answers": true, "options": [{"id": "o", "text": format!("option {MARKER}")}]}),
    )
    .await;
    let (status, _) = vote(
        &app,
        "b",
        "s",
        json!({"answer_text": format!("answer {MARKER}")}),
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        !raw_database_contains(&app, db, MARKER).await,
        "poll texts and answers are sealed at rest"
    );
    ward::crypto::shred_user(
        app.state.crypto.as_deref().unwrap(),
        &*app.state.store.messages,
        &*app.state.audit,
        "b",
    )
    .await
    .unwrap();
    let (status, got) = app.get("/polls/s", &app.token("a")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["poll"]["name"], format!("name {MARKER}"));
    assert_eq!(
        got["poll"]["latest_answers"][0]["answer_text"], "",
        "the voter's answer is shredded with their key"
    );
    ward::crypto::shred_user(
        app.state.crypto.as_deref().unwrap(),
        &*app.state.store.messages,
        &*app.state.audit,
        "a",
    )
    .await
    .unwrap();
    let (_, got) = app.get("/polls/s", &app.token("b")).await;
    assert_eq!(got["poll"]["erased"], true, "{got}");
    assert_eq!(got["poll"]["name"], "");
    assert_eq!(got["poll"]["options"][0]["text"], "");
}

async fn hostile_poll_input_is_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    let long = "x".repeat(300);
    let many: Vec<Value> = (0..101).map(|i| json!({"text": format!("o{i}")})).collect();
    for body in [
        json!({}),
        json!({"name": 5}),
        json!({"name": ""}),
        json!({"name": long}),
        json!({"name": "ctl\u{0007}"}),
        json!({"name": "n", "options": "no"}),
        json!({"name": "n", "options": [5]}),
        json!({"name": "n", "options": [{"text": ""}]}),
        json!({"name": "n", "options": [{"text": "a"}, {"text": "A"}]}),
        json!({"name": "n", "options": many}),
        json!({"name": "n", "max_votes_allowed": 0}),
        json!({"name": "n", "max_votes_allowed": "3"}),
        json!({"name": "n", "voting_visibility": "secret"}),
        json!({"name": "n", "enforce_unique_vote": "yes"}),
        json!({"name": "n", "id": "bad id"}),
        json!({"name": "n", "blob": "y".repeat(6000)}),
    ] {
        let (status, reply) = app.post("/polls", &app.token("a"), body.clone()).await;
        assert_eq!(
            (status, reply["code"].as_i64()),
            (400, Some(4)),
            "{body} → {reply}"
        );
    }
    let (status, _) = app
        .call(
            Method::PATCH,
            "/polls/none",
            &app.token("a"),
            Some(json!({"set": []})),
        )
        .await;
    assert_eq!(status, 404);
    create(&app, "a", json!({"id": "ok", "name": "fine"})).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            "/polls/ok",
            &app.token("a"),
            Some(json!({"set": [1]})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post(
            "/polls/query",
            &app.token("a"),
            json!({"filter": {"name": {"$regex": "x"}}}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .post("/polls/query", &app.token("a"), json!({"next": "zz"}))
        .await;
    assert_eq!(status, 400);
}
