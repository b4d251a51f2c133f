//! `/polls…` and the votes under `/messages/{id}/polls/{poll_id}` (issue 16 item 8).

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get, post};
use serde_json::{Map, Value};

use super::extract::named_user;
use super::{ApiJson, ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::poll::{self, CastVote, QueryPage};
use crate::http::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/polls", post(create_poll).put(update_poll))
        .route("/polls/query", post(query_polls))
        .route(
            "/polls/{id}",
            get(get_poll).patch(partial_update_poll).delete(delete_poll),
        )
        .route(
            "/polls/{id}/options",
            post(create_option).put(update_option),
        )
        .route(
            "/polls/{id}/options/{option_id}",
            get(get_option).delete(delete_option),
        )
        .route("/polls/{id}/votes", post(query_votes))
        .route("/messages/{id}/polls/{poll_id}/vote", post(cast_vote))
        .route(
            "/messages/{id}/polls/{poll_id}/vote/{vote_id}",
            delete(remove_vote),
        )
}

async fn create_poll(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    Ok(Reply(
        poll::create_poll(&state.chat(), &actor, &body).await?,
    ))
}

async fn update_poll(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    Ok(Reply(
        poll::update_poll(&state.chat(), &actor, &body).await?,
    ))
}

async fn query_polls(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let q: QueryPage = serde_json::from_value(body)
        .map_err(|e| ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(poll::query_polls(&state.chat(), &actor, &q).await?))
}

async fn get_poll(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(poll::get_poll(&state.chat(), &actor, &id).await?))
}

async fn partial_update_poll(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    Ok(Reply(
        poll::partial_update_poll(&state.chat(), &actor, &id, &body).await?,
    ))
}

async fn delete_poll(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(poll::delete_poll(&state.chat(), &actor, &id).await?))
}

async fn create_option(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    Ok(Reply(
        poll::upsert_option(&state.chat(), &actor, &id, &body, true).await?,
    ))
}

async fn update_option(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    Ok(Reply(
        poll::upsert_option(&state.chat(), &actor, &id, &body, false).await?,
    ))
}

async fn get_option(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, option_id)): ApiPath<(String, String)>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        poll::get_option(&state.chat(), &actor, &id, &option_id).await?,
    ))
}

async fn delete_option(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, option_id)): ApiPath<(String, String)>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        poll::delete_option(&state.chat(), &actor, &id, &option_id).await?,
    ))
}

async fn query_votes(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let q: QueryPage = serde_json::from_value(body)
        .map_err(|e| ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(
        poll::query_votes(&state.chat(), &actor, &id, &q).await?,
    ))
}

async fn cast_vote(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, poll_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    let vote: CastVote = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::input(format!("invalid request body: {e}")))?;
    Ok(Reply(
        poll::cast_vote(&state.chat(), &actor, &id, &poll_id, &vote).await?,
    ))
}

async fn remove_vote(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, poll_id, vote_id)): ApiPath<(String, String, String)>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        poll::remove_vote(&state.chat(), &actor, &id, &poll_id, &vote_id).await?,
    ))
}
