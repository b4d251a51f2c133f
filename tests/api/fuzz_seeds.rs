//! The seed corpora of the fuzz targets (fuzz/corpus/<target>/): small valid inputs that
//! take each target deep into its parser (a token that verifies, a bundle, proofs and an
//! export that verify under the fuzz key, a SAML Response signed with another key). This
//! test makes them and checks each reaches its verdict; `WARD_FUZZ_WRITE_SEEDS=1` also
//! writes them over the committed corpus.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use ward::auth::saml::{SamlProvider, check_response, deflate, preparse};
use ward::auth::sso::{ProviderKind, SsoProvider};
use ward::auth::token;
use ward::bus::wire::{self, Body, Control, Revocation, TargetKind};
use ward::gdpr::export::{FORMAT, FileEntry, Manifest, verify_archive};
use ward_audit::bundle::{RawBundle, frame_entries};
use ward_audit::entry::{Entry, encode_meta};
use ward_audit::memlog::MemoryLog;
use ward_audit::note::{self, Signer};

use crate::saml::idp;

/// The fuzz targets' secrets and keys (fuzz/fuzz_targets/*.rs, fuzz/src/lib.rs).
const JWT_SECRET: &[u8] = b"fuzz-secret";
const AUDIT_ORIGIN: &str = "fuzz.ward.example/audit";
const AUDIT_SEED: [u8; 32] = [7; 32];
const NOW: i64 = 1_800_000_000;

type Seed = (&'static str, &'static str, Vec<u8>);

fn signer() -> Signer {
    Signer::from_seed(AUDIT_ORIGIN, &AUDIT_SEED).unwrap()
}

/// Joins parts with the 0xFF separator the multi-part targets split on.
fn parts(list: &[&[u8]]) -> Vec<u8> {
    list.join(&0xff)
}

fn jwt_seeds() -> Vec<Seed> {
    let user = token::user_token("alice", Some(NOW + 3600), JWT_SECRET);
    let dev = format!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.devtoken",
        STANDARD.encode(br#"{"user_id":"bob"}"#)
    );
    let claims = token::verify(&user, JWT_SECRET, false, NOW).unwrap();
    assert_eq!(claims.user_id.as_deref(), Some("alice"));
    assert!(
        token::verify(&token::server_token(JWT_SECRET), JWT_SECRET, false, NOW)
            .unwrap()
            .server
    );
    vec![
        ("jwt", "user", user.into_bytes()),
        (
            "jwt",
            "server",
            token::server_token(JWT_SECRET).into_bytes(),
        ),
        ("jwt", "dev", dev.into_bytes()),
    ]
}

fn ws_seeds() -> Vec<Seed> {
    let t = token::user_token("alice", None, JWT_SECRET);
    let payload = json!({"user_id": "alice", "user_details": {"id": "alice", "name": "Alice"}});
    let query = serde_urlencoded::to_string([
        ("api_key", "key"),
        ("authorization", t.as_str()),
        ("stream-auth-type", "jwt"),
        ("json", &payload.to_string()),
    ])
    .unwrap();
    assert_eq!(
        ward::ws::parse_connect(Some(&query), JWT_SECRET, NOW)
            .unwrap()
            .user_id
            .as_deref(),
        Some("alice")
    );
    let event =
        json!({"type": "message.new", "cid": "messaging:general", "message": {"text": "hi"}});
    let frames = [
        Body::Event {
            target: TargetKind::Channel,
            key: "messaging:general".into(),
            payload: event.to_string().into_bytes(),
        },
        Body::Control {
            id: 7,
            control: Control::Revoke(Revocation::UserTokensBefore {
                user_id: "alice".into(),
                before: NOW,
            }),
        },
        Body::Ack {
            id: 7,
            to: "node-b".into(),
        },
    ];
    let mut seeds = vec![
        ("ws_connect", "query", query.into_bytes()),
        (
            "ws_connect",
            "health_check",
            br#"[{"type":"health.check","client_id":"c1"}]"#.to_vec(),
        ),
        ("ws_connect", "event", event.to_string().into_bytes()),
    ];
    for (body, name) in frames.iter().zip(["bus_event", "bus_revoke", "bus_ack"]) {
        let bytes = wire::encode("node-a", NOW * 1_000_000, body);
        assert_eq!(wire::decode(&bytes).unwrap().body, *body);
        seeds.push(("ws_connect", name, bytes));
    }
    seeds
}

