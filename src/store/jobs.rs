//! The durable job queue (`src/jobs`): jobs, their claims (leases) and their outcomes.

use async_trait::async_trait;
use serde_json::Value;

use super::db::{Row, query};
use super::{SqlStore, StoreResult};
use crate::time::Micros;

/// Where a job is in its life. Stream's task API shows `pending`, `running`, `completed` and
/// `failed`; `cancelled` is Ward's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Completed, failed or cancelled: nothing will run it again.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// One job of the durable queue (`src/jobs`). Payload, result and checkpoint are JSON
/// holding ids and counts, never personal data in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    /// The stable name its runner is registered under (`gdpr.export`).
    pub kind: String,
    pub payload: Value,
    pub status: JobStatus,
    /// Claims so far (a crashed run counts).
    pub attempts: i64,
    pub max_attempts: i64,
    /// Due from this time (retries move it by the backoff).
    pub run_at: Micros,
    pub locked_by: Option<String>,
    /// The lease: past it, another worker may claim the job (its worker crashed).
    pub locked_until: Option<Micros>,
    pub progress_done: i64,
    pub progress_total: Option<i64>,
    pub result: Option<Value>,
    /// The last failure, short; never personal data.
    pub error: Option<String>,
    /// The job's own resume cursor.
    pub checkpoint: Option<Value>,
    pub cancel_requested: bool,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub finished_at: Option<Micros>,
}

/// One claim of a job: every write a worker makes while running it names the claim, and
/// changes nothing once the claim is superseded (its lease expired and another worker
/// claimed the job, counting one more attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub id: String,
    pub worker: String,
    pub attempt: i64,
}

/// How a claim ends.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Completed(Value),
    /// Due again at `run_at`; cancelled instead when cancellation was requested meanwhile.
    Retry {
        error: String,
        run_at: Micros,
    },
    Failed(String),
    Cancelled,
    /// Handed back unfinished (the worker is stopping): due at once, the attempt not counted.
    Released,
}

/// The durable job queue.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn insert_job(&self, job: &JobRow) -> StoreResult<()>;
    async fn find_job(&self, id: &str) -> StoreResult<Option<JobRow>>;
    /// Claims the job due first: pending, or running under a lease that expired before
    /// `now`. It becomes running, leased to `worker` until `until`, with one more attempt.
    /// Safe with any number of workers on any number of nodes.
    async fn claim_job(
        &self,
        worker: &str,
        now: Micros,
        until: Micros,
    ) -> StoreResult<Option<JobRow>>;
    /// Extends the lease; false when the claim was superseded.
    async fn update_job_lease(
        &self,
        lease: &JobLease,
        until: Micros,
        now: Micros,
    ) -> StoreResult<bool>;
    /// False when the claim was superseded.
    async fn update_job_progress(
        &self,
        lease: &JobLease,
        done: i64,
        total: i64,
        now: Micros,
    ) -> StoreResult<bool>;
    /// False when the claim was superseded.
    async fn update_job_checkpoint(
        &self,
        lease: &JobLease,
        checkpoint: &Value,
        now: Micros,
    ) -> StoreResult<bool>;
    /// Ends the claim; false (and nothing written) when it was superseded.
    async fn finish_job(
        &self,
        lease: &JobLease,
        outcome: &JobOutcome,
        now: Micros,
    ) -> StoreResult<bool>;
    /// Cancels a pending job at once, and asks a running one to stop (its worker ends it as
    /// cancelled). Returns the status after, `None` for an unknown id; a finished job stays
    /// as it is.
    async fn cancel_job(&self, id: &str, now: Micros) -> StoreResult<Option<JobStatus>>;
}

const JOB_COLS: &str = "id, kind, payload, status, attempts, max_attempts, run_at, locked_by, \
    locked_until, progress_done, progress_total, result, error, checkpoint, cancel_requested, \
    created_at, updated_at, finished_at";
/// The claim a worker's write must still hold (see [`JobLease`]).
const JOB_FENCE: &str = "WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND status = 'running'";

fn job_json(r: &Row, col: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
    r.try_get::<Option<String>, _>(col)?
        .map(|text| {
            serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode {
                index: col.into(),
                source: Box::new(e),
            })
        })
        .transpose()
}

fn job_from(r: &Row) -> Result<JobRow, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(JobRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        payload: job_json(r, "payload")?.unwrap_or_default(),
        status: JobStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: format!("unknown job status {status:?}").into(),
        })?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        run_at: r.try_get("run_at")?,
        locked_by: r.try_get("locked_by")?,
        locked_until: r.try_get("locked_until")?,
        progress_done: r.try_get("progress_done")?,
        progress_total: r.try_get("progress_total")?,
        result: job_json(r, "result")?,
        error: r.try_get("error")?,
        checkpoint: job_json(r, "checkpoint")?,
        cancel_requested: r.try_get("cancel_requested")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

#[async_trait]
impl JobStore for SqlStore {
    async fn insert_job(&self, j: &JobRow) -> StoreResult<()> {
        query(format!(
            "INSERT INTO jobs ({JOB_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18)"
        ))
        .bind(&j.id)
        .bind(&j.kind)
        .bind(j.payload.to_string())
        .bind(j.status.as_str())
        .bind(j.attempts)
        .bind(j.max_attempts)
        .bind(j.run_at)
        .bind(&j.locked_by)
        .bind(j.locked_until)
        .bind(j.progress_done)
        .bind(j.progress_total)
        .bind(j.result.as_ref().map(|v| v.to_string()))
        .bind(&j.error)
        .bind(j.checkpoint.as_ref().map(|v| v.to_string()))
        .bind(j.cancel_requested)
        .bind(j.created_at)
        .bind(j.updated_at)
        .bind(j.finished_at)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn find_job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        let row = query(format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.as_ref().map(job_from).transpose()?)
    }

