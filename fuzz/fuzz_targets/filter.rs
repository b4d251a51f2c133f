//! Filter, sort and pagination documents (src/chat/filter.rs) as `POST /channels`,
//! `/search` and the member and message queries take them: parsing never panics, a parsed
//! filter evaluates on any document, a sort compares a document equal to itself, and a
//! pagination time that parses survives a render and a second parse.
#![no_main]

use std::cmp::Ordering;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use ward::chat::channel::{MessagePagination, Pagination};
use ward::chat::filter;
use ward::time::{parse_rfc3339, rfc3339};

/// Documents shaped like the channel, member and message views filters run on.
fn docs() -> &'static [Value] {
    static DOCS: OnceLock<Vec<Value>> = OnceLock::new();
    DOCS.get_or_init(|| {
        vec![
            json!({"type": "messaging", "id": "general", "cid": "messaging:general",
                   "members": ["alice", "bob"], "created_at": "2024-01-02T03:04:05Z",
                   "last_message_at": "2024-01-03T00:00:00Z", "member_count": 2,
                   "frozen": false, "data": {"color": "red", "n": 1.5}}),
            json!({"type": "team", "id": "ops", "members": [], "member_count": 0,
                   "created_at": "2023-12-31T23:59:59.999999Z", "frozen": true,
                   "text": "Hello World", "tags": ["a", 1, null]}),
            json!({"id": "x", "last_message_at": null, "user": {"id": "bob", "role": "admin"}}),
            json!({}),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // The request as a whole, and each part of it, as filter, sort and pagination.
    let parts = doc
        .as_object()
        .map(|o| o.values().collect::<Vec<_>>())
        .unwrap_or_default();
    for v in std::iter::once(&doc).chain(parts) {
        if let Ok(f) = filter::parse(v) {
            for d in docs().iter().chain(std::iter::once(v)) {
                let _ = f.matches(d);
            }
            let _ = f.required_values("cid");
        }
        if let Ok(keys) = filter::parse_sort(v) {
            let mut sample: Vec<&Value> = docs().iter().chain(std::iter::once(v)).collect();
            for a in &sample {
                assert_eq!(filter::compare_docs(a, a, &keys), Ordering::Equal);
            }
            sample.sort_by(|a, b| filter::compare_docs(a, b, &keys));
        }
        let _ = serde_json::from_value::<Pagination>(v.clone());
        if let Ok(page) = serde_json::from_value::<MessagePagination>(v.clone()) {
            for text in [
                &page.created_at_before,
                &page.created_at_before_or_equal,
                &page.created_at_after,
                &page.created_at_after_or_equal,
            ]
            .into_iter()
            .flatten()
            {
                if let Some(t) = parse_rfc3339(text) {
                    assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{text}");
                }
            }
        }
    }
});
