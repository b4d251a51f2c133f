//! The auditor bundle, the auditor's state file, and the full offline verification.
//!
//! A bundle is a directory with three files (README.md, "Bundle"):
//!
//! * `checkpoint` — a signed C2SP checkpoint for tree size `N`;
//! * `entries` — entries `first..first+count`, each framed as `u16 BE length || bytes`
//!   (the tlog-tiles entry-bundle framing, c2sp.org/tlog-tiles "Log Entries");
//! * `bundle.json` — origin, `first`, `count`, the frontier of `[0, first)`, the consistency
//!   proof from `first+count` to `N`, and optional `prior` consistency proofs `m → N`.
//!
//! [`verify`] recomputes everything from the entry bytes and checks it against the signed
//! root and the auditor's last accepted checkpoint ([`State`]); it never trusts a root that
//! travels with the bundle.

use std::fmt;
use std::io::{self, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::entry::{EntryError, EntryRef, MAX_ENTRY_LEN, chain_hash};
use crate::merkle::{Frontier, ProofError, empty_root, leaf_hash, verify_consistency};
use crate::note::{NoteError, Verifier};
use crate::{Hash, b64};

/// The `format` value of `bundle.json`.
pub const FORMAT: &str = "ward-audit-bundle/v1";

/// File names inside a bundle directory.
pub const CHECKPOINT_FILE: &str = "checkpoint";
pub const ENTRIES_FILE: &str = "entries";
pub const MANIFEST_FILE: &str = "bundle.json";

const MAX_MANIFEST_LEN: u64 = 16 << 20;

/// An auditor bundle, in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The signed checkpoint note (tree size `N`).
    pub checkpoint: String,
    /// Sequence number of the first entry in `entries`.
    pub first: u64,
    /// Raw entry bytes, seq `first..first + entries.len()`.
    pub entries: Vec<Vec<u8>>,
    /// Hashes of `perfect_subtrees(0, first)`, largest first.
    pub frontier: Vec<Hash>,
    /// Consistency proof from `first + entries.len()` to `N`; empty when they are equal.
    pub consistency: Vec<Hash>,
    /// Consistency proofs `(m, proof m → N)` for auditors whose last accepted size `m` is
    /// outside `[first, first + count]`.
    pub prior: Vec<(u64, Vec<Hash>)>,
    /// The log origin (must equal the pinned key's name and the checkpoint's origin).
    pub origin: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    origin: String,
    first: u64,
    count: u64,
    frontier: Vec<String>,
    consistency: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    prior: Vec<PriorProof>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorProof {
    size: u64,
    proof: Vec<String>,
}

/// Why a bundle directory or state file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file} is not valid: {reason}")]
    Format { file: &'static str, reason: String },
}

fn format_err(file: &'static str, reason: impl Into<String>) -> BundleError {
    BundleError::Format {
        file,
        reason: reason.into(),
    }
}

fn read_file(path: &Path, limit: Option<u64>) -> Result<Vec<u8>, BundleError> {
    let io_err = |source| BundleError::Io {
        file: path.display().to_string(),
        source,
    };
    if let Some(limit) = limit {
        let len = std::fs::metadata(path).map_err(io_err)?.len();
        if len > limit {
            return Err(BundleError::Io {
                file: path.display().to_string(),
                source: io::Error::new(io::ErrorKind::InvalidData, "file too large"),
            });
        }
    }
    std::fs::read(path).map_err(io_err)
}

fn decode_hashes(
    file: &'static str,
    field: &str,
    list: &[String],
) -> Result<Vec<Hash>, BundleError> {
    list.iter()
        .map(|s| {
            b64::decode_hash(s).ok_or_else(|| {
                format_err(file, format!("{field}: not canonical base64 of 32 bytes"))
            })
        })
        .collect()
}

fn encode_hashes(list: &[Hash]) -> Vec<String> {
    list.iter().map(|h| b64::encode(h)).collect()
}

/// Splits the `entries` file into entries: `u16 BE length || bytes`, repeated to the end.
pub fn split_entries(data: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err(format_err(ENTRIES_FILE, "truncated length prefix"));
        }
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        if rest.len() < len {
            return Err(format_err(ENTRIES_FILE, "truncated entry"));
        }
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    Ok(out)
}

