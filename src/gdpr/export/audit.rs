//! The audit part of an export: the entries where the subject is actor or subject, decoded
//! as auditors see them, other people withheld, each with its inclusion proof against the
//! checkpoint the archive carries.

use std::collections::{HashMap, VecDeque};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use ward_audit::Hash;
use ward_audit::merkle::{empty_root, inclusion_proof_ranges, node_hash};

use super::PAGE;
use super::archive::Archive;
use crate::gdpr::Ctx;
use crate::store::{AuditQuery, AuditRow, AuditStore};

/// Writes the entries (a page at a time) into the open file; `step` gets each page's count.
pub(super) async fn write_entries(
    state: &Ctx<'_>,
    user_id: &str,
    pseudonym: &[u8],
    tree_size: u64,
    zip: &mut Archive,
    step: &mut (dyn FnMut(u64) + Send),
) -> anyhow::Result<()> {
    let store = state.store.audit.as_ref();
    let mut entries = AuditPages::new(pseudonym.to_vec(), tree_size);
    let mut proofs = Proofs::new(tree_size);
    loop {
        let rows = entries.next_page(store).await?;
        if rows.is_empty() {
            return Ok(());
        }
        let decoded = crate::audit::view::entries_json(store, state.crypto, &rows).await?;
        let mut lines = Vec::with_capacity(rows.len());
        for (row, mut entry) in rows.iter().zip(decoded) {
            withhold_others(&mut entry, user_id);
            let path = proofs.prove(store, row.seq as u64).await?;
            entry["inclusion_proof"] = json!({
                "tree_size": tree_size,
                "leaf_index": row.seq,
                "hashes": path.iter().map(|h| STANDARD.encode(h)).collect::<Vec<_>>(),
            });
            lines.push(entry);
        }
        zip.lines(lines.iter()).await?;
        step(rows.len() as u64);
    }
}

pub(super) async fn count_entries(
    store: &dyn AuditStore,
    pseudonym: Option<&[u8]>,
    tree_size: u64,
) -> anyhow::Result<u64> {
    let Some(p) = pseudonym else { return Ok(0) };
    let mut pages = AuditPages::new(p.to_vec(), tree_size);
    let mut n = 0u64;
    loop {
        let rows = pages.next_page(store).await?;
        if rows.is_empty() {
            return Ok(n);
        }
        n += rows.len() as u64;
    }
}

/// Withholds other people from an audit entry about the subject: the ids behind other
/// pseudonyms and personal data sealed under someone else's key (Art. 15(4)). What the
/// entry bytes hold (pseudonyms, ciphertext) stays, so the entry still hashes to its leaf.
fn withhold_others(entry: &mut Value, user_id: &str) {
    for who in ["actor", "subject"] {
        if let Some(id) = entry[who].get_mut("id")
            && id.as_str().is_some_and(|id| id != user_id)
        {
            *id = Value::Null;
        }
    }
    if entry["object"]["kind"] == "user"
        && let Some(id) = entry["object"].get_mut("id")
        && id.as_str().is_some_and(|id| id != user_id)
    {
        *id = Value::Null;
    }
    let own = entry["subject"]["id"].as_str() == Some(user_id);
    if !own && entry["pii_state"] != "none" {
        entry["pii"] = Value::Null;
        entry["pii_state"] = json!("withheld");
    }
}

/// The entries with the subject's pseudonym as actor or as subject, in seq order, below
/// the tree size: two keyset-paged queries merged.
struct AuditPages {
    by_actor: Pages,
    by_subject: Pages,
}

struct Pages {
    query: AuditQuery,
    rows: VecDeque<AuditRow>,
    exhausted: bool,
    tree_size: u64,
}

impl Pages {
    async fn peek(&mut self, store: &dyn AuditStore) -> anyhow::Result<Option<i64>> {
        if self.rows.is_empty() && !self.exhausted {
            let rows = store.find_audit_entries(&self.query).await?;
            self.exhausted = (rows.len() as i64) < self.query.limit;
            self.query.cursor = rows.last().map(|r| r.seq).or(self.query.cursor);
            for row in rows {
                if row.seq as u64 >= self.tree_size {
                    self.exhausted = true;
                    break;
                }
                self.rows.push_back(row);
            }
        }
        Ok(self.rows.front().map(|r| r.seq))
    }
}

