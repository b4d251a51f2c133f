//! The durable job queue: typed jobs stored in the database and run by workers inside
//! `ward serve` and `ward worker` (GDPR export and erasure, retention, key rotation and
//! checkpoint publication run here).
//!
//! - **Typed, stable names.** A job type implements [`Job`]: a [`Job::KIND`] stored with
//!   each job (so it never changes once jobs of that kind exist), a serde payload (ids, never
//!   personal data in clear), and `run`, which returns a JSON result or a [`JobError`].
//!   Runners are registered per process on [`Jobs`] (`state.jobs.register(MyJob)`); a job
//!   reaches what it needs through the [`Host`] its workers run in.
//! - **Claims.** [`enqueue`] stores a pending job. A worker claims the job due first
//!   ([`crate::store::JobStore::claim_job`]: `FOR UPDATE SKIP LOCKED` on PostgreSQL, an
//!   IMMEDIATE transaction on SQLite) and holds a lease ([`WorkerConfig::lease`]) that a
//!   heartbeat renews every third of its length while `run` executes.
//! - **Resumption after a crash, idempotent steps.** A job saves its own resume cursor with
//!   [`JobContext::save_checkpoint`] as it goes. When its worker dies, the lease runs out,
//!   another worker claims the job (one more attempt), and `run` starts again with the saved
//!   checkpoint. A step can therefore run twice (a crash after the step, before the save):
//!   steps must be idempotent.
//! - **Fencing.** Every write a run makes names its claim ([`JobLease`]: worker and
//!   attempt). Once another worker has claimed the job, the old run's writes change nothing.
//! - **Retries.** [`JobError::Retryable`] runs the job again after [`Job::backoff`] (1 s,
//!   2 s, 4 s … capped at an hour by default) until it has had `max_attempts` claims, then
//!   it fails. [`JobError::Fatal`] fails it at once, as does a payload that does not decode or
//!   a kind no runner is registered for.
//! - **Progress and cancellation.** [`JobContext::progress`] records items done of the
//!   total. [`cancel`] ends a pending job at once. A running job sees
//!   [`JobContext::cancelled`], returns [`JobError::Cancelled`], and ends as cancelled.
//! - **Tests.** [`run_pending_now`] drains the due jobs on the caller's task.
//!
//! Nothing here writes audit records: a job that needs one (GDPR export or erasure) records
//! its own. Logs carry job ids and kinds only.

mod context;
mod worker;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Notify, watch};

pub use crate::store::{JobLease, JobRow, JobStatus};
use crate::store::{Store, StoreError, StoreResult};
use crate::time::{Micros, now_micros};
pub use context::JobContext;
pub use worker::{DEFAULT_WORKERS, Worker, WorkerConfig, WorkerHandle, Workers, run_pending_now};

/// A kind of job.
pub trait Job: Send + Sync + 'static {
    /// The name stored with every job of this kind (`gdpr.export`). Never change it once
    /// jobs of the kind may exist: queued ones would find no runner.
    const KIND: &'static str;
    /// What the job works on (ids, not personal data): stored as JSON.
    type Payload: Serialize + DeserializeOwned + Send + Sync;

    /// Does the work, saving a checkpoint after each idempotent step; returns the result
    /// stored with the completed job.
    fn run(
        &self,
        ctx: &mut JobContext<Self::Payload>,
    ) -> impl Future<Output = Result<Value, JobError>> + Send;

    /// How long to wait after failed attempt `attempt` (1 for the first) before the next.
    fn backoff(&self, attempt: i64) -> Duration {
        backoff(attempt)
    }
}

/// Why a run did not complete. The text is stored with the job and shown to operators:
/// keep it short and free of personal data.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (a database or network hiccup): retried after the backoff.
    #[error("{0}")]
    Retryable(String),
    /// Will not succeed however often it runs: the job fails now.
    #[error("{0}")]
    Fatal(String),
    /// The job saw [`JobContext::cancelled`] and stopped.
    #[error("cancelled")]
    Cancelled,
}

impl JobError {
    /// The outcome of step `position` (1-based) of a task over many users that failed with
    /// an error answered as `(caller's fault, Stream code, message)`: the caller's fault (a
    /// hold, an unknown user) will not change by retrying, so the job fails, and its text
    /// keeps only the position and the code (the message can name the user); anything else
    /// is retried.
    pub fn of_step(answered: (bool, i32, String), position: usize, verb: &str) -> Self {
        match answered {
            (true, code, _) => Self::Fatal(format!(
                "user {position} of the task could not be {verb} (code {code})"
            )),
            (false, _, message) => Self::Retryable(message),
        }
    }
}

/// Store errors are transient as far as a job can tell.
impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError::Retryable(e.to_string())
    }
}

/// The default backoff: 1 s after the first failed attempt, doubling each time, at most an
/// hour.
pub fn backoff(attempt: i64) -> Duration {
    const CAP: Duration = Duration::from_secs(3600);
    let doublings = attempt.saturating_sub(1).clamp(0, 12) as u32;
    Duration::from_secs(1 << doublings).min(CAP)
}

/// What workers run in: the process's store, job kinds and node id, and the value a job
/// reaches its dependencies through ([`JobContext::host`]). The edge implements it for its
/// application state; this module never names that type.
pub trait Host: Clone + Send + Sync + 'static {
    /// The store the queue lives in.
    fn store(&self) -> &Store;
    /// The job kinds this process runs, and how its workers run them.
    fn jobs(&self) -> &Jobs;
    /// This node's id (workers are named after it).
    fn node_id(&self) -> &str;
}

