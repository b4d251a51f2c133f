//! The durable job queue: jobs run once and complete with their result and progress; retries
//! wait out the backoff; fatal errors, exhausted attempts and unknown kinds fail; pending and
//! running jobs can be cancelled; concurrent workers never share a job; a crashed worker's
//! job resumes from its checkpoint once the lease runs out; `ward worker` runs jobs.
//!
//! Most tests build the app without serving it (as `ward worker` does), so no in-process
//! workers run and the test decides which workers exist: its own, or `run_pending_now`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;
use ward::app::{AppState, Application};
use ward::config::Config;
use ward::jobs::{self, Job, JobContext, JobError, JobStatus, Worker, WorkerConfig};
use ward::time::{Micros, now_micros};

use crate::helpers::{Cleanup, Db, KEY, SECRET, TestApp, eventually, fresh_database};

crate::helpers::on_both_databases!(
    a_job_run_by_the_server_completes_with_its_result_and_progress,
    a_retryable_failure_is_retried_after_the_backoff_and_then_succeeds,
    a_fatal_failure_fails_the_job_at_once,
    a_job_that_keeps_failing_fails_after_its_last_attempt,
    a_job_of_an_unknown_kind_fails_with_a_clear_error,
    a_cancelled_pending_job_never_runs,
    a_running_job_sees_the_cancellation_and_ends_cancelled,
    two_workers_never_run_the_same_job,
    a_superseded_claim_can_no_longer_write,
    a_crashed_workers_job_resumes_from_its_checkpoint_after_the_lease_runs_out,
    a_stopping_worker_hands_its_job_back_unfinished,
    ward_worker_runs_jobs_until_sigterm,
);

/// Short leases and quick polls, so that lease expiry and idle workers take milliseconds.
fn quick() -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_millis(600),
        poll_interval: Duration::from_millis(10),
        stop_grace: Duration::from_millis(50),
    }
}

/// The application state without the server (and so without its workers).
struct Bare {
    state: AppState,
    data_dir: std::path::PathBuf,
    _cleanup: Cleanup,
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn test_env(url: &str, data_dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("WARD_DATA_DIR", data_dir.display().to_string()),
        ("WARD_DATABASE_URL", url.to_string()),
        ("WARD_API_KEY", KEY.to_string()),
        ("WARD_API_SECRET", SECRET.to_string()),
    ]
}

