//! The `/connect` WebSocket (protocol brief §1): authentication from the query string, the
//! `health.check` handshake and heartbeat, per-connection watches through the bus
//! ([`crate::bus::Bus`], which holds this node's hub), and a clean close on shutdown or when
//! a client falls too far behind.

pub mod read_policy;
mod session;

#[doc(hidden)]
pub use session::parse_connect;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/connect", get(connect))
}

/// Upgrades first and authenticates inside the socket: the SDK expects a failed connect to
/// arrive as an `{"error": …}` frame followed by close code 1000.
async fn connect(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    ip: crate::ratelimit::ClientIp,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    // Refused before the upgrade, as an HTTP 429 with Retry-After: no socket, no task.
    if let Err(e) = limit_connect(&state, ip, query.as_deref()).await {
        return e.into_response();
    }
    // Kept for the audit record only, sealed under the user's key there.
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(256).collect::<String>());
    let max = state.config.limits.max_ws_frame_bytes;
    // A 4 KiB read buffer keeps an idle connection near 9 KiB instead of ~137 KiB
    // (fanout-baseline.md); writes are batched by the session.
    ws.read_buffer_size(4096)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| session::run(state, socket, query, user_agent))
}

/// Connects per client address, then per user: the user of a token that verifies (an
/// invalid token is refused inside the socket, and counted per address only).
async fn limit_connect(
    state: &AppState,
    ip: crate::ratelimit::ClientIp,
    raw_query: Option<&str>,
) -> Result<(), crate::http::error::ApiError> {
    use crate::ratelimit::{Audited, Limit, enforce, enforce_ip};
    let audited = || Audited::Denied {
        action: "Connect",
        via: "ws",
    };
    enforce_ip(state, Limit::ConnectIp, ip, audited()).await?;
    let user = crate::http::extract::decode_query(raw_query)
        .ok()
        .and_then(|q| q.get("authorization").cloned())
        .and_then(|t| crate::http::extract::verify_token(state, &t).ok())
        .filter(|c| !c.server)
        .and_then(|c| c.user_id);
    match user {
        Some(u) => enforce(state, Limit::ConnectUser, &u, Some(&u), audited()).await,
        None => Ok(()),
    }
}
