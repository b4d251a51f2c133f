//! Proof files for a single entry and for two checkpoints.
//!
//! * [`InclusionProof`] is the C2SP `tlog-proof` text form (<https://c2sp.org/tlog-proof>):
//!
//!   ```text
//!   c2sp.org/tlog-proof@v1
//!   index <n>
//!   <base64 hash>            (zero or more, leaf to root, RFC 9162 §2.1.3)
//!
//!   <signed checkpoint note>
//!   ```
//!
//!   The optional `extra` line of the spec is neither produced nor accepted.
//!
//! * [`ConsistencyProof`] has no C2SP form, so it uses a Ward-specific one. The two notes
//!   are length-prefixed because a signed note itself contains a blank line and ends at an
//!   arbitrary number of signature lines, so no separator line could be unambiguous:
//!
//!   ```text
//!   ward-audit/consistency-proof@v1
//!   <base64 hash>            (zero or more, RFC 9162 §2.1.4)
//!
//!   checkpoint <byte length of the old note>
//!   <old signed checkpoint note>
//!   checkpoint <byte length of the new note>
//!   <new signed checkpoint note>
//!   ```

use crate::checkpoint::{Checkpoint, CheckpointError, parse_size};
use crate::entry::{EntryError, EntryRef};
use crate::merkle::{ProofError, leaf_hash, verify_consistency, verify_inclusion};
use crate::note::Verifier;
use crate::{Hash, b64};

/// First line of an inclusion proof file.
pub const INCLUSION_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// First line of a consistency proof file.
pub const CONSISTENCY_HEADER: &str = "ward-audit/consistency-proof@v1";
/// No valid proof over a `u64`-sized tree has more hashes than this.
pub const MAX_PROOF_HASHES: usize = 64;

/// Why a proof file was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProofFileError {
    #[error("malformed proof file: {0}")]
    Malformed(&'static str),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("old checkpoint: {0}")]
    OldCheckpoint(CheckpointError),
    #[error("new checkpoint: {0}")]
    NewCheckpoint(CheckpointError),
    #[error("entry: {0}")]
    Entry(#[from] EntryError),
    #[error("entry carries seq {seq} but the proof is for index {index}")]
    SeqMismatch { index: u64, seq: u64 },
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
}

/// Reads hash lines until an empty line; returns the hashes and the rest after the empty line.
fn hash_lines(mut rest: &str) -> Result<(Vec<Hash>, &str), ProofFileError> {
    let mut hashes = Vec::new();
    loop {
        let (line, tail) = rest.split_once('\n').ok_or(ProofFileError::Malformed(
            "missing empty line after the hashes",
        ))?;
        rest = tail;
        if line.is_empty() {
            return Ok((hashes, rest));
        }
        if hashes.len() == MAX_PROOF_HASHES {
            return Err(ProofFileError::Malformed("too many hashes"));
        }
        hashes.push(b64::decode_hash(line).ok_or(ProofFileError::Malformed(
            "hash is not canonical base64 of 32 bytes",
        ))?);
    }
}

fn push_hashes(out: &mut String, hashes: &[Hash]) {
    for h in hashes {
        out.push_str(&b64::encode(h));
        out.push('\n');
    }
    out.push('\n');
}

/// A C2SP `tlog-proof`: one entry's inclusion in a signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    pub hashes: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

/// What a verified inclusion proof established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionReport {
    pub index: u64,
    pub checkpoint: Checkpoint,
}