async fn bare(db: Db) -> Bare {
    let (url, cleanup) = fresh_database(db);
    let data_dir =
        std::env::temp_dir().join(format!("ward_jobs_{}", uuid::Uuid::new_v4().simple()));
    let mut env = test_env(&url, &data_dir);
    env.push(("WARD_BIND", "127.0.0.1:0".into()));
    let config = Config::from_sources(None, |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    crate::helpers::install_server_logs();
    let app = Application::build(config).await.expect("the app builds");
    Bare {
        state: app.state(),
        data_dir,
        _cleanup: cleanup,
    }
}

async fn job(state: &AppState, id: &str) -> jobs::JobRow {
    jobs::find(state, id)
        .await
        .unwrap()
        .expect("the job exists")
}

async fn status_is(state: &AppState, id: &str, status: JobStatus) -> bool {
    job(state, id).await.status == status
}

// ---- job kinds used by the tests ----

#[derive(Serialize, Deserialize)]
struct Numbers {
    n: i64,
}

/// Adds 1..=n, reporting progress after each number.
struct Sum;

impl Job for Sum {
    const KIND: &'static str = "test.sum";
    type Payload = Numbers;

    async fn run(&self, ctx: &mut JobContext<Numbers>) -> Result<Value, JobError> {
        let n = ctx.payload().n;
        let mut sum = 0;
        for i in 1..=n {
            sum += i;
            ctx.progress(i, n).await?;
        }
        Ok(json!({ "sum": sum }))
    }
}

#[derive(Serialize, Deserialize)]
struct Empty {}

/// Fails with `error` on its first `failures` attempts (every attempt when `None`), recording
/// when each attempt started; retries wait `base`, doubling.
struct Flaky {
    failures: Option<i64>,
    error: fn(String) -> JobError,
    base: Duration,
    starts: Arc<Mutex<Vec<Micros>>>,
}

impl Flaky {
    fn new(failures: Option<i64>, error: fn(String) -> JobError, base: Duration) -> Self {
        Self {
            failures,
            error,
            base,
            starts: Arc::default(),
        }
    }
}

impl Job for Flaky {
    const KIND: &'static str = "test.flaky";
    type Payload = Empty;

    async fn run(&self, ctx: &mut JobContext<Empty>) -> Result<Value, JobError> {
        self.starts.lock().unwrap().push(now_micros());
        if self.failures.is_none_or(|f| ctx.attempt() <= f) {
            return Err((self.error)(format!("flaky attempt {}", ctx.attempt())));
        }
        Ok(json!({ "attempt": ctx.attempt() }))
    }

    fn backoff(&self, attempt: i64) -> Duration {
        self.base * 2u32.pow(attempt as u32 - 1)
    }
}

/// Never registered anywhere.
struct Unregistered;

impl Job for Unregistered {
    const KIND: &'static str = "test.unregistered";
    type Payload = Empty;

    async fn run(&self, _: &mut JobContext<Empty>) -> Result<Value, JobError> {
        Ok(Value::Null)
    }
}

/// Counts its runs per job id and notices two runs of one job at the same time.
#[derive(Default, Clone)]
struct Counter {
    runs: Arc<Mutex<HashMap<String, u32>>>,
    running: Arc<Mutex<HashSet<String>>>,
    overlaps: Arc<AtomicUsize>,
}

impl Job for Counter {
    const KIND: &'static str = "test.counter";
    type Payload = Empty;

    async fn run(&self, ctx: &mut JobContext<Empty>) -> Result<Value, JobError> {
        let id = ctx.id().to_string();
        if !self.running.lock().unwrap().insert(id.clone()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        *self.runs.lock().unwrap().entry(id.clone()).or_default() += 1;
        // Widens the window in which a second claim of the same job would overlap.
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.running.lock().unwrap().remove(&id);
        Ok(Value::Null)
    }
}

/// Works until cancelled, reporting progress; notes that it saw the cancellation.
#[derive(Default, Clone)]
struct UntilCancelled {
    started: Arc<Notify>,
    saw_cancel: Arc<AtomicBool>,
}

impl Job for UntilCancelled {
    const KIND: &'static str = "test.until_cancelled";
    type Payload = Empty;

    async fn run(&self, ctx: &mut JobContext<Empty>) -> Result<Value, JobError> {
        self.started.notify_one();
        for step in 1.. {
            if ctx.cancelled().await? {
                self.saw_cancel.store(true, Ordering::SeqCst);
                return Err(JobError::Cancelled);
            }
            ctx.progress(step, 1_000_000).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        unreachable!()
    }
}

#[derive(Serialize, Deserialize)]
struct Squares {
    n: i64,
    /// Hang (as if the process died) once this many squares are done, on the first run.
    hang_after: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct SquaresCursor {
    next: i64,
    sum: i64,
}

/// Sums the squares below n, one idempotent step per number with a checkpoint after each;
/// records which run did which number, and when each run started.
#[derive(Clone)]
struct SumOfSquares {
    hang_armed: Arc<AtomicBool>,
    hung: Arc<Notify>,
    steps: Arc<Mutex<Vec<(i64, i64)>>>,
    starts: Arc<Mutex<Vec<(i64, Micros)>>>,
}

impl SumOfSquares {
    fn new() -> Self {
        Self {
            hang_armed: Arc::new(AtomicBool::new(true)),
            hung: Arc::default(),
            steps: Arc::default(),
            starts: Arc::default(),
        }
    }

    fn steps_of(&self, attempt: i64) -> Vec<i64> {
        let steps = self.steps.lock().unwrap();
        steps
            .iter()
            .filter(|(a, _)| *a == attempt)
            .map(|(_, i)| *i)
            .collect()
    }
}

impl Job for SumOfSquares {
    const KIND: &'static str = "test.sum_of_squares";
    type Payload = Squares;

    async fn run(&self, ctx: &mut JobContext<Squares>) -> Result<Value, JobError> {
        self.starts
            .lock()
            .unwrap()
            .push((ctx.attempt(), now_micros()));
        let (n, hang_after) = (ctx.payload().n, ctx.payload().hang_after);
        let mut cursor = ctx
            .checkpoint::<SquaresCursor>()?
            .unwrap_or(SquaresCursor { next: 0, sum: 0 });
        while cursor.next < n {
            let i = cursor.next;
            self.steps.lock().unwrap().push((ctx.attempt(), i));
            cursor = SquaresCursor {
                next: i + 1,
                sum: cursor.sum + i * i,
            };
            ctx.save_checkpoint(&cursor).await?;
            ctx.progress(cursor.next, n).await?;
            if hang_after == Some(cursor.next) && self.hang_armed.swap(false, Ordering::SeqCst) {
                self.hung.notify_one();
                std::future::pending::<()>().await;
            }
        }
        Ok(json!({ "sum": cursor.sum }))
    }
}

// ---- tests ----

async fn a_job_run_by_the_server_completes_with_its_result_and_progress(db: Db) {
    let mut app = TestApp::spawn(db).await;
    app.state.jobs.register(Sum);
    assert!(app.state.jobs.kinds().contains(&"test.sum"));

    // The server's own workers run it (the enqueue wakes one).
    let id = jobs::enqueue::<Sum>(&app.state, &Numbers { n: 10 }, 3)
        .await
        .unwrap();
    eventually(10, "the server's workers complete the job", async || {
        status_is(&app.state, &id, JobStatus::Completed).await
    })
    .await;
    let done = job(&app.state, &id).await;
    assert_eq!(done.kind, "test.sum");
    assert_eq!(done.payload, json!({ "n": 10 }));
    assert_eq!(done.result, Some(json!({ "sum": 55 })));
    assert_eq!((done.progress_done, done.progress_total), (10, Some(10)));
    assert_eq!((done.attempts, done.max_attempts), (1, 3));
    assert_eq!(
        (done.locked_by, done.locked_until, done.error),
        (None, None, None)
    );
    assert!(done.finished_at.is_some_and(|t| t >= done.created_at));
    assert_eq!(
        uuid::Uuid::parse_str(&id).unwrap().get_version_num(),
        7,
        "job ids are UUIDv7"
    );

    // Draining in the test waits for what the server's workers took meanwhile.
    for n in 1..=5 {
        let id = jobs::enqueue::<Sum>(&app.state, &Numbers { n }, 3)
            .await
            .unwrap();
        jobs::run_pending_now(&app.state).await.unwrap();
        let done = job(&app.state, &id).await;
        assert_eq!(done.status, JobStatus::Completed, "{done:?}");
        assert_eq!(done.result, Some(json!({ "sum": n * (n + 1) / 2 })));
    }

    // Cancelling a finished job changes nothing.
    assert_eq!(
        jobs::cancel(&app.state, &id).await.unwrap(),
        Some(JobStatus::Completed)
    );
    assert_eq!(jobs::cancel(&app.state, "no-such-job").await.unwrap(), None);
    assert!(
        jobs::find(&app.state, "no-such-job")
            .await
            .unwrap()
            .is_none()
    );
    app.shutdown().await;
}

async fn a_retryable_failure_is_retried_after_the_backoff_and_then_succeeds(db: Db) {
    let app = bare(db).await;
    let flaky = Flaky::new(Some(2), JobError::Retryable, Duration::from_millis(100));
    let starts = flaky.starts.clone();
    app.state.jobs.register(flaky);
    let id = jobs::enqueue::<Flaky>(&app.state, &Empty {}, 5)
        .await
        .unwrap();

    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 1);
    let waiting = job(&app.state, &id).await;
    assert_eq!(waiting.status, JobStatus::Pending);
    assert_eq!(waiting.attempts, 1);
    assert_eq!(waiting.error.as_deref(), Some("flaky attempt 1"));
    assert_eq!(waiting.locked_by, None);
    assert_eq!(
        waiting.run_at - waiting.updated_at,
        100_000,
        "due again after the job's backoff for attempt 1"
    );
    assert_eq!(
        jobs::run_pending_now(&app.state).await.unwrap(),
        0,
        "not due before the backoff has passed"
    );

    eventually(10, "the retries succeed", async || {
        jobs::run_pending_now(&app.state).await.unwrap();
        status_is(&app.state, &id, JobStatus::Completed).await
    })
    .await;
    let done = job(&app.state, &id).await;
    assert_eq!(done.attempts, 3);
    assert_eq!(done.result, Some(json!({ "attempt": 3 })));
    assert_eq!(done.error, None, "a completed job shows no error");
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 3);
    assert!(starts[1] - starts[0] >= 100_000, "{starts:?}");
    assert!(
        starts[2] - starts[1] >= 200_000,
        "the backoff doubles: {starts:?}"
    );
}

async fn a_fatal_failure_fails_the_job_at_once(db: Db) {
    let app = bare(db).await;
    let flaky = Flaky::new(None, JobError::Fatal, Duration::ZERO);
    let starts = flaky.starts.clone();
    app.state.jobs.register(flaky);
    let id = jobs::enqueue::<Flaky>(&app.state, &Empty {}, 5)
        .await
        .unwrap();

    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 1);
    let failed = job(&app.state, &id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("flaky attempt 1"));
    assert_eq!(failed.attempts, 1);
    assert!(failed.finished_at.is_some());
    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 0);
    assert_eq!(starts.lock().unwrap().len(), 1, "never retried");
}

