//! Revocation reaches every node: deleting, erasing, deactivating or deprovisioning a user,
//! revoking their tokens (per user and app-wide) or their session, made through node A,
//! closes their sockets on node A and on node B within 1 s, and neither socket receives
//! anything sent after the call returned. Deactivated users are refused whatever their
//! token; reactivation gives access back. Shredding on A evicts B's cached key.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    Db, RedisServer, SECRET, TestApp, WsStream, eventually, on_both_databases, redis_url,
    url_encode,
};
use ward::auth::token;

on_both_databases!(
    hard_delete_two_nodes,
    hard_delete_one_node,
    erase_two_nodes,
    erase_one_node,
    deactivate_two_nodes,
    deactivate_one_node,
    deprovision_two_nodes,
    deprovision_one_node,
    revoke_user_tokens_two_nodes,
    revoke_user_tokens_one_node,
    revoke_app_tokens_two_nodes,
    revoke_app_tokens_one_node,
    revoke_session_two_nodes,
    revoke_session_one_node,
    shredding_on_one_node_evicts_the_key_on_the_other,
    deactivation_endpoints_are_server_side_only_and_audited,
    with_the_bus_down_nodes_refuse_from_the_database_and_recheck_open_sockets,
);

const PASSWORD: &str = "correct horse battery staple";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    HardDelete,
    Erase,
    Deactivate,
    Deprovision,
    RevokeUserTokens,
    RevokeAppTokens,
    RevokeSession,
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A user token with an `iat` claim, as `createToken(user, undefined, iat)` makes it.
fn token_at(user: &str, iat: i64) -> String {
    token::sign(&json!({"user_id": user, "iat": iat}), SECRET.as_bytes())
}

async fn bus_is_up(app: &TestApp) -> bool {
    app.get("/healthz", "").await.1["bus"] == "up"
}

async fn nodes(db: Db, n: usize) -> Vec<TestApp> {
    if n == 1 {
        return vec![TestApp::spawn(db).await];
    }
    let nodes = TestApp::spawn_cluster(db, n, &redis_url(), |_| {}).await;
    for node in &nodes {
        eventually(10, "every node joined the bus", async || {
            bus_is_up(node).await
        })
        .await;
    }
    nodes
}

