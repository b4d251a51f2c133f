//! The audit log's tables: the outbox written with each action, the chained entries, tree
//! nodes and checkpoints. The pseudonym directory lives in `pseudonyms.rs`.

use async_trait::async_trait;

use super::db::{BIND_LIMIT, Db, Query, Row, Tx, query};
use super::pseudonyms;
use super::{SqlStore, StoreError, StoreResult, all};
use crate::time::Micros;

/// An audit record waiting in the outbox: written in the same transaction as the action it
/// records, chained later by the appender. Ids are natural here and pseudonymised when
/// chained; `pii` is already ciphertext (or empty), `meta` already canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub at_ms: i64,
    pub event_type: u16,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub pii: Vec<u8>,
    pub meta: Vec<u8>,
}

/// The audit records of one write, stored in its transaction ("both or neither").
pub type Audit<'a> = &'a [OutboxRow];

/// One chained entry with the searchable copies of its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: i64,
    pub event_type: i32,
    pub actor: Vec<u8>,
    pub subject: Vec<u8>,
    pub object_ref: String,
    pub outcome: String,
    pub entry: Vec<u8>,
    pub chain_hash: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub created_at: Micros,
}

/// What one appender batch commits at once.
pub struct AuditBatch {
    pub entries: Vec<AuditRow>,
    /// Complete subtree hashes at levels 8, 16, …: (level, index, hash).
    pub nodes: Vec<(u32, u64, [u8; 32])>,
    pub checkpoint: CheckpointRow,
    /// Outbox rows chained by this batch (deleted in the same transaction).
    pub drained: Vec<i64>,
}

/// An auditor's search; every filter optional, newest first when `descending`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub from_ts: Option<i64>,
    pub to_ts: Option<i64>,
    pub actor: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub event_type: Option<i32>,
    pub object_ref: Option<String>,
    pub outcome: Option<String>,
    /// Keyset pagination: entries with seq below (descending) or above this.
    pub cursor: Option<i64>,
    pub descending: bool,
    pub limit: i64,
}

/// The audit log's tables: the outbox, the append-only entries, tree nodes and checkpoints,
/// and the pseudonym directory.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Stores records outside any other write (actions with no write of their own, and
    /// nodes that are not the appender).
    async fn insert_outbox(&self, rows: &[OutboxRow]) -> StoreResult<()>;
    /// The oldest waiting records, by id.
    async fn find_outbox(&self, limit: i64) -> StoreResult<Vec<(i64, OutboxRow)>>;
    /// Whether this process may append: always on SQLite; on PostgreSQL, holding a
    /// session-level advisory lock on a dedicated connection (a leader lease).
    async fn hold_audit_lease(&self) -> StoreResult<bool>;
    /// Pseudonyms for `(kind, natural id)` pairs, created (random) where missing.
    async fn resolve_pseudonyms(
        &self,
        ids: &[(String, String)],
    ) -> StoreResult<Vec<((String, String), Vec<u8>)>>;
    /// Existing pseudonyms only.
    async fn find_pseudonyms(
        &self,
        ids: &[(String, String)],
    ) -> StoreResult<Vec<((String, String), Vec<u8>)>>;
    /// Natural ids of pseudonyms still in the directory.
    async fn find_natural_ids(
        &self,
        pseudonyms: &[Vec<u8>],
    ) -> StoreResult<Vec<(Vec<u8>, (String, String))>>;
    /// Unlinks pseudonyms from a natural id (erasure); returns how many.
    async fn delete_pseudonyms(&self, kind: &str, natural_ids: &[String]) -> StoreResult<u64>;
    async fn append_audit(&self, batch: &AuditBatch) -> StoreResult<()>;
    /// The entry with the highest seq.
    async fn find_audit_head(&self) -> StoreResult<Option<AuditRow>>;
    async fn find_audit_entries(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRow>>;
    /// Entries with seq in [from, to), in order.
    async fn find_audit_range(&self, from: i64, to: i64) -> StoreResult<Vec<AuditRow>>;
    /// Leaf hashes of entries [from, to), in order.
    async fn find_leaf_hashes(&self, from: i64, to: i64) -> StoreResult<Vec<Vec<u8>>>;
    /// Stored subtree hashes of `level` with index in [from, to), in order.
    async fn find_audit_nodes(&self, level: i32, from: i64, to: i64) -> StoreResult<Vec<Vec<u8>>>;
    async fn find_latest_checkpoint(&self) -> StoreResult<Option<CheckpointRow>>;
    async fn find_checkpoint(&self, size: i64) -> StoreResult<Option<CheckpointRow>>;
    /// The smallest seq with ts >= `from_ts` and the largest with ts < `to_ts`.
    async fn find_seq_bounds(&self, from_ts: i64, to_ts: i64) -> StoreResult<Option<(i64, i64)>>;
}