async fn a_job_that_keeps_failing_fails_after_its_last_attempt(db: Db) {
    let app = bare(db).await;
    let flaky = Flaky::new(None, JobError::Retryable, Duration::ZERO);
    let starts = flaky.starts.clone();
    app.state.jobs.register(flaky);
    let id = jobs::enqueue::<Flaky>(&app.state, &Empty {}, 3)
        .await
        .unwrap();

    // No backoff: one drain makes every attempt.
    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 3);
    let failed = job(&app.state, &id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.attempts, 3);
    assert_eq!(
        failed.error.as_deref(),
        Some("flaky attempt 3 (gave up after 3 attempts)")
    );
    assert_eq!(starts.lock().unwrap().len(), 3);
    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 0);
}

async fn a_job_of_an_unknown_kind_fails_with_a_clear_error(db: Db) {
    let app = bare(db).await;
    app.state.jobs.register(Sum);
    let id = jobs::enqueue::<Unregistered>(&app.state, &Empty {}, 5)
        .await
        .unwrap();

    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 1);
    let failed = job(&app.state, &id).await;
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.attempts, 1, "not retried");
    assert_eq!(
        failed.error.as_deref(),
        Some("unknown job kind \"test.unregistered\": no runner is registered for it")
    );
    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 0);
}

