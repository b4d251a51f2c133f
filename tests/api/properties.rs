//! Property tests (proptest) for the parsers the fuzz targets drive, where there is an
//! invariant to state: JWT sign/verify and tamper refusal, filter algebra, audit inclusion
//! proofs (generated ones verify, mutated ones do not), and the round trips of pagination
//! times and cross-node bus frames.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use ward::auth::token;
use ward::bus::wire::{self, Body, TargetKind};
use ward::chat::filter;
use ward::time::{parse_rfc3339, rfc3339};
use ward_audit::entry::Entry;
use ward_audit::memlog::MemoryLog;
use ward_audit::note::Signer;
use ward_audit::proof::InclusionProof;

const SECRET: &[u8] = b"property-secret";
const NOW: i64 = 1_800_000_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// A token the server SDK would sign verifies and names its user.
    #[test]
    fn a_signed_user_token_verifies(user in "[a-zA-Z0-9@_\\-]{1,64}", ttl in 10i64..1_000_000) {
        let t = token::user_token(&user, Some(NOW + ttl), SECRET);
        let claims = token::verify(&t, SECRET, false, NOW).unwrap();
        prop_assert_eq!(claims.user_id.as_deref(), Some(user.as_str()));
        prop_assert!(!claims.server);
    }

    /// Any single-byte change of a signed token is refused, whatever the byte.
    #[test]
    fn a_token_changed_in_one_byte_is_refused(
        user in "[a-z]{1,16}",
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let t = token::user_token(&user, None, SECRET);
        let mut bytes = t.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        if let Ok(changed) = String::from_utf8(bytes) {
            prop_assert!(token::verify(&changed, SECRET, false, NOW).is_err(), "{changed}");
            prop_assert!(token::verify(&changed, SECRET, true, NOW).is_err(), "{changed}");
        }
    }

    /// Filter parsing never panics, whatever JSON it is given.
    #[test]
    fn filter_parsing_never_panics(doc in json_value()) {
        let _ = filter::parse(&doc);
        let _ = filter::parse_sort(&doc);
    }

    /// The algebra of the parsed form: `$and` of one filter is that filter, `$nor` its
    /// negation, `$or` of it twice the same; `$ne` negates `$eq`; `$in` of one scalar is
    /// `$eq` of it.
    #[test]
    fn filters_obey_their_algebra(f in field_filter(), doc in document()) {
        let m = |v: Value| filter::parse(&v).unwrap().matches(&doc);
        let base = m(f.clone());
        prop_assert_eq!(m(json!({"$and": [f.clone()]})), base);
        prop_assert_eq!(m(json!({"$or": [f.clone(), f.clone()]})), base);
        prop_assert_eq!(m(json!({"$nor": [f.clone()]})), !base);
        let (name, value) = f.as_object().unwrap().iter().next().unwrap();
        prop_assert_eq!(m(json!({ name: {"$ne": value} })), !m(json!({ name: {"$eq": value} })));
        prop_assert_eq!(m(json!({ name: {"$in": [value]} })), m(json!({ name: {"$eq": value} })));
    }

    /// A pagination time renders and parses back to the same microsecond.
    #[test]
    fn rfc3339_times_round_trip(micros in -62_135_596_800_000_000i64..253_402_300_799_999_999) {
        prop_assert_eq!(parse_rfc3339(&rfc3339(micros)), Some(micros));
    }

    /// A bus frame decodes to what was encoded.
    #[test]
    fn bus_frames_round_trip(
        node in "[a-z0-9-]{0,40}",
        sent_at in any::<i64>(),
        key in "[a-z:!_-]{0,80}",
        payload in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let body = Body::Event { target: TargetKind::Channel, key, payload };
        let frame = wire::decode(&wire::encode(&node, sent_at, &body)).unwrap();
        prop_assert_eq!((frame.node, frame.sent_at, frame.body), (node, sent_at, body));
    }

}

