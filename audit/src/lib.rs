//! `ward-audit`: the audit log format of Ward and the offline verifier auditors run.
//!
//! This crate has no dependency on the Ward server on purpose: an auditor builds it alone
//! (`cargo build -p ward-audit`) and checks an exported evidence bundle with nothing but
//! SHA-256 and the log's pinned public key. `README.md` in this directory is the normative
//! specification; the modules below implement it.
//!
//! Module map:
//!
//! * [`entry`] — entry v1, the fixed big-endian byte layout that is hashed and stored as
//!   is, the canonical metadata encoding, and the per-row chain hash.
//! * [`merkle`] — RFC 6962 / RFC 9162 §2.1 tree hashing, inclusion and consistency proofs
//!   (generation as leaf ranges, verification as the RFC 9162 bit-walks), the compact
//!   [`merkle::Frontier`] and an in-memory tree.
//! * [`note`] — C2SP `signed-note` with Ed25519: signer, verifier key (`vkey`) form, open.
//! * [`checkpoint`] — C2SP `tlog-checkpoint` bodies, signed and opened under a pinned key.
//! * [`bundle`] — the auditor bundle directory, the auditor's state file, and
//!   [`bundle::verify`], the full offline verification.
//! * [`proof`] — the single-entry inclusion proof file (C2SP `tlog-proof`) and the
//!   consistency proof file.
//! * [`memlog`] — an in-memory log that produces all of the above; used by tests, the
//!   golden vectors and the benchmark, and a reference for a store-backed producer.

pub mod bundle;
pub mod checkpoint;
pub mod entry;
pub mod memlog;
pub mod merkle;
pub mod note;
pub mod proof;

mod b64;

/// A SHA-256 digest: every hash in this crate (chain hashes, leaf and node hashes, roots).
pub type Hash = [u8; 32];
