//! Compliance endpoints: legal holds (`ManageLegalHold`), Stream's user deletion
//! (`DELETE /users/{id}`, `RunGdprErase`), which here is an erasure by crypto-shredding, and
//! retention (`ManageRetention`).
//! Callers are compliance officers with a live 2FA session or the API secret.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::admin_sso::{admin_actor, authorized};
use super::openapi::{
    AdminCallerErrors, ErrorBody, HoldList, HoldReply, RetentionReply, TaskStarted,
};
use super::{ApiJson, ApiPath, HandlerResult, Reply};
use crate::app::AppState;
use crate::gdpr::erase::{self, Mode, Options};
use crate::gdpr::hold;
use crate::gdpr::retention;
use crate::http::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/compliance/holds", get(list_holds).post(place_hold))
        .route("/compliance/holds/{id}/release", post(release_hold))
        .route("/users/{id}", delete(delete_user))
        .route("/users/delete", post(delete_users))
        .route("/tasks/{id}", get(get_task))
        .route("/export/users", post(export_users))
        .route("/exports/{task}/{file}", get(download_export))
        .route("/users/{id}/export", get(export_user_json))
        .route("/compliance/retention", get(get_retention))
        .route("/compliance/retention/run", post(run_retention))
}

/// The Ward-own operations of this module in the OpenAPI description (`super::openapi`);
/// the Stream ones (user deletion, tasks, exports) are Stream's to describe.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_holds,
    place_hold,
    release_hold,
    get_retention,
    run_retention,
    download_export
))]
pub(super) struct Doc;

#[derive(Deserialize, utoipa::ToSchema)]
struct PlaceHold {
    /// `user` or `channel`.
    scope: String,
    /// A user id, or a channel's `<type>:<id>`.
    target: String,
    /// 1 to 1000 characters.
    reason: String,
}

/// Places a legal hold: the user's or channel's messages are kept from erasure and
/// retention until it is released.
#[utoipa::path(post, path = "/compliance/holds", tag = "compliance", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    request_body = PlaceHold,
    responses((status = 201, description = "Placed", body = HoldReply),
        (status = 404, description = "No such user or channel", body = ErrorBody),
        AdminCallerErrors))]
async fn place_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiJson(body): ApiJson<PlaceHold>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "ManageLegalHold").await?;
    let h = hold::place(
        &state.gdpr(),
        &body.scope,
        &body.target,
        &body.reason,
        actor.user_id(),
    )
    .await?;
    Ok(Reply(json!({ "hold": h })))
}

#[utoipa::path(get, path = "/compliance/holds", tag = "compliance", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    params(("active" = Option<bool>, Query, description = "`true`: only holds in force")),
    responses((status = 200, description = "The holds", body = HoldList), AdminCallerErrors))]
async fn list_holds(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> HandlerResult {
    authorized(&state, &headers, &uri, "ManageLegalHold").await?;
    let active = uri.query().is_some_and(|q| q.contains("active=true"));
    Ok(Reply(
        json!({ "holds": hold::list(&state.gdpr(), active).await? }),
    ))
}

#[utoipa::path(post, path = "/compliance/holds/{id}/release", tag = "compliance", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    params(("id" = String, Path, description = "The hold")),
    responses((status = 201, description = "Released", body = HoldReply),
        (status = 404, description = "No such hold", body = ErrorBody), AdminCallerErrors))]
async fn release_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "ManageLegalHold").await?;
    Ok(Reply(
        json!({ "hold": hold::release(&state.gdpr(), &id, actor.user_id()).await? }),
    ))
}

/// Stream's `DELETE /users/{id}`: `hard_delete=true` removes the user row,
/// `mark_messages_deleted=true` keeps messages as deleted tombstones (the default removes
/// them with a hard delete, else keeps tombstones); either way their keys are shredded.
async fn delete_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "RunGdprErase").await?;
    let query = super::extract::decode_query(uri.query())?;
    let flag = |k: &str| query.get(k).is_some_and(|v| v == "true" || v == "1");
    let hard = flag("hard_delete");
    let options = Options {
        user: if hard { Mode::Hard } else { Mode::Soft },
        messages: if hard && !flag("mark_messages_deleted") {
            Mode::Hard
        } else {
            Mode::Soft
        },
    };
    let certificate = erase::erase_user(&state.gdpr(), &id, options, actor.user_id(), None).await?;
    let user = match state.store.users.find_user(&id).await? {
        Some(u) => crate::chat::view::user_json(&state.chat(), &u),
        None => json!({"id": id, "deleted_at": certificate["erased_at"]}),
    };
    if certificate.is_null() {
        return Err(ApiError::internal("erasure returned no certificate"));
    }
    Ok(Reply(json!({ "user": user, "erasure": certificate })))
}

