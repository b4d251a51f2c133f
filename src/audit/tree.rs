//! Proofs from the stored tree. Leaf hashes live in `audit_log`; complete subtree hashes at
//! levels 8, 16, 24, … in `audit_nodes`; any other node is folded from at most 128 hashes
//! of the stored level below it. So an inclusion or consistency proof costs one small query
//! per proof node, whatever the log's size.

use std::collections::HashMap;

use anyhow::{Context, bail};
use ward_audit::Hash;
use ward_audit::bundle::Bundle;
use ward_audit::merkle::{
    self, Frontier, consistency_proof_ranges, inclusion_proof_ranges, node_hash, perfect_subtrees,
    range_hash,
};

use crate::store::AuditStore;

/// Levels whose complete nodes are stored (multiples of this).
pub const STORED_LEVEL_STEP: u32 = 8;

fn hashes(rows: Vec<Vec<u8>>, want: usize) -> anyhow::Result<Vec<Hash>> {
    if rows.len() != want {
        bail!(
            "the audit tree is missing nodes ({} of {want} found)",
            rows.len()
        );
    }
    rows.into_iter()
        .map(|r| {
            r.as_slice()
                .try_into()
                .context("a stored hash is not 32 bytes")
        })
        .collect()
}

/// Hashes of stored nodes `[from, to)` of a stored level (0 = leaves).
async fn stored(
    store: &dyn AuditStore,
    level: u32,
    from: u64,
    to: u64,
) -> anyhow::Result<Vec<Hash>> {
    let want = (to - from) as usize;
    if level == 0 {
        hashes(store.find_leaf_hashes(from as i64, to as i64).await?, want)
    } else {
        hashes(
            store
                .find_audit_nodes(level as i32, from as i64, to as i64)
                .await?,
            want,
        )
    }
}

/// The hash of the perfect subtree `(level, index)`.
pub async fn subtree(store: &dyn AuditStore, level: u32, index: u64) -> anyhow::Result<Hash> {
    let base = level - level % STORED_LEVEL_STEP;
    let span = 1u64 << (level - base);
    let mut layer = stored(store, base, index * span, (index + 1) * span).await?;
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    layer.pop().context("an empty subtree")
}

/// MTH of `[lo, hi)` for ranges that start aligned (proof ranges, prefixes).
pub async fn range_root(store: &dyn AuditStore, lo: u64, hi: u64) -> anyhow::Result<Hash> {
    // Ask the pure function which subtrees it needs, fetch them, then compute.
    let mut wanted = Vec::new();
    range_hash(lo, hi, &mut |level, index| {
        wanted.push((level, index));
        [0; 32]
    });
    let mut found = HashMap::new();
    for (level, index) in wanted {
        found.insert((level, index), subtree(store, level, index).await?);
    }
    Ok(range_hash(lo, hi, &mut |level, index| {
        found.get(&(level, index)).copied().unwrap_or_default()
    }))
}

pub async fn root_at(store: &dyn AuditStore, size: u64) -> anyhow::Result<Hash> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    range_root(store, 0, size).await
}

/// The compact range `[0, size)`: what the appender resumes from.
pub async fn frontier(store: &dyn AuditStore, size: u64) -> anyhow::Result<Frontier> {
    let mut peaks = Vec::new();
    for (level, index) in perfect_subtrees(0, size) {
        peaks.push(subtree(store, level, index).await?);
    }
    Ok(Frontier::from_peaks(size, peaks)?)
}

/// RFC 9162 §2.1.3 inclusion proof of `index` in the tree of `size`.
pub async fn inclusion_proof(
    store: &dyn AuditStore,
    index: u64,
    size: u64,
) -> anyhow::Result<Vec<Hash>> {
    if index >= size {
        bail!("entry {index} is not in a tree of size {size}");
    }
    let mut out = Vec::new();
    for (lo, hi) in inclusion_proof_ranges(index, size) {
        out.push(range_root(store, lo, hi).await?);
    }
    Ok(out)
}

/// RFC 9162 §2.1.4 consistency proof from `old` to `new`.
pub async fn consistency_proof(
    store: &dyn AuditStore,
    old: u64,
    new: u64,
) -> anyhow::Result<Vec<Hash>> {
    if old > new {
        bail!("the old size {old} is larger than the new size {new}");
    }
    let mut out = Vec::new();
    for (lo, hi) in consistency_proof_ranges(old, new) {
        out.push(range_root(store, lo, hi).await?);
    }
    Ok(out)
}

/// An auditor bundle of entries `[from, to)` against the latest checkpoint, with a
/// consistency proof from `since` (the auditor's last accepted size) when it is below
/// `from`. `to` is capped at the checkpoint's size.
pub async fn export_bundle(
    store: &dyn AuditStore,
    origin: &str,
    from: u64,
    to: u64,
    since: Option<u64>,
) -> anyhow::Result<Bundle> {
    let checkpoint = store
        .find_latest_checkpoint()
        .await?
        .context("the audit log has no checkpoint yet")?;
    let size = checkpoint.size as u64;
    let to = to.min(size);
    let from = from.min(to);
    let entries: Vec<Vec<u8>> = store
        .find_audit_range(from as i64, to as i64)
        .await?
        .into_iter()
        .map(|r| r.entry)
        .collect();
    if entries.len() as u64 != to - from {
        bail!("the audit log is missing entries between {from} and {to}");
    }
    let mut frontier = Vec::new();
    for (level, index) in perfect_subtrees(0, from) {
        frontier.push(subtree(store, level, index).await?);
    }
    let consistency = consistency_proof(store, to, size).await?;
    let mut prior = Vec::new();
    // The verifier recomputes the root at the auditor's size itself when it falls inside
    // the exported range; otherwise it needs a proof from there.
    if let Some(m) = since
        && m > 0
        && (m < from || m > to)
        && m < size
    {
        prior.push((m, consistency_proof(store, m, size).await?));
    }
    Ok(Bundle {
        checkpoint: checkpoint.note,
        first: from,
        entries,
        frontier,
        consistency,
        prior,
        origin: origin.to_string(),
    })
}
