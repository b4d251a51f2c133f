//! The verifiable audit log, end to end: every audited action leaves an entry, the exported
//! bundle verifies offline with the `ward-audit` verifier, auditors search and prove through
//! the API (and nobody else can), the tables are append-only in the database itself,
//! crypto-shredding keeps the log verifiable, and checkpoints are published outside the
//! database.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use ward_audit::bundle::{self, Bundle};
use ward_audit::checkpoint::Checkpoint;
use ward_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use ward_audit::note::Verifier;

use crate::helpers::{Db, TestApp, eventually, on_both_databases};

on_both_databases!(
    audited_actions_leave_entries_and_the_exported_log_verifies,
    entries_hold_pseudonyms_and_ciphertext_never_ids_or_text,
    auditors_search_prove_and_are_themselves_recorded,
    only_auditors_and_compliance_officers_read_the_log,
    the_audit_tables_refuse_update_and_delete,
    crypto_shredding_a_subject_leaves_the_log_verifiable,
    checkpoints_are_published_outside_the_database,
    a_database_behind_its_published_checkpoint_is_refused,
);

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| {
            STANDARD
                .decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect()
}

fn verifier(app: &TestApp) -> Verifier {
    Verifier::parse(&app.state.audit.verifier_key).unwrap()
}

async fn export(app: &TestApp, from: u64, to: u64, since: Option<u64>) -> Bundle {
    app.state.audit.sync().await.unwrap();
    ward::audit::tree::export_bundle(
        app.state.store.audit.as_ref(),
        &app.state.audit.origin,
        from,
        to,
        since,
    )
    .await
    .unwrap()
}

/// Users with app roles, created server-side.
async fn roles(app: &TestApp, users: &[(&str, &str)]) {
    let body: serde_json::Map<String, Value> = users
        .iter()
        .map(|(id, role)| (id.to_string(), json!({"id": id, "role": role})))
        .collect();
    let (status, reply) = app
        .post("/users", &app.server_token(), json!({"users": body}))
        .await;
    assert_eq!(status, 201, "{reply}");
}

fn events<'a>(entries: &'a [Value], name: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["event"] == name).collect()
}

