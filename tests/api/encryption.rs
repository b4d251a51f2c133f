//! Field encryption end to end: nothing classified reaches the database in plaintext, search
//! still finds words, tampering is caught, and shredding a user leaves tombstones.

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Row};

use crate::helpers::{Db, TestApp, on_both_databases};

const MARKER: &str = "PHICANARY7731";

/// Every stored value of the chat tables, as text, read with plain SQL (or the SQLite file's
/// bytes, WAL included).
pub(crate) async fn raw_database_contains(app: &TestApp, db: Db, needle: &str) -> bool {
    let url = &app.state.config.database_url;
    match db {
        Db::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            [path.to_string(), format!("{path}-wal")].iter().any(|p| {
                std::fs::read(p)
                    .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            })
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let mut found = false;
            for table in [
                "users",
                "channels",
                "messages",
                "reactions",
                "channel_members",
                "channel_reads",
                "message_search_tokens",
            ] {
                let rows = sqlx::query(AssertSqlSafe(format!(
                    "SELECT t::text AS row FROM {table} t"
                )))
                .fetch_all(&pool)
                .await
                .unwrap();
                found |= rows
                    .iter()
                    .any(|r| r.get::<String, _>("row").contains(needle));
            }
            pool.close().await;
            found
        }
    }
}

async fn classified_fields_never_reach_the_database_in_plaintext(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, _) = app
        .post("/users", &app.server_token(), json!({"users": {"pat": {"id": "pat", "name": format!("Pat {MARKER}")}, "doc": {"id": "doc"}}}))
        .await;
    assert_eq!(status, 201);
    app.post(
        "/channels/messaging/ward/query",
        &app.token("doc"),
        json!({"data": {"members": ["doc", "pat"], "name": format!("Ward {MARKER}")}}),
    )
    .await;
    let m = app.send("messaging:ward", "doc", json!({"text": format!("biopsy {MARKER} result"), "attachments": [{"type": "file", "title": MARKER}], "note": MARKER})).await;
    app.post(
        &format!("/messages/{}/reaction", m["id"].as_str().unwrap()),
        &app.token("pat"),
        json!({"reaction": {"type": "like", "comment": MARKER}}),
    )
    .await;

    assert!(
        !raw_database_contains(&app, db, MARKER).await,
        "the marker is in the raw database"
    );

    // The API still serves plaintext to authorised callers, and search finds the word.
    let (_, state) = app
        .post(
            "/channels/messaging/ward/query",
            &app.token("pat"),
            json!({}),
        )
        .await;
    assert_eq!(state["channel"]["name"], format!("Ward {MARKER}"));
    assert_eq!(
        state["messages"][0]["text"],
        format!("biopsy {MARKER} result")
    );
    assert_eq!(state["messages"][0]["attachments"][0]["title"], MARKER);
    assert_eq!(
        state["messages"][0]["latest_reactions"][0]["comment"],
        MARKER
    );
    let (_, found) = app
        .get_payload(
            "/search",
            &app.token("pat"),
            json!({"filter_conditions": {"cid": "messaging:ward"}, "query": MARKER.to_lowercase()}),
        )
        .await;
    assert_eq!(found["results"].as_array().unwrap().len(), 1, "{found}");
    let (_, found) = app
        .get_payload(
            "/search",
            &app.token("pat"),
            json!({"filter_conditions": {"cid": "messaging:ward"}, "query": "biopsy result"}),
        )
        .await;
    assert_eq!(
        found["results"].as_array().unwrap().len(),
        1,
        "every word must match: {found}"
    );
    let (_, found) = app
        .get_payload(
            "/search",
            &app.token("pat"),
            json!({"filter_conditions": {"cid": "messaging:ward"}, "query": "biopsy absent"}),
        )
        .await;
    assert!(found["results"].as_array().unwrap().is_empty());
    let (_, users) = app
        .get_payload(
            "/users",
            &app.token("doc"),
            json!({"filter_conditions": {"id": "pat"}}),
        )
        .await;
    assert_eq!(users["users"][0]["name"], format!("Pat {MARKER}"));
}

