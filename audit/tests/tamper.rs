//! Every tamper case of audit-and-crypto.md §5, through `bundle::verify`, asserting the
//! specific error. The cases are built in `common/mod.rs` (the same ones the golden vectors
//! hold); the tests here name what each one must produce.

mod common;

use common::{LOG_LEN, case, genuine_log, signer, state_of};
use ward_audit::bundle::{Report, VerifyError, verify};
use ward_audit::checkpoint::CheckpointError;
use ward_audit::entry::EntryError;
use ward_audit::merkle::ProofError;
use ward_audit::note::NoteError;

fn run(name: &str) -> Result<Report, VerifyError> {
    let c = case(name);
    verify(&c.bundle, &signer().verifier(), c.state.as_ref())
}

#[test]
fn a_full_genuine_bundle_verifies_and_reports_the_signed_root() {
    let r = run("full").unwrap();
    let log = genuine_log();
    assert_eq!(r.first, 0);
    assert_eq!(r.count, LOG_LEN);
    assert_eq!(r.tree_size, LOG_LEN);
    assert_eq!(r.root, log.checkpoint(LOG_LEN).root);
    assert_eq!(r.consistent_with, None);
    assert_eq!(
        r.to_string(),
        format!(
            "OK audit.ward.example/tenant-0001/v1 entries 0..16 of tree size 16 root {}",
            "UdGPvDWjOuazVa5eVRajNUqQkzXGfGBe3rctuC9IWGE="
        )
    );
}

#[test]
fn partial_bundles_and_states_verify() {
    assert_eq!(
        run("middle").unwrap().to_string().split(' ').nth(3),
        Some("5..11")
    );
    run("prefix").unwrap();
    assert_eq!(run("since-state").unwrap().consistent_with, Some(8));
    assert_eq!(run("state-inside").unwrap().consistent_with, Some(12));
    assert_eq!(run("prior-proof").unwrap().consistent_with, Some(4));
    assert_eq!(run("same-size-state").unwrap().consistent_with, Some(16));
    let empty = run("empty-log").unwrap();
    assert_eq!((empty.tree_size, empty.count), (0, 0));
    assert_eq!(empty.root, ward_audit::merkle::empty_root());
}

#[test]
fn every_state_size_from_0_to_16_is_accepted_for_every_genuine_bundle_shape() {
    // A sweep over bundle ranges and state sizes: with every prior proof attached, every
    // combination of genuine inputs verifies. (Ed25519 is slow in debug builds, so the
    // ranges are a sample: empty, one entry, and up to the end, at aligned and unaligned
    // starts.)
    let log = genuine_log();
    let s = signer();
    let v = s.verifier();
    let all: Vec<u64> = (0..=LOG_LEN).collect();
    for first in [0, 3, 8, 11, 16] {
        let mut ends = vec![first, LOG_LEN];
        if first < LOG_LEN {
            ends.push(first + 1);
        }
        for end in ends {
            let b = log.bundle(&s, first, end - first, LOG_LEN, &all).unwrap();
            for m in 0..=LOG_LEN {
                let r = verify(&b, &v, Some(&state_of(&log, m))).unwrap();
                assert_eq!(r.consistent_with, Some(m));
            }
        }
    }
}

#[test]
fn a_bundle_whose_pii_is_opaque_random_bytes_verifies() {
    // Crypto-shredding destroys the key, not the bytes: pii_ct stays opaque ciphertext and
    // every hash is unchanged. The fixture's pii_ct is pseudo-random and some entries have
    // none; the verifier never interprets it.
    let log = common::log_with(LOG_LEN, |i, e| {
        e.pii_ct = (0..(i as usize * 13 % 97))
            .map(|j| (j * 131 + i as usize * 7) as u8)
            .collect();
    });
    let b = log.bundle(&signer(), 0, LOG_LEN, LOG_LEN, &[]).unwrap();
    verify(&b, &signer().verifier(), None).unwrap();
}

#[test]
fn case_1_an_edited_entry_breaks_the_chain_at_the_next_entry() {
    assert_eq!(run("edited-entry"), Err(VerifyError::ChainBreak { seq: 8 }));
}

#[test]
fn case_1_an_edited_last_entry_is_caught_by_the_signed_root() {
    assert_eq!(
        run("edited-last-entry"),
        Err(VerifyError::RootMismatch { size: 16 })
    );
}

