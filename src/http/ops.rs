//! Operations endpoints: `GET /healthz` (readiness), `GET /metrics` (Prometheus text) and
//! `GET /usage` (the month's MAU, PCC and overage; server-side callers only).

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::openapi::{ErrorBody, Health, TokenCallerErrors, UsageReply};
use super::{Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::bus::BusHealth;
use crate::error::{ApiError, code};
use crate::metrics::{counter, gauge};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/usage", get(usage))
}

/// This module's operations in the OpenAPI description (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, metrics, usage))]
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

/// Prometheus metrics of this node.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain"),
))]
async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    let hub = &state.hub;
    gauge(
        &mut out,
        "ward_open_connections",
        "WebSockets open on this node.",
        hub.connection_count() as f64,
    );
    gauge(
        &mut out,
        "ward_cluster_open_connections",
        "WebSockets open on every node, as this node last heard.",
        (hub.connection_count() + hub.remote_connection_count()) as f64,
    );
    counter(
        &mut out,
        "ward_events_delivered_total",
        "Event frames queued to connections.",
        hub.delivered.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "ward_queue_drops_total",
        "Events not queued because a connection's queue was full; the connection is closed.",
        hub.dropped_slow.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "ward_slow_consumers_closed_total",
        "Connections closed for falling behind.",
        hub.slow_closed.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "ward_deliveries_refused_total",
        "Event frames not queued because the connection's user may not read the channel.",
        hub.refused.load(Ordering::Relaxed),
    );
    if let Some(gate) = hub.gate() {
        counter(
            &mut out,
            "ward_read_decision_loads_total",
            "Read decisions loaded from the database (cache misses, one per channel and batch).",
            gate.loads.load(Ordering::Relaxed),
        );
    }
    gauge(
        &mut out,
        "ward_bus_up",
        "1 when cross-node delivery works (or is not needed).",
        f64::from(state.bus.health() != BusHealth::Down),
    );
    state.metrics.render_bus(&mut out);
    state.metrics.render_http(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
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