async fn a_ciphertext_moved_to_another_row_fails_loudly_not_as_garbage(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a"]).await;
    app.channel("c", "a", &["a"]).await;
    app.send(
        "messaging:c",
        "a",
        json!({"id": "one", "text": "first secret"}),
    )
    .await;
    app.send("messaging:c", "a", json!({"id": "two", "text": "second"}))
        .await;
    let copy =
        "UPDATE messages SET text = (SELECT text FROM messages WHERE id = 'one') WHERE id = 'two'";
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.state.config.database_url)
                .await
                .unwrap();
            sqlx::query(copy).execute(&pool).await.unwrap();
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&app.state.config.database_url)
                .await
                .unwrap();
            sqlx::query(copy).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let (status, body) = app.get("/messages/two", &app.token("a")).await;
    assert_eq!(
        (status, body["code"].as_i64().unwrap()),
        (500, -1),
        "{body}"
    );
    assert!(!body.to_string().contains("first secret"));
    assert_eq!(
        app.get("/messages/one", &app.token("a")).await.0,
        200,
        "the original still reads"
    );
}

async fn shredding_a_user_leaves_tombstones_and_spares_everyone_else(db: Db) {
    let app = TestApp::spawn(db).await;
    let (status, _) = app.post("/users", &app.server_token(), json!({"users": {"leaver": {"id": "leaver", "name": "Leaving Person"}, "stayer": {"id": "stayer", "name": "Staying Person"}}})).await;
    assert_eq!(status, 201);
    app.channel("room", "stayer", &["stayer", "leaver"]).await;
    let gone = app
        .send(
            "messaging:room",
            "leaver",
            json!({"text": "tumour marker elevated", "note": "x"}),
        )
        .await;
    let kept = app
        .send(
            "messaging:room",
            "stayer",
            json!({"text": "tumour board on friday"}),
        )
        .await;

    let destroyed = ward::crypto::shred_user(
        app.state.crypto.as_deref().unwrap(),
        &*app.state.store.messages,
        &*app.state.audit,
        "leaver",
    )
    .await
    .unwrap();
    assert!(destroyed >= 1);

    let (status, body) = app
        .get(
            &format!("/messages/{}", gone["id"].as_str().unwrap()),
            &app.token("stayer"),
        )
        .await;
    assert_eq!(
        status, 200,
        "a shredded message is a tombstone, not an error: {body}"
    );
    assert_eq!(body["message"]["text"], "");
    assert_eq!(body["message"]["erased"], true);
    assert!(body["message"].get("note").is_none());
    let (_, body) = app
        .get(
            &format!("/messages/{}", kept["id"].as_str().unwrap()),
            &app.token("stayer"),
        )
        .await;
    assert_eq!(
        body["message"]["text"], "tumour board on friday",
        "other subjects are unaffected"
    );

    let (_, found) = app
        .get_payload(
            "/search",
            &app.token("stayer"),
            json!({"filter_conditions": {"cid": "messaging:room"}, "query": "tumour"}),
        )
        .await;
    let ids: Vec<&Value> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["message"]["id"])
        .collect();
    assert_eq!(
        ids,
        [&kept["id"]],
        "search no longer returns the shredded user's messages"
    );

    let (_, users) = app.get_payload("/users", &app.token("stayer"), json!({"filter_conditions": {"id": {"$in": ["leaver", "stayer"]}}, "sort": [{"field": "id", "direction": 1}]})).await;
    assert_eq!(users["users"][0]["erased"], true);
    assert!(users["users"][0].get("name").is_none());
    assert_eq!(users["users"][1]["name"], "Staying Person");
    assert!(
        app.audit_entries()
            .await
            .iter()
            .any(|e| e["event"] == "key.operation"
                && e["meta"]["operation"] == "shred"
                && e["subject"]["id"] == "leaver"),
        "the shredding is recorded in the audit log"
    );
}

async fn raw_text(app: &TestApp, db: Db, id: &str) -> String {
    let sql = format!("SELECT text FROM messages WHERE id = '{id}'");
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.state.config.database_url)
                .await
                .unwrap();
            sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&app.state.config.database_url)
                .await
                .unwrap();
            let t = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            t
        }
    }
}