fn filter_seeds() -> Vec<Seed> {
    let docs = [
        (
            "channels",
            json!({"filter_conditions": {"type": "messaging", "members": {"$in": ["alice"]},
                   "$or": [{"frozen": false}, {"last_message_at": {"$gte": "2024-01-01T00:00:00Z"}}]},
                   "sort": [{"field": "last_message_at", "direction": -1}],
                   "limit": 10, "offset": 0}),
        ),
        (
            "search",
            json!({"filter_conditions": {"cid": {"$in": ["messaging:general"]}},
                   "message_filter_conditions": {"text": {"$autocomplete": "hel"}, "user.id": {"$ne": "bob"}},
                   "sort": {"created_at": 1}, "limit": 20}),
        ),
        (
            "messages",
            json!({"limit": 25, "id_lt": "m1", "created_at_before": "2024-05-06T07:08:09.123456Z",
                   "created_at_after_or_equal": "2024-01-01T00:00:00+02:00"}),
        ),
        (
            "nor",
            json!({"$nor": [{"data.n": {"$gt": 1}}, {"tags": {"$contains": "a"}}], "x": {"$exists": true}}),
        ),
    ];
    docs.into_iter()
        .map(|(name, doc)| {
            if let Some(f) = doc.get("filter_conditions") {
                ward::chat::filter::parse(f).unwrap();
            }
            ("filter", name, doc.to_string().into_bytes())
        })
        .collect()
}

/// A Response signed by a key the fuzzed provider does not trust: it passes the pre-read
/// and is refused by xmlsec.
fn saml_seeds() -> Vec<Seed> {
    let issued = DateTime::from_timestamp(NOW, 0).unwrap();
    let a = idp::Assertion {
        id: "_a7f3".into(),
        name_id: "alice@example.com".into(),
        in_response_to: None,
        audience: "https://ward.test/auth/saml/corp/metadata".into(),
        recipient: "https://ward.test/auth/saml/corp/acs".into(),
        destination: "https://ward.test/auth/saml/corp/acs".into(),
        issued,
        not_before: issued - Duration::seconds(30),
        not_on_or_after: issued + Duration::minutes(5),
        groups: vec!["staff"],
        sig_alg: idp::RSA_SHA256,
        digest: idp::SHA256,
    };
    let signed = a.signed_by(idp::attacker_key());
    preparse(signed.clone().into_bytes()).unwrap();
    let provider = SamlProvider::from_provider(
        SsoProvider {
            id: "corp".into(),
            kind: ProviderKind::Saml,
            name: "Corp".into(),
            enabled: true,
            config: idp::provider_config(true),
            secret: None,
        },
        "https://ward.test",
    )
    .unwrap();
    let body = serde_urlencoded::to_string([("SAMLResponse", STANDARD.encode(&signed))]).unwrap();
    let now = DateTime::<Utc>::from_timestamp(NOW, 0).unwrap();
    assert_eq!(
        check_response(&provider, body.as_bytes(), now)
            .unwrap_err()
            .reason,
        "bad_signature"
    );
    let deflated = deflate::deflate(signed.as_bytes());
    assert_eq!(
        deflate::inflate(&deflated, 1 << 20).unwrap(),
        signed.as_bytes()
    );
    vec![
        ("saml_preparse", "response", signed.clone().into_bytes()),
        ("saml_preparse", "deflated", deflated),
        ("saml_acs", "response", signed.into_bytes()),
    ]
}

/// A log of a few entries under the fuzz key, with metadata.
fn log() -> MemoryLog {
    let mut log = MemoryLog::new(AUDIT_ORIGIN);
    for i in 0..5u8 {
        let meta = BTreeMap::from([("via".to_string(), "ws".to_string())]);
        log.append(Entry {
            seq: 0,
            prev_chain: [0; 32],
            ts_unix_ms: 1_700_000_000_000 + u64::from(i),
            event_type: 1 + u16::from(i),
            actor_id: [i; 16],
            subject_id: [2; 16],
            tenant_id: [0; 16],
            object_ref: format!("channel:messaging:{i}").into_bytes(),
            pii_ct: vec![i; 3],
            meta: encode_meta(&meta).unwrap(),
        })
        .unwrap();
    }
    log
}

