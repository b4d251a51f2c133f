//! The audit interface. The verifiable log (outbox, hash chain, Merkle proofs, signed
//! checkpoints) implements [`AuditSink`] in a later issue; until then [`MemorySink`] keeps
//! the most recent records in memory and logs them (ids only, never content).

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// One security-relevant fact. Ids only: no message text, names or other personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// What happened, e.g. `authz.denied`.
    pub event: String,
    /// `user:<id>`, or `server:<id of the user acted for>`, or `server`.
    pub actor: String,
    pub action: String,
    /// `app`, or `channel:<cid>`.
    pub resource: String,
    pub at: i64,
}

pub trait AuditSink: Send + Sync {
    fn record(&self, record: AuditRecord);
}

/// Keeps the last `capacity` records.
pub struct MemorySink {
    records: Mutex<VecDeque<AuditRecord>>,
    capacity: usize,
}

impl MemorySink {
    pub fn new(capacity: usize) -> Self {
        Self {
            records: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    pub fn recent(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, record: AuditRecord) {
        tracing::info!(event = %record.event, actor = %record.actor, action = %record.action, resource = %record.resource, "audit");
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() == self.capacity {
            records.pop_front();
        }
        records.push_back(record);
    }
}
