//! The export as a task (`gdpr.export`, Stream's `POST /export/users`) and the signed,
//! expiring download URLs of its archives.

use std::path::PathBuf;

use super::{ExportRequest, export};
use crate::gdpr::Ctx;

/// `gdpr.export`: Stream's `POST /export/users` as a task. Each user's archive is written
/// to `<data dir>/exports/<task id>/<user id>.zip` (checkpoint: users done, so a resumed
/// run skips finished archives); the result lists signed, expiring download URLs.
pub struct ExportJob<H> {
    /// How a refused export is described in the task's error.
    pub answer: crate::gdpr::Answer,
    host: std::marker::PhantomData<fn() -> H>,
}

impl<H> ExportJob<H> {
    pub fn new(answer: crate::gdpr::Answer) -> Self {
        Self {
            answer,
            host: std::marker::PhantomData,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExportPayload {
    pub user_ids: Vec<String>,
    pub requested_by: Option<String>,
}

/// How long a download URL works.
pub const DOWNLOAD_SECS: i64 = 3600;

/// The signature of a download URL: HMAC-SHA256 under the API secret of the task, file and
/// expiry.
pub fn download_signature(state: &Ctx<'_>, task: &str, file: &str, expires: i64) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(state.api_secret)
        .expect("HMAC takes any key length");
    mac.update(format!("ward-export-download/v1\n{task}\n{file}\n{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn download_url(state: &Ctx<'_>, task: &str, file: &str) -> String {
    let expires = chrono::Utc::now().timestamp() + DOWNLOAD_SECS;
    format!(
        "{}/exports/{task}/{file}?expires={expires}&signature={}",
        state.public_url,
        download_signature(state, task, file, expires)
    )
}

/// Where a task's archives live.
pub fn task_dir(state: &Ctx<'_>, task: &str) -> PathBuf {
    state.data_dir.join("exports").join(task)
}

impl<H: crate::gdpr::Host> crate::jobs::Job for ExportJob<H> {
    const KIND: &'static str = "gdpr.export";
    type Payload = ExportPayload;

    async fn run(
        &self,
        ctx: &mut crate::jobs::JobContext<ExportPayload>,
    ) -> std::result::Result<serde_json::Value, crate::jobs::JobError> {
        use crate::jobs::JobError;
        let p = ctx.payload().clone();
        let task = ctx.id().to_string();
        let host: H = ctx.host()?;
        let state = host.gdpr();
        let dir = task_dir(&state, &task);
        crate::fsx::create_private_dir(&dir).map_err(|e| JobError::Retryable(e.to_string()))?;
        let start: usize = ctx.checkpoint::<usize>()?.unwrap_or(0);
        let total = p.user_ids.len() as i64;
        for (i, user_id) in p.user_ids.iter().enumerate().skip(start) {
            if ctx.cancelled().await? {
                return Err(JobError::Cancelled);
            }
            let request = ExportRequest {
                user_id: user_id.clone(),
                actor: p.requested_by.clone(),
                task_id: Some(task.clone()),
            };
            let mut quiet = |_: u64, _: u64| {};
            match export(
                &state,
                &request,
                &dir.join(format!("{user_id}.zip")),
                &mut quiet,
            )
            .await
            {
                Ok(_) => {}
                Err(e) => return Err(JobError::of_step((self.answer)(e), i + 1, "exported")),
            }
            ctx.save_checkpoint(&(i + 1)).await?;
            ctx.progress(i as i64 + 1, total).await?;
        }
        let files: Vec<serde_json::Value> = p
            .user_ids
            .iter()
            .map(|id| {
                let file = format!("{id}.zip");
                serde_json::json!({"user_id": id, "url": download_url(&state, &task, &file)})
            })
            .collect();
        let url = files
            .first()
            .and_then(|f| f["url"].as_str())
            .unwrap_or_default()
            .to_string();
        Ok(serde_json::json!({
            "url": url,
            "files": files,
            "verifier_key": state.audit.verifier_key,
        }))
    }
}
