//! GDPR export: the archive of a seeded user holds exactly their data (and nobody else's),
//! its counts match the database, its manifest signature and file hashes verify (and
//! tampering is caught), the audit entries about them come decrypted with inclusion proofs
//! that lead to the included checkpoint, the export is itself audited, and the CLI exports
//! and verifies offline.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use ward::audit::{AuditEvent, EventType};
use ward::gdpr::export::{self, Manifest};
use ward::store::MessageRow;
use ward_audit::checkpoint::Checkpoint;
use ward_audit::merkle::{leaf_hash, verify_inclusion};
use ward_audit::note::{self, Signer, Verifier};

use crate::helpers::{Db, KEY, TestApp, WsStream, next_json, on_both_databases, url_encode};

on_both_databases!(
    an_export_holds_exactly_the_subjects_data_with_counts_that_match_the_database,
    the_signed_manifest_verifies_and_any_tampering_is_caught,
    audit_entries_about_the_subject_come_decrypted_with_proofs_to_the_included_checkpoint,
    an_unknown_or_invalid_user_is_refused_and_nothing_is_written,
    the_cli_exports_and_verifies_the_archive_offline,
    the_subjects_drafts_and_reminders_are_exported_and_nobody_elses,
);

const PASSWORD: &str = "correct horse battery staple";

/// What the seed created for ann, the subject, as the test knows it.
struct Seeded {
    /// Ann's message ids and texts.
    messages: BTreeMap<String, String>,
    /// (message id, type) of the reactions ann left.
    reactions: BTreeSet<(String, String)>,
    /// Sockets kept open until the export (so their connect entries are the last ones).
    _sockets: Vec<WsStream>,
}

