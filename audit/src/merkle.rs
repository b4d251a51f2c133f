//! The RFC 6962 Merkle tree (RFC 6962 §2.1, restated normatively in RFC 9162 §2.1).
//!
//! * `MTH({}) = SHA-256()`, `MTH({d}) = SHA-256(0x00 || d)`,
//!   `MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))` with `k` the largest power of
//!   two strictly less than `n` (RFC 9162 §2.1.1).
//! * The `0x00`/`0x01` prefixes are domain separation: without them the concatenation of two
//!   interior hashes could be passed off as a leaf and the root would still match (a second
//!   preimage; tamper case 9).
//!
//! Proof *generation* is expressed as lists of leaf ranges ([`inclusion_proof_ranges`],
//! [`consistency_proof_ranges`]) so a store can fetch or compute the hash of each range from
//! whatever it persists (see [`range_hash`]). Proof *verification* follows the RFC 9162
//! §2.1.3.2 and §2.1.4.2 bit-walks exactly, and only ever compares against roots the caller
//! holds (never a root shipped next to the proof: the immudb CVE-2022-36111 lesson).

use sha2::{Digest, Sha256};

use crate::Hash;

/// Why a proof or a frontier was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("proof has more hashes than the tree sizes allow")]
    TooManyHashes,
    #[error("proof has fewer hashes than the tree sizes require")]
    TooFewHashes,
    #[error("old size {old} is larger than new size {new}")]
    SizeOrder { old: u64, new: u64 },
    #[error("proof must be empty when the sizes are equal or the old size is 0")]
    NonEmptyProof,
    #[error("proof is empty but the sizes differ")]
    EmptyProof,
    #[error("the recomputed root does not match the expected root")]
    RootMismatch,
    #[error("the recomputed old root does not match the old checkpoint")]
    OldRootMismatch,
    #[error("the recomputed new root does not match the new checkpoint")]
    NewRootMismatch,
    #[error("roots differ although the tree sizes are equal")]
    EqualSizeRootMismatch,
    #[error("a frontier of size {size} has {expected} peaks, got {got}")]
    PeakCount {
        size: u64,
        expected: usize,
        got: usize,
    },
}

/// `SHA-256(0x00 || entry)`: RFC 6962 §2.1 leaf hash.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: RFC 6962 §2.1 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// `SHA-256("")`: the root of the empty tree (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly less than `n` (`n >= 2`): RFC 6962's split point.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The perfect, aligned subtrees that make up `[lo, hi)`, left to right, as
/// `(level, index)`: leaves `[index * 2^level, (index + 1) * 2^level)`.
///
/// This is the "compact range" decomposition (transparency-dev `compact` package): each
/// step takes the largest subtree that starts at `lo` (alignment) and fits before `hi`. For
/// `[0, n)` the result is the peaks, largest first, one per set bit of `n`. Returns an
/// empty list when `lo >= hi`.
pub fn perfect_subtrees(lo: u64, hi: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut lo = lo;
    while lo < hi {
        let align = if lo == 0 { 63 } else { lo.trailing_zeros() };
        let fit = 63 - (hi - lo).leading_zeros();
        let level = align.min(fit);
        out.push((level, lo >> level));
        lo += 1 << level;
    }
    out
}

/// The leaf ranges `[a, b)` whose MTH form the inclusion proof (audit path) of `index` in a
/// tree of `size`, leaf to root: RFC 6962 §2.1.1 `PATH(m, D[n])`, RFC 9162 §2.1.3.1.
///
/// Empty when `index >= size` (there is no proof) or `size == 1`.
pub fn inclusion_proof_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if index >= size {
        return out;
    }
    // Walk from the root down, collecting siblings root-first, then reverse.
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// The leaf ranges `[a, b)` whose MTH form the consistency proof from `old_size` to
/// `new_size`, in proof order: RFC 6962 §2.1.2 `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`,
/// RFC 9162 §2.1.4.1.
///
/// Empty when `old_size == 0`, `old_size >= new_size` (no proof is needed or possible).
pub fn consistency_proof_ranges(old_size: u64, new_size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    if old_size == 0 || old_size >= new_size {
        return out;
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled; siblings are collected root-first.
    let (mut lo, mut hi, mut m, mut b) = (0u64, new_size, old_size, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !b {
                out.push((lo, hi));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
            m -= k;
            b = false;
        }
    }
    out.reverse();
    out
}

/// MTH of `D[lo:hi]`, computed from `subtree(level, index)`, the hash of a perfect aligned
/// subtree. Perfect aligned ranges are looked up directly; any other range is split with
/// RFC 6962's rule (largest power of two strictly less than its size) and composed. Every
/// range produced by [`inclusion_proof_ranges`] and [`consistency_proof_ranges`] is either
/// perfect and aligned or ends at the tree's right edge, so only existing subtrees are
/// requested. `[lo, lo)` hashes to [`empty_root`].
pub fn range_hash(lo: u64, hi: u64, subtree: &mut dyn FnMut(u32, u64) -> Hash) -> Hash {
    if hi <= lo {
        return empty_root();
    }
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = n.trailing_zeros();
        return subtree(level, lo >> level);
    }
    let k = split(n);
    let left = range_hash(lo, lo + k, subtree);
    let right = range_hash(lo + k, hi, subtree);
    node_hash(&left, &right)
}

