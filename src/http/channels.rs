//! `/channels…`: query, create, update, members, messages into a channel, reads, events,
//! truncation, deletion and stop-watching.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

use super::extract::named_user;
use super::{ApiJson, ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::channel::{self, QueryChannel, QueryChannels};
use crate::chat::channel_update::{self, PartialUpdateChannel, TruncateChannel, UpdateChannel};
use crate::chat::event::{self, SendEvent};
use crate::chat::message::{self, SendMessage};
use crate::chat::read::{self, MarkRead, MarkUnread};
use crate::chat::{validate_channel_id, validate_channel_type};
use crate::http::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/channels", post(query_channels))
        .route("/channels/{type}/query", post(query_distinct_channel))
        .route(
            "/channels/{type}/{id}",
            post(update_channel)
                .patch(partial_update_channel)
                .delete(delete_channel),
        )
        .route("/channels/{type}/{id}/query", post(query_channel))
        .route("/channels/{type}/{id}/message", post(send_message))
        .route("/channels/{type}/{id}/read", post(mark_read))
        .route("/channels/{type}/{id}/unread", post(mark_unread))
        .route("/channels/{type}/{id}/event", post(send_event))
        .route("/channels/{type}/{id}/stop-watching", post(stop_watching))
        .route("/channels/{type}/{id}/truncate", post(truncate_channel))
}

fn cid_of(kind: &str, id: &str) -> ApiResult<String> {
    validate_channel_type(kind)?;
    validate_channel_id(id)?;
    Ok(format!("{kind}:{id}"))
}

async fn query_channels(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<QueryChannels>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        channel::query_channels(&state.chat(), &actor, &body, auth.connection_id.as_deref())
            .await?,
    ))
}

async fn query_channel_impl(
    state: &AppState,
    auth: &Auth,
    kind: &str,
    id: Option<&str>,
    body: Value,
) -> HandlerResult {
    let named = body.get("data").and_then(Value::as_object).and_then(|d| {
        d.get("created_by_id").and_then(Value::as_str).or_else(|| {
            d.get("created_by")
                .and_then(|c| c.get("id"))
                .and_then(Value::as_str)
        })
    });
    let actor = auth.actor_for(state, named).await?;
    let req: QueryChannel = serde_json::from_value(body)
        .map_err(|e| crate::http::error::ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(
        channel::query_channel(
            &state.chat(),
            &actor,
            kind,
            id,
            &req,
            auth.connection_id.as_deref(),
        )
        .await?,
    ))
}

async fn query_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    query_channel_impl(&state, &auth, &kind, Some(&id), body).await
}

async fn query_distinct_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(kind): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    query_channel_impl(&state, &auth, &kind, None, body).await
}

async fn update_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateChannel>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let named = body
        .user_id
        .as_deref()
        .or_else(|| body.message.as_ref().and_then(named_user));
    let actor = auth.actor_for(&state, named).await?;
    Ok(Reply(
        channel_update::update_channel(&state.chat(), &actor, &cid, &body).await?,
    ))
}

async fn partial_update_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PartialUpdateChannel>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    Ok(Reply(
        channel_update::partial_update_channel(&state.chat(), &auth.actor, &cid, &body).await?,
    ))
}

async fn delete_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let hard = auth.flag("hard_delete");
    Ok(Reply(
        channel_update::delete_channel(&state.chat(), &auth.actor, &cid, hard).await?,
    ))
}

async fn send_message(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SendMessage>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let actor = auth.actor_for(&state, named_user(&body.message)).await?;
    Ok(Reply(
        message::send_message(&state.chat(), &actor, &cid, &body).await?,
    ))
}

async fn mark_read(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let named = body.as_object().and_then(named_user);
    let actor = auth.actor_for(&state, named).await?;
    let req: MarkRead = serde_json::from_value(body)
        .map_err(|e| crate::http::error::ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(
        read::mark_read(&state.chat(), &actor, &cid, &req).await?,
    ))
}

async fn mark_unread(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let named = body.as_object().and_then(named_user);
    let actor = auth.actor_for(&state, named).await?;
    let req: MarkUnread = serde_json::from_value(body)
        .map_err(|e| crate::http::error::ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(
        read::mark_unread(&state.chat(), &actor, &cid, &req).await?,
    ))
}

async fn send_event(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SendEvent>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let actor = auth.actor_for(&state, named_user(&body.event)).await?;
    Ok(Reply(
        event::send_event(&state.chat(), &actor, &cid, &body).await?,
    ))
}

async fn stop_watching(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    Ok(Reply(
        channel_update::stop_watching(
            &state.chat(),
            &auth.actor,
            &cid,
            auth.connection_id.as_deref(),
        )
        .await?,
    ))
}

async fn truncate_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<TruncateChannel>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let named = body
        .user_id
        .as_deref()
        .or_else(|| body.message.as_ref().and_then(named_user));
    let actor = auth.actor_for(&state, named).await?;
    Ok(Reply(
        channel_update::truncate_channel(&state.chat(), &actor, &cid, &body).await?,
    ))
}