    async fn claim_job(
        &self,
        worker: &str,
        now: Micros,
        until: Micros,
    ) -> StoreResult<Option<JobRow>> {
        // SQLite: the IMMEDIATE transaction makes this the only writer, so nobody
        // claims between the pick and the update. PostgreSQL: the row lock taken by
        // the pick (`Dialect::claim_lock`) does that, and SKIP LOCKED lets concurrent claims
        // pass over it to the next due job instead of waiting.
        let lock = self.db.dialect().claim_lock();
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $2, \
             locked_until = $3, \
             updated_at = $1 \
             WHERE id = (SELECT id FROM jobs WHERE status IN ('pending', 'running') AND run_at <= \
             $1 \
             AND (locked_until IS NULL OR locked_until < $1) ORDER BY run_at, id LIMIT 1{lock}) \
             RETURNING {JOB_COLS}"
        );
        let row = query(sql)
            .bind(now)
            .bind(worker)
            .bind(until)
            .fetch_optional(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(row.as_ref().map(job_from).transpose()?)
    }

    async fn update_job_lease(
        &self,
        l: &JobLease,
        until: Micros,
        now: Micros,
    ) -> StoreResult<bool> {
        let done = query(format!(
            "UPDATE jobs SET locked_until = $4, updated_at = $5 {JOB_FENCE}"
        ))
        .bind(&l.id)
        .bind(&l.worker)
        .bind(l.attempt)
        .bind(until)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(done == 1)
    }

    async fn update_job_progress(
        &self,
        l: &JobLease,
        done: i64,
        total: i64,
        now: Micros,
    ) -> StoreResult<bool> {
        let n = query(format!(
            "UPDATE jobs SET progress_done = $4, progress_total = $5, updated_at = $6 {JOB_FENCE}"
        ))
        .bind(&l.id)
        .bind(&l.worker)
        .bind(l.attempt)
        .bind(done)
        .bind(total)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(n == 1)
    }

    async fn update_job_checkpoint(
        &self,
        l: &JobLease,
        checkpoint: &serde_json::Value,
        now: Micros,
    ) -> StoreResult<bool> {
        let n = query(format!(
            "UPDATE jobs SET checkpoint = $4, updated_at = $5 {JOB_FENCE}"
        ))
        .bind(&l.id)
        .bind(&l.worker)
        .bind(l.attempt)
        .bind(checkpoint.to_string())
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(n == 1)
    }

    async fn finish_job(
        &self,
        l: &JobLease,
        outcome: &JobOutcome,
        now: Micros,
    ) -> StoreResult<bool> {
        use JobOutcome;
        const UNLOCK: &str = "locked_by = NULL, locked_until = NULL, updated_at = $4";
        let fenced = |set: &str| format!("UPDATE jobs SET {set}, {UNLOCK} {JOB_FENCE}");
        let query = match outcome {
            JobOutcome::Completed(result) => query(fenced(
                "status = 'completed', result = $5, error = NULL, finished_at = $4",
            ))
            .bind(&l.id)
            .bind(&l.worker)
            .bind(l.attempt)
            .bind(now)
            .bind(result.to_string()),
            // A cancellation requested while the attempt ran wins over the retry.
            JobOutcome::Retry { error, run_at } => query(fenced(
                "status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END, \
                 finished_at = CASE WHEN cancel_requested THEN $4 ELSE NULL END, error = $5, \
                 run_at = $6",
            ))
            .bind(&l.id)
            .bind(&l.worker)
            .bind(l.attempt)
            .bind(now)
            .bind(error.clone())
            .bind(*run_at),
            JobOutcome::Failed(error) => query(fenced(
                "status = 'failed', error = $5, finished_at \
                 = $4",
            ))
            .bind(&l.id)
            .bind(&l.worker)
            .bind(l.attempt)
            .bind(now)
            .bind(error.clone()),
            JobOutcome::Cancelled => query(fenced("status = 'cancelled', finished_at = $4"))
                .bind(&l.id)
                .bind(&l.worker)
                .bind(l.attempt)
                .bind(now),
            JobOutcome::Released => query(fenced(
                "status = 'pending', attempts = attempts - 1, run_at = $4",
            ))
            .bind(&l.id)
            .bind(&l.worker)
            .bind(l.attempt)
            .bind(now),
        };
        Ok(query.execute(&self.db).await? == 1)
    }

    async fn cancel_job(&self, id: &str, now: Micros) -> StoreResult<Option<JobStatus>> {
        // A pending job, or a running one whose worker is gone (lease expired), ends
        // here; a live run is asked to stop and its worker ends it.
        let mut tx = self.db.begin_write().await?;
        let stop_now = "status = 'pending' OR locked_until < $2";
        let changed: Option<String> = query(format!(
            "UPDATE jobs SET cancel_requested = TRUE, \
             status = CASE WHEN {stop_now} THEN 'cancelled' ELSE status END, \
             finished_at = CASE WHEN {stop_now} THEN $2 ELSE finished_at END, \
             locked_by = CASE WHEN {stop_now} THEN NULL ELSE locked_by END, \
             locked_until = CASE WHEN {stop_now} THEN NULL ELSE locked_until END, \
             updated_at = $2 \
             WHERE id = $1 AND status IN ('pending', 'running') RETURNING status"
        ))
        .bind(id)
        .bind(now)
        .scalar_optional(&mut tx)
        .await?;
        let status = match changed {
            Some(s) => Some(s),
            None => {
                query("SELECT status FROM jobs WHERE id = $1")
                    .bind(id)
                    .scalar_optional(&mut tx)
                    .await?
            }
        };
        tx.commit().await?;
        Ok(status.as_deref().and_then(JobStatus::parse))
    }
}
