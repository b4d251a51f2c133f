//! A worker that dies in the middle of an erasure or an export (its task dropped mid-run,
//! as a SIGKILL would leave it) is replaced by another, which resumes from the job's
//! checkpoint and finishes with the result a clean run gives: every user erased (or
//! exported, each archive verifying), and the audit log still verifying.

use std::time::Duration;

use ward::app::{AppState, Application};
use ward::config::Config;
use ward::jobs::{self, JobStatus, Worker, WorkerConfig};

use crate::helpers::{Cleanup, Db, KEY, SECRET, eventually, fresh_database, on_both_databases};

on_both_databases!(
    an_erasure_whose_worker_dies_resumes_and_finishes,
    an_export_whose_worker_dies_resumes_and_finishes,
);

fn quick() -> WorkerConfig {
    WorkerConfig {
        lease: Duration::from_millis(600),
        poll_interval: Duration::from_millis(10),
        stop_grace: Duration::from_millis(50),
    }
}

/// The application state without a server, so no worker runs but the test's own.
async fn bare(db: Db) -> (AppState, Cleanup, std::path::PathBuf) {
    let (url, cleanup) = fresh_database(db);
    let dir = std::env::temp_dir().join(format!("ward_resume_{}", uuid::Uuid::new_v4().simple()));
    let env = [
        ("WARD_BIND", "127.0.0.1:0".to_string()),
        ("WARD_DATA_DIR", dir.display().to_string()),
        ("WARD_DATABASE_URL", url),
        ("WARD_API_KEY", KEY.to_string()),
        ("WARD_API_SECRET", SECRET.to_string()),
    ];
    let config = Config::from_sources(None, |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    crate::helpers::install_server_logs();
    let app = Application::build(config).await.unwrap();
    (app.state(), cleanup, dir)
}

async fn seed_users(state: &AppState, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("subject-{i:02}");
        let mut user = ward::chat::user::new_user(&id, ward::time::now_micros());
        user.data.insert(
            "name".into(),
            serde_json::Value::String(format!("Person {i}")),
        );
        state.store.users.upsert_user(&user, &[]).await.unwrap();
        ids.push(id);
    }
    ids
}

/// Runs `task` on a worker that is killed once `done` items are reported, then on a
/// second worker to the end.
async fn crash_then_finish(state: &AppState, task: &str, done: i64) -> jobs::JobRow {
    let first = Worker::spawn_with(state.clone(), "doomed", quick());
    eventually(30, "the first worker is part-way", async || {
        jobs::find(state, task)
            .await
            .unwrap()
            .unwrap()
            .progress_done
            >= done
    })
    .await;
    first.abort();
    let row = jobs::find(state, task).await.unwrap().unwrap();
    assert_eq!(row.status, JobStatus::Running, "killed mid-run");
    let second = Worker::spawn_with(state.clone(), "rescuer", quick());
    eventually(60, "the second worker finishes the task", async || {
        jobs::find(state, task).await.unwrap().unwrap().status == JobStatus::Completed
    })
    .await;
    second.stop().await;
    jobs::find(state, task).await.unwrap().unwrap()
}

async fn audit_verifies(state: &AppState) {
    let size = state.audit.sync().await.unwrap();
    let bundle = ward::audit::tree::export_bundle(
        state.store.audit.as_ref(),
        &state.audit.origin,
        0,
        size,
        None,
    )
    .await
    .unwrap();
    let v = ward_audit::note::Verifier::parse(&state.audit.verifier_key).unwrap();
    ward_audit::bundle::verify(&bundle, &v, None).expect("the audit log verifies");
}

async fn an_erasure_whose_worker_dies_resumes_and_finishes(db: Db) {
    let (state, _cleanup, dir) = bare(db).await;
    let ids = seed_users(&state, 12).await;
    let payload = ward::gdpr::erase::ErasePayload {
        user_ids: ids.clone(),
        hard_user: true,
        hard_messages: true,
        requested_by: None,
    };
    let task =
        jobs::enqueue::<ward::gdpr::erase::EraseJob<ward::app::AppState>>(&state, &payload, 5)
            .await
            .unwrap();
    let row = crash_then_finish(&state, &task, 3).await;
    assert_eq!(row.result.unwrap()["deleted_users"], 12);
    assert!(row.attempts >= 2, "a second attempt finished it");
    for id in &ids {
        assert!(
            state.store.users.find_user(id).await.unwrap().is_none(),
            "{id} erased"
        );
    }
    audit_verifies(&state).await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn an_export_whose_worker_dies_resumes_and_finishes(db: Db) {
    let (state, _cleanup, dir) = bare(db).await;
    let ids = seed_users(&state, 8).await;
    let payload = ward::gdpr::export::ExportPayload {
        user_ids: ids.clone(),
        requested_by: None,
    };
    let task =
        jobs::enqueue::<ward::gdpr::export::ExportJob<ward::app::AppState>>(&state, &payload, 5)
            .await
            .unwrap();
    let row = crash_then_finish(&state, &task, 2).await;
    let result = row.result.unwrap();
    assert_eq!(result["files"].as_array().unwrap().len(), 8);
    let folder = ward::gdpr::export::task_dir(&state.gdpr(), &task);
    for id in &ids {
        let manifest = ward::gdpr::export::verify_export(
            &folder.join(format!("{id}.zip")),
            &state.audit.verifier_key,
        )
        .expect("each archive verifies");
        assert_eq!(manifest.user_id, *id);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".zip"))
        .collect();
    assert!(leftovers.is_empty(), "no partial files are left behind");
    audit_verifies(&state).await;
    let _ = std::fs::remove_dir_all(dir);
}