const AUDIT_COLS: &str =
    "seq, ts, event_type, actor, subject, object_ref, outcome, entry, chain_hash, leaf_hash";

fn audit_from(row: &Row) -> Result<AuditRow, sqlx::Error> {
    Ok(AuditRow {
        seq: row.try_get("seq")?,
        ts: row.try_get("ts")?,
        event_type: row.try_get("event_type")?,
        actor: row.try_get("actor")?,
        subject: row.try_get("subject")?,
        object_ref: row.try_get("object_ref")?,
        outcome: row.try_get("outcome")?,
        entry: row.try_get("entry")?,
        chain_hash: row.try_get("chain_hash")?,
        leaf_hash: row.try_get("leaf_hash")?,
    })
}

fn checkpoint_from(row: &Row) -> Result<CheckpointRow, sqlx::Error> {
    Ok(CheckpointRow {
        size: row.try_get("size")?,
        root: row.try_get("root")?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Rows per multi-row insert into `audit_outbox` (8 parameters each).
const OUTBOX_ROWS_PER_INSERT: usize = 1000;
/// Rows per multi-row insert into `audit_log` (10 parameters each).
const ENTRIES_PER_INSERT: usize = 1000;
/// Outbox ids per `DELETE … IN (…)` once chained.
const DRAINED_PER_DELETE: usize = 1000;
const _: () = assert!(OUTBOX_ROWS_PER_INSERT * 8 <= BIND_LIMIT);
const _: () = assert!(ENTRIES_PER_INSERT * 10 <= BIND_LIMIT);
const _: () = assert!(DRAINED_PER_DELETE <= BIND_LIMIT);

/// Stores audit records in the action's own transaction (one statement per chunk).
pub(super) async fn insert_outbox(tx: &mut Tx, rows: &[OutboxRow]) -> StoreResult<()> {
    for rows in rows.chunks(OUTBOX_ROWS_PER_INSERT) {
        let mut qb = query(
            "INSERT INTO audit_outbox \
             (at_ms, event_type, actor, subject, object_kind, object_id, pii, meta)",
        );
        qb.push_values(rows, |r| {
            vec![
                r.at_ms.into(),
                i32::from(r.event_type).into(),
                r.actor.clone().into(),
                r.subject.clone().into(),
                r.object_kind.clone().into(),
                r.object_id.clone().into(),
                r.pii.clone().into(),
                r.meta.clone().into(),
            ]
        });
        qb.execute(&mut *tx).await?;
    }
    Ok(())
}

/// Runs one write and stores its audit records in the same transaction ("both or
/// neither"); returns the rows it changed.
pub(super) async fn execute_audited(db: &Db, write: Query, audit: Audit<'_>) -> StoreResult<u64> {
    let mut tx = db.begin_write().await?;
    let changed = write.execute(&mut tx).await?;
    insert_outbox(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(changed)
}

/// As [`execute_audited`], storing the records only when the write changed a row: an
/// action that did nothing (revoking what was revoked) leaves no record.
pub(super) async fn execute_audited_if_changed(
    db: &Db,
    write: Query,
    audit: Audit<'_>,
) -> StoreResult<u64> {
    let mut tx = db.begin_write().await?;
    let changed = write.execute(&mut tx).await?;
    if changed > 0 {
        insert_outbox(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// Whether this process is the one audit appender. SQLite: always (one process owns the
/// file; two on one file would collide on `audit_log.seq`, the primary key, rather than fork
/// the chain). PostgreSQL: while it holds a session-level advisory lock on a dedicated
/// connection (checked alive each time); when that connection dies, PostgreSQL releases the
/// lock and another node can take over. Two appenders racing anyway would collide on the
/// primary key too. Async mutex: checking the lease is a round trip.
#[derive(Default)]
pub(super) struct AuditLease(tokio::sync::Mutex<Option<sqlx::PgConnection>>);

/// The advisory lock key of the audit appender (any fixed number; ASCII "wardaudt").
const AUDIT_LEASE_KEY: i64 = 0x7761_7264_6175_6474;

impl AuditLease {
    async fn hold(&self, db: &Db) -> StoreResult<bool> {
        use sqlx::Connection;
        let Db::Postgres(pool) = db else {
            return Ok(true);
        };
        let mut lease = self.0.lock().await;
        if let Some(conn) = lease.as_mut() {
            if conn.ping().await.is_ok() {
                return Ok(true);
            }
            *lease = None;
        }
        let mut conn = pool.acquire().await?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(AUDIT_LEASE_KEY)
            .fetch_one(&mut conn)
            .await?;
        if held {
            *lease = Some(conn);
        } else {
            let _ = conn.close().await;
        }
        Ok(held)
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn insert_outbox(&self, rows: &[OutboxRow]) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        insert_outbox(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_outbox(&self, limit: i64) -> StoreResult<Vec<(i64, OutboxRow)>> {
        let rows = query(
            "SELECT id, at_ms, event_type, actor, subject, object_kind, object_id, pii, meta FROM \
             audit_outbox ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("id")?,
                    OutboxRow {
                        at_ms: r.try_get("at_ms")?,
                        event_type: u16::try_from(r.try_get::<i32, _>("event_type")?).unwrap_or(0),
                        actor: r.try_get("actor")?,
                        subject: r.try_get("subject")?,
                        object_kind: r.try_get("object_kind")?,
                        object_id: r.try_get("object_id")?,
                        pii: r.try_get("pii")?,
                        meta: r.try_get("meta")?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn hold_audit_lease(&self) -> StoreResult<bool> {
        self.lease.hold(&self.db).await
    }

    async fn resolve_pseudonyms(
        &self,
        ids: &[(String, String)],
    ) -> StoreResult<Vec<((String, String), Vec<u8>)>> {
        pseudonyms::resolve_pseudonyms(&self.db, ids).await
    }

    async fn find_pseudonyms(
        &self,
        ids: &[(String, String)],
    ) -> StoreResult<Vec<((String, String), Vec<u8>)>> {
        pseudonyms::find_pseudonyms(&self.db, ids).await
    }

    async fn find_natural_ids(
        &self,
        pseudonyms: &[Vec<u8>],
    ) -> StoreResult<Vec<(Vec<u8>, (String, String))>> {
        pseudonyms::find_natural_ids(&self.db, pseudonyms).await
    }

    async fn delete_pseudonyms(&self, kind: &str, natural_ids: &[String]) -> StoreResult<u64> {
        pseudonyms::delete_pseudonyms(&self.db, kind, natural_ids).await
    }

    async fn append_audit(&self, batch: &AuditBatch) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        for chunk in batch.entries.chunks(ENTRIES_PER_INSERT) {
            let mut qb = query(format!("INSERT INTO audit_log ({AUDIT_COLS})"));
            qb.push_values(chunk, |e| {
                vec![
                    e.seq.into(),
                    e.ts.into(),
                    e.event_type.into(),
                    e.actor.clone().into(),
                    e.subject.clone().into(),
                    e.object_ref.clone().into(),
                    e.outcome.clone().into(),
                    e.entry.clone().into(),
                    e.chain_hash.clone().into(),
                    e.leaf_hash.clone().into(),
                ]
            });
            qb.execute(&mut tx).await?;
        }
        if !batch.nodes.is_empty() {
            let mut qb = query("INSERT INTO audit_nodes (level, idx, hash)");
            qb.push_values(&batch.nodes, |(level, idx, hash)| {
                vec![
                    (*level as i32).into(),
                    (*idx as i64).into(),
                    hash.to_vec().into(),
                ]
            });
            qb.execute(&mut tx).await?;
        }
        let c = &batch.checkpoint;
        query(
            "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(c.size)
        .bind(c.root.clone())
        .bind(c.note.clone())
        .bind(c.created_at)
        .execute(&mut tx)
        .await?;
        for chunk in batch.drained.chunks(DRAINED_PER_DELETE) {
            let mut qb = query("DELETE FROM audit_outbox WHERE id IN ");
            qb.push_list(chunk.iter().copied());
            qb.execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn find_audit_head(&self) -> StoreResult<Option<AuditRow>> {
        let sql = format!("SELECT {AUDIT_COLS} FROM audit_log ORDER BY seq DESC LIMIT 1");
        let row = query(sql).fetch_optional(&self.db).await?;
        Ok(row.as_ref().map(audit_from).transpose()?)
    }

    async fn find_audit_entries(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRow>> {
        let mut qb = query(format!("SELECT {AUDIT_COLS} FROM audit_log WHERE 1 = 1"));
        if let Some(v) = q.from_ts {
            qb.push(" AND ts >= ").push_bind(v);
        }
        if let Some(v) = q.to_ts {
            qb.push(" AND ts < ").push_bind(v);
        }
        if let Some(v) = &q.actor {
            qb.push(" AND actor = ").push_bind(v.clone());
        }
        if let Some(v) = &q.subject {
            qb.push(" AND subject = ").push_bind(v.clone());
        }
        if let Some(v) = q.event_type {
            qb.push(" AND event_type = ").push_bind(v);
        }
        if let Some(v) = &q.object_ref {
            qb.push(" AND object_ref = ").push_bind(v.clone());
        }
        if let Some(v) = &q.outcome {
            qb.push(" AND outcome = ").push_bind(v.clone());
        }
        let (op, order) = if q.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some(c) = q.cursor {
            qb.push(format!(" AND seq {op} ")).push_bind(c);
        }
        qb.push(format!(" ORDER BY seq {order} LIMIT "))
            .push_bind(q.limit);
        all(qb.fetch_all(&self.db).await?, audit_from)
    }

    async fn find_audit_range(&self, from: i64, to: i64) -> StoreResult<Vec<AuditRow>> {
        let sql =
            format!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq");
        all(
            query(sql).bind(from).bind(to).fetch_all(&self.db).await?,
            audit_from,
        )
    }

    async fn find_leaf_hashes(&self, from: i64, to: i64) -> StoreResult<Vec<Vec<u8>>> {
        Ok(
            query("SELECT leaf_hash FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq")
                .bind(from)
                .bind(to)
                .scalar_all(&self.db)
                .await?,
        )
    }

    async fn find_audit_nodes(&self, level: i32, from: i64, to: i64) -> StoreResult<Vec<Vec<u8>>> {
        Ok(query(
            "SELECT hash FROM audit_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
        )
        .bind(level)
        .bind(from)
        .bind(to)
        .scalar_all(&self.db)
        .await?)
    }

    async fn find_latest_checkpoint(&self) -> StoreResult<Option<CheckpointRow>> {
        let row = query(
            "SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(checkpoint_from).transpose()?)
    }

    async fn find_checkpoint(&self, size: i64) -> StoreResult<Option<CheckpointRow>> {
        let row =
            query("SELECT size, root, note, created_at FROM audit_checkpoints WHERE size = $1")
                .bind(size)
                .fetch_optional(&self.db)
                .await?;
        Ok(row.as_ref().map(checkpoint_from).transpose()?)
    }

    async fn find_seq_bounds(&self, from_ts: i64, to_ts: i64) -> StoreResult<Option<(i64, i64)>> {
        let row = query(
            "SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_log WHERE ts >= $1 AND ts < $2",
        )
        .bind(from_ts)
        .bind(to_ts)
        .fetch_one(&self.db)
        .await?;
        let lo: Option<i64> = row.try_get("lo")?;
        let hi: Option<i64> = row.try_get("hi")?;
        Ok(lo.zip(hi))
    }
}