async fn a_cancelled_pending_job_never_runs(db: Db) {
    let app = bare(db).await;
    let counter = Counter::default();
    app.state.jobs.register(counter.clone());
    let id = jobs::enqueue::<Counter>(&app.state, &Empty {}, 5)
        .await
        .unwrap();
    let other = jobs::enqueue::<Counter>(&app.state, &Empty {}, 5)
        .await
        .unwrap();

    assert_eq!(
        jobs::cancel(&app.state, &id).await.unwrap(),
        Some(JobStatus::Cancelled)
    );
    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 1);
    let runs = counter.runs.lock().unwrap().clone();
    assert_eq!(
        runs,
        HashMap::from([(other.clone(), 1)]),
        "only the other job ran"
    );
    let cancelled = job(&app.state, &id).await;
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    assert!(cancelled.cancel_requested);
    assert_eq!(cancelled.attempts, 0);
    assert!(cancelled.finished_at.is_some());
    assert_eq!(
        jobs::cancel(&app.state, &id).await.unwrap(),
        Some(JobStatus::Cancelled)
    );
}

async fn a_running_job_sees_the_cancellation_and_ends_cancelled(db: Db) {
    let app = bare(db).await;
    let job_kind = UntilCancelled::default();
    app.state.jobs.register(job_kind.clone());
    let worker = Worker::spawn_with(app.state.clone(), "test/cancel", quick());
    let id = jobs::enqueue::<UntilCancelled>(&app.state, &Empty {}, 5)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), job_kind.started.notified())
        .await
        .expect("the job starts");
    eventually(5, "the job reports progress", async || {
        job(&app.state, &id).await.progress_done > 0
    })
    .await;
    let running = job(&app.state, &id).await;
    assert_eq!(running.status, JobStatus::Running);
    assert_eq!(running.locked_by.as_deref(), Some("test/cancel"));

    assert_eq!(
        jobs::cancel(&app.state, &id).await.unwrap(),
        Some(JobStatus::Running),
        "a running job is asked to stop"
    );
    eventually(10, "the job ends cancelled", async || {
        status_is(&app.state, &id, JobStatus::Cancelled).await
    })
    .await;
    assert!(job_kind.saw_cancel.load(Ordering::SeqCst));
    let cancelled = job(&app.state, &id).await;
    assert_eq!((cancelled.attempts, cancelled.locked_by), (1, None));
    assert!(cancelled.finished_at.is_some());
    worker.stop().await;
}

