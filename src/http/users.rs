//! `/users` (upsert, partial update, query) and `/unread`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ApiJson, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::user::{self, PartialUpdate, QueryUsers};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/users",
            get(query_users)
                .post(upsert_users)
                .patch(partial_update_users),
        )
        .route("/unread", get(unread_counts))
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
        user::upsert_users(&state, &auth.actor, &body.users).await?,
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
    Ok(Reply(
        user::partial_update_users(&state, &auth.actor, &body.users).await?,
    ))
}

async fn query_users(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let q: QueryUsers = auth.payload()?;
    Ok(Reply(
        user::query_users(&state, &auth.actor, &q, auth.connection_id.as_deref()).await?,
    ))
}

async fn unread_counts(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        crate::chat::read::unread_counts(&state, &actor).await?,
    ))
}