async fn audited_actions_leave_entries_and_the_exported_log_verifies(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann", "bob", "cy"]).await;
    app.channel("ward-1", "ann", &["ann", "bob"]).await;
    let m = app
        .send("messaging:ward-1", "ann", json!({"text": "BP 120/80"}))
        .await;
    let id = m["id"].as_str().unwrap();
    let (s, _) = app
        .post(
            &format!("/messages/{id}"),
            &app.token("ann"),
            json!({"message": {"text": "BP 125/80"}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post(
            "/channels/messaging/ward-1",
            &app.token("ann"),
            json!({"add_members": ["cy"]}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post(
            "/channels/messaging/ward-1",
            &app.token("ann"),
            json!({"remove_members": ["cy"]}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post(
            "/channels/messaging/ward-1/query",
            &app.token("bob"),
            json!({"state": true}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/messages/{id}"),
            &app.token("ann"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.get("/users", "not-a-token").await;
    assert_eq!(s, 401);
    let mut ws = app.connect("bob").await;
    drop(ws.stream.close(None).await);

    let entries = app.audit_entries().await;
    let one = |name: &str, pred: &dyn Fn(&Value) -> bool| {
        assert!(
            events(&entries, name).into_iter().any(pred),
            "an entry {name} as expected in {entries:#?}"
        )
    };
    one("channel.create", &|e| {
        e["actor"]["id"] == "ann" && e["object"]["id"] == "messaging:ward-1"
    });
    one("member.add", &|e| e["subject"]["id"] == "bob");
    one("member.add", &|e| {
        e["subject"]["id"] == "cy" && e["meta"]["via"] == "client"
    });
    one("member.remove", &|e| e["subject"]["id"] == "cy");
    one("message.create", &|e| {
        e["object"]["id"] == id && e["subject"]["id"] == "ann"
    });
    one("message.update", &|e| e["object"]["id"] == id);
    one("message.delete", &|e| {
        e["object"]["id"] == id && e["meta"]["hard"] == "false"
    });
    one("message.read", &|e| {
        e["actor"]["id"] == "bob"
            && e["object"]["id"] == "messaging:ward-1"
            && e["meta"]["count"] == "1"
    });
    one("token.rejected", &|e| {
        e["outcome"] == "denied" && e["meta"]["transport"] == "rest"
    });
    one("ws.connect", &|e| {
        e["actor"]["id"] == "bob" && e["pii_state"] == "open"
    });
    one("user.upsert", &|e| {
        e["subject"]["id"] == "ann" && e["meta"]["via"] == "server"
    });
    eventually(5, "the disconnection is recorded", async || {
        events(&app.audit_entries().await, "ws.disconnect")
            .iter()
            .any(|e| e["actor"]["id"] == "bob")
    })
    .await;

    // Seqs are dense and the whole log verifies offline against the signed checkpoint.
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64);
    }
    let b = export(&app, 0, u64::MAX, None).await;
    let report = bundle::verify(&b, &verifier(&app), None).expect("the log verifies");
    assert_eq!(report.first, 0);
    assert_eq!(report.count, report.tree_size);
    assert!(report.tree_size as usize >= entries.len());

    // A middle range verifies against the same checkpoint through frontier + consistency.
    let part = export(&app, 3, 7, None).await;
    assert_eq!(part.entries.len(), 4);
    let r = bundle::verify(&part, &verifier(&app), None).expect("a range verifies");
    assert_eq!((r.first, r.count), (3, 4));

    // Round trip through the directory format.
    let dir = tempdir("bundle");
    b.write(&dir).unwrap();
    let again = Bundle::read(&dir).unwrap();
    bundle::verify(&again, &verifier(&app), None).unwrap();
    // One edited byte in the middle of the entries file is caught.
    let entries_file = dir.join("entries");
    let mut bytes = std::fs::read(&entries_file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&entries_file, bytes).unwrap();
    let tampered = Bundle::read(&dir);
    assert!(
        tampered.is_err() || bundle::verify(&tampered.unwrap(), &verifier(&app), None).is_err(),
        "an edited byte is detected"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempdir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ward_{what}_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn entries_hold_pseudonyms_and_ciphertext_never_ids_or_text(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["patient-jane-doe", "nurse-kim"]).await;
    app.channel("room-jane", "nurse-kim", &["nurse-kim", "patient-jane-doe"])
        .await;
    app.send(
        "messaging:room-jane",
        "nurse-kim",
        json!({"id": "nurse-kim-msg-1", "text": "insulin 4 units"}),
    )
    .await;
    let mut ws = app.connect("patient-jane-doe").await;
    drop(ws.stream.close(None).await);
    app.state.audit.sync().await.unwrap();
    let b = export(&app, 0, u64::MAX, None).await;
    assert!(!b.entries.is_empty());
    for e in &b.entries {
        for plain in [
            "patient-jane-doe",
            "nurse-kim",
            "room-jane",
            "insulin",
            "tungstenite",
        ] {
            assert!(!contains(e, plain), "entry bytes contain {plain:?}");
        }
    }
    // The connect entry carries the user agent only as ciphertext, opened for auditors.
    let entries = app.audit_entries().await;
    let connect = events(&entries, "ws.connect")[0];
    assert_eq!(connect["actor"]["id"], "patient-jane-doe");
    assert_eq!(connect["pii_state"], "open");
    assert!(connect["pii"]["user_agent"].is_string() || connect["pii"]["user_agent"].is_null());
}

async fn auditors_search_prove_and_are_themselves_recorded(db: Db) {
    let app = TestApp::spawn(db).await;
    roles(
        &app,
        &[("aud", "auditor"), ("ann", "user"), ("bob", "user")],
    )
    .await;
    app.channel("c1", "ann", &["ann", "bob"]).await;
    for i in 0..5 {
        app.send("messaging:c1", "ann", json!({"text": format!("m{i}")}))
            .await;
    }
    app.send("messaging:c1", "bob", json!({"text": "reply"}))
        .await;
    app.state.audit.sync().await.unwrap();
    let aud = app.token("aud");

    // Search by actor and action, newest first, paginated with the cursor.
    let (s, page) = app
        .get(
            "/audit/entries?actor=ann&action=message.create&limit=3",
            &aud,
        )
        .await;
    assert_eq!(s, 200, "{page}");
    let got = page["entries"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|e| e["actor"]["id"] == "ann" && e["event"] == "message.create")
    );
    assert!(got[0]["seq"].as_u64() > got[1]["seq"].as_u64());
    let next = page["next"].as_u64().unwrap();
    let (_, rest) = app
        .get(
            &format!("/audit/entries?actor=ann&action=message.create&limit=3&cursor={next}"),
            &aud,
        )
        .await;
    assert_eq!(rest["entries"].as_array().unwrap().len(), 2);
    // By object, outcome and time.
    let (_, on_channel) = app
        .get("/audit/entries?object=channel:messaging:c1&order=asc", &aud)
        .await;
    assert_eq!(on_channel["entries"][0]["event"], "channel.create");
    let (_, denied) = app.get("/audit/entries?outcome=denied", &aud).await;
    assert!(denied["entries"].as_array().unwrap().is_empty());
    let (_, future) = app
        .get("/audit/entries?from=2999-01-01T00:00:00Z", &aud)
        .await;
    assert!(future["entries"].as_array().unwrap().is_empty());
    let (_, unknown) = app.get("/audit/entries?actor=nobody-ever", &aud).await;
    assert!(unknown["entries"].as_array().unwrap().is_empty());
    let (s, bad) = app.get("/audit/entries?action=no.such", &aud).await;
    assert_eq!((s, bad["code"].as_i64()), (400, Some(4)));
    let (s, _) = app.get("/audit/entries?limit=0", &aud).await;
    assert_eq!(s, 400);

    // The latest checkpoint verifies under the verifier key the API hands out (auditors pin
    // it; here it must equal the server's).
    let (s, cp) = app.get("/audit/checkpoint", &aud).await;
    assert_eq!(s, 200, "{cp}");
    assert_eq!(cp["verifier_key"], app.state.audit.verifier_key.as_str());
    let signed = Checkpoint::open(cp["checkpoint"].as_str().unwrap(), &verifier(&app)).unwrap();
    let size = signed.size;

    // An inclusion proof of a message entry against that checkpoint.
    let seq = got[1]["seq"].as_u64().unwrap();
    let (s, proof) = app
        .get(
            &format!("/audit/proof/inclusion?seq={seq}&tree_size={size}"),
            &aud,
        )
        .await;
    assert_eq!(s, 200, "{proof}");
    let entry = STANDARD.decode(proof["entry"].as_str().unwrap()).unwrap();
    verify_inclusion(
        &leaf_hash(&entry),
        seq,
        size,
        &hashes(&proof["proof"]),
        &signed.root,
    )
    .expect("the inclusion proof verifies against the signed root");
    let tlog =
        ward_audit::proof::InclusionProof::parse(proof["tlog_proof"].as_str().unwrap()).unwrap();
    tlog.verify(&entry, &verifier(&app))
        .expect("the tlog-proof file verifies");
    let (s, _) = app
        .get(&format!("/audit/proof/inclusion?seq={}", size + 10), &aud)
        .await;
    assert_eq!(s, 400);

    // More entries, then a consistency proof from the old checkpoint to the new one.
    app.send("messaging:c1", "ann", json!({"text": "later"}))
        .await;
    app.state.audit.sync().await.unwrap();
    let (_, cp2) = app.get("/audit/checkpoint", &aud).await;
    let signed2 = Checkpoint::open(cp2["checkpoint"].as_str().unwrap(), &verifier(&app)).unwrap();
    assert!(signed2.size > size);
    let (s, cons) = app
        .get(
            &format!("/audit/proof/consistency?old={size}&new={}", signed2.size),
            &aud,
        )
        .await;
    assert_eq!(s, 200, "{cons}");
    verify_consistency(
        size,
        signed2.size,
        &hashes(&cons["proof"]),
        &signed.root,
        &signed2.root,
    )
    .expect("the log only grew");
    let (s, _) = app
        .get(
            &format!("/audit/proof/consistency?old={}&new={size}", signed2.size),
            &aud,
        )
        .await;
    assert_eq!(s, 400);

    // Every read above is itself in the log, attributed to the auditor.
    let entries = app.audit_entries().await;
    let reads: Vec<_> = events(&entries, "audit.read")
        .into_iter()
        .filter(|e| e["actor"]["id"] == "aud")
        .collect();
    assert!(reads.len() >= 8, "{reads:#?}");
    assert!(
        reads
            .iter()
            .any(|e| e["meta"]["query"] == "inclusion_proof")
    );
}

async fn only_auditors_and_compliance_officers_read_the_log(db: Db) {
    let app = TestApp::spawn(db).await;
    roles(
        &app,
        &[
            ("aud", "auditor"),
            ("co", "compliance_officer"),
            ("adm", "admin"),
            ("u", "user"),
        ],
    )
    .await;
    for (who, allowed) in [("aud", true), ("co", true), ("adm", false), ("u", false)] {
        for path in ["/audit/entries", "/audit/checkpoint", "/audit/verifier-key"] {
            let (s, body) = app.get(path, &app.token(who)).await;
            if allowed {
                assert_eq!(s, 200, "{who} {path}: {body}");
            } else {
                assert_eq!(
                    (s, body["code"].as_i64()),
                    (403, Some(17)),
                    "{who} {path}: {body}"
                );
            }
        }
    }
    // The API secret is not an auditor either.
    let (s, _) = app.get("/audit/entries", &app.server_token()).await;
    assert_eq!(s, 403);
    // And each refusal is recorded.
    let entries = app.audit_entries().await;
    assert!(
        events(&entries, "authz.denied")
            .iter()
            .any(|e| e["actor"]["id"] == "adm" && e["meta"]["action"] == "ReadAuditLog")
    );
}

async fn the_audit_tables_refuse_update_and_delete(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann"]).await;
    app.state.audit.sync().await.unwrap();
    let url = app.state.config.database_url.clone();
    let attempts = [
        "UPDATE audit_log SET ts = 0",
        "DELETE FROM audit_log",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_checkpoints SET note = ''",
    ];
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            for sql in attempts {
                let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
                assert!(err.to_string().contains("append-only"), "{sql}: {err}");
            }
        }
        Db::Postgres => {
            use sqlx::Connection;
            // The owner (here a superuser) is stopped by the triggers, TRUNCATE included.
            let mut owner = sqlx::PgConnection::connect(&url).await.unwrap();
            for sql in attempts
                .iter()
                .chain(&["TRUNCATE audit_log", "TRUNCATE audit_checkpoints"])
            {
                let err = sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                    .execute(&mut owner)
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("append-only"), "{sql}: {err}");
            }
            // The application's own role, set up with deploy/postgres/app-role.sql, lacks the
            // privilege altogether, but can still append through the outbox.
            let role = format!(
                "ward_app_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {role} LOGIN")))
                .execute(&mut owner)
                .await
                .unwrap();
            let grants = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/postgres/app-role.sql"),
            )
            .unwrap()
            .replace("ward_app", &role);
            sqlx::raw_sql(sqlx::AssertSqlSafe(grants))
                .execute(&mut owner)
                .await
                .unwrap();
            let (base, db_name) = url.rsplit_once('/').unwrap();
            let app_url = format!(
                "{}/{db_name}",
                base.replace("postgres@", &format!("{role}@"))
            );
            let mut as_app = sqlx::PgConnection::connect(&app_url).await.unwrap();
            for sql in attempts.iter().chain(&[
                "TRUNCATE audit_log",
                "UPDATE audit_nodes SET hash = hash",
                "DELETE FROM audit_nodes",
            ]) {
                let err = sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                    .execute(&mut as_app)
                    .await
                    .unwrap_err();
                assert!(
                    err.to_string().contains("permission denied"),
                    "{sql}: {err}"
                );
            }
            sqlx::raw_sql(sqlx::AssertSqlSafe(
                "INSERT INTO audit_outbox (at_ms, event_type, pii, meta) VALUES (0, 80, ''::bytea, ''::bytea)",
            ))
            .execute(&mut as_app)
            .await
            .expect("the app role appends to the outbox");
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
                .fetch_one(&mut as_app)
                .await
                .expect("the app role reads the log");
            assert!(n > 0);
            as_app.close().await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}; DROP ROLE {role}"
            )))
            .execute(&mut owner)
            .await
            .unwrap();
        }
    }
}