/// Frames entries as the `entries` file does.
pub fn frame_entries(entries: &[Vec<u8>]) -> io::Result<Vec<u8>> {
    let total: usize = entries.iter().map(|e| e.len() + 2).sum();
    let mut out = Vec::with_capacity(total);
    for e in entries {
        let len = u16::try_from(e.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "entry longer than 65535 bytes")
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees
/// a half-written file.
fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

impl Bundle {
    /// The `bundle.json` text (pretty-printed, trailing newline).
    pub fn manifest_json(&self) -> String {
        let m = Manifest {
            format: FORMAT.to_owned(),
            origin: self.origin.clone(),
            first: self.first,
            count: self.entries.len() as u64,
            frontier: encode_hashes(&self.frontier),
            consistency: encode_hashes(&self.consistency),
            prior: self
                .prior
                .iter()
                .map(|(size, proof)| PriorProof {
                    size: *size,
                    proof: encode_hashes(proof),
                })
                .collect(),
        };
        // Serialising plain strings and integers cannot fail.
        let mut s = serde_json::to_string_pretty(&m).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes the three files into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_atomic(&dir.join(ENTRIES_FILE), &frame_entries(&self.entries)?)?;
        write_atomic(&dir.join(CHECKPOINT_FILE), self.checkpoint.as_bytes())?;
        write_atomic(&dir.join(MANIFEST_FILE), self.manifest_json().as_bytes())
    }

    /// Reads a bundle directory. Checks only the framing (JSON schema, base64, entry
    /// framing, count); [`verify`] checks everything else.
    pub fn read(dir: &Path) -> Result<Self, BundleError> {
        let raw = RawBundle::read(dir)?;
        let entries = raw.entries().into_iter().map(<[u8]>::to_vec).collect();
        Ok(Bundle {
            checkpoint: raw.checkpoint,
            first: raw.first,
            entries,
            frontier: raw.frontier,
            consistency: raw.consistency,
            prior: raw.prior,
            origin: raw.origin,
        })
    }
}

/// A bundle read from disk with its `entries` file kept as one buffer: what the CLI
/// verifies, so a million-entry bundle costs one allocation instead of a million.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawBundle {
    pub checkpoint: String,
    pub first: u64,
    /// The `entries` file as read: `u16 BE length || bytes`, repeated. Its framing and
    /// count were checked by [`RawBundle::read`].
    pub entries_file: Vec<u8>,
    pub frontier: Vec<Hash>,
    pub consistency: Vec<Hash>,
    pub prior: Vec<(u64, Vec<Hash>)>,
    pub origin: String,
}

impl RawBundle {
    /// Reads a bundle directory; see [`Bundle::read`].
    pub fn read(dir: &Path) -> Result<Self, BundleError> {
        let checkpoint = read_file(
            &dir.join(CHECKPOINT_FILE),
            Some(crate::note::MAX_NOTE_LEN as u64),
        )?;
        let manifest = read_file(&dir.join(MANIFEST_FILE), Some(MAX_MANIFEST_LEN))?;
        let entries_file = read_file(&dir.join(ENTRIES_FILE), None)?;
        Self::from_parts(checkpoint, &manifest, entries_file)
    }

    /// A bundle from the contents of its three files (`checkpoint`, `bundle.json`,
    /// `entries`), checked as [`RawBundle::read`] checks them.
    pub fn from_parts(
        checkpoint: Vec<u8>,
        manifest: &[u8],
        entries_file: Vec<u8>,
    ) -> Result<Self, BundleError> {
        let checkpoint =
            String::from_utf8(checkpoint).map_err(|_| format_err(CHECKPOINT_FILE, "not UTF-8"))?;
        let m: Manifest = serde_json::from_slice(manifest)
            .map_err(|e| format_err(MANIFEST_FILE, e.to_string()))?;
        if m.format != FORMAT {
            return Err(format_err(
                MANIFEST_FILE,
                format!("format is {:?}, expected {FORMAT:?}", m.format),
            ));
        }
        let found = split_entries(&entries_file)?.len();
        if found as u64 != m.count {
            return Err(format_err(
                ENTRIES_FILE,
                format!("holds {found} entries but bundle.json declares {}", m.count),
            ));
        }
        let prior = m
            .prior
            .iter()
            .map(|p| Ok((p.size, decode_hashes(MANIFEST_FILE, "prior", &p.proof)?)))
            .collect::<Result<_, BundleError>>()?;
        Ok(RawBundle {
            checkpoint,
            first: m.first,
            entries_file,
            frontier: decode_hashes(MANIFEST_FILE, "frontier", &m.frontier)?,
            consistency: decode_hashes(MANIFEST_FILE, "consistency", &m.consistency)?,
            prior,
            origin: m.origin,
        })
    }

    /// The entries, borrowed from the buffer.
    pub fn entries(&self) -> Vec<&[u8]> {
        // The framing was checked when the file was read.
        split_entries(&self.entries_file).unwrap_or_default()
    }

    /// [`verify`] without copying the entries.
    pub fn verify(
        &self,
        verifier: &Verifier,
        state: Option<&State>,
    ) -> Result<Report, VerifyError> {
        verify_entries(
            &self.checkpoint,
            &self.origin,
            self.first,
            self.entries().into_iter(),
            &self.frontier,
            &self.consistency,
            &self.prior,
            verifier,
            state,
        )
    }
}

/// The auditor's last accepted checkpoint, kept between runs. Same text form as a
/// checkpoint body: `origin\nsize\nbase64(root)\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl State {
    pub fn to_text(&self) -> String {
        Checkpoint {
            origin: self.origin.clone(),
            size: self.size,
            root: self.root,
        }
        .body()
    }

    /// Strictly parses the text form. A size-0 state must carry the empty-tree root.
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let cp = Checkpoint::parse_body(text).map_err(|e| format_err("state", e.to_string()))?;
        if cp.size == 0 && cp.root != empty_root() {
            return Err(format_err(
                "state",
                "size 0 with a root other than SHA-256()",
            ));
        }
        Ok(State {
            origin: cp.origin,
            size: cp.size,
            root: cp.root,
        })
    }

    pub fn load(path: &Path) -> Result<Self, BundleError> {
        let bytes = read_file(path, Some(4096))?;
        let text = String::from_utf8(bytes).map_err(|_| format_err("state", "not UTF-8"))?;
        State::parse(&text)
    }

    /// Saves atomically (temporary file + rename).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        write_atomic(path, self.to_text().as_bytes())
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub origin: String,
    pub first: u64,
    pub count: u64,
    /// `N`, the signed checkpoint's tree size.
    pub tree_size: u64,
    /// The signed checkpoint's root.
    pub root: Hash,
    /// The auditor's previous size this checkpoint was proven consistent with.
    pub consistent_with: Option<u64>,
}