/// Opens a socket for `user` with `token` on `app` and watches the test channel.
async fn connect_watching(app: &TestApp, user: &str, token: &str) -> WsStream {
    let (ws, first) = app.connect_raw(user, token).await;
    assert_eq!(first["type"], "health.check", "{first}");
    let conn = first["connection_id"].as_str().unwrap();
    let (status, body) = app
        .post(
            &format!("/channels/messaging/ward/query?connection_id={conn}"),
            token,
            json!({"watch": true, "state": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    ws
}

/// Whether a WebSocket connect with `token` is refused (an error frame, then close).
async fn connect_refused(app: &TestApp, user: &str, token: &str) -> bool {
    let (_, first) = app.connect_raw(user, token).await;
    first.get("error").is_some()
}

/// Reads a socket until the server closes it: when the close arrived, its code, and every
/// event received.
async fn until_closed(mut ws: WsStream) -> (Instant, u16, Vec<Value>) {
    let mut events = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("the revoked socket is closed");
        match msg {
            Some(Ok(Message::Text(t))) => events.push(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return (
                    Instant::now(),
                    frame.map_or(1005, |f| f.code.into()),
                    events,
                );
            }
            None | Some(Err(_)) => return (Instant::now(), 1006, events),
            Some(Ok(_)) => {}
        }
    }
}

async fn send_as(app: &TestApp, token: &str, id: &str) {
    let (status, body) = app
        .post(
            "/channels/messaging/ward/message",
            token,
            json!({"message": {"id": id, "text": "sent after the revocation returned"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Logs `user` in with a password on `app`; returns the session cookie.
async fn login(app: &TestApp, user: &str) -> String {
    let hash = ward::auth::password::hash(PASSWORD).unwrap();
    app.state
        .store
        .identity
        .upsert_password(user, &hash, 0, &[])
        .await
        .unwrap();
    let res = app
        .http
        .post(format!(
            "{}/auth/login?api_key={}",
            app.base,
            crate::helpers::KEY
        ))
        .json(&json!({"user_id": user, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("ward_session="))
        .expect("a session cookie")
}

async fn with_cookie(app: &TestApp, path: &str, cookie: &str) -> (u16, Value) {
    let res = app
        .http
        .post(format!(
            "{}{path}?api_key={}",
            app.base,
            crate::helpers::KEY
        ))
        .header("cookie", cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Makes the revocation through `a`; returns once the call has returned.
async fn revoke(a: &TestApp, kind: Kind, cutoff: i64, cookie: Option<&str>) {
    let server = a.server_token();
    let before = ward::time::rfc3339(cutoff * 1_000_000);
    let (status, body) = match kind {
        Kind::HardDelete => {
            a.call(
                reqwest::Method::DELETE,
                "/users/alice?hard_delete=true",
                &server,
                None,
            )
            .await
        }
        Kind::Erase => {
            a.call(reqwest::Method::DELETE, "/users/alice", &server, None)
                .await
        }
        Kind::Deactivate => a.post("/users/alice/deactivate", &server, json!({})).await,
        Kind::Deprovision => {
            a.post("/admin/users/alice/deprovision", &server, json!({}))
                .await
        }
        Kind::RevokeUserTokens => {
            a.call(
                reqwest::Method::PATCH,
                "/users",
                &server,
                Some(json!({"users": [{"id": "alice", "set": {"revoke_tokens_issued_before": before}}]})),
            )
            .await
        }
        Kind::RevokeAppTokens => {
            a.call(
                reqwest::Method::PATCH,
                "/app",
                &server,
                Some(json!({"revoke_tokens_issued_before": before})),
            )
            .await
        }
        Kind::RevokeSession => with_cookie(a, "/auth/logout", cookie.unwrap()).await,
    };
    assert!((200..300).contains(&status), "{kind:?}: {status} {body}");
}

async fn revocation_closes_sockets_everywhere(db: Db, kind: Kind, n: usize) {
    let cluster = nodes(db, n).await;
    let (a, b) = (&cluster[0], cluster.last().unwrap());
    a.users(&["alice", "bob"]).await;
    a.channel("ward", "bob", &["alice", "bob"]).await;
    // Tokens issued before the cut-off are revoked; those issued at or after it are not.
    let cutoff = now_secs();
    let fresh = |user: &str| token_at(user, cutoff + 1);
    let (old, cookie) = match kind {
        Kind::RevokeSession => {
            let cookie = login(a, "alice").await;
            let (status, minted) = with_cookie(a, "/auth/chat-token", &cookie).await;
            assert_eq!(status, 201, "{minted}");
            (minted["token"].as_str().unwrap().to_string(), Some(cookie))
        }
        _ => (token_at("alice", cutoff - 10), None),
    };
    // Alice on the node the call goes through and on the other one (the same node when
    // there is one); bob watches on the other node.
    let near = connect_watching(a, "alice", &old).await;
    let far = connect_watching(b, "alice", &old).await;
    let bob_token = fresh("bob");
    let (bob_ws, first) = b.connect_raw("bob", &bob_token).await;
    let mut bob = crate::helpers::Ws {
        connection_id: first["connection_id"].as_str().unwrap().to_string(),
        me: first["me"].clone(),
        stream: bob_ws,
    };
    let (status, _) = b
        .post(
            &format!(
                "/channels/messaging/ward/query?connection_id={}",
                bob.connection_id
            ),
            &bob_token,
            json!({"watch": true}),
        )
        .await;
    assert_eq!(status, 201);
    // A token revocation spares sockets opened with a token issued after the cut-off.
    let survivor = match kind {
        Kind::RevokeUserTokens | Kind::RevokeAppTokens => {
            Some(connect_watching(b, "alice", &fresh("alice")).await)
        }
        _ => None,
    };
    if n > 1 {
        eventually(5, "node a knows alice's socket on node b", async || {
            a.state.bus.remote_connection_count() >= 2
        })
        .await;
    }

    let near = tokio::spawn(until_closed(near));
    let far = tokio::spawn(until_closed(far));
    revoke(a, kind, cutoff, cookie.as_deref()).await;
    let returned = Instant::now();
    // Sent at once, through both nodes: the revoked sockets must get neither.
    send_as(b, &bob_token, "after-b").await;
    send_as(a, &bob_token, "after-a").await;

    for (name, socket) in [("same node", near), ("other node", far)] {
        let (closed_at, code, events) = socket.await.unwrap();
        let late: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e["message"]["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("after"))
            })
            .collect();
        assert!(
            late.is_empty(),
            "{kind:?}, {name}: a revoked socket received {late:?}"
        );
        let took = closed_at.saturating_duration_since(returned);
        assert!(
            took < Duration::from_secs(1),
            "{kind:?}, {name}: closed {took:?} after the call returned"
        );
        assert_eq!(code, 1008, "{kind:?}, {name}: closed as revoked");
    }
    // The events were sent and delivered: bob (and a socket with a fresh token) got both.
    for id in ["after-b", "after-a"] {
        bob.wait_for_where("message.new", |e| e["message"]["id"] == id)
            .await;
    }
    if let Some(stream) = survivor {
        let mut survivor = crate::helpers::Ws {
            stream,
            connection_id: String::new(),
            me: Value::Null,
        };
        for id in ["after-b", "after-a"] {
            survivor
                .wait_for_where("message.new", |e| e["message"]["id"] == id)
                .await;
        }
    }

    // The revoked token is refused on both nodes, on REST and WebSocket.
    for node in [a, b] {
        let (status, body) = node.get("/users", &old).await;
        assert_eq!(status, 401, "{kind:?}: {body}");
        assert!(connect_refused(node, "alice", &old).await, "{kind:?}");
    }
    match kind {
        Kind::Deactivate | Kind::Deprovision | Kind::Erase => {
            // Deactivated (or deleted) users are refused whatever their token.
            let (status, _) = b.get("/users", &fresh("alice")).await;
            assert_eq!(status, 401, "{kind:?}: a fresh token is refused");
            assert!(
                connect_refused(b, "alice", &fresh("alice")).await,
                "{kind:?}"
            );
        }
        Kind::RevokeUserTokens | Kind::RevokeAppTokens => {
            let (status, _) = b.get("/users", &fresh("alice")).await;
            assert_eq!(
                status, 200,
                "{kind:?}: a token issued after the cut-off works"
            );
        }
        _ => {}
    }
    if kind == Kind::Deactivate {
        let (status, body) = a
            .post("/users/alice/reactivate", &a.server_token(), json!({}))
            .await;
        assert_eq!(status, 201, "{body}");
        assert!(body["user"].get("deactivated_at").is_none(), "{body}");
        let (status, _) = b.get("/users", &fresh("alice")).await;
        assert_eq!(status, 200, "reactivation restores access");
        let (_, first) = b.connect_raw("alice", &fresh("alice")).await;
        assert_eq!(first["type"], "health.check", "{first}");
    }
}

macro_rules! scenario {
    ($($name:ident => $kind:expr, $n:expr;)*) => {
        $(
            async fn $name(db: Db) {
                revocation_closes_sockets_everywhere(db, $kind, $n).await
            }
        )*
    };
}

scenario! {
    hard_delete_two_nodes => Kind::HardDelete, 2;
    hard_delete_one_node => Kind::HardDelete, 1;
    erase_two_nodes => Kind::Erase, 2;
    erase_one_node => Kind::Erase, 1;
    deactivate_two_nodes => Kind::Deactivate, 2;
    deactivate_one_node => Kind::Deactivate, 1;
    deprovision_two_nodes => Kind::Deprovision, 2;
    deprovision_one_node => Kind::Deprovision, 1;
    revoke_user_tokens_two_nodes => Kind::RevokeUserTokens, 2;
    revoke_user_tokens_one_node => Kind::RevokeUserTokens, 1;
    revoke_app_tokens_two_nodes => Kind::RevokeAppTokens, 2;
    revoke_app_tokens_one_node => Kind::RevokeAppTokens, 1;
    revoke_session_two_nodes => Kind::RevokeSession, 2;
    revoke_session_one_node => Kind::RevokeSession, 1;
}

async fn shredding_on_one_node_evicts_the_key_on_the_other(db: Db) {
    let cluster = nodes(db, 2).await;
    let (a, b) = (&cluster[0], &cluster[1]);
    a.users(&["alice"]).await;
    let field = ward::crypto::frame::Field {
        table: "messages",
        column: "text",
        row_id: "m-1",
    };
    let sealed = a
        .state
        .crypto
        .as_ref()
        .unwrap()
        .seal_text("user:alice", field, "diagnosis: confidential")
        .await
        .unwrap();
    // Node b reads it: its keyring now caches alice's key.
    let b_crypto = b.state.crypto.as_ref().unwrap();
    let opened = b_crypto.open_text(field, &sealed).await.unwrap();
    assert!(
        matches!(&opened, ward::crypto::fields::Opened::Plain(t) if t == "diagnosis: confidential"),
        "node b reads the value before the erasure"
    );
    let (status, body) = a
        .call(
            reqwest::Method::DELETE,
            "/users/alice",
            &a.server_token(),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["erasure"]["keys_destroyed"].as_u64().unwrap() >= 1);
    // Right after the erasure returns, node b no longer has the key.
    assert!(
        matches!(
            b_crypto.open_text(field, &sealed).await.unwrap(),
            ward::crypto::fields::Opened::Shredded
        ),
        "node b does not serve the shredded subject's plaintext from its cache"
    );
}

async fn deactivation_endpoints_are_server_side_only_and_audited(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["alice", "bob", "carol"]).await;
    let server = app.server_token();
    // A user token (even an admin's) cannot deactivate anyone.
    let (status, body) = app
        .post("/users/bob/deactivate", &app.token("alice"), json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], 17);
    let (status, _) = app
        .post("/users/nobody/deactivate", &server, json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(
            "/users/bob/deactivate",
            &server,
            json!({"mark_messages_deleted": true}),
        )
        .await;
    assert_eq!(status, 400, "unsupported options are refused, not ignored");

    // A presence subscriber hears about the deactivation.
    let mut watcher = app.connect("carol").await;
    let payload = json!({"filter_conditions": {"id": {"$in": ["bob"]}}, "presence": true});
    let (status, _) = app
        .get(
            &format!(
                "/users?connection_id={}&payload={}",
                watcher.connection_id,
                url_encode(&payload.to_string())
            ),
            &app.token("carol"),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            "/users/bob/deactivate",
            &server,
            json!({"created_by_id": "alice"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["user"]["deactivated_at"].is_string(), "{body}");
    let ev = watcher.wait_for("user.deactivated").await;
    assert_eq!(ev["user"]["id"], "bob");
    assert_eq!(ev["created_by"]["id"], "alice");

    // The batch form runs as a task.
    let (status, body) = app
        .post("/users/deactivate", &server, json!({"user_ids": ["carol"]}))
        .await;
    assert_eq!(status, 201, "{body}");
    let task = body["task_id"].as_str().unwrap().to_string();
    eventually(10, "the deactivation task completes", async || {
        app.get(&format!("/tasks/{task}"), &server).await.1["status"] == "completed"
    })
    .await;
    let (status, _) = app.get("/users", &app.token("carol")).await;
    assert_eq!(status, 401, "carol was deactivated by the task");
    let (status, body) = app
        .post(
            "/users/reactivate",
            &server,
            json!({"user_ids": ["carol", "bob"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let task = body["task_id"].as_str().unwrap().to_string();
    eventually(10, "the reactivation task completes", async || {
        app.get(&format!("/tasks/{task}"), &server).await.1["status"] == "completed"
    })
    .await;
    for user in ["bob", "carol"] {
        let (status, _) = app.get("/users", &app.token(user)).await;
        assert_eq!(status, 200, "{user} was reactivated by the task");
    }

    // Soft-deleted users come back with restore (with tokens issued afterwards).
    let (status, _) = app
        .call(reqwest::Method::DELETE, "/users/bob", &server, None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post("/users/restore", &server, json!({"user_ids": ["bob"]}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = app.get("/users", &token_at("bob", now_secs() + 2)).await;
    assert_eq!(status, 200, "a restored user is let in again");
    let (status, _) = app
        .post("/users/restore", &server, json!({"user_ids": ["bob"]}))
        .await;
    assert_eq!(status, 400, "only deleted users can be restored");

    let entries = app.audit_entries().await;
    for state in ["deactivated", "reactivated", "restored"] {
        assert!(
            entries
                .iter()
                .any(|e| e["event"] == "user.state" && e["meta"]["state"] == state),
            "a user.state entry for {state}"
        );
    }
}

async fn with_the_bus_down_nodes_refuse_from_the_database_and_recheck_open_sockets(db: Db) {
    let mut redis = RedisServer::start().await;
    let cluster = TestApp::spawn_cluster(db, 2, &redis.url(), |_| {}).await;
    let (a, b) = (&cluster[0], &cluster[1]);
    for node in [a, b] {
        eventually(10, "every node joined the bus", async || {
            bus_is_up(node).await
        })
        .await;
    }
    a.users(&["alice", "bob"]).await;
    a.channel("ward", "bob", &["alice", "bob"]).await;
    let far = connect_watching(b, "alice", &a.token("alice")).await;

    redis.stop();
    for node in [a, b] {
        eventually(10, "every node sees the bus down", async || {
            node.get("/healthz", "").await.1["status"] == "degraded"
        })
        .await;
    }
    let far = tokio::spawn(until_closed(far));
    let (status, body) = a
        .post("/users/alice/deactivate", &a.server_token(), json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let returned = Instant::now();
    // Node b never heard of it, but reads the database: refused at once.
    let (status, _) = b.get("/users", &a.token("alice")).await;
    assert_eq!(
        status, 401,
        "node b refuses a deactivated user from the database"
    );
    assert!(connect_refused(b, "alice", &a.token("alice")).await);
    // ... and its periodic re-check closes the open socket within 5 s.
    let (closed_at, code, _) = far.await.unwrap();
    let took = closed_at.saturating_duration_since(returned);
    assert!(
        took < Duration::from_secs(5),
        "closed {took:?} after the call returned"
    );
    assert_eq!(code, 1008);
}

/// The time from a revocation call returning on node A to the socket closing on node B,
/// over 100 runs (deactivate, then reactivate for the next run). Run by hand:
/// `cargo test --release --test api revocation::close_latency -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand"]
async fn close_latency() {
    let cluster = nodes(Db::Postgres, 2).await;
    let (a, b) = (&cluster[0], &cluster[1]);
    a.users(&["alice", "bob"]).await;
    a.channel("ward", "bob", &["alice", "bob"]).await;
    let server = a.server_token();
    let mut took = Vec::with_capacity(100);
    let mut from_start = Vec::with_capacity(100);
    for _ in 0..100 {
        let ws = connect_watching(b, "alice", &a.token("alice")).await;
        eventually(5, "node a knows alice's socket on node b", async || {
            a.state.bus.remote_connection_count() >= 1
        })
        .await;
        let closed = tokio::spawn(until_closed(ws));
        let started = Instant::now();
        let (status, _) = a.post("/users/alice/deactivate", &server, json!({})).await;
        assert_eq!(status, 201);
        let returned = Instant::now();
        let (closed_at, code, _) = closed.await.unwrap();
        assert_eq!(code, 1008);
        // Zero when the close arrived before the reply (node a waits for node b's ack).
        took.push(closed_at.saturating_duration_since(returned));
        from_start.push(closed_at.duration_since(started));
        let (status, _) = a.post("/users/alice/reactivate", &server, json!({})).await;
        assert_eq!(status, 201);
        eventually(5, "node a saw the socket go", async || {
            a.state.bus.remote_connection_count() == 0
        })
        .await;
    }
    for (what, mut v) in [
        ("call returned → socket closed on the other node", took),
        ("call sent → socket closed on the other node", from_start),
    ] {
        v.sort();
        let pct = |p: usize| v[(v.len() * p / 100).min(v.len() - 1)];
        println!(
            "revocation: {what}, {} runs: p50 {:?}, p99 {:?}, max {:?}",
            v.len(),
            pct(50),
            pct(99),
            v[v.len() - 1]
        );
    }
}
