//! `/messages…` (get, update, partial update, delete, replies, reactions) and `/search`.

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get};
use serde_json::Value;

use super::extract::named_user;
use super::{ApiJson, ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::message::{self, PartialUpdateMessage, RepliesQuery, Search, UpdateMessage};
use crate::chat::reaction::{self, SendReaction};
use crate::http::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/messages/{id}",
            get(get_message)
                .post(update_message)
                .put(partial_update_message)
                .delete(delete_message),
        )
        .route("/messages/{id}/replies", get(get_replies))
        .route(
            "/messages/{id}/reaction",
            axum::routing::post(send_reaction),
        )
        .route("/messages/{id}/reaction/{type}", delete(delete_reaction))
        .route("/search", get(search))
}

async fn get_message(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        message::get_message(&state.chat(), &actor, &id).await?,
    ))
}

async fn update_message(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateMessage>,
) -> HandlerResult {
    let named = named_user(&body.message);
    let actor = auth.actor_for(&state, named).await?;
    Ok(Reply(
        message::update_message(&state.chat(), &actor, &id, &body).await?,
    ))
}

async fn partial_update_message(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let named = body.as_object().and_then(named_user);
    let actor = auth.actor_for(&state, named).await?;
    let req: PartialUpdateMessage = serde_json::from_value(body)
        .map_err(|e| ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(
        message::partial_update_message(&state.chat(), &actor, &id, &req).await?,
    ))
}

async fn delete_message(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let hard = auth.flag("hard");
    if auth.flag("delete_for_me") {
        return Ok(Reply(
            crate::chat::message_extra::delete_for_me(&state.chat(), &actor, &id, hard).await?,
        ));
    }
    // Uploads (issue 16): the files a deleted message carried are deleted with it.
    let attached = crate::chat::upload::attachments_of(&state.chat(), &id).await?;
    let out = message::delete_message(&state.chat(), &actor, &id, hard).await?;
    if let Some((cid, attachments)) = attached {
        crate::chat::upload::delete_attached(&state.uploads(), &actor, &cid, &attachments).await?;
    }
    Ok(Reply(out))
}

async fn get_replies(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let q: RepliesQuery = RepliesQuery {
        limit: match auth.query.get("limit") {
            Some(l) => Some(
                l.parse()
                    .map_err(|_| ApiError::input("limit must be a number"))?,
            ),
            None => None,
        },
        id_lt: auth.query.get("id_lt").cloned(),
        id_lte: auth.query.get("id_lte").cloned(),
        id_gt: auth.query.get("id_gt").cloned(),
        id_gte: auth.query.get("id_gte").cloned(),
        created_at_before: auth.query.get("created_at_before").cloned(),
        created_at_after: auth.query.get("created_at_after").cloned(),
        created_at_before_or_equal: auth.query.get("created_at_before_or_equal").cloned(),
        created_at_after_or_equal: auth.query.get("created_at_after_or_equal").cloned(),
        created_at_around: auth.query.get("created_at_around").cloned(),
        id_around: auth.query.get("id_around").cloned(),
        sort: auth.query.get("sort").cloned(),
    };
    Ok(Reply(
        message::get_replies(&state.chat(), &auth.actor, &id, &q).await?,
    ))
}

async fn send_reaction(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SendReaction>,
) -> HandlerResult {
    let named = named_user(&body.reaction);
    let actor = auth.actor_for(&state, named).await?;
    Ok(Reply(
        reaction::send_reaction(&state.chat(), &actor, &id, &body).await?,
    ))
}

async fn delete_reaction(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, kind)): ApiPath<(String, String)>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        reaction::delete_reaction(&state.chat(), &actor, &id, &kind).await?,
    ))
}

async fn search(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let q: Search = auth.payload()?;
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(message::search(&state.chat(), &actor, &q).await?))
}