impl Report {
    /// The state to save after this verification.
    pub fn new_state(&self) -> State {
        State {
            origin: self.origin.clone(),
            size: self.tree_size,
            root: self.root,
        }
    }
}

/// The CLI's one-line success output.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OK {} entries {}..{} of tree size {} root {}",
            self.origin,
            self.first,
            self.first + self.count,
            self.tree_size,
            b64::encode(&self.root)
        )?;
        if let Some(m) = self.consistent_with {
            write!(f, " consistent with size {m}")?;
        }
        Ok(())
    }
}

/// Why a bundle failed verification. [`VerifyError::kind`] gives a stable short name.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("bundle origin {bundle:?} is not the pinned key's name {key:?}")]
    OriginMismatch { bundle: String, key: String },
    #[error("bundle entries {first}..{end} go beyond the checkpoint's tree size {size}")]
    BeyondCheckpoint { first: u64, end: u64, size: u64 },
    #[error("entry {seq} is empty")]
    EmptyEntry { seq: u64 },
    #[error("entry {seq}: {source}")]
    Entry { seq: u64, source: EntryError },
    #[error(
        "entry at position {expected} carries seq {found} (deleted, inserted or reordered entries)"
    )]
    SeqMismatch { expected: u64, found: u64 },
    #[error("entry 0 has a non-zero prev_chain")]
    GenesisPrevChain,
    #[error("entry {seq}: prev_chain is not the chain hash of entry {prev} (chain break)", prev = seq.saturating_sub(1))]
    ChainBreak { seq: u64 },
    #[error("bundle frontier: {0}")]
    Frontier(ProofError),
    #[error("the Merkle root of entries 0..{size} is not the signed checkpoint root")]
    RootMismatch { size: u64 },
    #[error("consistency proof from bundle end {end} to checkpoint size {size}: {source}")]
    Consistency {
        end: u64,
        size: u64,
        source: ProofError,
    },
    #[error("state is for origin {state:?}, the checkpoint for {checkpoint:?}")]
    StateOrigin { state: String, checkpoint: String },
    #[error("rollback: checkpoint size {size} is below the last accepted size {state_size}")]
    Rollback { size: u64, state_size: u64 },
    #[error(
        "split view: checkpoint of size {size} has a different root than the one accepted earlier"
    )]
    SplitView { size: u64 },
    #[error(
        "fork: the tree at the last accepted size {size} has a different root than the one accepted"
    )]
    Fork { size: u64 },
    #[error("fork: consistency proof from the last accepted size {size}: {source}")]
    PriorInconsistent { size: u64, source: ProofError },
    #[error(
        "bundle carries no consistency proof from the last accepted size {size}; ask for an export with the auditor's last size ({size}) as a prior size, or one whose entries start at or below {size}"
    )]
    MissingPrior { size: u64 },
}