#[test]
fn case_1b_a_rewritten_chain_is_caught_only_by_the_signed_root() {
    // The chain itself is internally valid here...
    let c = case("rewritten-chain");
    for w in c.bundle.entries.windows(2) {
        let next = ward_audit::entry::EntryRef::parse(&w[1]).unwrap();
        assert_eq!(*next.prev_chain, ward_audit::entry::chain_hash(&w[0]));
    }
    // ...and only the checkpoint catches it.
    assert_eq!(
        run("rewritten-chain"),
        Err(VerifyError::RootMismatch { size: 16 })
    );
}

#[test]
fn case_2_a_deleted_entry_is_a_seq_gap() {
    assert_eq!(
        run("deleted-entry"),
        Err(VerifyError::SeqMismatch {
            expected: 7,
            found: 8
        })
    );
}

#[test]
fn case_3_reordered_entries_are_a_seq_mismatch() {
    assert_eq!(
        run("reordered-entries"),
        Err(VerifyError::SeqMismatch {
            expected: 7,
            found: 8
        })
    );
}

#[test]
fn case_4a_a_truncated_tail_with_the_latest_checkpoint_has_no_consistency_proof() {
    assert_eq!(
        run("truncated-tail"),
        Err(VerifyError::Consistency {
            end: 12,
            size: 16,
            source: ProofError::EmptyProof
        })
    );
}

#[test]
fn case_4b_an_older_genuine_checkpoint_is_a_rollback() {
    assert_eq!(
        run("rollback"),
        Err(VerifyError::Rollback {
            size: 12,
            state_size: 16
        })
    );
}

#[test]
fn case_5a_a_fork_after_the_auditors_size_is_detected_inside_the_bundle() {
    assert_eq!(run("fork"), Err(VerifyError::Fork { size: 12 }));
}

#[test]
fn case_5a_a_fork_is_detected_through_a_prior_proof() {
    assert!(matches!(
        run("fork-prior"),
        Err(VerifyError::PriorInconsistent { size: 12, .. })
    ));
}

#[test]
fn case_5b_a_split_view_is_the_same_size_with_another_root() {
    assert_eq!(run("split-view"), Err(VerifyError::SplitView { size: 16 }));
}

#[test]
fn case_6a_a_checkpoint_signed_by_another_key_with_the_same_name_is_untrusted() {
    assert_eq!(
        run("wrong-key"),
        Err(VerifyError::Checkpoint(CheckpointError::Note(
            NoteError::NoTrustedSignature { unknown: 1 }
        )))
    );
}

#[test]
fn case_6b_altered_signature_bytes_reject_the_note() {
    assert!(matches!(
        run("altered-signature"),
        Err(VerifyError::Checkpoint(CheckpointError::Note(
            NoteError::BadSignature { .. }
        )))
    ));
}

#[test]
fn case_6c_an_altered_size_under_a_valid_signature_fails_the_signature() {
    assert!(matches!(
        run("altered-size"),
        Err(VerifyError::Checkpoint(CheckpointError::Note(
            NoteError::BadSignature { .. }
        )))
    ));
}

#[test]
fn case_7_a_replayed_old_checkpoint_is_a_rollback() {
    assert_eq!(
        run("replayed-checkpoint"),
        Err(VerifyError::Rollback {
            size: 10,
            state_size: 16
        })
    );
}

#[test]
fn case_8_another_origins_checkpoint_from_the_same_key_pair_is_untrusted() {
    assert_eq!(
        run("other-origin"),
        Err(VerifyError::Checkpoint(CheckpointError::Note(
            NoteError::NoTrustedSignature { unknown: 1 }
        )))
    );
}

#[test]
fn case_8_a_body_naming_another_origin_is_an_origin_mismatch() {
    assert!(matches!(
        run("other-origin-body"),
        Err(VerifyError::Checkpoint(
            CheckpointError::OriginMismatch { .. }
        ))
    ));
    assert!(matches!(
        run("bundle-other-origin"),
        Err(VerifyError::OriginMismatch { .. })
    ));
    assert!(matches!(
        run("state-other-origin"),
        Err(VerifyError::StateOrigin { .. })
    ));
}

#[test]
fn case_9_interior_nodes_passed_off_as_entries_are_rejected() {
    assert!(matches!(
        run("second-preimage"),
        Err(VerifyError::Entry { seq: 0, .. })
    ));
    // Even if the verifier skipped entry decoding, the RFC 6962 root would differ:
    let c = case("second-preimage");
    let mut t = ward_audit::merkle::Frontier::new();
    for e in &c.bundle.entries {
        t.push_leaf(ward_audit::merkle::leaf_hash(e));
    }
    assert_ne!(t.root(), genuine_log().checkpoint(8).root);
    assert_ne!(t.root(), genuine_log().checkpoint(LOG_LEN).root);
}

