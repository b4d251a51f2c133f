//! The application state as the job queue's host: workers run in it, and the jobs of the
//! domains reach the app through it.

use super::AppState;
use crate::jobs::{Host, JobQueue, Jobs};
use crate::store::Store;

impl Host for AppState {
    fn store(&self) -> &Store {
        &self.store
    }

    fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    fn node_id(&self) -> &str {
        &self.config.node_id
    }
}

impl JobQueue for AppState {
    fn store(&self) -> &Store {
        &self.store
    }

    fn wake(&self) {
        self.jobs.wake();
    }
}