async fn two_workers_never_run_the_same_job(db: Db) {
    let app = bare(db).await;
    let counter = Counter::default();
    app.state.jobs.register(counter.clone());
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(
            jobs::enqueue::<Counter>(&app.state, &Empty {}, 1)
                .await
                .unwrap(),
        );
    }
    let workers = [
        Worker::spawn_with(app.state.clone(), "test/a", quick()),
        Worker::spawn_with(app.state.clone(), "test/b", quick()),
    ];
    eventually(30, "every job completes", async || {
        for id in &ids {
            if !status_is(&app.state, id, JobStatus::Completed).await {
                return false;
            }
        }
        true
    })
    .await;
    for w in workers {
        w.stop().await;
    }
    let runs = counter.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 50);
    assert!(
        ids.iter().all(|id| runs.get(id) == Some(&1)),
        "each job ran exactly once: {runs:?}"
    );
    assert_eq!(counter.overlaps.load(Ordering::SeqCst), 0);
    for id in &ids {
        assert_eq!(job(&app.state, id).await.attempts, 1);
    }
}

async fn a_crashed_workers_job_resumes_from_its_checkpoint_after_the_lease_runs_out(db: Db) {
    let app = bare(db).await;
    let squares = SumOfSquares::new();
    app.state.jobs.register(squares.clone());
    let payload = Squares {
        n: 10,
        hang_after: Some(5),
    };
    let id = jobs::enqueue::<SumOfSquares>(&app.state, &payload, 3)
        .await
        .unwrap();

    // The first worker does half the work, then its process "dies".
    let first = Worker::spawn_with(app.state.clone(), "test/first", quick());
    tokio::time::timeout(Duration::from_secs(10), squares.hung.notified())
        .await
        .expect("the first run gets halfway");
    first.abort();
    let orphan = job(&app.state, &id).await;
    assert_eq!(orphan.status, JobStatus::Running);
    assert_eq!(orphan.locked_by.as_deref(), Some("test/first"));
    assert_eq!(orphan.checkpoint, Some(json!({ "next": 5, "sum": 30 })));
    assert_eq!((orphan.progress_done, orphan.progress_total), (5, Some(10)));
    let lease_end = orphan.locked_until.expect("the orphan holds a lease");

    let second = Worker::spawn_with(app.state.clone(), "test/second", quick());
    eventually(10, "another worker finishes the job", async || {
        status_is(&app.state, &id, JobStatus::Completed).await
    })
    .await;
    second.stop().await;
    let done = job(&app.state, &id).await;
    assert_eq!(done.attempts, 2);
    assert_eq!(done.result, Some(json!({ "sum": 285 })));
    assert_eq!(squares.steps_of(1), [0, 1, 2, 3, 4]);
    assert_eq!(
        squares.steps_of(2),
        [5, 6, 7, 8, 9],
        "resumed from the checkpoint"
    );
    let starts = squares.starts.lock().unwrap().clone();
    assert_eq!(starts.len(), 2);
    assert!(
        starts[1].1 >= lease_end,
        "claimed again only once the lease ran out"
    );

    // A clean run of the same work gives the same result.
    let clean = jobs::enqueue::<SumOfSquares>(
        &app.state,
        &Squares {
            n: 10,
            hang_after: None,
        },
        3,
    )
    .await
    .unwrap();
    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 1);
    let clean = job(&app.state, &clean).await;
    assert_eq!((clean.status, clean.attempts), (JobStatus::Completed, 1));
    assert_eq!(clean.result, done.result);
}

async fn a_stopping_worker_hands_its_job_back_unfinished(db: Db) {
    let app = bare(db).await;
    let squares = SumOfSquares::new();
    app.state.jobs.register(squares.clone());
    let payload = Squares {
        n: 6,
        hang_after: Some(2),
    };
    let id = jobs::enqueue::<SumOfSquares>(&app.state, &payload, 1)
        .await
        .unwrap();
    let worker = Worker::spawn_with(app.state.clone(), "test/stopping", quick());
    tokio::time::timeout(Duration::from_secs(10), squares.hung.notified())
        .await
        .expect("the run gets going");

    // The job does not finish within the grace period: it is handed back.
    worker.stop().await;
    let back = job(&app.state, &id).await;
    assert_eq!(back.status, JobStatus::Pending);
    assert_eq!(back.attempts, 0, "an interrupted run is not counted");
    assert_eq!((back.locked_by, back.locked_until), (None, None));
    assert_eq!(back.checkpoint, Some(json!({ "next": 2, "sum": 1 })));

    // With a single attempt allowed, it still runs to completion from where it stopped.
    assert_eq!(jobs::run_pending_now(&app.state).await.unwrap(), 1);
    let done = job(&app.state, &id).await;
    assert_eq!((done.status, done.attempts), (JobStatus::Completed, 1));
    assert_eq!(done.result, Some(json!({ "sum": 55 })));
    assert_eq!(squares.steps.lock().unwrap().len(), 6, "no step done twice");
}

