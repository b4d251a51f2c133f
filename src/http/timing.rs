//! Request timing: every Stream reply, success or error, carries `"duration": "<n.nn>ms"`.
//! The start instant is a task-local set by [`layer`] around each request.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static STARTED: Instant;
}

pub async fn layer(req: Request, next: Next) -> Response {
    STARTED.scope(Instant::now(), next.run(req)).await
}

/// Time since the current request started, formatted as Stream does ("0.00ms" outside a
/// request, for example in WebSocket frames).
pub fn duration() -> String {
    let ms = STARTED
        .try_with(|t| t.elapsed().as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    format!("{ms:.2}ms")
}
