//! `POST /guest` (the SDK's `setGuestUser`): creates a guest user and hands back a token for
//! it. Off unless the deployment enables guests (`WARD_GUEST_USERS=true`).

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Map, Value, json};

use super::{ApiJson, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::{guest, view};
use crate::http::error::ApiError;
use crate::ratelimit::{Audited, Limit, enforce_ip};

/// How long a guest token is valid (seconds): a guest session, not an account.
const GUEST_TOKEN_SECS: i64 = 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new().route("/guest", post(create_guest))
}

async fn create_guest(
    State(state): State<AppState>,
    ip: crate::ratelimit::ClientIp,
    auth: Auth,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    if !state.config.guest_users {
        // Still a decision: the policies are asked, then the deployment's setting refuses.
        let _ = auth.actor.authorize_app(&state, "CreateGuest");
        return Err(ApiError::not_allowed(
            "guest users are disabled on this server (WARD_GUEST_USERS)",
        ));
    }
    // Unauthenticated callers create users here: limited per address like connects.
    enforce_ip(
        &state,
        Limit::ConnectIp,
        ip,
        Audited::Denied {
            action: "CreateGuest",
            via: "rest",
        },
    )
    .await?;
    let user = guest::create_guest(&state.chat(), &auth.actor, body.get("user")).await?;
    let now = chrono::Utc::now().timestamp();
    let token = crate::auth::token::sign(
        &json!({"user_id": user.id, "iat": now, "exp": now + GUEST_TOKEN_SECS}),
        state.credentials.secret_bytes(),
    );
    Ok(Reply(json!({
        "access_token": token,
        "user": view::user_json(&state.chat(), &user),
    })))
}
