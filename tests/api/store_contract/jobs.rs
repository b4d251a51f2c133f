//! Job store: claims in due order under a lease, writes fenced by the claim, outcomes, and
//! cancellation.

use serde_json::json;
use ward::store::{JobLease, JobOutcome, JobRow, JobStatus};

use super::store;
use crate::helpers::{Db, on_both_databases};

fn job(id: &str, run_at: i64) -> JobRow {
    JobRow {
        id: id.into(),
        kind: "test.job".into(),
        payload: json!({"n": 1}),
        status: JobStatus::Pending,
        attempts: 0,
        max_attempts: 3,
        run_at,
        locked_by: None,
        locked_until: None,
        progress_done: 0,
        progress_total: None,
        result: None,
        error: None,
        checkpoint: None,
        cancel_requested: false,
        created_at: run_at,
        updated_at: run_at,
        finished_at: None,
    }
}

fn lease(job: &JobRow) -> JobLease {
    JobLease {
        id: job.id.clone(),
        worker: job.locked_by.clone().unwrap(),
        attempt: job.attempts,
    }
}

async fn jobs_are_claimed_due_first_and_writes_are_fenced_by_the_claim(db: Db) {
    let (s, _c) = store(db).await;
    let j = &s.jobs;
    j.insert_job(&job("late", 20)).await.unwrap();
    j.insert_job(&job("early", 10)).await.unwrap();
    j.insert_job(&job("future", 1000)).await.unwrap();
    assert_eq!(j.find_job("early").await.unwrap(), Some(job("early", 10)));

    let first = j.claim_job("w1", 100, 200).await.unwrap().unwrap();
    assert_eq!(first.id, "early", "the job due first");
    assert_eq!(first.status, JobStatus::Running);
    assert_eq!(
        (
            first.attempts,
            first.locked_by.as_deref(),
            first.locked_until
        ),
        (1, Some("w1"), Some(200))
    );
    assert_eq!(
        j.claim_job("w2", 100, 200).await.unwrap().unwrap().id,
        "late"
    );
    assert!(
        j.claim_job("w3", 100, 200).await.unwrap().is_none(),
        "the future job is not due"
    );

    let l1 = lease(&first);
    assert!(j.update_job_progress(&l1, 2, 5, 110).await.unwrap());
    assert!(
        j.update_job_checkpoint(&l1, &json!({"after": "m9"}), 120)
            .await
            .unwrap()
    );
    assert!(j.update_job_lease(&l1, 300, 130).await.unwrap());
    let stale = JobLease {
        attempt: 0,
        ..l1.clone()
    };
    assert!(
        !j.update_job_progress(&stale, 9, 9, 140).await.unwrap(),
        "an old attempt writes nothing"
    );

    // The lease runs out; another worker claims the job and the first one's writes stop.
    let again = j.claim_job("w9", 301, 400).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempts), ("early", 2));
    assert_eq!((again.progress_done, again.progress_total), (2, Some(5)));
    assert_eq!(again.checkpoint, Some(json!({"after": "m9"})));
    assert!(!j.update_job_lease(&l1, 500, 302).await.unwrap());
    assert!(
        !j.finish_job(&l1, &JobOutcome::Completed(json!({})), 303)
            .await
            .unwrap()
    );

    let l2 = lease(&again);
    assert!(
        j.finish_job(&l2, &JobOutcome::Completed(json!({"ok": true})), 310)
            .await
            .unwrap()
    );
    let done = j.find_job("early").await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Completed);
    assert_eq!(
        (done.result, done.finished_at, done.locked_by),
        (Some(json!({"ok": true})), Some(310), None)
    );
    assert!(
        !j.finish_job(&l2, &JobOutcome::Failed("late".into()), 320)
            .await
            .unwrap(),
        "finished once"
    );
}

async fn outcomes_retry_release_fail_and_cancel(db: Db) {
    let (s, _c) = store(db).await;
    let j = &s.jobs;
    j.insert_job(&job("a", 1)).await.unwrap();
    let claimed = j.claim_job("w", 10, 100).await.unwrap().unwrap();
    let retry = JobOutcome::Retry {
        error: "busy".into(),
        run_at: 50,
    };
    assert!(j.finish_job(&lease(&claimed), &retry, 20).await.unwrap());
    let a = j.find_job("a").await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.run_at, a.error.as_deref()),
        (JobStatus::Pending, 50, Some("busy"))
    );
    assert!(
        j.claim_job("w", 40, 100).await.unwrap().is_none(),
        "not due before the backoff"
    );

    let claimed = j.claim_job("w", 50, 100).await.unwrap().unwrap();
    assert_eq!(claimed.attempts, 2);
    assert!(
        j.finish_job(&lease(&claimed), &JobOutcome::Released, 60)
            .await
            .unwrap()
    );
    let a = j.find_job("a").await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.attempts, a.run_at),
        (JobStatus::Pending, 1, 60),
        "a release costs no attempt"
    );

    let claimed = j.claim_job("w", 60, 100).await.unwrap().unwrap();
    assert!(
        j.finish_job(&lease(&claimed), &JobOutcome::Failed("boom".into()), 70)
            .await
            .unwrap()
    );
    let a = j.find_job("a").await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.error.as_deref(), a.finished_at),
        (JobStatus::Failed, Some("boom"), Some(70))
    );
    assert_eq!(
        j.cancel_job("a", 80).await.unwrap(),
        Some(JobStatus::Failed),
        "a finished job stays"
    );

    j.insert_job(&job("pending", 1)).await.unwrap();
    assert_eq!(
        j.cancel_job("pending", 5).await.unwrap(),
        Some(JobStatus::Cancelled)
    );
    assert!(
        j.claim_job("w", 10, 100).await.unwrap().is_none(),
        "a cancelled job is never claimed"
    );
    assert_eq!(j.cancel_job("unknown", 5).await.unwrap(), None);

    // A running job is asked to stop; its retry then ends it as cancelled.
    j.insert_job(&job("running", 1)).await.unwrap();
    let claimed = j.claim_job("w", 10, 100).await.unwrap().unwrap();
    assert_eq!(
        j.cancel_job("running", 20).await.unwrap(),
        Some(JobStatus::Running)
    );
    assert!(
        j.find_job("running")
            .await
            .unwrap()
            .unwrap()
            .cancel_requested
    );
    let retry = JobOutcome::Retry {
        error: "busy".into(),
        run_at: 50,
    };
    assert!(j.finish_job(&lease(&claimed), &retry, 30).await.unwrap());
    let r = j.find_job("running").await.unwrap().unwrap();
    assert_eq!((r.status, r.finished_at), (JobStatus::Cancelled, Some(30)));
}

on_both_databases!(
    jobs_are_claimed_due_first_and_writes_are_fenced_by_the_claim,
    outcomes_retry_release_fail_and_cancel,
);
