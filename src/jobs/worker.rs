//! Workers: claim the job due first, run it under a renewed lease, record how it ended.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use super::{Host, JobError, Runner, micros, short};
use crate::store::{JobLease, JobOutcome, JobRow, Store, StoreResult};
use crate::time::{Micros, now_micros};

/// How many workers `ward serve` runs in-process, and `ward worker` by default.
pub const DEFAULT_WORKERS: usize = 2;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How long a claim holds a job without renewal: after it, a crashed worker's job can be
    /// claimed again. Renewed every third of it while the job runs. Nodes' clocks must agree
    /// to well within it.
    pub lease: Duration,
    /// How often an idle worker looks for due jobs (an enqueue on this node wakes one at
    /// once).
    pub poll_interval: Duration,
    /// How long a stopping worker lets its running job finish before handing it back.
    pub stop_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// One worker: runs one job at a time until stopped.
pub struct Worker<H> {
    host: H,
    id: String,
    config: WorkerConfig,
}

/// A running worker.
pub struct WorkerHandle {
    id: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// The name the worker's claims carry (`locked_by`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops the worker and waits for it. A running job has [`WorkerConfig::stop_grace`] to
    /// finish; after that it is handed back (pending again, the attempt not counted) and
    /// another worker resumes it from its checkpoint. Dropping the handle stops the worker
    /// the same way, without waiting.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Kills the worker at once, as a crash would: its running job keeps its lease until the
    /// lease runs out, then another worker resumes it.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// The workers of one process.
pub struct Workers(Vec<WorkerHandle>);

impl Workers {
    /// `n` workers named `<node id>/<i>`, configured by the host's jobs.
    pub fn spawn<H: Host>(host: &H, n: usize) -> Self {
        Self(
            (0..n)
                .map(|i| Worker::spawn(host.clone(), format!("{}/{i}", host.node_id())))
                .collect(),
        )
    }

    /// Stops them all together (each running job gets the same grace) and waits.
    pub async fn stop(self) {
        for w in &self.0 {
            let _ = w.stop.send(true);
        }
        for w in self.0 {
            let _ = w.task.await;
        }
    }
}

impl<H: Host> Worker<H> {
    /// Starts a worker configured by `state.jobs`. `id` names its claims; the node id and a
    /// number make a good one. (Two workers with one id are still safe: each claim is also
    /// told apart by its attempt number.)
    pub fn spawn(host: H, id: impl Into<String>) -> WorkerHandle {
        let config = host.jobs().config().clone();
        Self::spawn_with(host, id, config)
    }