impl VerifyError {
    /// A stable short name for the failure (used by the golden vectors).
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::Checkpoint(CheckpointError::Note(NoteError::BadSignature { .. })) => {
                "bad-signature"
            }
            VerifyError::Checkpoint(CheckpointError::Note(NoteError::NoTrustedSignature {
                ..
            })) => "no-trusted-signature",
            VerifyError::Checkpoint(CheckpointError::Note(_)) => "malformed-note",
            VerifyError::Checkpoint(CheckpointError::Malformed(_)) => "malformed-checkpoint",
            VerifyError::Checkpoint(CheckpointError::OriginMismatch { .. }) => {
                "checkpoint-origin-mismatch"
            }
            VerifyError::OriginMismatch { .. } => "bundle-origin-mismatch",
            VerifyError::BeyondCheckpoint { .. } => "beyond-checkpoint",
            VerifyError::EmptyEntry { .. } => "empty-entry",
            VerifyError::Entry { .. } => "malformed-entry",
            VerifyError::SeqMismatch { .. } => "seq-mismatch",
            VerifyError::GenesisPrevChain => "genesis-prev-chain",
            VerifyError::ChainBreak { .. } => "chain-break",
            VerifyError::Frontier(_) => "bad-frontier",
            VerifyError::RootMismatch { .. } => "root-mismatch",
            VerifyError::Consistency { .. } => "inconsistent",
            VerifyError::StateOrigin { .. } => "state-origin-mismatch",
            VerifyError::Rollback { .. } => "rollback",
            VerifyError::SplitView { .. } => "split-view",
            VerifyError::Fork { .. } => "fork",
            VerifyError::PriorInconsistent { .. } => "fork",
            VerifyError::MissingPrior { .. } => "missing-prior",
        }
    }
}

/// Full offline verification of a bundle against the pinned key and, optionally, the
/// auditor's last accepted state. README.md "Verification algorithm" is the normative text;
/// the steps below follow it.
pub fn verify(
    bundle: &Bundle,
    verifier: &Verifier,
    state: Option<&State>,
) -> Result<Report, VerifyError> {
    verify_entries(
        &bundle.checkpoint,
        &bundle.origin,
        bundle.first,
        bundle.entries.iter().map(Vec::as_slice),
        &bundle.frontier,
        &bundle.consistency,
        &bundle.prior,
        verifier,
        state,
    )
}