impl InclusionProof {
    pub fn to_text(&self) -> String {
        let mut out = format!("{INCLUSION_HEADER}\nindex {}\n", self.index);
        push_hashes(&mut out, &self.hashes);
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(text: &str) -> Result<Self, ProofFileError> {
        let rest = text
            .strip_prefix(INCLUSION_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(ProofFileError::Malformed(
                "first line is not c2sp.org/tlog-proof@v1",
            ))?;
        let (line, rest) = rest
            .split_once('\n')
            .ok_or(ProofFileError::Malformed("missing index line"))?;
        let index =
            line.strip_prefix("index ")
                .and_then(parse_size)
                .ok_or(ProofFileError::Malformed(
                    "second line is not 'index <decimal>'",
                ))?;
        let (hashes, checkpoint) = hash_lines(rest)?;
        if checkpoint.is_empty() {
            return Err(ProofFileError::Malformed("missing checkpoint"));
        }
        Ok(InclusionProof {
            index,
            hashes,
            checkpoint: checkpoint.to_owned(),
        })
    }

    /// Verifies the checkpoint under the pinned key, that `entry` is a valid v1 entry whose
    /// seq is the proof's index, and the RFC 9162 §2.1.3.2 inclusion of `leaf_hash(entry)`
    /// against the *signed* root.
    pub fn verify(
        &self,
        entry: &[u8],
        verifier: &Verifier,
    ) -> Result<InclusionReport, ProofFileError> {
        let cp = Checkpoint::open(&self.checkpoint, verifier)?;
        let e = EntryRef::parse(entry)?;
        if e.seq != self.index {
            return Err(ProofFileError::SeqMismatch {
                index: self.index,
                seq: e.seq,
            });
        }
        verify_inclusion(
            &leaf_hash(entry),
            self.index,
            cp.size,
            &self.hashes,
            &cp.root,
        )?;
        Ok(InclusionReport {
            index: self.index,
            checkpoint: cp,
        })
    }
}

/// A consistency proof between two signed checkpoints of the same log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    pub hashes: Vec<Hash>,
    pub old_checkpoint: String,
    pub new_checkpoint: String,
}

/// What a verified consistency proof established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyReport {
    pub old: Checkpoint,
    pub new: Checkpoint,
}

fn take_note(rest: &str) -> Result<(&str, &str), ProofFileError> {
    let (line, rest) = rest.split_once('\n').ok_or(ProofFileError::Malformed(
        "missing 'checkpoint <length>' line",
    ))?;
    let len = line
        .strip_prefix("checkpoint ")
        .and_then(parse_size)
        .ok_or(ProofFileError::Malformed(
            "expected 'checkpoint <decimal length>'",
        ))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= rest.len() && rest.is_char_boundary(l))
        .ok_or(ProofFileError::Malformed(
            "checkpoint length exceeds the file",
        ))?;
    Ok(rest.split_at(len))
}

impl ConsistencyProof {
    pub fn to_text(&self) -> String {
        let mut out = format!("{CONSISTENCY_HEADER}\n");
        push_hashes(&mut out, &self.hashes);
        for note in [&self.old_checkpoint, &self.new_checkpoint] {
            out.push_str(&format!("checkpoint {}\n", note.len()));
            out.push_str(note);
        }
        out
    }

    pub fn parse(text: &str) -> Result<Self, ProofFileError> {
        let rest = text
            .strip_prefix(CONSISTENCY_HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(ProofFileError::Malformed(
                "first line is not ward-audit/consistency-proof@v1",
            ))?;
        let (hashes, rest) = hash_lines(rest)?;
        let (old, rest) = take_note(rest)?;
        let (new, rest) = take_note(rest)?;
        if !rest.is_empty() {
            return Err(ProofFileError::Malformed(
                "trailing data after the new checkpoint",
            ));
        }
        Ok(ConsistencyProof {
            hashes,
            old_checkpoint: old.to_owned(),
            new_checkpoint: new.to_owned(),
        })
    }

    /// Verifies both checkpoints under the pinned key (hence the same origin, the key's
    /// name), `old.size <= new.size`, and the RFC 9162 §2.1.4.2 proof between the two
    /// *signed* roots.
    pub fn verify(&self, verifier: &Verifier) -> Result<ConsistencyReport, ProofFileError> {
        let old = Checkpoint::open(&self.old_checkpoint, verifier)
            .map_err(ProofFileError::OldCheckpoint)?;
        let new = Checkpoint::open(&self.new_checkpoint, verifier)
            .map_err(ProofFileError::NewCheckpoint)?;
        verify_consistency(old.size, new.size, &self.hashes, &old.root, &new.root)?;
        Ok(ConsistencyReport { old, new })
    }
}
