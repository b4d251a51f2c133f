//! `/threads…` (query, get, partial update) and the many-channel read and delivery marks
//! (`POST /channels/read`, `POST /channels/delivered`).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::extract::named_user;
use super::{ApiJson, ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::delivery::{self, MarkChannelsRead, MarkDelivered};
use crate::chat::thread::{self, GetThread, QueryThreads, UpdateThread};
use crate::http::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/threads", post(query_threads))
        .route("/threads/{id}", get(get_thread).patch(update_thread))
        .route("/channels/read", post(mark_channels_read))
        .route("/channels/delivered", post(mark_delivered))
}

/// The body as `T`, and the user it names (server-side calls act for it).
fn body_of<T: DeserializeOwned>(body: Value) -> Result<(T, Option<String>), ApiError> {
    let named = body.as_object().and_then(named_user).map(String::from);
    let parsed = serde_json::from_value(body)
        .map_err(|e| ApiError::input(format!("invalid request body: {e}")))?;
    Ok((parsed, named))
}

fn number(auth: &Auth, name: &str) -> Result<Option<i64>, ApiError> {
    auth.query
        .get(name)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::input(format!("{name} must be a number")))
        })
        .transpose()
}

async fn query_threads(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let (q, named): (QueryThreads, _) = body_of(body)?;
    let actor = auth
        .actor_for(&state, named.as_deref().or(auth.query_user()))
        .await?;
    Ok(Reply(
        thread::query_threads(&state.chat(), &actor, &q, auth.connection_id.as_deref()).await?,
    ))
}

async fn get_thread(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let q = GetThread {
        participant_limit: number(&auth, "participant_limit")?,
        reply_limit: number(&auth, "reply_limit")?,
        member_limit: number(&auth, "member_limit")?,
        watch: auth.flag("watch"),
    };
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        thread::get_thread(
            &state.chat(),
            &actor,
            &id,
            &q,
            auth.connection_id.as_deref(),
        )
        .await?,
    ))
}

async fn update_thread(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let (req, named): (UpdateThread, _) = body_of(body)?;
    let actor = auth
        .actor_for(&state, named.as_deref().or(auth.query_user()))
        .await?;
    Ok(Reply(
        thread::update_thread(&state.chat(), &actor, &id, &req).await?,
    ))
}

async fn mark_channels_read(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let (req, named): (MarkChannelsRead, _) = body_of(body)?;
    let actor = auth.actor_for(&state, named.as_deref()).await?;
    Ok(Reply(
        delivery::mark_channels_read(&state.chat(), &actor, &req).await?,
    ))
}

async fn mark_delivered(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    let (req, named): (MarkDelivered, _) = body_of(body)?;
    let actor = auth.actor_for(&state, named.as_deref()).await?;
    Ok(Reply(
        delivery::mark_delivered(&state.chat(), &actor, &req).await?,
    ))
}
