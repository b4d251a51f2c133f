//! What a running job sees: its host, its payload, its saved checkpoint, and the calls that
//! record progress and notice cancellation.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{AnyHost, JobError};
use crate::store::{JobLease, Store};
use crate::time::now_micros;

/// One run of a job. The lease is renewed by the worker's heartbeat while the run executes;
/// nothing here needs to be called for that.
pub struct JobContext<P> {
    host: AnyHost,
    store: Store,
    lease: JobLease,
    payload: P,
    checkpoint: Option<Value>,
}

impl<P> JobContext<P> {
    pub(super) fn new(
        host: AnyHost,
        store: Store,
        lease: JobLease,
        payload: P,
        checkpoint: Option<Value>,
    ) -> Self {
        Self {
            host,
            store,
            lease,
            payload,
            checkpoint,
        }
    }

    /// The host the workers run in, as the type `H` the job's kind was written for (the
    /// edge's application state); a host of another type fails the job.
    pub fn host<H: Clone + 'static>(&self) -> Result<H, JobError> {
        self.host
            .downcast_ref::<H>()
            .cloned()
            .ok_or_else(|| JobError::Fatal("the workers run in another host".into()))
    }

    pub fn id(&self) -> &str {
        &self.lease.id
    }

    /// 1 for the first claim; more after retries and after crashed runs.
    pub fn attempt(&self) -> i64 {
        self.lease.attempt
    }

    pub fn payload(&self) -> &P {
        &self.payload
    }

    /// The resume cursor saved last, by this run or an earlier one; `None` on a fresh start.
    pub fn checkpoint<T: DeserializeOwned>(&self) -> Result<Option<T>, JobError> {
        self.checkpoint
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|_| JobError::Fatal("the saved checkpoint does not decode".into()))
    }

    /// Stores the resume cursor: a later run (after a crash or a retry) starts from it.
    /// Save it after each step is done, never before.
    pub async fn save_checkpoint<T: Serialize + ?Sized>(
        &mut self,
        cursor: &T,
    ) -> Result<(), JobError> {
        let value = serde_json::to_value(cursor)
            .map_err(|_| JobError::Fatal("the checkpoint does not encode".into()))?;
        let held = self
            .store
            .jobs
            .update_job_checkpoint(&self.lease, &value, now_micros())
            .await?;
        if !held {
            return Err(self.lease_lost());
        }
        self.checkpoint = Some(value);
        Ok(())
    }

    /// Records `done` items of `total`, shown with the job's status.
    pub async fn progress(&self, done: i64, total: i64) -> Result<(), JobError> {
        let held = self
            .store
            .jobs
            .update_job_progress(&self.lease, done, total, now_micros())
            .await?;
        if held { Ok(()) } else { Err(self.lease_lost()) }
    }

    /// Whether cancellation was requested: the job should stop at the next safe point and
    /// return [`JobError::Cancelled`]. One read of the job's row: call it between steps or
    /// batches, not for every row.
    pub async fn cancelled(&self) -> Result<bool, JobError> {
        let job = self.store.jobs.find_job(&self.lease.id).await?;
        match job {
            Some(job)
                if job.locked_by.as_deref() == Some(self.lease.worker.as_str())
                    && job.attempts == self.lease.attempt =>
            {
                Ok(job.cancel_requested)
            }
            _ => Err(self.lease_lost()),
        }
    }

    /// Another worker has claimed the job (this run stalled past its lease): whatever this
    /// run returns is not recorded.
    fn lease_lost(&self) -> JobError {
        JobError::Retryable(format!(
            "job {} was claimed by another worker (the lease ran out)",
            self.lease.id
        ))
    }
}
