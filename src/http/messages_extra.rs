//! Messages and reactions beyond send and edit (issue 16, items 5 and 6): who reacted,
//! pinned messages, messages by id, message actions and link previews (`/og`). `delete_for_me` goes through
//! `DELETE /messages/{id}` in `messages.rs`.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::Value;

use super::extract::named_user;
use super::{ApiJson, ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::message_extra::{self, MessageAction};
use crate::chat::pin::{self, PinnedQuery};
use crate::chat::reaction_query::{self, QueryReactions};
use crate::chat::{validate_channel_id, validate_channel_type};
use crate::http::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/messages/{id}/reactions",
            get(get_reactions).post(query_reactions),
        )
        .route("/messages/{id}/action", post(send_action))
        .route(
            "/channels/{type}/{id}/pinned_messages",
            get(pinned_messages),
        )
        .route("/channels/{type}/{id}/messages", get(messages_by_id))
        .route("/og", get(enrich_url))
}

fn cid_of(kind: &str, id: &str) -> ApiResult<String> {
    validate_channel_type(kind)?;
    validate_channel_id(id)?;
    Ok(format!("{kind}:{id}"))
}

fn number(auth: &Auth, name: &str) -> ApiResult<Option<i64>> {
    auth.query
        .get(name)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::input(format!("{name} must be a number")))
        })
        .transpose()
}

async fn get_reactions(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let (limit, offset) = (number(&auth, "limit")?, number(&auth, "offset")?);
    Ok(Reply(
        reaction_query::get_reactions(&state.chat(), &actor, &id, limit, offset).await?,
    ))
}

async fn query_reactions(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let named = body.as_object().and_then(named_user);
    let actor = auth.actor_for(&state, named).await?;
    let req: QueryReactions = serde_json::from_value(body)
        .map_err(|e| ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(
        reaction_query::query_reactions(&state.chat(), &actor, &id, &req).await?,
    ))
}

async fn send_action(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let named = body.as_object().and_then(named_user);
    let actor = auth.actor_for(&state, named).await?;
    let req: MessageAction = serde_json::from_value(body)
        .map_err(|e| ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(
        message_extra::send_action(&state.chat(), &actor, &id, &req).await?,
    ))
}

async fn pinned_messages(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let q: PinnedQuery = auth.payload()?;
    let named = q.user_id.as_deref().or(auth.query_user());
    let actor = auth.actor_for(&state, named).await?;
    Ok(Reply(
        pin::pinned_messages(&state.chat(), &actor, &cid, &q).await?,
    ))
}

async fn messages_by_id(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let ids = auth
        .query
        .get("ids")
        .cloned()
        .ok_or_else(|| ApiError::input("ids is required"))?;
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        message_extra::messages_by_id(&state.chat(), &actor, &cid, &ids).await?,
    ))
}

async fn enrich_url(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let url = auth
        .query
        .get("url")
        .cloned()
        .ok_or_else(|| ApiError::input("url is required"))?;
    let settings = state.config.url_enrichment;
    Ok(Reply(
        crate::chat::og::enrich_url(&state.chat(), &auth.actor, settings, &url).await?,
    ))
}