async fn key_rotation_keeps_everything_readable_and_resumes(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["a", "b"]).await;
    app.channel("rot", "a", &["a", "b"]).await;
    for i in 0..5 {
        app.send(
            "messaging:rot",
            "a",
            json!({"id": format!("a{i}"), "text": format!("from a {i}")}),
        )
        .await;
    }
    app.send("messaging:rot", "b", json!({"id": "b0", "text": "from b"}))
        .await;
    let crypto = app.state.crypto.clone().unwrap();
    let audit = ward::audit::MemorySink::new();

    // KEK rotation: every DEK re-wrapped, nothing re-encrypted.
    let before = raw_text(&app, db, "a0").await;
    let (_, _, rewrapped) = ward::crypto::rotation::rotate_kek(&crypto, &audit)
        .await
        .unwrap();
    assert!(rewrapped >= 3, "a's, b's and the index key: {rewrapped}");
    assert_eq!(raw_text(&app, db, "a0").await, before, "data untouched");

    // DEK rotation of a, interrupted after the first page entry, then resumed.
    let store = &app.state.store;
    crypto.keyring.rotate_dek("user:a").await.unwrap();
    store
        .settings
        .upsert_setting("reencrypt:user:a", "a0")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let done =
        ward::crypto::rotation::rotate_dek(store, &crypto, &audit, "user:a", |n| seen.push(n))
            .await
            .unwrap();
    assert_eq!(
        done, 5,
        "the profile and the four messages after the cursor"
    );
    assert!(!seen.is_empty(), "progress is reported");
    assert_eq!(
        raw_text(&app, db, "a0").await,
        before,
        "the cursor was honoured: a0 was not redone"
    );
    assert_ne!(raw_text(&app, db, "a1").await, before);
    assert_eq!(
        store
            .settings
            .find_setting("reencrypt:user:a")
            .await
            .unwrap(),
        None,
        "the job finished"
    );

    // A fresh keyring (a restart) reads everything through the rotated keys.
    let (fresh, _) = ward::app::open_crypto(
        &app.state.config,
        ward::store::Store::connect(&app.state.config.database_url)
            .await
            .unwrap(),
        std::sync::Arc::new(ward::audit::MemorySink::new()),
        ward::app::open_root(&app.state.config).unwrap(),
    )
    .unwrap();
    for (id, text) in [("a0", "from a 0"), ("a4", "from a 4"), ("b0", "from b")] {
        assert_eq!(
            fresh.messages.find_message(id).await.unwrap().unwrap().text,
            text
        );
    }
    let (_, found) = app
        .get_payload(
            "/search",
            &app.token("b"),
            json!({"filter_conditions": {"cid": "messaging:rot"}, "query": "from"}),
        )
        .await;
    assert_eq!(found["results"].as_array().unwrap().len(), 6);
    assert_eq!(audit.recent().len(), 2, "both rotations are recorded");

    // The CLI does the same against the same data dir and database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["keys", "rotate-kek"])
        .env("WARD_DATABASE_URL", &app.state.config.database_url)
        .env("WARD_DATA_DIR", &app.state.config.data_dir)
        .env_remove("WARD_API_KEY")
        .env_remove("WARD_API_SECRET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (fresh, _) = ward::app::open_crypto(
        &app.state.config,
        ward::store::Store::connect(&app.state.config.database_url)
            .await
            .unwrap(),
        std::sync::Arc::new(ward::audit::MemorySink::new()),
        ward::app::open_root(&app.state.config).unwrap(),
    )
    .unwrap();
    assert_eq!(
        fresh
            .messages
            .find_message("b0")
            .await
            .unwrap()
            .unwrap()
            .text,
        "from b"
    );
}

on_both_databases!(
    key_rotation_keeps_everything_readable_and_resumes,
    classified_fields_never_reach_the_database_in_plaintext,
    a_ciphertext_moved_to_another_row_fails_loudly_not_as_garbage,
    shredding_a_user_leaves_tombstones_and_spares_everyone_else,
);