async fn crypto_shredding_a_subject_leaves_the_log_verifiable(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["leaver", "stayer"]).await;
    app.channel("c", "leaver", &["leaver", "stayer"]).await;
    app.send("messaging:c", "leaver", json!({"text": "secret plan"}))
        .await;
    let mut ws = app.connect("leaver").await;
    drop(ws.stream.close(None).await);
    let before = export(&app, 0, u64::MAX, None).await;
    let size_before = before.entries.len() as u64;
    let entries = app.audit_entries().await;
    let connect = events(&entries, "ws.connect")
        .into_iter()
        .find(|e| e["actor"]["id"] == "leaver")
        .unwrap()
        .clone();
    assert_eq!(connect["pii_state"], "open");

    ward::crypto::shred_user(
        app.state.crypto.as_deref().unwrap(),
        &*app.state.store.messages,
        &*app.state.audit,
        "leaver",
    )
    .await
    .unwrap();

    // Same bytes, same root at the old size; the subject's personal data is unreadable.
    let after = export(&app, 0, u64::MAX, Some(size_before)).await;
    assert_eq!(&after.entries[..size_before as usize], &before.entries[..]);
    let state = bundle::verify(&before, &verifier(&app), None)
        .unwrap()
        .new_state();
    let report = bundle::verify(&after, &verifier(&app), Some(&state)).expect("still verifies");
    assert_eq!(report.consistent_with, Some(size_before));
    let entries = app.audit_entries().await;
    let same = entries.iter().find(|e| e["seq"] == connect["seq"]).unwrap();
    assert_eq!(same["pii_state"], "shredded");
    assert_eq!(same["entry"], connect["entry"]);
    assert!(
        events(&entries, "key.operation")
            .iter()
            .any(|e| e["meta"]["operation"] == "shred" && e["subject"]["id"] == "leaver")
    );
}

