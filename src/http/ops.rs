//! Operations endpoints: `GET /healthz` (readiness) and `GET /usage` (the month's MAU, PCC
//! and overage; server-side callers only). `GET /metrics` has a listener of its own
//! ([`super::metrics`]).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;

use super::openapi::{ErrorBody, Health, TokenCallerErrors, UsageReply};
use super::{Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::bus::BusHealth;
use crate::http::error::{ApiError, code};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/usage", get(usage))
}

/// This module's operations in the OpenAPI description (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, usage))]
pub(super) struct Doc;

/// 200 when the node serves (`degraded` while the cross-node bus is down: local connections
/// still work); 503 while draining or when the database does not answer.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses(
    (status = 200, description = "The node serves", body = Health),
    (status = 503, description = "Draining, or the database does not answer", body = ErrorBody),
))]
async fn healthz(State(state): State<AppState>) -> HandlerResult {
    if *state.shutdown.borrow() {
        return Err(ApiError::new(
            code::INTERNAL,
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
        ));
    }
    state
        .store
        .settings
        .find_setting("api_key")
        .await
        .map_err(|_| {
            ApiError::new(
                code::INTERNAL,
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable",
            )
        })?;
    let (status, bus) = match state.bus.health() {
        BusHealth::Local => ("ok", "local"),
        BusHealth::Up => ("ok", "up"),
        BusHealth::Down => ("degraded", "down"),
    };
    Ok(Reply(json!({
        "status": status,
        "bus": bus,
        "database": state.store.dialect,
        "node": state.config.node_id,
    })))
}

/// The month's usage: monthly active users, peak concurrent connections, overage.
#[utoipa::path(get, path = "/usage", tag = "ops",
    params(("month" = Option<String>, Query, description = "YYYY-MM; the current month if absent")),
    security(("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "The usage report", body = UsageReply), TokenCallerErrors),
)]
async fn usage(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    auth.actor.authorize_app(&state, "ReadUsage")?;
    let month = match auth.query.get("month") {
        Some(m) => m.clone(),
        None => crate::usage::month_of(crate::time::now_micros()),
    };
    if crate::usage::parse_month(&month).is_none() {
        return Err(ApiError::input("month must be YYYY-MM"));
    }
    let report = crate::usage::report(&state.store, &month, state.config.plan)
        .await
        .map_err(ApiError::internal)?;
    Ok(Reply(json!({ "usage": report })))
}