#[derive(Deserialize)]
struct DeleteUsers {
    user_ids: Vec<String>,
    /// `soft` (default), `pruning` or `hard`.
    user: Option<String>,
    messages: Option<String>,
    /// Stream's channel deletion option: conversations are kept (their other members'
    /// messages are not the subject's to erase); only validated.
    conversations: Option<String>,
}

/// Stream's `POST /users/delete`: erasure as a task (`gdpr.erase` on the job queue).
async fn delete_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiJson(body): ApiJson<DeleteUsers>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "RunGdprErase").await?;
    if body.user_ids.is_empty() || body.user_ids.len() > 100 {
        return Err(ApiError::input("user_ids must list 1 to 100 users"));
    }
    let mode = |name: &str, v: &Option<String>| -> ApiResult<Mode> {
        match v.as_deref() {
            None => Ok(Mode::Soft),
            Some(s) => Mode::parse(s)
                .ok_or_else(|| ApiError::input(format!("{name} must be soft, pruning or hard"))),
        }
    };
    let (user, messages) = (mode("user", &body.user)?, mode("messages", &body.messages)?);
    if let Some(c) = &body.conversations
        && !matches!(c.as_str(), "soft" | "hard")
    {
        return Err(ApiError::input("conversations must be soft or hard"));
    }
    for id in &body.user_ids {
        crate::chat::validate_user_id(id)?;
    }
    let payload = erase::ErasePayload {
        user_ids: body.user_ids,
        hard_user: user == Mode::Hard,
        hard_messages: messages == Mode::Hard,
        requested_by: actor.user_id().map(str::to_string),
    };
    let task_id = crate::jobs::enqueue::<erase::EraseJob<AppState>>(&state, &payload, 5).await?;
    Ok(Reply(json!({ "task_id": task_id })))
}

/// Stream's `GET /tasks/{id}`: `pending`, `running`, `completed` or `failed` (a cancelled
/// task reads as failed), with the job's result or error.
async fn get_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = admin_actor(&state, &headers, uri.query()).await?;
    let job = crate::jobs::find(&state, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    let action = match job.kind.as_str() {
        "gdpr.erase" => "RunGdprErase",
        "gdpr.export" => "RunGdprExport",
        "users.state" => "ManageRoles",
        _ => "ManageRetention",
    };
    actor.authorize_app(&state, action)?;
    use crate::jobs::JobStatus;
    let status = match job.status {
        JobStatus::Pending => "pending",
        JobStatus::Running => "running",
        JobStatus::Completed => "completed",
        JobStatus::Failed | JobStatus::Cancelled => "failed",
    };
    let mut out = json!({
        "task_id": job.id,
        "status": status,
        "created_at": crate::time::rfc3339(job.created_at),
        "updated_at": crate::time::rfc3339(job.updated_at),
        "progress": {"done": job.progress_done, "total": job.progress_total},
    });
    if let Some(r) = job.result {
        out["result"] = r;
    }
    if let Some(e) = job.error {
        out["error"] = json!({"type": job.status.as_str(), "description": e});
    }
    Ok(Reply(out))
}

/// The retention policy in force (`policies/retention.toml` or `WARD_RETENTION_FILE`).
#[utoipa::path(get, path = "/compliance/retention", tag = "compliance", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "The policy", body = RetentionReply),
        AdminCallerErrors))]
async fn get_retention(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> HandlerResult {
    authorized(&state, &headers, &uri, "ManageRetention").await?;
    let policy = retention::Policy::load().map_err(ApiError::internal)?;
    Ok(Reply(json!({ "policy": policy.to_json() })))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RunRetention {
    #[serde(default)]
    dry_run: bool,
}

/// Starts a retention run (`gdpr.retention`) now; its report is the task's result.
#[utoipa::path(post, path = "/compliance/retention/run", tag = "compliance", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    request_body = RunRetention,
    responses((status = 201, description = "Started", body = TaskStarted), AdminCallerErrors))]
async fn run_retention(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiJson(body): ApiJson<RunRetention>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "ManageRetention").await?;
    // A broken policy file fails here, where someone sees it, not only in the task.
    retention::Policy::load().map_err(ApiError::internal)?;
    let payload = retention::RetentionPayload {
        dry_run: body.dry_run,
        requested_by: actor.user_id().map(str::to_string),
    };
    let task_id =
        crate::jobs::enqueue::<retention::RetentionJob<AppState>>(&state, &payload, 5).await?;
    Ok(Reply(json!({ "task_id": task_id })))
}

#[derive(Deserialize)]
struct ExportUsers {
    user_ids: Vec<String>,
}