proptest! {
    // Each case signs and verifies Ed25519 notes, slow unoptimised: fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, ..config() })]

    /// Every inclusion proof of a generated log verifies; a proof changed in any one byte,
    /// or proving changed entry bytes, does not.
    #[test]
    fn audit_inclusion_proofs_verify_and_mutations_are_refused(
        size in 1u64..=LOG_SIZE,
        at in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let (log, signer) = log_and_signer();
        let verifier = signer.verifier();
        let index = at.index(size as usize) as u64;
        let entry = &log.entries()[index as usize];
        let proof = log.inclusion_proof(index, size, signer).unwrap();
        let text = proof.to_text();
        let report = InclusionProof::parse(&text).unwrap().verify(entry, &verifier).unwrap();
        prop_assert_eq!(report.index, index);

        let mut bytes = text.clone().into_bytes();
        let i = flip.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        if let Ok(changed) = String::from_utf8(bytes) {
            let verdict = InclusionProof::parse(&changed).map(|p| p.verify(entry, &verifier));
            prop_assert!(!matches!(verdict, Ok(Ok(_))), "{changed}");
        }
        let mut other = entry.clone();
        let j = flip.index(other.len());
        other[j] ^= byte | 1;
        prop_assert!(proof.verify(&other, &verifier).is_err());
    }
}

/// Entries in the log the proof properties draw from (every prefix is a tree size).
const LOG_SIZE: u64 = 40;

/// A log of [`LOG_SIZE`] entries, each a little different, and its signer; made once
/// (Ed25519 and hashing are slow unoptimised).
fn log_and_signer() -> &'static (MemoryLog, Signer) {
    static LOG: OnceLock<(MemoryLog, Signer)> = OnceLock::new();
    LOG.get_or_init(|| {
        let signer = Signer::from_seed("properties.ward.example/audit", &[9; 32]).unwrap();
        (log_of(LOG_SIZE), signer)
    })
}

fn log_of(size: u64) -> MemoryLog {
    let mut log = MemoryLog::new("properties.ward.example/audit");
    for i in 0..size {
        log.append(Entry {
            seq: 0,
            prev_chain: [0; 32],
            ts_unix_ms: 1_700_000_000_000 + i,
            event_type: (i % 7) as u16 + 1,
            actor_id: [i as u8; 16],
            subject_id: [1; 16],
            tenant_id: [0; 16],
            object_ref: format!("channel:messaging:{i}").into_bytes(),
            pii_ct: Vec::new(),
            meta: Vec::new(),
        })
        .unwrap();
    }
    log
}

/// Arbitrary JSON, a few levels deep, with the operators filters know among the keys.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z0-9:T.Z-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "$and",
            "$or",
            "$nor",
            "$eq",
            "$ne",
            "$in",
            "$nin",
            "$gt",
            "$gte",
            "$lt",
            "$lte",
            "$exists",
            "$autocomplete",
            "$q",
            "$contains",
            "$regex",
            "field",
            "direction",
        ])
        .prop_map(str::to_string),
        "[a-z_.]{1,8}",
    ]
}

/// A scalar as filters compare them: strings (some RFC 3339 times), numbers, booleans.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec!["a", "b", "red", "2024-01-02T03:04:05Z", ""])
            .prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        (-3i64..4).prop_map(|n| Value::from(n as f64 + 0.5)),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn field_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "members", "data.n", "missing"])
}

/// `{name: scalar}` or `{name: {op: operand}}` with an operand the operator accepts.
fn field_filter() -> impl Strategy<Value = Value> {
    let ops = prop::sample::select(vec![
        "$eq",
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$contains",
    ]);
    prop_oneof![
        (field_name(), scalar()).prop_map(|(n, v)| json!({ n: v })),
        (field_name(), ops, scalar()).prop_map(|(n, op, v)| json!({ n: { op: v } })),
        (field_name(), prop::collection::vec(scalar(), 0..4))
            .prop_map(|(n, l)| json!({ n: {"$in": l} })),
        (field_name(), any::<bool>()).prop_map(|(n, b)| json!({ n: {"$exists": b} })),
    ]
}

/// A document with the filtered fields, each present or not, scalar or list.
fn document() -> impl Strategy<Value = Value> {
    (
        prop::option::of(scalar()),
        prop::option::of(scalar()),
        prop::collection::vec(scalar(), 0..4),
        prop::option::of(scalar()),
    )
        .prop_map(|(a, b, members, n)| {
            let mut doc = json!({ "members": members, "data": {} });
            if let Some(a) = a {
                doc["a"] = a;
            }
            if let Some(b) = b {
                doc["b"] = b;
            }
            if let Some(n) = n {
                doc["data"]["n"] = n;
            }
            doc
        })
}