/// The host a job runs in, type-erased: a job of a domain asks for the type it was
/// registered with ([`JobContext::host`]).
pub type AnyHost = Arc<dyn std::any::Any + Send + Sync>;

/// A runner with its payload type erased, so workers can run any registered kind.
#[async_trait]
trait Runner: Send + Sync {
    async fn run(
        &self,
        host: AnyHost,
        store: Store,
        lease: JobLease,
        payload: Value,
        checkpoint: Option<Value>,
    ) -> Result<Value, JobError>;
    fn backoff(&self, attempt: i64) -> Duration;
}

struct Typed<J>(J);

#[async_trait]
impl<J: Job> Runner for Typed<J> {
    async fn run(
        &self,
        host: AnyHost,
        store: Store,
        lease: JobLease,
        payload: Value,
        checkpoint: Option<Value>,
    ) -> Result<Value, JobError> {
        // The serde message could quote a value: keep it out of the stored error.
        let payload = serde_json::from_value(payload).map_err(|_| {
            JobError::Fatal(format!(
                "the payload does not decode as a {} payload",
                J::KIND
            ))
        })?;
        let mut ctx = JobContext::new(host, store, lease, payload, checkpoint);
        self.0.run(&mut ctx).await
    }

    fn backoff(&self, attempt: i64) -> Duration {
        self.0.backoff(attempt)
    }
}

/// This process's side of the queue: the kinds its workers can run, how they run, and a
/// wake-up for idle workers when a job is enqueued here.
pub struct Jobs {
    /// A sync lock: held to insert or clone one `Arc`, never across an await.
    runners: RwLock<HashMap<&'static str, Arc<dyn Runner>>>,
    wake: Notify,
    /// How many of this process's workers are claiming or running a job (what
    /// [`run_pending_now`] waits for).
    busy: watch::Sender<usize>,
    config: WorkerConfig,
}

impl Default for Jobs {
    fn default() -> Self {
        Self::new(WorkerConfig::default())
    }
}

impl Jobs {
    /// Tells one idle worker of this process that a job is due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn new(config: WorkerConfig) -> Self {
        Self {
            runners: RwLock::new(HashMap::new()),
            wake: Notify::new(),
            busy: watch::Sender::new(0),
            config,
        }
    }

    /// Lets this process's workers run jobs of `J::KIND` (replacing an earlier runner of
    /// that kind).
    pub fn register<J: Job>(&self, job: J) {
        self.runners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(J::KIND, Arc::new(Typed(job)));
    }

    /// The registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self
            .runners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        kinds.sort_unstable();
        kinds
    }

    /// How this process's workers run (unless spawned with their own configuration).
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Counts a worker as busy until the guard drops (also when its task is aborted).
    fn mark_busy(&self) -> Busy<'_> {
        self.busy.send_modify(|n| *n += 1);
        Busy(&self.busy)
    }

    fn runner(&self, kind: &str) -> Option<Arc<dyn Runner>> {
        self.runners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kind)
            .cloned()
    }
}

struct Busy<'a>(&'a watch::Sender<usize>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// What jobs are enqueued, found and cancelled through: the app state (which also wakes
/// this node's idle workers) or a bare store (CLI commands).
pub trait JobQueue {
    fn store(&self) -> &Store;
    /// Tells this process's idle workers that a job is due.
    fn wake(&self) {}
}

impl JobQueue for Store {
    fn store(&self) -> &Store {
        self
    }
}

/// Stores a pending job of kind `J`, due now, to be claimed at most `max_attempts` times
/// (at least once); returns its id (a UUIDv7, the Stream task id).
pub async fn enqueue<J: Job>(
    queue: &impl JobQueue,
    payload: &J::Payload,
    max_attempts: i64,
) -> StoreResult<String> {
    let payload = serde_json::to_value(payload)
        .map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))?;
    let now = now_micros();
    let job = JobRow {
        id: uuid::Uuid::now_v7().to_string(),
        kind: J::KIND.to_string(),
        payload,
        status: JobStatus::Pending,
        attempts: 0,
        max_attempts: max_attempts.max(1),
        run_at: now,
        locked_by: None,
        locked_until: None,
        progress_done: 0,
        progress_total: None,
        result: None,
        error: None,
        checkpoint: None,
        cancel_requested: false,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    queue.store().jobs.insert_job(&job).await?;
    tracing::info!(job_id = %job.id, kind = J::KIND, "job {} enqueued", job.id);
    queue.wake();
    Ok(job.id)
}

pub async fn find(queue: &impl JobQueue, id: &str) -> StoreResult<Option<JobRow>> {
    queue.store().jobs.find_job(id).await
}

/// Cancels a job: a pending one ends at once; a running one is asked to stop and ends as
/// cancelled when its run sees it (or completes, if it finishes first). Returns the status
/// after, `None` for an unknown id; a finished job is left as it is.
pub async fn cancel(queue: &impl JobQueue, id: &str) -> StoreResult<Option<JobStatus>> {
    let status = queue.store().jobs.cancel_job(id, now_micros()).await?;
    if let Some(status) = status {
        tracing::info!(job_id = %id, status = status.as_str(), "job {id} cancellation requested");
    }
    Ok(status)
}

fn micros(d: Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Stored error texts stay short (they are shown in task status replies).
fn short(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_an_hour() {
        let secs: Vec<u64> = (1..=14).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(
            secs,
            [
                1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600
            ]
        );
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(i64::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn stored_errors_are_cut_on_a_character_boundary() {
        assert_eq!(short("fine"), "fine");
        let long = "é".repeat(600);
        let cut = short(&long);
        assert_eq!(cut.chars().count(), 501);
        assert!(cut.ends_with('…'));
    }
}