async fn ward_worker_runs_jobs_until_sigterm(db: Db) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let (url, _cleanup) = fresh_database(db);
    let store = ward::store::Store::connect(&url).await.unwrap();
    // The binary knows no test kinds: it fails this one, which shows that it claims jobs.
    let id = jobs::enqueue::<Unregistered>(&store, &Empty {}, 5)
        .await
        .unwrap();
    let data_dir =
        std::env::temp_dir().join(format!("ward_worker_{}", uuid::Uuid::new_v4().simple()));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ward"))
        .arg("worker")
        .envs(test_env(&url, &data_dir))
        .env("WARD_LOG", crate::helpers::spawned_log_level("info"))
        .stdout(std::process::Stdio::piped())
        .stderr(crate::helpers::spawned_stderr())
        .kill_on_drop(true)
        .spawn()
        .expect("the ward binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the worker starts in time")
        .unwrap();
    assert_eq!(first.as_deref(), Some("ward: 2 job workers running"));

    eventually(10, "the worker process fails the unknown job", async || {
        jobs::find(&store, &id).await.unwrap().unwrap().status == JobStatus::Failed
    })
    .await;
    let pid = child.id().expect("still running").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the worker stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

async fn a_superseded_claim_can_no_longer_write(db: Db) {
    use ward::store::{JobLease, JobOutcome};

    let (url, _cleanup) = fresh_database(db);
    let store = ward::store::Store::connect(&url).await.unwrap();
    let id = jobs::enqueue::<Counter>(&store, &Empty {}, 5)
        .await
        .unwrap();
    let t0 = now_micros();

    // Worker a claims with a one-second lease, then stalls past it; b claims the job.
    let a = store
        .jobs
        .claim_job("a", t0, t0 + 1_000_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.id.as_str(), a.status, a.attempts),
        (id.as_str(), JobStatus::Running, 1)
    );
    assert_eq!(
        store
            .jobs
            .claim_job("b", t0 + 999_999, t0 + 2_000_000)
            .await
            .unwrap(),
        None,
        "not claimable while the lease holds"
    );
    let b = store
        .jobs
        .claim_job("b", t0 + 1_000_001, t0 + 2_000_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.id.as_str(), b.attempts), (id.as_str(), 2));

    let lease_a = JobLease {
        id: id.clone(),
        worker: "a".into(),
        attempt: 1,
    };
    let lease_b = JobLease {
        id: id.clone(),
        worker: "b".into(),
        attempt: 2,
    };
    let later = t0 + 1_500_000;
    let jobs = &store.jobs;
    assert!(
        !jobs
            .update_job_lease(&lease_a, later + 1_000_000, later)
            .await
            .unwrap()
    );
    assert!(
        !jobs
            .update_job_checkpoint(&lease_a, &json!({ "stale": true }), later)
            .await
            .unwrap()
    );
    assert!(
        !jobs
            .update_job_progress(&lease_a, 9, 9, later)
            .await
            .unwrap()
    );
    assert!(
        !jobs
            .finish_job(&lease_a, &JobOutcome::Failed("stale".into()), later)
            .await
            .unwrap()
    );
    // The same worker name with an older attempt is still a different claim.
    let stale_b = JobLease {
        attempt: 1,
        ..lease_b.clone()
    };
    assert!(
        !jobs
            .update_job_checkpoint(&stale_b, &json!({ "stale": true }), later)
            .await
            .unwrap()
    );

    assert!(
        jobs.update_job_checkpoint(&lease_b, &json!({ "next": 3 }), later)
            .await
            .unwrap()
    );
    assert!(
        jobs.update_job_progress(&lease_b, 3, 9, later)
            .await
            .unwrap()
    );
    let row = jobs.find_job(&id).await.unwrap().unwrap();
    assert_eq!(row.checkpoint, Some(json!({ "next": 3 })));
    assert_eq!((row.progress_done, row.progress_total), (3, Some(9)));
    assert_eq!(row.locked_by.as_deref(), Some("b"));

    // b's worker dies too; cancelling a job whose lease ran out ends it at once.
    assert_eq!(
        jobs.cancel_job(&id, t0 + 2_000_001).await.unwrap(),
        Some(JobStatus::Cancelled)
    );
    assert!(
        !jobs
            .finish_job(&lease_b, &JobOutcome::Completed(json!(1)), later)
            .await
            .unwrap()
    );
    let row = jobs.find_job(&id).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.result, row.locked_by),
        (JobStatus::Cancelled, None, None)
    );
}
