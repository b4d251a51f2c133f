//! `POST/GET/DELETE /devices` and `POST /push_preferences` (push registration storage; push
//! delivery is a later issue), and `GET /hi`, the SDK's warm-up call.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{ApiJson, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::device::{self, AddDevice};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/devices",
            get(list_devices).post(add_device).delete(remove_device),
        )
        .route("/push_preferences", post(set_push_preferences))
        .route("/hi", get(say_hi))
}

/// `client._sayHi()` warms the connection up before the WebSocket opens; Stream answers it
/// with an empty success and so does Ward (no data, no authentication, no decision).
async fn say_hi() -> Reply {
    Reply(json!({}))
}

async fn add_device(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<AddDevice>,
) -> HandlerResult {
    device::add_device(&state.chat(), state.crypto.as_deref(), &auth.actor, &body).await?;
    Ok(Reply(json!({})))
}

async fn list_devices(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let devices = device::list_devices(
        &state.chat(),
        state.crypto.as_deref(),
        &auth.actor,
        auth.query.get("user_id").map(String::as_str),
    )
    .await?;
    Ok(Reply(json!({ "devices": devices })))
}

async fn remove_device(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    device::remove_device(
        &state.chat(),
        state.crypto.as_deref(),
        &auth.actor,
        auth.query.get("id").map(String::as_str),
        auth.query.get("user_id").map(String::as_str),
    )
    .await?;
    Ok(Reply(json!({})))
}

async fn set_push_preferences(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Value>,
) -> HandlerResult {
    Ok(Reply(
        device::set_push_preferences(&state.chat(), &auth.actor, &body).await?,
    ))
}
