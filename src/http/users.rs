//! `/users` (upsert, partial update, query), deactivation, reactivation and restoring
//! (server-side only), and `/unread`.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiJson, ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::auth::Caller;
use crate::auth::lifecycle::{self, Change, UsersPayload, UsersStateJob};
use crate::chat::Actor;
use crate::chat::user::{self, PartialUpdate, QueryUsers};
use crate::http::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/users",
            get(query_users)
                .post(upsert_users)
                .patch(partial_update_users),
        )
        .route("/users/{id}/deactivate", post(deactivate_user))
        .route("/users/{id}/reactivate", post(reactivate_user))
        .route("/users/deactivate", post(deactivate_users))
        .route("/users/reactivate", post(reactivate_users))
        .route("/users/restore", post(restore_users))
        .route("/unread", get(unread_counts))
}

/// The actor of a server-side-only call (the API secret), acting for `created_by_id` if
/// named, and permitted `ManageRoles` by the policies.
async fn server_actor(state: &AppState, auth: &Auth, created_by: Option<&str>) -> ApiResult<Actor> {
    if auth.caller != Caller::Server {
        return Err(ApiError::not_allowed(
            "this endpoint is server-side only: use the API secret",
        ));
    }
    let actor = auth.actor_for(state, created_by).await?;
    actor.authorize_app(state, "ManageRoles")?;
    Ok(actor)
}

#[derive(Deserialize, Default)]
struct DeactivateBody {
    created_by_id: Option<String>,
    #[serde(default)]
    mark_messages_deleted: bool,
    #[serde(default)]
    mark_channels_deleted: bool,
    #[serde(default)]
    user_ids: Vec<String>,
}

impl DeactivateBody {
    fn check(&self) -> ApiResult<()> {
        if self.mark_messages_deleted || self.mark_channels_deleted {
            return Err(ApiError::input(
                "mark_messages_deleted and mark_channels_deleted are not supported: \
                 deactivation keeps messages and channels (erase the user to remove them)",
            ));
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
struct ReactivateBody {
    created_by_id: Option<String>,
    name: Option<String>,
    /// Nothing is deleted on deactivation, so there is nothing to restore: accepted.
    #[serde(default)]
    #[allow(dead_code)]
    restore_messages: bool,
    #[serde(default)]
    #[allow(dead_code)]
    restore_channels: bool,
    #[serde(default)]
    user_ids: Vec<String>,
}

/// Stream's `POST /users/{id}/deactivate`.
async fn deactivate_user(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DeactivateBody>,
) -> HandlerResult {
    let actor = server_actor(&state, &auth, body.created_by_id.as_deref()).await?;
    body.check()?;
    let user = lifecycle::deactivate_user(&state.auth(), &actor, &id, None).await?;
    Ok(Reply(
        serde_json::json!({ "user": crate::chat::view::user_json(&state.chat(), &user) }),
    ))
}

/// Stream's `POST /users/{id}/reactivate`.
async fn reactivate_user(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReactivateBody>,
) -> HandlerResult {
    let actor = server_actor(&state, &auth, body.created_by_id.as_deref()).await?;
    let user =
        lifecycle::reactivate_user(&state.auth(), &actor, &id, body.name.as_deref(), None).await?;
    Ok(Reply(
        serde_json::json!({ "user": crate::chat::view::user_json(&state.chat(), &user) }),
    ))
}

async fn enqueue_change(
    state: &AppState,
    actor: &Actor,
    user_ids: Vec<String>,
    change: Change,
) -> HandlerResult {
    if user_ids.is_empty() || user_ids.len() > 100 {
        return Err(ApiError::input("user_ids must list 1 to 100 users"));
    }
    for id in &user_ids {
        crate::chat::validate_user_id(id)?;
    }
    let payload = UsersPayload {
        user_ids,
        change,
        requested_by: actor.user_id().map(str::to_string),
    };
    let task_id = crate::jobs::enqueue::<UsersStateJob<AppState>>(state, &payload, 5).await?;
    Ok(Reply(serde_json::json!({ "task_id": task_id })))
}

/// Stream's `POST /users/deactivate`: a task (`GET /tasks/{id}`).
async fn deactivate_users(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<DeactivateBody>,
) -> HandlerResult {
    let actor = server_actor(&state, &auth, body.created_by_id.as_deref()).await?;
    body.check()?;
    enqueue_change(&state, &actor, body.user_ids, Change::Deactivate).await
}

/// Stream's `POST /users/reactivate`: a task (`GET /tasks/{id}`).
async fn reactivate_users(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<ReactivateBody>,
) -> HandlerResult {
    let actor = server_actor(&state, &auth, body.created_by_id.as_deref()).await?;
    enqueue_change(&state, &actor, body.user_ids, Change::Reactivate).await
}

#[derive(Deserialize)]
struct RestoreBody {
    user_ids: Vec<String>,
}

/// Stream's `POST /users/restore`: soft-deleted users come back.
async fn restore_users(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<RestoreBody>,
) -> HandlerResult {
    let actor = server_actor(&state, &auth, None).await?;
    if body.user_ids.is_empty() || body.user_ids.len() > 100 {
        return Err(ApiError::input("user_ids must list 1 to 100 users"));
    }
    lifecycle::restore_users(&state.auth(), &actor, &body.user_ids).await?;
    Ok(Reply(serde_json::json!({})))
}

#[derive(Deserialize)]
struct UpsertUsers {
    users: Map<String, Value>,
}

async fn upsert_users(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<UpsertUsers>,
) -> HandlerResult {
    Ok(Reply(
        user::upsert_users(&state.chat(), &auth.actor, &body.users).await?,
    ))
}

#[derive(Deserialize)]
struct PartialUpdates {
    users: Vec<PartialUpdate>,
}

async fn partial_update_users(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<PartialUpdates>,
) -> HandlerResult {
    let chat = state.chat();
    user::check_partial_update_batch(&body.users)?;
    let mut out = Map::new();
    for update in &body.users {
        let prepared = user::prepare_partial_update(&chat, &auth.actor, update).await?;
        // Chat knows no tokens: a `revoke_tokens_issued_before` in the update is applied
        // here, before the user is stored (a refused revocation stores nothing).
        if let Some(before) = prepared.revocation {
            lifecycle::revoke_user_tokens(&state.auth(), &auth.actor, prepared.user_id(), before)
                .await?;
        }
        let (id, rendered) = user::finish_partial_update(&chat, &auth.actor, prepared).await?;
        out.insert(id, rendered);
    }
    Ok(Reply(json!({ "users": out })))
}

async fn query_users(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let q: QueryUsers = auth.payload()?;
    Ok(Reply(
        user::query_users(
            &state.chat(),
            &auth.actor,
            &q,
            auth.connection_id.as_deref(),
        )
        .await?,
    ))
}

async fn unread_counts(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        crate::chat::read::unread_counts(&state.chat(), &actor).await?,
    ))
}