/// [`verify`] over borrowed parts, so a caller can verify entries straight out of a framed
/// `entries` file without copying each one (see [`split_entries`]).
#[allow(clippy::too_many_arguments)]
pub fn verify_entries<'a>(
    signed_checkpoint: &str,
    origin: &str,
    first: u64,
    entries: impl ExactSizeIterator<Item = &'a [u8]>,
    frontier: &[Hash],
    consistency: &[Hash],
    prior: &[(u64, Vec<Hash>)],
    verifier: &Verifier,
    state: Option<&State>,
) -> Result<Report, VerifyError> {
    // Step 1: the checkpoint, under the pinned key; origin == key name == bundle origin.
    let cp = Checkpoint::open(signed_checkpoint, verifier)?;
    if origin != verifier.name() {
        return Err(VerifyError::OriginMismatch {
            bundle: origin.to_owned(),
            key: verifier.name().to_owned(),
        });
    }
    let n = cp.size;
    let count = entries.len() as u64;
    let end =
        first
            .checked_add(count)
            .filter(|&e| e <= n)
            .ok_or(VerifyError::BeyondCheckpoint {
                first,
                end: first.saturating_add(count),
                size: n,
            })?;

    // Steps 2 and 3 in one pass: strict decode, seq, chain link, leaf hash into the frontier.
    let mut tree = Frontier::from_peaks(first, frontier.to_vec()).map_err(VerifyError::Frontier)?;
    // The root at the auditor's last size, when that size falls inside this bundle.
    let watch = state.map(|s| s.size).filter(|&m| first <= m && m <= end);
    let mut root_at_watch = None;
    let mut prev: Option<Hash> = (first == 0).then_some([0u8; 32]);
    for (i, bytes) in entries.enumerate() {
        let seq = first + i as u64;
        if watch == Some(seq) {
            root_at_watch = Some(tree.root());
        }
        if bytes.is_empty() {
            return Err(VerifyError::EmptyEntry { seq });
        }
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(VerifyError::Entry {
                seq,
                source: EntryError::TooLong { len: bytes.len() },
            });
        }
        let e = EntryRef::parse(bytes).map_err(|source| VerifyError::Entry { seq, source })?;
        if e.seq != seq {
            return Err(VerifyError::SeqMismatch {
                expected: seq,
                found: e.seq,
            });
        }
        // For the first entry of a bundle starting after 0 the link cannot be checked
        // here; the entry bytes (prev_chain included) are bound by the Merkle root instead.
        if let Some(p) = prev
            && *e.prev_chain != p
        {
            return Err(if seq == 0 {
                VerifyError::GenesisPrevChain
            } else {
                VerifyError::ChainBreak { seq }
            });
        }
        prev = Some(chain_hash(bytes));
        tree.push_leaf(leaf_hash(bytes));
    }
    if watch == Some(end) {
        root_at_watch = Some(tree.root());
    }

    // Step 3: tie the recomputed tree to the signed root.
    let root = tree.root();
    if end == n {
        if root != cp.root {
            return Err(VerifyError::RootMismatch { size: n });
        }
        if !consistency.is_empty() {
            return Err(VerifyError::Consistency {
                end,
                size: n,
                source: ProofError::NonEmptyProof,
            });
        }
    } else {
        verify_consistency(end, n, consistency, &root, &cp.root).map_err(|source| {
            VerifyError::Consistency {
                end,
                size: n,
                source,
            }
        })?;
    }

    // Step 4: the auditor's state: no rollback, no split view, no fork.
    let consistent_with = match state {
        None => None,
        Some(s) => {
            if s.origin != cp.origin {
                return Err(VerifyError::StateOrigin {
                    state: s.origin.clone(),
                    checkpoint: cp.origin.clone(),
                });
            }
            if n < s.size {
                return Err(VerifyError::Rollback {
                    size: n,
                    state_size: s.size,
                });
            }
            if n == s.size {
                if cp.root != s.root {
                    return Err(VerifyError::SplitView { size: n });
                }
            } else if s.size == 0 {
                // The empty tree is a prefix of every tree (State::parse pinned its root).
            } else if let Some(r) = root_at_watch {
                // Step 3 tied the tree through `end` to N, so equality here proves
                // the accepted tree is a prefix of the new one.
                if r != s.root {
                    return Err(VerifyError::Fork { size: s.size });
                }
            } else {
                let proof = prior
                    .iter()
                    .find(|(m, _)| *m == s.size)
                    .map(|(_, p)| p)
                    .ok_or(VerifyError::MissingPrior { size: s.size })?;
                verify_consistency(s.size, n, proof, &s.root, &cp.root).map_err(|source| {
                    VerifyError::PriorInconsistent {
                        size: s.size,
                        source,
                    }
                })?;
            }
            Some(s.size)
        }
    };

    Ok(Report {
        origin: cp.origin,
        first,
        count,
        tree_size: n,
        root: cp.root,
        consistent_with,
    })
}
