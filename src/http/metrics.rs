//! `GET /metrics` (Prometheus text) on a listener of its own, bound to `WARD_METRICS_BIND`
//! (off unless set): the numbers describe the deployment (connections, routes, latencies),
//! so they are not served on the API port the internet reaches. The listener serves nothing
//! else.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::bus::BusHealth;
use crate::metrics::{counter, gauge};

/// The metrics listener's router: `/metrics`, and Stream-shaped 404s for anything else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(super::not_found)
        .layer(axum::middleware::from_fn(super::headers::internal))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    let hub = state.bus.local();
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