/// Stream's `POST /export/users`: one signed ZIP per user (`gdpr.export` on the job queue);
/// `GET /tasks/{id}` then gives `result.url`, a signed download that expires in an hour.
async fn export_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiJson(body): ApiJson<ExportUsers>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "RunGdprExport").await?;
    if body.user_ids.is_empty() || body.user_ids.len() > 25 {
        return Err(ApiError::input("user_ids must list 1 to 25 users"));
    }
    for id in &body.user_ids {
        crate::chat::validate_user_id(id)?;
        if state.store.users.find_user(id).await?.is_none() {
            return Err(ApiError::not_found(format!("user {id} does not exist")));
        }
    }
    let payload = crate::gdpr::export::ExportPayload {
        user_ids: body.user_ids,
        requested_by: actor.user_id().map(str::to_string),
    };
    let task_id =
        crate::jobs::enqueue::<crate::gdpr::export::ExportJob<AppState>>(&state, &payload, 5)
            .await?;
    Ok(Reply(json!({ "task_id": task_id })))
}

/// A download from an export task: the URL's HMAC (API secret) and expiry are the
/// credential, as with a presigned object URL. Each download is audited.
#[utoipa::path(get, path = "/exports/{task}/{file}", tag = "compliance",
    params(("task" = String, Path), ("file" = String, Path),
        ("expires" = i64, Query, description = "Unix seconds"),
        ("signature" = String, Query, description = "The link's HMAC")),
    responses(
        (status = 200, description = "The ZIP archive", content_type = "application/zip",
            body = Vec<u8>),
        (status = 400, description = "A malformed query string", body = ErrorBody),
        (status = 403, description = "The link is not valid or has expired", body = ErrorBody),
        (status = 404, description = "The export file is gone", body = ErrorBody)))]
async fn download_export(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    ApiPath((task, file)): ApiPath<(String, String)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let query = super::extract::decode_query(uri.query())?;
    let refused = || ApiError::not_allowed("this download link is not valid or has expired");
    let expires: i64 = query
        .get("expires")
        .and_then(|e| e.parse().ok())
        .ok_or_else(refused)?;
    let given = query.get("signature").ok_or_else(refused)?;
    let expected = crate::gdpr::export::download_signature(&state.gdpr(), &task, &file, expires);
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same || expires < chrono::Utc::now().timestamp() {
        return Err(refused());
    }
    // The signature covers task and file, but never trust a path from a URL.
    let safe = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && !s.starts_with('.');
    if !(safe(&task) && safe(&file)) {
        return Err(refused());
    }
    let path = crate::gdpr::export::task_dir(&state.gdpr(), &task).join(&file);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found("the export file is gone"))?;
    state
        .audit
        .record(
            crate::audit::AuditEvent::new(crate::audit::EventType::GdprExport)
                .object("task", task.clone())
                .meta("task_id", &task)
                .meta("step", "downloaded"),
        )
        .await
        .map_err(ApiError::from)?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/zip"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// Stream's `GET /users/{id}/export`: the profile, messages and reactions as JSON (at most
/// 10,000 messages, as in Stream; larger exports go through `POST /export/users`).
async fn export_user_json(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "RunGdprExport").await?;
    let user = state
        .store
        .users
        .find_user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {id} does not exist")))?;
    let mut ids = Vec::new();
    let mut after = String::new();
    loop {
        let page = state
            .store
            .messages
            .find_message_ids_by_author(&id, &after, 1000)
            .await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        after = last;
        ids.extend(page);
        if ids.len() > 10_000 {
            return Err(ApiError::input(
                "this user has more than 10,000 messages: use POST /export/users",
            ));
        }
    }
    let messages = state.store.messages.find_messages(&ids).await?;
    let rendered = crate::chat::view::render_messages(&state.chat(), &messages, None).await?;
    let reactions: Vec<_> = state
        .store
        .messages
        .find_reactions(&ids)
        .await?
        .into_iter()
        .filter(|r| r.user_id == id)
        .map(|r| json!({"message_id": r.message_id, "type": r.kind, "score": r.score, "created_at": crate::time::rfc3339(r.created_at)}))
        .collect();
    state
        .audit
        .record(
            crate::audit::AuditEvent::new(crate::audit::EventType::GdprExport)
                .actor_opt(actor.user_id())
                .subject(id.clone())
                .object("user", id.clone())
                .meta("step", "api"),
        )
        .await
        .map_err(ApiError::from)?;
    Ok(Reply(json!({
        "user": crate::chat::view::user_json(&state.chat(), &user),
        "messages": rendered,
        "reactions": reactions,
    })))
}
