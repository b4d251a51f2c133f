//! The auditor bundle (audit/src/bundle.rs) and what it is made of: the signed checkpoint,
//! `bundle.json`, the auditor's state file and the framed entries, verified against the
//! pinned key the seed bundles were signed with. Input: the four files separated by 0xFF
//! (never in UTF-8 text; the binary entries file comes last). No panic, entries that decode
//! re-encode to the same bytes, and a bundle verifies only for its key's origin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_audit::bundle::{RawBundle, State, split_entries};
use ward_audit::checkpoint::Checkpoint;
use ward_audit::entry::{Entry, decode_meta, encode_meta};
use ward_fuzz::{AUDIT_ORIGIN, audit_verifier, split};

fn check_entry(bytes: &[u8]) {
    if let Ok(entry) = Entry::decode(bytes) {
        assert_eq!(entry.encode().ok().as_deref(), Some(bytes));
        let meta = decode_meta(&entry.meta).expect("a decoded entry has canonical meta");
        assert_eq!(
            encode_meta(&meta).ok().as_deref(),
            Some(entry.meta.as_slice())
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let [checkpoint, manifest, state, entries] = split::<4>(data);
    let state = std::str::from_utf8(state)
        .ok()
        .and_then(|t| State::parse(t).ok());
    if let Some(s) = &state {
        assert_eq!(State::parse(&s.to_text()).ok().as_ref(), Some(s));
    }
    if let Ok(text) = std::str::from_utf8(checkpoint) {
        let _ = Checkpoint::open(text, audit_verifier());
        if let Ok(body) = Checkpoint::parse_body(text) {
            assert_eq!(Checkpoint::parse_body(&body.body()).ok(), Some(body));
        }
    }
    if let Ok(list) = split_entries(entries) {
        list.into_iter().for_each(check_entry);
    }
    if let Ok(bundle) = RawBundle::from_parts(checkpoint.to_vec(), manifest, entries.to_vec()) {
        if let Ok(report) = bundle.verify(audit_verifier(), state.as_ref()) {
            assert_eq!(report.origin, AUDIT_ORIGIN);
        }
    }
});