/// Verifies an inclusion proof: RFC 9162 §2.1.3.2, step by step.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::TooManyHashes);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::TooFewHashes);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof: RFC 9162 §2.1.4.2, step by step.
///
/// `old_size == new_size` requires an empty proof and equal roots. `old_size == 0` is
/// consistent with every tree and requires an empty proof (the empty tree is a prefix of
/// everything; RFC 9162 defines no proof for it).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizeOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::NonEmptyProof);
        }
        if old_root != new_root {
            return Err(ProofError::EqualSizeRootMismatch);
        }
        return Ok(());
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::NonEmptyProof);
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(ProofError::EmptyProof);
    }
    // Step 2: if first is an exact power of two, prepend first_hash to the path.
    let (first, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        (proof[0], &proof[1..])
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    // Step 4: while LSB(fn) is set, right-shift both.
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (first, first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::TooManyHashes);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::TooFewHashes);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

/// An incrementally built tree that keeps only its peaks: the compact range `[0, size)`.
///
/// `O(log n)` memory whatever the size; this is what the appender keeps between batches
/// and what the verifier rebuilds from a bundle's frontier.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    /// Hashes of `perfect_subtrees(0, size)`, largest (leftmost) first.
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A frontier from the peaks of `[0, size)`, largest first (as
    /// [`perfect_subtrees`]`(0, size)`). The count must be the number of set bits of `size`.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Result<Self, ProofError> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(ProofError::PeakCount {
                size,
                expected,
                got: peaks.len(),
            });
        }
        Ok(Frontier { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends one leaf hash. Calls `completed(level, index, hash)` for every perfect
    /// subtree this append completes: first the leaf itself `(0, size)`, then each merge
    /// upwards, so a store can persist the nodes it will later need for proofs.
    pub fn push(&mut self, leaf: Hash, completed: &mut dyn FnMut(u32, u64, &Hash)) {
        let mut index = self.size;
        let mut level = 0u32;
        let mut h = leaf;
        completed(level, index, &h);
        // One peak per set bit of size; merging clears trailing ones, like a binary carry.
        while (self.size >> level) & 1 == 1 {
            // The set bit guarantees the peak exists; `unwrap_or` keeps this panic-free.
            let left = self.peaks.pop().unwrap_or_default();
            h = node_hash(&left, &h);
            level += 1;
            index >>= 1;
            completed(level, index, &h);
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// Appends one leaf hash without reporting completed nodes (the verifier's hot path).
    pub fn push_leaf(&mut self, leaf: Hash) {
        let mut level = 0u32;
        let mut h = leaf;
        while (self.size >> level) & 1 == 1 {
            let left = self.peaks.pop().unwrap_or_default();
            h = node_hash(&left, &h);
            level += 1;
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// The RFC 6962 MTH of `[0, size)`: the peaks folded right to left
    /// (`node(p0, node(p1, … node(p_{k-1}, p_k)))`), [`empty_root`] for size 0.
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        iter.fold(*last, |acc, p| node_hash(p, &acc))
    }
}

/// A tree with every perfect subtree hash in memory: proofs for tests, vectors and small
/// logs. `levels[l][i]` is the hash of subtree `(l, i)`.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash (not entry bytes: use [`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        let mut level = 0usize;
        let mut h = leaf;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(h);
            let n = self.levels[level].len();
            if n % 2 == 1 {
                break;
            }
            h = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hash of the perfect subtree `(level, index)`. Panics if it is not complete yet.
    pub fn subtree(&self, level: u32, index: u64) -> Hash {
        self.levels[level as usize][index as usize]
    }

    fn range(&self, lo: u64, hi: u64) -> Hash {
        range_hash(lo, hi, &mut |l, i| self.subtree(l, i))
    }

    /// MTH of the first `size` leaves. Panics if `size > len()`.
    pub fn root(&self, size: u64) -> Hash {
        assert!(size <= self.len(), "size {size} beyond tree length");
        self.range(0, size)
    }

    /// The RFC 9162 §2.1.3.1 inclusion proof of `index` in the tree of `size`.
    /// Panics if `size > len()`; empty if `index >= size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Vec<Hash> {
        assert!(size <= self.len(), "size {size} beyond tree length");
        inclusion_proof_ranges(index, size)
            .into_iter()
            .map(|(a, b)| self.range(a, b))
            .collect()
    }

    /// The RFC 9162 §2.1.4.1 consistency proof from `old_size` to `new_size`.
    /// Panics if `new_size > len()`.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Vec<Hash> {
        assert!(new_size <= self.len(), "size {new_size} beyond tree length");
        consistency_proof_ranges(old_size, new_size)
            .into_iter()
            .map(|(a, b)| self.range(a, b))
            .collect()
    }

    /// The frontier (peaks) of the first `size` leaves.
    pub fn frontier(&self, size: u64) -> Frontier {
        let peaks = perfect_subtrees(0, size)
            .into_iter()
            .map(|(l, i)| self.subtree(l, i))
            .collect();
        Frontier { size, peaks }
    }
}
