//! The single-entry inclusion proof and the consistency proof files (audit/src/proof.rs) and
//! the signed notes they carry, verified against the pinned key of the seeds. Input: the
//! proof text, then 0xFF and the entry bytes the inclusion proof is for. No panic; a file
//! that parses prints to one that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward_audit::note::{self, Verifier};
use ward_audit::proof::{ConsistencyProof, InclusionProof};
use ward_fuzz::{audit_verifier, split};

fuzz_target!(|data: &[u8]| {
    let [text, entry] = split::<2>(data);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Ok(p) = InclusionProof::parse(text) {
        assert_eq!(InclusionProof::parse(&p.to_text()).as_ref(), Ok(&p));
        if let Ok(report) = p.verify(entry, audit_verifier()) {
            assert_eq!(report.index, p.index);
            assert!(report.index < report.checkpoint.size);
        }
    }
    if let Ok(p) = ConsistencyProof::parse(text) {
        assert_eq!(ConsistencyProof::parse(&p.to_text()).as_ref(), Ok(&p));
        if let Ok(report) = p.verify(audit_verifier()) {
            assert!(report.old.size <= report.new.size);
        }
    }
    let _ = Verifier::parse(text);
    let _ = note::open(text, std::slice::from_ref(audit_verifier()));
});