#[test]
fn malformed_checkpoints_are_rejected_even_when_validly_signed() {
    for name in [
        "size-leading-zero",
        "size-with-sign",
        "extension-line",
        "root-31-bytes",
    ] {
        assert!(
            matches!(
                run(name),
                Err(VerifyError::Checkpoint(CheckpointError::Malformed(_)))
            ),
            "{name}"
        );
    }
}

#[test]
fn malformed_notes_are_rejected() {
    assert_eq!(
        run("control-character"),
        Err(VerifyError::Checkpoint(CheckpointError::Note(
            NoteError::Malformed("control character")
        )))
    );
    assert_eq!(
        run("no-blank-line"),
        Err(VerifyError::Checkpoint(CheckpointError::Note(
            NoteError::Malformed("no blank line before the signatures")
        )))
    );
    assert_eq!(
        run("too-many-signatures"),
        Err(VerifyError::Checkpoint(CheckpointError::Note(
            NoteError::TooManySignatures
        )))
    );
    assert_eq!(
        run("non-canonical-base64"),
        Err(VerifyError::Checkpoint(CheckpointError::Note(
            NoteError::Malformed("signature is not canonical base64")
        )))
    );
}

#[test]
fn hash_drift_non_canonical_meta_and_trailing_bytes_are_rejected() {
    assert_eq!(
        run("non-canonical-meta"),
        Err(VerifyError::Entry {
            seq: 3,
            source: EntryError::MetaOrder
        })
    );
    assert_eq!(
        run("trailing-bytes"),
        Err(VerifyError::Entry {
            seq: 5,
            source: EntryError::TrailingBytes(1)
        })
    );
    assert_eq!(run("empty-entry"), Err(VerifyError::EmptyEntry { seq: 5 }));
    assert_eq!(
        run("genesis-prev-chain"),
        Err(VerifyError::GenesisPrevChain)
    );
}

#[test]
fn bundle_proof_material_is_checked() {
    assert!(matches!(
        run("bad-frontier-hash"),
        Err(VerifyError::Consistency {
            end: 11,
            size: 16,
            source: ProofError::OldRootMismatch
        })
    ));
    assert_eq!(
        run("short-frontier"),
        Err(VerifyError::Frontier(ProofError::PeakCount {
            size: 5,
            expected: 2,
            got: 1
        }))
    );
    assert!(matches!(
        run("short-consistency"),
        Err(VerifyError::Consistency {
            source: ProofError::TooFewHashes,
            ..
        })
    ));
    assert_eq!(
        run("beyond-checkpoint"),
        Err(VerifyError::BeyondCheckpoint {
            first: 0,
            end: 16,
            size: 12
        })
    );
    assert_eq!(
        run("missing-prior"),
        Err(VerifyError::MissingPrior { size: 4 })
    );
}

#[test]
fn every_case_fails_or_passes_exactly_as_its_expectation_says() {
    for c in common::cases() {
        let got = verify(&c.bundle, &signer().verifier(), c.state.as_ref());
        match (&c.expect, &got) {
            (common::Expect::Ok(m), Ok(r)) => assert_eq!(r.consistent_with, *m, "{}", c.name),
            (common::Expect::Fail(k), Err(e)) => assert_eq!(e.kind(), *k, "{}", c.name),
            _ => panic!("{}: expected {:?}, got {got:?}", c.name, c.expect),
        }
    }
}

#[test]
fn hostile_inputs_never_panic() {
    // Random bit flips and truncations in the entries, the checkpoint and the frontier of
    // a partial bundle: every outcome must be an error value, never a panic or a pass.
    let c = case("middle");
    let v = signer().verifier();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..300 {
        let mut b = c.bundle.clone();
        match next() % 4 {
            0 => {
                let i = (next() % b.entries.len() as u64) as usize;
                let e = &mut b.entries[i];
                let j = (next() % e.len() as u64) as usize;
                e[j] ^= 1 << (next() % 8);
            }
            1 => {
                let mut bytes = b.checkpoint.into_bytes();
                let j = (next() % bytes.len() as u64) as usize;
                bytes[j] ^= 1 << (next() % 7);
                b.checkpoint = String::from_utf8_lossy(&bytes).into_owned();
            }
            2 => {
                let i = (next() % b.frontier.len() as u64) as usize;
                b.frontier[i][(next() % 32) as usize] ^= 1;
            }
            _ => {
                let i = (next() % b.entries.len() as u64) as usize;
                let cut = (next() % b.entries[i].len() as u64) as usize;
                b.entries[i].truncate(cut);
            }
        }
        assert!(verify(&b, &v, None).is_err());
    }
}