fn audit_seeds() -> Vec<Seed> {
    let (log, signer) = (log(), signer());
    let verifier = signer.verifier();
    let bundle = log.bundle(&signer, 1, 3, 5, &[2]).unwrap();
    let entries = frame_entries(&bundle.entries).unwrap();
    let manifest = bundle.manifest_json();
    let raw = RawBundle::from_parts(
        bundle.checkpoint.clone().into_bytes(),
        manifest.as_bytes(),
        entries.clone(),
    )
    .unwrap();
    raw.verify(&verifier, None).unwrap();
    let state = ward_audit::bundle::State {
        origin: AUDIT_ORIGIN.into(),
        size: 2,
        root: log.tree().root(2),
    };
    raw.verify(&verifier, Some(&state)).unwrap();
    let inclusion = log.inclusion_proof(3, 5, &signer).unwrap();
    inclusion.verify(&log.entries()[3], &verifier).unwrap();
    let consistency = log.consistency_proof(2, 5, &signer).unwrap();
    consistency.verify(&verifier).unwrap();
    vec![
        (
            "audit_bundle",
            "bundle",
            parts(&[
                bundle.checkpoint.as_bytes(),
                manifest.as_bytes(),
                b"",
                &entries,
            ]),
        ),
        (
            "audit_bundle",
            "bundle_with_state",
            parts(&[
                bundle.checkpoint.as_bytes(),
                manifest.as_bytes(),
                state.to_text().as_bytes(),
                &entries,
            ]),
        ),
        (
            "audit_proof",
            "inclusion",
            parts(&[inclusion.to_text().as_bytes(), &log.entries()[3]]),
        ),
        (
            "audit_proof",
            "consistency",
            consistency.to_text().into_bytes(),
        ),
    ]
}

/// An export archive as `ward` writes one: a profile, messages, and audit entries with
/// their inclusion proofs, the manifest signed by the fuzz key.
fn export_seeds() -> Vec<Seed> {
    let (log, signer) = (log(), signer());
    let checkpoint = log.signed_checkpoint(5, &signer).unwrap();
    let audit: String = (0..5u64)
        .map(|i| {
            let proof = log.tree().inclusion_proof(i, 5);
            let line = json!({
                "entry": STANDARD.encode(&log.entries()[i as usize]),
                "inclusion_proof": {"leaf_index": i, "tree_size": 5,
                    "hashes": proof.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>()},
            });
            format!("{line}\n")
        })
        .collect();
    let files: Vec<(&str, Vec<u8>, u64)> = vec![
        (
            "profile.json",
            json!({"id": "alice", "role": "user"})
                .to_string()
                .into_bytes(),
            1,
        ),
        (
            "messages.ndjson",
            b"{\"id\":\"m1\",\"text\":\"hi\"}\n{\"id\":\"m2\",\"text\":\"yo\"}\n".to_vec(),
            2,
        ),
        ("audit_checkpoint.txt", checkpoint.into_bytes(), 1),
        ("audit.ndjson", audit.into_bytes(), 5),
    ];
    let manifest = Manifest {
        format: FORMAT.into(),
        user_id: "alice".into(),
        created_at: "2027-01-15T08:00:00.000000Z".into(),
        files: files
            .iter()
            .map(|(name, bytes, count)| FileEntry {
                name: (*name).into(),
                sha256: Sha256::digest(bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
                bytes: bytes.len() as u64,
                count: *count,
            })
            .collect(),
        verifier_key: signer.verifier_key(),
        audit_tree_size: 5,
    };
    let sig = signer.sign(&manifest.signed_text()).unwrap();
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let manifest_json = serde_json::to_vec(&manifest).unwrap();
    for (name, bytes) in files.iter().map(|(n, b, _)| (*n, b.as_slice())).chain([
        ("manifest.json", manifest_json.as_slice()),
        ("manifest.sig", sig.as_bytes()),
    ]) {
        zip.start_file(name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    let archive = zip.finish().unwrap().into_inner();
    assert_eq!(
        verify_archive(Cursor::new(&archive), &signer.verifier_key()).unwrap(),
        manifest
    );
    assert!(note::open(&sig, &[signer.verifier()]).is_ok());
    vec![("export_verify", "export", archive)]
}

#[test]
fn fuzz_seeds_reach_their_verdicts() {
    let seeds: Vec<Seed> = [
        jwt_seeds(),
        ws_seeds(),
        filter_seeds(),
        saml_seeds(),
        audit_seeds(),
        export_seeds(),
    ]
    .concat();
    assert!(seeds.iter().all(|(_, _, bytes)| bytes.len() <= 8 * 1024));
    if std::env::var("WARD_FUZZ_WRITE_SEEDS").as_deref() == Ok("1") {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (target, name, bytes) in &seeds {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