/// Ann and bob share two channels; bob and cy have one of their own. Ann writes messages
/// (`bulk` of them straight into the store, each with its audit record, to span pages), a
/// thread reply, reactions on her and bob's messages; bob reacts to ann's; ann reads, logs
/// in with a password and connects a WebSocket (an audit entry with sealed personal data);
/// so does bob.
async fn seed(app: &TestApp, bulk: usize) -> Seeded {
    let users = json!({
        "ann": {"id": "ann", "name": "Ann Example", "email": "ann@example.org", "ward": "cardio"},
        "bob": {"id": "bob", "name": "Bob Other", "email": "bob.secret@example.org"},
        "cy": {"id": "cy", "name": "Cy Third"},
    });
    let (s, body) = app
        .post("/users", &app.server_token(), json!({"users": users}))
        .await;
    assert_eq!(s, 201, "{body}");
    app.channel("ward-1", "ann", &["ann", "bob"]).await;
    app.channel("ward-2", "bob", &["ann", "bob", "cy"]).await;
    app.channel("ward-3", "bob", &["bob", "cy"]).await;

    let mut messages = BTreeMap::new();
    let send = async |cid: &str, user: &str, body: Value| {
        let m = app.send(cid, user, body).await;
        (
            m["id"].as_str().unwrap().to_string(),
            m["text"].as_str().unwrap().to_string(),
        )
    };
    let (a1, t) = send("messaging:ward-1", "ann", json!({"text": "ann: BP 120/80"})).await;
    messages.insert(a1.clone(), t);
    let (a2, t) = send(
        "messaging:ward-2",
        "ann",
        json!({"text": "ann: on call tonight", "priority": "high"}),
    )
    .await;
    messages.insert(a2.clone(), t);
    let (b1, _) = send(
        "messaging:ward-1",
        "bob",
        json!({"text": "bob: HbA1c 9.1%"}),
    )
    .await;
    let (b2, _) = send(
        "messaging:ward-2",
        "bob",
        json!({"text": "bob: thread root"}),
    )
    .await;
    let (b3, _) = send(
        "messaging:ward-3",
        "bob",
        json!({"text": "bob: private to cy"}),
    )
    .await;
    let (a3, t) = send(
        "messaging:ward-2",
        "ann",
        json!({"text": "ann: a reply in the thread", "parent_id": b2}),
    )
    .await;
    messages.insert(a3, t);
    let (b4, _) = send(
        "messaging:ward-2",
        "bob",
        json!({"text": "bob: a reply too", "parent_id": b2}),
    )
    .await;

    let react = async |user: &str, message: &str, kind: &str| {
        let (s, body) = app
            .post(
                &format!("/messages/{message}/reaction"),
                &app.token(user),
                json!({"reaction": {"type": kind, "note": format!("{user} reacted")}}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    };
    react("ann", &b1, "like").await;
    react("ann", &b4, "wow").await;
    react("ann", &a1, "love").await;
    react("bob", &a1, "sad").await;
    react("bob", &b3, "like").await;
    react("cy", &b3, "haha").await;
    let reactions = [(&b1, "like"), (&b4, "wow"), (&a1, "love")]
        .into_iter()
        .map(|(m, k)| (m.clone(), k.to_string()))
        .collect();

    let (s, _) = app
        .post(
            "/channels/messaging/ward-1/read",
            &app.token("ann"),
            json!({}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .post(
            "/channels/messaging/ward-1/read",
            &app.token("bob"),
            json!({}),
        )
        .await;
    assert_eq!(s, 201);

    // Many more messages from ann, as if sent over time.
    let audit = &app.state.audit;
    let t0 = ward::time::now_micros() - 1_000_000_000;
    for i in 0..bulk {
        let id = uuid::Uuid::now_v7().to_string();
        let text = format!("ann: note {i}");
        let row = MessageRow {
            id: id.clone(),
            cid: "messaging:ward-1".into(),
            user_id: "ann".into(),
            kind: "regular".into(),
            text: text.clone(),
            data: Default::default(),
            parent_id: None,
            show_in_channel: false,
            silent: false,
            pinned: false,
            reply_count: 0,
            created_at: t0 + i as i64,
            updated_at: t0 + i as i64,
            deleted_at: None,
            text_updated_at: None,
        };
        let record = AuditEvent::new(EventType::MessageCreate)
            .actor("ann")
            .subject("ann")
            .object("message", id.clone())
            .meta("channel_type", "messaging")
            .meta("message_type", "regular");
        let messages_store = &app.state.store.messages;
        audit
            .audited([record], async |records| {
                messages_store.insert_message(&row, false, &records).await
            })
            .await
            .unwrap();
        messages.insert(id, text);
    }

    // A password login (a session) and WebSockets with their user agents (sealed).
    let hash = ward::auth::password::hash(PASSWORD).unwrap();
    app.state
        .store
        .identity
        .upsert_password("ann", &hash, 0, &[])
        .await
        .unwrap();
    let res = app
        .http
        .post(format!("{}/auth/login?api_key={KEY}", app.base))
        .json(&json!({"user_id": "ann", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let sockets = vec![
        connect(app, "ann", "AnnPhone/7.1").await,
        connect(app, "bob", "BobTablet/2.0").await,
    ];
    Seeded {
        messages,
        reactions,
        _sockets: sockets,
    }
}

async fn connect(app: &TestApp, user: &str, agent: &str) -> WsStream {
    let json = json!({"user_id": user, "user_details": {"id": user}}).to_string();
    let url = format!(
        "{}/connect?json={}&api_key={KEY}&authorization={}&stream-auth-type=jwt",
        app.ws_base,
        url_encode(&json),
        url_encode(&app.token(user))
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("user-agent", agent.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "health.check", "{first}");
    ws
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward_export_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn export_ann(app: &TestApp, out: &Path) -> Manifest {
    let mut calls = Vec::new();
    let manifest = export::export_user(&app.state.gdpr(), "ann", out, &mut |done, total| {
        calls.push((done, total))
    })
    .await
    .unwrap();
    let (first, last) = (calls.first().unwrap(), calls.last().unwrap());
    assert_eq!(first.0, 0, "progress starts at zero: {calls:?}");
    assert_eq!(last.0, last.1, "progress ends complete: {calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
    manifest
}

/// Every file of the archive, uncompressed, in ZIP order.
fn unzip(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let mut f = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).unwrap();
            (f.name().unwrap().to_string(), bytes)
        })
        .collect()
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &files.iter().find(|(n, _)| n == name).unwrap().1
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn json_file(files: &[(String, Vec<u8>)], name: &str) -> Value {
    serde_json::from_slice(file(files, name)).unwrap()
}

/// Writes a copy of the archive with `change` applied to each file (`None` drops it).
fn rewrite(src: &Path, dst: &Path, change: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) {
    let mut out = zip::ZipWriter::new(std::fs::File::create(dst).unwrap());
    for (name, bytes) in unzip(src) {
        if let Some(bytes) = change(&name, bytes) {
            out.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            out.write_all(&bytes).unwrap();
        }
    }
    out.finish().unwrap();
}

/// Drafts and reminders (issue 16) are the subject's own data: exported, decrypted, and only
/// theirs.
async fn the_subjects_drafts_and_reminders_are_exported_and_nobody_elses(db: Db) {
    let app = TestApp::spawn(db).await;
    seed(&app, 0).await;
    for (user, text) in [
        ("ann", "ask pharmacy about dose"),
        ("bob", "bob's own note"),
    ] {
        let (s, body) = app
            .post(
                "/channels/messaging/ward-2/draft",
                &app.token(user),
                json!({"message": {"text": text}}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let m = app
        .send(
            "messaging:ward-2",
            "bob",
            json!({"id": "rem-1", "text": "labs at 4"}),
        )
        .await;
    let (s, body) = app
        .post(
            &format!("/messages/{}/reminders", m["id"].as_str().unwrap()),
            &app.token("ann"),
            json!({}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let dir = scratch();
    let out = dir.join("ann.zip");
    export_ann(&app, &out).await;
    let files = unzip(&out);
    let drafts = json_file(&files, "drafts.json");
    let drafts = drafts.as_array().unwrap();
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert_eq!(drafts[0]["cid"], "messaging:ward-2");
    assert_eq!(drafts[0]["message"]["text"], "ask pharmacy about dose");
    let reminders = json_file(&files, "reminders.json");
    assert_eq!(reminders.as_array().unwrap().len(), 1, "{reminders}");
    assert_eq!(reminders[0]["message_id"], "rem-1");
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn an_export_holds_exactly_the_subjects_data_with_counts_that_match_the_database(db: Db) {
    let app = TestApp::spawn(db).await;
    let seeded = seed(&app, 620).await;
    let dir = scratch();
    let out = dir.join("ann.zip");
    let manifest = export_ann(&app, &out).await;
    let files = unzip(&out);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "profile.json",
            "messages.ndjson",
            "reactions.ndjson",
            "memberships.json",
            "read_state.json",
            "drafts.json",
            "reminders.json",
            "sessions.json",
            "audit.ndjson",
            "audit_checkpoint.txt",
            "manifest.json",
            "manifest.sig",
        ]
    );
    assert!(!dir.join("ann.zip.partial").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the owner reads the archive");
    }
    let store = &app.state.store;

    // Profile: decrypted custom fields.
    let profile = json_file(&files, "profile.json");
    assert_eq!(profile["id"], "ann");
    assert_eq!(profile["data"]["email"], "ann@example.org");
    assert_eq!(profile["data"]["ward"], "cardio");

    // Messages: exactly ann's, decrypted, and the same ids as the database has.
    let messages = ndjson(file(&files, "messages.ndjson"));
    let exported: BTreeMap<String, String> = messages
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(exported, seeded.messages, "ann's messages, decrypted");
    assert_eq!(exported.len(), messages.len(), "each once");
    let mut in_db = Vec::new();
    let mut after = String::new();
    loop {
        let page = store
            .messages
            .find_message_ids_by_author("ann", &after, 100)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.clone();
        in_db.extend(page);
    }
    assert_eq!(in_db, exported.keys().cloned().collect::<Vec<_>>());
    let priority = messages
        .iter()
        .find(|m| m["text"] == "ann: on call tonight")
        .unwrap();
    assert_eq!(
        priority["data"]["priority"], "high",
        "custom fields: {priority}"
    );
    assert!(messages.iter().any(|m| m["parent_id"].is_string()));

    // Reactions: the ones ann left, wherever; none of bob's or cy's.
    let reactions = ndjson(file(&files, "reactions.ndjson"));
    let left: BTreeSet<(String, String)> = reactions
        .iter()
        .map(|r| {
            (
                r["message_id"].as_str().unwrap().to_string(),
                r["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(left, seeded.reactions);
    assert_eq!(left.len(), reactions.len(), "each once");
    assert!(reactions.iter().all(|r| r["data"]["note"] == "ann reacted"));

    // Memberships, read state, sessions.
    let memberships = json_file(&files, "memberships.json");
    let cids: Vec<&str> = memberships
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cid"].as_str().unwrap())
        .collect();
    assert_eq!(cids, ["messaging:ward-1", "messaging:ward-2"]);
    let reads = json_file(&files, "read_state.json");
    let db_reads = store.channels.find_reads_for_user("ann").await.unwrap();
    assert_eq!(reads.as_array().unwrap().len(), db_reads.len());
    assert!(
        reads
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["cid"] == "messaging:ward-1")
    );
    let sessions = json_file(&files, "sessions.json");
    let db_sessions = store.identity.find_sessions_of("ann").await.unwrap();
    assert_eq!(db_sessions.len(), 1);
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["method"], "password");

    // The counts in the manifest are the database's.
    let count = |name: &str| manifest.file(name).unwrap().count;
    assert_eq!(count("profile.json"), 1);
    assert_eq!(count("messages.ndjson"), in_db.len() as u64);
    let mut all_ids: Vec<String> = in_db.clone();
    for cid in ["messaging:ward-1", "messaging:ward-2", "messaging:ward-3"] {
        let page = store
            .messages
            .find_channel_messages(cid, None, &ward::store::Cursor::Latest, 10_000)
            .await
            .unwrap();
        all_ids.extend(page.into_iter().map(|m| m.id));
    }
    let parents = store.messages.find_messages(&all_ids).await.unwrap();
    for parent in parents.iter().filter(|m| m.reply_count > 0) {
        let replies = store
            .messages
            .find_replies(&parent.id, &ward::store::Cursor::Latest, 1000)
            .await
            .unwrap();
        all_ids.extend(replies.into_iter().map(|m| m.id));
    }
    all_ids.sort();
    all_ids.dedup();
    let anns_reactions = store
        .messages
        .find_reactions(&all_ids)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.user_id == "ann")
        .count();
    assert_eq!(count("reactions.ndjson"), anns_reactions as u64);
    assert_eq!(
        count("memberships.json"),
        store
            .channels
            .find_channels_for_member("ann")
            .await
            .unwrap()
            .len() as u64
    );
    assert_eq!(count("read_state.json"), db_reads.len() as u64);
    assert_eq!(count("sessions.json"), db_sessions.len() as u64);

    // Nobody else's data, and no secrets, anywhere in the archive (the signed files and the
    // entries' base64 bytes and proofs left aside: random base64 can spell anything).
    let mut text = String::new();
    for (name, bytes) in &files {
        match name.as_str() {
            "audit.ndjson" => {
                for mut e in ndjson(bytes) {
                    e["entry"] = Value::Null;
                    e["inclusion_proof"] = Value::Null;
                    text.push_str(&e.to_string());
                }
            }
            "audit_checkpoint.txt" | "manifest.json" | "manifest.sig" => {}
            _ => text.push_str(std::str::from_utf8(bytes).unwrap()),
        }
    }
    for other in [
        "bob",
        "Bob Other",
        "HbA1c",
        "private to cy",
        "Cy Third",
        "BobTablet",
        "sad",
        "haha",
        db_sessions[0].id_hash.as_str(),
        PASSWORD,
    ] {
        assert!(!text.contains(other), "the archive contains {other:?}");
    }

    // The export is in the audit log, about ann.
    let entries = app.audit_entries().await;
    let recorded: Vec<&Value> = entries
        .iter()
        .filter(|e| e["event"] == "gdpr.export")
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["subject"]["id"], "ann");
    assert_eq!(recorded[0]["meta"]["step"], "completed");
    assert_eq!(recorded[0]["outcome"], "ok");
    assert!(
        recorded[0]["seq"].as_u64().unwrap() >= manifest.audit_tree_size,
        "recorded after the archive's checkpoint"
    );
    let _ = std::fs::remove_dir_all(dir);
}

async fn the_signed_manifest_verifies_and_any_tampering_is_caught(db: Db) {
    let app = TestApp::spawn(db).await;
    let _seeded = seed(&app, 0).await;
    let dir = scratch();
    let out = dir.join("ann.zip");
    let manifest = export_ann(&app, &out).await;
    let vkey = app.state.audit.verifier_key.clone();
    let files = unzip(&out);

    // By hand, from the README: the note opens under the pinned key, its text is the
    // manifest's text form, and every listed file hashes as listed.
    let on_disk: Manifest = serde_json::from_slice(file(&files, "manifest.json")).unwrap();
    assert_eq!(on_disk, manifest);
    assert_eq!(manifest.format, "ward-gdpr-export/v1");
    assert_eq!(manifest.user_id, "ann");
    assert_eq!(manifest.verifier_key, vkey);
    let sig = std::str::from_utf8(file(&files, "manifest.sig")).unwrap();
    let text = note::open(sig, &[Verifier::parse(&vkey).unwrap()]).unwrap();
    let mut expected = format!(
        "ward-gdpr-export/v1\nuser ann\ncreated {}\naudit-tree-size {}\nverifier-key {vkey}\n",
        manifest.created_at, manifest.audit_tree_size
    );
    for f in &manifest.files {
        expected.push_str(&format!(
            "file {} {} {} {}\n",
            f.sha256, f.bytes, f.count, f.name
        ));
    }
    assert_eq!(text, expected);
    assert_eq!(
        manifest.files.len(),
        files.len() - 2,
        "all but the manifest"
    );
    for f in &manifest.files {
        let bytes = file(&files, &f.name);
        assert_eq!(hex_sha256(bytes), f.sha256, "{}", f.name);
        assert_eq!(bytes.len() as u64, f.bytes, "{}", f.name);
    }
    assert_eq!(export::verify_export(&out, &vkey).unwrap(), manifest);

    // Tampering of every kind fails, with the check that caught it.
    let bad = dir.join("bad.zip");
    let fails = |why: &str| {
        let err = format!("{:#}", export::verify_export(&bad, &vkey).unwrap_err());
        assert!(err.contains(why), "expected {why:?}, got {err:?}");
    };
    rewrite(&out, &bad, |name, mut bytes| {
        if name == "messages.ndjson" {
            let at = bytes.windows(3).position(|w| w == b"120").unwrap();
            bytes[at] = b'9';
        }
        Some(bytes)
    });
    fails("messages.ndjson: the SHA-256 differs");
    // A message dropped and the manifest fixed to match: the signature no longer covers it.
    let mut forged = manifest.clone();
    let mut shorter = Vec::new();
    rewrite(&out, &bad, |name, bytes| match name {
        "messages.ndjson" => {
            let cut = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
            Some(bytes[cut..].to_vec())
        }
        _ => Some(bytes),
    });
    for (name, bytes) in unzip(&bad) {
        if name == "messages.ndjson" {
            shorter = bytes;
        }
    }
    let f = forged
        .files
        .iter_mut()
        .find(|f| f.name == "messages.ndjson")
        .unwrap();
    f.sha256 = hex_sha256(&shorter);
    f.bytes = shorter.len() as u64;
    f.count -= 1;
    let forged_json = serde_json::to_vec_pretty(&forged).unwrap();
    rewrite(&out, &bad, |name, bytes| match name {
        "messages.ndjson" => Some(shorter.clone()),
        "manifest.json" => Some(forged_json.clone()),
        _ => Some(bytes),
    });
    fails("manifest.json differs from the signed manifest");
    // ... and signing the forgery with another key does not help.
    let attacker = Signer::from_seed(&app.state.audit.origin, &[7; 32]).unwrap();
    let forged_sig = attacker.sign(&forged.signed_text()).unwrap();
    rewrite(&out, &bad, |name, bytes| match name {
        "messages.ndjson" => Some(shorter.clone()),
        "manifest.json" => Some(forged_json.clone()),
        "manifest.sig" => Some(forged_sig.clone().into_bytes()),
        _ => Some(bytes),
    });
    fails("manifest.sig does not verify");
    rewrite(&out, &bad, |name, bytes| {
        (name != "reactions.ndjson").then_some(bytes)
    });
    fails("the archive's files differ from the manifest's list");
    rewrite(&out, &bad, |_, bytes| Some(bytes));
    {
        let mut z = zip::ZipWriter::new_append(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&bad)
                .unwrap(),
        )
        .unwrap();
        z.start_file("extra.json", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(b"{}").unwrap();
        z.finish().unwrap();
    }
    fails("the archive's files differ from the manifest's list");
    rewrite(&out, &bad, |name, bytes| {
        if name != "audit_checkpoint.txt" {
            return Some(bytes);
        }
        // Another root, same size.
        let text = String::from_utf8(bytes).unwrap();
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let flipped = if lines[2].starts_with('A') { "B" } else { "A" };
        lines[2].replace_range(0..1, flipped);
        Some(lines.join("\n").into_bytes())
    });
    fails("audit_checkpoint.txt does not verify");
    let other_key = attacker.verifier_key();
    let err = format!("{:#}", export::verify_export(&out, &other_key).unwrap_err());
    assert!(err.contains("manifest.sig does not verify"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

async fn audit_entries_about_the_subject_come_decrypted_with_proofs_to_the_included_checkpoint(
    db: Db,
) {
    let app = TestApp::spawn(db).await;
    let _seeded = seed(&app, 300).await;
    let dir = scratch();
    let out = dir.join("ann.zip");
    let manifest = export_ann(&app, &out).await;
    let files = unzip(&out);
    let verifier = Verifier::parse(&app.state.audit.verifier_key).unwrap();
    let checkpoint = Checkpoint::open(
        std::str::from_utf8(file(&files, "audit_checkpoint.txt")).unwrap(),
        &verifier,
    )
    .unwrap();
    assert_eq!(checkpoint.size, manifest.audit_tree_size);
    assert!(checkpoint.size > 256, "the proofs span several leaf blocks");

    let exported = ndjson(file(&files, "audit.ndjson"));
    assert_eq!(
        manifest.file("audit.ndjson").unwrap().count,
        exported.len() as u64
    );
    for e in &exported {
        let bytes = STANDARD.decode(e["entry"].as_str().unwrap()).unwrap();
        let proof = &e["inclusion_proof"];
        let hashes: Vec<[u8; 32]> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                STANDARD
                    .decode(h.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap()
            })
            .collect();
        assert_eq!(proof["leaf_index"], e["seq"]);
        assert_eq!(proof["tree_size"], checkpoint.size);
        verify_inclusion(
            &leaf_hash(&bytes),
            e["seq"].as_u64().unwrap(),
            checkpoint.size,
            &hashes,
            &checkpoint.root,
        )
        .unwrap_or_else(|err| panic!("entry {}: {err}", e["seq"]));
    }

    // Exactly the entries with ann as actor or subject up to the checkpoint, in order.
    let all = app.audit_entries().await;
    let about_ann: Vec<u64> = all
        .iter()
        .filter(|e| e["seq"].as_u64().unwrap() < checkpoint.size)
        .filter(|e| e["actor"]["id"] == "ann" || e["subject"]["id"] == "ann")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    let seqs: Vec<u64> = exported
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, about_ann);
    assert!(about_ann.len() > 300);

    // Her own personal data is decrypted; other people in her entries are withheld.
    let connect = exported
        .iter()
        .find(|e| e["event"] == "ws.connect")
        .expect("ann's connection");
    assert_eq!(connect["pii_state"], "open");
    assert_eq!(connect["pii"]["user_agent"], "AnnPhone/7.1");
    let about_bob: Vec<&Value> = exported
        .iter()
        .filter(|e| e["subject"]["id"].is_null() && e["subject"]["pseudonym"].is_string())
        .collect();
    assert!(
        about_bob.iter().any(|e| e["event"] == "member.add"),
        "ann adding bob is her action: {about_bob:?}"
    );
    for e in about_bob {
        assert_eq!(e["actor"]["id"], "ann", "{e}");
        assert!(e["pii"].is_null(), "{e}");
        assert!(matches!(e["pii_state"].as_str(), Some("none" | "withheld")));
    }
    let _ = std::fs::remove_dir_all(dir);
}

async fn an_unknown_or_invalid_user_is_refused_and_nothing_is_written(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["ann"]).await;
    let dir = scratch();
    let out = dir.join("x.zip");
    for (user, code) in [("nobody", 16), ("../etc", 4), ("", 4)] {
        let err = ward::http::error::ApiError::from(
            export::export_user(&app.state.gdpr(), user, &out, &mut |_, _| {})
                .await
                .unwrap_err(),
        );
        assert_eq!(err.code, code, "{user:?}: {err}");
        assert!(!err.message.contains(user) || user.is_empty(), "{err}");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // Several users: one archive each, each verifying on its own.
    app.users(&["bea"]).await;
    let ids = ["ann".to_string(), "bea".to_string()];
    let written = export::export_users(&app.state.gdpr(), &ids, &dir, &mut |_, _, _| {})
        .await
        .unwrap();
    assert_eq!(written.len(), 2);
    for ((path, m), id) in written.iter().zip(&ids) {
        assert_eq!(path, &dir.join(format!("{id}.zip")));
        assert_eq!(&m.user_id, id);
        export::verify_export(path, &app.state.audit.verifier_key).unwrap();
    }
    let _ = std::fs::remove_dir_all(dir);
}

async fn the_cli_exports_and_verifies_the_archive_offline(db: Db) {
    let mut app = TestApp::spawn(db).await;
    let _seeded = seed(&app, 0).await;
    let (url, data_dir) = (
        app.state.config.database_url.clone(),
        app.state.config.data_dir.clone(),
    );
    let vkey = app.state.audit.verifier_key.clone();
    // One process owns an SQLite file: stop the server first.
    app.shutdown().await;
    let dir = scratch();
    let out = dir.join("ann.zip");
    let ward = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(args)
            .env("WARD_DATABASE_URL", &url)
            .env("WARD_DATA_DIR", &data_dir)
            .env("WARD_BIND", "127.0.0.1:0")
            .env_remove("WARD_API_KEY")
            .env_remove("WARD_API_SECRET")
            .output()
            .unwrap()
    };
    let run = ward(&[
        "gdpr",
        "export",
        "--user-id",
        "ann",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&vkey), "{stdout}");
    assert!(stderr.contains("exported"), "{stderr}");
    let key_file = dir.join("vkey");
    std::fs::write(&key_file, format!("{vkey}\n")).unwrap();
    let check = ward(&[
        "gdpr",
        "verify-export",
        out.to_str().unwrap(),
        "--key",
        key_file.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(stdout.starts_with("OK "), "{stdout}");
    let bad = dir.join("bad.zip");
    rewrite(&out, &bad, |name, bytes| {
        (name != "sessions.json").then_some(bytes)
    });
    let check = ward(&[
        "gdpr",
        "verify-export",
        bad.to_str().unwrap(),
        "--key",
        &vkey,
    ]);
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("FAIL"));
    let _ = std::fs::remove_dir_all(dir);
}