impl AuditPages {
    fn new(pseudonym: Vec<u8>, tree_size: u64) -> Self {
        let pages = |query: AuditQuery| Pages {
            query,
            rows: VecDeque::new(),
            exhausted: false,
            tree_size,
        };
        Self {
            by_actor: pages(AuditQuery {
                actor: Some(pseudonym.clone()),
                limit: PAGE,
                ..AuditQuery::default()
            }),
            by_subject: pages(AuditQuery {
                subject: Some(pseudonym),
                limit: PAGE,
                ..AuditQuery::default()
            }),
        }
    }

    async fn next_page(&mut self, store: &dyn AuditStore) -> anyhow::Result<Vec<AuditRow>> {
        let mut out = Vec::new();
        while out.len() < PAGE as usize {
            let a = self.by_actor.peek(store).await?;
            let b = self.by_subject.peek(store).await?;
            let row = match (a, b) {
                (None, None) => break,
                (Some(a), Some(b)) if a == b => {
                    self.by_subject.rows.pop_front();
                    self.by_actor.rows.pop_front()
                }
                (Some(a), Some(b)) if a < b => self.by_actor.rows.pop_front(),
                (Some(_), None) => self.by_actor.rows.pop_front(),
                _ => self.by_subject.rows.pop_front(),
            };
            out.extend(row);
        }
        Ok(out)
    }
}

/// Inclusion proofs of many entries of one tree, in seq order. Neighbouring entries share
/// most of their audit path, so every range hash is kept once computed: those of a block or
/// more for the whole export (about two per block), those inside a leaf block until the next
/// block, whose leaf hashes are fetched once. A page of entries costs a few queries rather
/// than one per proof node.
struct Proofs {
    tree_size: u64,
    wide: HashMap<(u64, u64), Hash>,
    block: Option<Block>,
}

struct Block {
    start: u64,
    leaves: Vec<Hash>,
    ranges: HashMap<(u64, u64), Hash>,
}

/// Leaves per block (the stored tree keeps whole subtrees from this size up).
const BLOCK: u64 = 1 << crate::audit::tree::STORED_LEVEL_STEP;

impl Proofs {
    fn new(tree_size: u64) -> Self {
        Self {
            tree_size,
            wide: HashMap::new(),
            block: None,
        }
    }

    async fn prove(&mut self, store: &dyn AuditStore, index: u64) -> anyhow::Result<Vec<Hash>> {
        let mut path = Vec::new();
        for (lo, hi) in inclusion_proof_ranges(index, self.tree_size) {
            path.push(self.range(store, lo, hi).await?);
        }
        Ok(path)
    }

    async fn range(&mut self, store: &dyn AuditStore, lo: u64, hi: u64) -> anyhow::Result<Hash> {
        let start = lo - lo % BLOCK;
        if hi - lo < BLOCK && hi <= start + BLOCK {
            if self.block.as_ref().map(|b| b.start) != Some(start) {
                let end = (start + BLOCK).min(self.tree_size);
                let leaves: Vec<Hash> = store
                    .find_leaf_hashes(start as i64, end as i64)
                    .await?
                    .into_iter()
                    .map(|h| h.as_slice().try_into())
                    .collect::<Result<_, _>>()
                    .context("a stored leaf hash is not 32 bytes")?;
                anyhow::ensure!(
                    leaves.len() as u64 == end - start,
                    "the audit log is missing leaves"
                );
                self.block = Some(Block {
                    start,
                    leaves,
                    ranges: HashMap::new(),
                });
            }
            let Block { leaves, ranges, .. } = self.block.as_mut().context("the leaf block")?;
            let slice = (lo - start) as usize..(hi - start) as usize;
            return Ok(*ranges
                .entry((lo, hi))
                .or_insert_with(|| tree_hash(&leaves[slice])));
        }
        if let Some(h) = self.wide.get(&(lo, hi)) {
            return Ok(*h);
        }
        let h = crate::audit::tree::range_root(store, lo, hi).await?;
        self.wide.insert((lo, hi), h);
        Ok(h)
    }
}

/// RFC 6962 MTH of consecutive leaf hashes.
fn tree_hash(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&tree_hash(&leaves[..k]), &tree_hash(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_hash_of_leaves_matches_rfc_6962() {
        let leaves: Vec<Hash> = (0u8..7)
            .map(|i| ward_audit::merkle::leaf_hash(&[i]))
            .collect();
        for n in 0..=leaves.len() {
            let expected = ward_audit::merkle::range_hash(0, n as u64, &mut |level, index| {
                let span = 1usize << level;
                let lo = index as usize * span;
                let mut layer = leaves[lo..lo + span].to_vec();
                while layer.len() > 1 {
                    layer = layer.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
                }
                layer[0]
            });
            assert_eq!(tree_hash(&leaves[..n]), expected, "{n} leaves");
        }
    }
}