async fn checkpoints_are_published_outside_the_database(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann"]).await;
    let size = app.state.audit.sync().await.unwrap();
    let dir = app.state.config.audit.checkpoint_dir.clone().unwrap();
    let v = verifier(&app);
    eventually(10, "the latest checkpoint is published", async || {
        std::fs::read_to_string(dir.join("checkpoint"))
            .ok()
            .and_then(|t| Checkpoint::open(&t, &v).ok())
            .is_some_and(|c| c.size == size)
    })
    .await;
    let per_size = dir.join("checkpoints").join(format!("{size:020}"));
    let text = std::fs::read_to_string(per_size).unwrap();
    let c = Checkpoint::open(&text, &v).unwrap();
    let stored = app
        .state
        .store
        .audit
        .find_checkpoint(size as i64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.root.to_vec(), stored.root);
}

/// Someone who can write the database removes the newest entries; the published checkpoint
/// outside it shows the rollback and the server refuses to append.
async fn a_database_behind_its_published_checkpoint_is_refused(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.users(&["ann", "bob"]).await;
    app.state.audit.flush().await.unwrap();
    let config = app.state.config.clone();
    app.shutdown().await;
    // Publish a checkpoint from a longer history than the database holds: the same key signs
    // it (as the genuine server did before the rollback).
    let store = ward::store::Store::connect(&config.database_url)
        .await
        .unwrap();
    let head = store.audit.find_latest_checkpoint().await.unwrap().unwrap();
    let dir = config.audit.checkpoint_dir.clone().unwrap();
    let root = ward::app::open_root(&config).unwrap();
    let seed = {
        let wrapped = store
            .settings
            .find_setting("audit_signing_key")
            .await
            .unwrap()
            .unwrap();
        let origin = store
            .settings
            .find_setting("audit_origin")
            .await
            .unwrap()
            .unwrap();
        let plain = root
            .unwrap(
                &STANDARD.decode(wrapped).unwrap(),
                &format!("audit-signing-key:{origin}"),
            )
            .await
            .unwrap();
        (origin, <[u8; 32]>::try_from(plain.as_slice()).unwrap())
    };
    let signer = ward_audit::note::Signer::from_seed(&seed.0, &seed.1).unwrap();
    let ahead = Checkpoint {
        origin: seed.0.clone(),
        size: head.size as u64 + 5,
        root: [7; 32],
    };
    let publisher = ward::audit::publish::DirectorySink::new(dir).unwrap();
    use ward::audit::publish::CheckpointSink;
    publisher
        .publish(ahead.size, &ahead.sign(&signer).unwrap())
        .await
        .unwrap();
    let err = match ward::app::Application::build(config).await {
        Ok(_) => panic!("the server must refuse a log behind its published checkpoint"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("rollback"), "{err}");
}