    pub fn spawn_with(host: H, id: impl Into<String>, config: WorkerConfig) -> WorkerHandle {
        let worker = Worker {
            host,
            id: id.into(),
            config,
        };
        let (stop, stopped) = watch::channel(false);
        WorkerHandle {
            id: worker.id.clone(),
            stop,
            task: tokio::spawn(worker.run(stopped)),
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let id = &self.id;
        tracing::info!(worker = %id, "job worker {id} started");
        loop {
            let ran = match self.run_next(&mut stop).await {
                Ok(ran) => ran,
                Err(e) => {
                    tracing::error!(worker = %id, error = %e, "job worker {id} could not claim or finish a job");
                    false
                }
            };
            if stop_requested(&stop) {
                break;
            }
            if ran {
                continue;
            }
            tokio::select! {
                () = wait_stop(&mut stop) => break,
                () = self.host.jobs().wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        tracing::info!(worker = %id, "job worker {id} stopped");
    }

    /// Claims the job due first and runs it; false when none was due.
    async fn run_next(&self, stop: &mut watch::Receiver<bool>) -> StoreResult<bool> {
        // Busy from before the claim: `run_pending_now` must not see an idle process while
        // a job it could not claim is about to run here.
        let _busy = self.host.jobs().mark_busy();
        let now = now_micros();
        let claimed = self
            .host
            .store()
            .jobs
            .claim_job(&self.id, now, now + micros(self.config.lease))
            .await?;
        let Some(job) = claimed else {
            return Ok(false);
        };
        let lease = JobLease {
            id: job.id.clone(),
            worker: self.id.clone(),
            attempt: job.attempts,
        };
        let span =
            tracing::info_span!("job", job_id = %job.id, kind = %job.kind, attempt = job.attempts);
        let ended = self.run_claimed(&job, &lease, stop).instrument(span).await;
        let Some((outcome, now)) = ended else {
            return Ok(true);
        };
        let recorded = self
            .host
            .store()
            .jobs
            .finish_job(&lease, &outcome, now)
            .await?;
        let (id, kind) = (&job.id, &job.kind);
        match (&outcome, recorded) {
            (_, false) => {
                tracing::warn!(job_id = %id, kind = %kind, "job {id} was claimed by another worker meanwhile; this run's outcome is dropped")
            }
            (JobOutcome::Completed(_), _) => {
                tracing::info!(job_id = %id, kind = %kind, "job {id} completed")
            }
            // Job errors are short texts without personal data (see `JobError`).
            (JobOutcome::Retry { error, run_at }, _) => {
                tracing::warn!(job_id = %id, kind = %kind, attempt = job.attempts, run_at, error = %error, "job {id} failed; retrying later")
            }
            (JobOutcome::Failed(error), _) => {
                tracing::error!(job_id = %id, kind = %kind, attempt = job.attempts, error = %error, "job {id} failed")
            }
            (JobOutcome::Cancelled, _) => {
                tracing::info!(job_id = %id, kind = %kind, "job {id} cancelled")
            }
            (JobOutcome::Released, _) => {
                tracing::info!(job_id = %id, kind = %kind, "job {id} handed back: its worker is stopping")
            }
        }
        Ok(true)
    }

    /// Runs a claimed job; returns how it ended and when, or `None` when the lease was lost
    /// (another worker owns the job now, and records its outcome).
    async fn run_claimed(
        &self,
        job: &JobRow,
        lease: &JobLease,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<(JobOutcome, Micros)> {
        if job.cancel_requested {
            // Cancelled while its worker was gone.
            return Some((JobOutcome::Cancelled, now_micros()));
        }
        if job.attempts > job.max_attempts {
            // Claimed again after the worker of its last attempt crashed.
            let error = "the worker running its last attempt stopped without finishing";
            return Some((JobOutcome::Failed(error.into()), now_micros()));
        }
        let Some(runner) = self.host.jobs().runner(&job.kind) else {
            let error = short(&format!(
                "unknown job kind {:?}: no runner is registered for it",
                job.kind
            ));
            return Some((JobOutcome::Failed(error), now_micros()));
        };
        tracing::info!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, "job {} started", job.id);
        let run = AssertUnwindSafe(runner.run(
            std::sync::Arc::new(self.host.clone()),
            self.host.store().clone(),
            lease.clone(),
            job.payload.clone(),
            job.checkpoint.clone(),
        ))
        .catch_unwind();
        let heartbeat = heartbeat(self.host.store(), lease, self.config.lease);
        tokio::pin!(run, heartbeat);
        let ended = tokio::select! {
            r = &mut run => Some(r),
            () = &mut heartbeat => None,
            () = wait_stop(stop) => tokio::select! {
                r = &mut run => Some(r),
                () = &mut heartbeat => None,
                () = tokio::time::sleep(self.config.stop_grace) => {
                    return Some((JobOutcome::Released, now_micros()));
                }
            },
        };
        let Some(ended) = ended else {
            tracing::warn!(job_id = %job.id, "job {} lost its lease (this run stalled); stopping this run", job.id);
            return None;
        };
        let now = now_micros();
        let outcome = match ended {
            Ok(Ok(result)) => JobOutcome::Completed(result),
            Ok(Err(JobError::Cancelled)) => JobOutcome::Cancelled,
            Ok(Err(JobError::Fatal(error))) => JobOutcome::Failed(short(&error)),
            Ok(Err(JobError::Retryable(error))) => retry(job, runner.as_ref(), &error, now),
            // The panic message could hold anything: it stays out of the stored error.
            Err(_) => retry(job, runner.as_ref(), "the job panicked", now),
        };
        Some((outcome, now))
    }
}

/// Another attempt after the backoff, unless this was the last.
fn retry(job: &JobRow, runner: &dyn Runner, error: &str, now: Micros) -> JobOutcome {
    if job.attempts >= job.max_attempts {
        return JobOutcome::Failed(short(&format!(
            "{error} (gave up after {} attempts)",
            job.attempts
        )));
    }
    JobOutcome::Retry {
        error: short(error),
        run_at: now + micros(runner.backoff(job.attempts)),
    }
}

/// Renews the lease every third of its length; returns once it is lost: claimed by another
/// worker, or not renewed in time (the database unreachable), when the run must stop
/// because another worker may start it.
async fn heartbeat(store: &Store, lease: &JobLease, length: Duration) {
    let every = length / 3;
    let mut held_until = Instant::now() + length;
    loop {
        tokio::time::sleep(every).await;
        let sent = Instant::now();
        let now = now_micros();
        match store
            .jobs
            .update_job_lease(lease, now + micros(length), now)
            .await
        {
            Ok(true) => held_until = sent + length,
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(job_id = %lease.id, error = %e, "could not renew the lease of job {}", lease.id);
                if Instant::now() + every >= held_until {
                    return;
                }
            }
        }
    }
}

/// Runs every job due now on the caller's task, one after another, and returns how many
/// runs it made; jobs that this process's own workers took meanwhile are waited for, so
/// that everything due has run when it returns (a job that never ends keeps it waiting).
/// Jobs due later (waiting out a backoff) and runs on other nodes are not waited for. For
/// tests and tools: it uses the workers' configuration from the host's jobs.
pub async fn run_pending_now<H: Host>(host: &H) -> StoreResult<usize> {
    let worker = Worker {
        host: host.clone(),
        id: format!("{}/now-{}", host.node_id(), uuid::Uuid::new_v4().simple()),
        config: host.jobs().config().clone(),
    };
    // Never stopped: held for the whole drain.
    let (_keep, mut stop) = watch::channel(false);
    let mut runs = 0;
    loop {
        while worker.run_next(&mut stop).await? {
            runs += 1;
        }
        let mut busy = host.jobs().busy.subscribe();
        if *busy.borrow_and_update() == 0 {
            return Ok(runs);
        }
        // Another worker here is claiming or running a job: once it is done, whatever it
        // left due (a retry without backoff) is claimable.
        let _ = busy.wait_for(|n| *n == 0).await;
    }
}

/// Stop was asked for, or the handle was dropped.
fn stop_requested(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

async fn wait_stop(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
