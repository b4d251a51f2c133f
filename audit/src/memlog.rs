//! An in-memory audit log that produces everything an auditor receives: entries with a
//! correct chain, signed checkpoints, bundles and proof files.
//!
//! It backs the tests, the golden vectors and the benchmark, and it is the reference for a
//! store-backed producer: the server must produce byte-identical bundles and proofs for
//! the same entries and key.

use crate::Hash;
use crate::bundle::Bundle;
use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::entry::{Entry, EntryError, chain_hash};
use crate::merkle::{MemoryTree, leaf_hash};
use crate::note::Signer;
use crate::proof::{ConsistencyProof, InclusionProof};

/// An append-only log held in memory.
#[derive(Clone, Debug)]
pub struct MemoryLog {
    origin: String,
    entries: Vec<Vec<u8>>,
    chain: Vec<Hash>,
    tree: MemoryTree,
}

impl MemoryLog {
    pub fn new(origin: &str) -> Self {
        MemoryLog {
            origin: origin.to_owned(),
            entries: Vec::new(),
            chain: Vec::new(),
            tree: MemoryTree::new(),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Vec<u8>] {
        &self.entries
    }

    /// The chain hash `C_seq`.
    pub fn chain(&self, seq: u64) -> Hash {
        self.chain[seq as usize]
    }

    /// `C_{len-1}`, or 32 zero bytes for an empty log: the next entry's `prev_chain`.
    pub fn last_chain(&self) -> Hash {
        self.chain.last().copied().unwrap_or([0; 32])
    }

    pub fn tree(&self) -> &MemoryTree {
        &self.tree
    }

    /// Appends an entry, overwriting its `seq` and `prev_chain` with the log's values.
    /// Returns the seq.
    pub fn append(&mut self, mut entry: Entry) -> Result<u64, EntryError> {
        entry.seq = self.len();
        entry.prev_chain = self.last_chain();
        let bytes = entry.encode()?;
        Ok(self.append_raw(bytes))
    }

    /// Appends bytes as the next leaf without any check (tests build hostile logs with it).
    pub fn append_raw(&mut self, bytes: Vec<u8>) -> u64 {
        self.chain.push(chain_hash(&bytes));
        self.tree.push(leaf_hash(&bytes));
        self.entries.push(bytes);
        self.len() - 1
    }

    /// The checkpoint body for the first `size` entries. Panics if `size > len()`.
    pub fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.tree.root(size),
        }
    }

    pub fn signed_checkpoint(&self, size: u64, signer: &Signer) -> Result<String, CheckpointError> {
        self.checkpoint(size).sign(signer)
    }

    /// A bundle of entries `first..first+count` against a checkpoint of `size`, with prior
    /// consistency proofs `m → size` for each of `prior_sizes`.
    /// Panics unless `first + count <= size <= len()` and every prior size `<= size`.
    pub fn bundle(
        &self,
        signer: &Signer,
        first: u64,
        count: u64,
        size: u64,
        prior_sizes: &[u64],
    ) -> Result<Bundle, CheckpointError> {
        let end = first + count;
        assert!(
            end <= size && size <= self.len(),
            "bundle range out of bounds"
        );
        Ok(Bundle {
            checkpoint: self.signed_checkpoint(size, signer)?,
            first,
            entries: self.entries[first as usize..end as usize].to_vec(),
            frontier: self.tree.frontier(first).peaks().to_vec(),
            consistency: self.tree.consistency_proof(end, size),
            prior: prior_sizes
                .iter()
                .map(|&m| (m, self.tree.consistency_proof(m, size)))
                .collect(),
            origin: self.origin.clone(),
        })
    }

    /// The inclusion proof file for entry `index` in the checkpoint of `size`.
    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
        signer: &Signer,
    ) -> Result<InclusionProof, CheckpointError> {
        Ok(InclusionProof {
            index,
            hashes: self.tree.inclusion_proof(index, size),
            checkpoint: self.signed_checkpoint(size, signer)?,
        })
    }

    /// The consistency proof file between the checkpoints of `old` and `new` sizes.
    pub fn consistency_proof(
        &self,
        old: u64,
        new: u64,
        signer: &Signer,
    ) -> Result<ConsistencyProof, CheckpointError> {
        Ok(ConsistencyProof {
            hashes: self.tree.consistency_proof(old, new),
            old_checkpoint: self.signed_checkpoint(old, signer)?,
            new_checkpoint: self.signed_checkpoint(new, signer)?,
        })
    }
}
