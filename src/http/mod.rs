//! The REST edge: one router per resource, merged here with the layers every request
//! passes (timing, body limit, CORS, security headers). Handlers stay thin: extract, resolve the actor, call
//! `chat`, reply.

mod admin_sso;
mod app_info;
mod audit;
mod auth;
mod channels;
mod compliance;
pub mod error;
pub mod extract;
mod headers;
mod members;
mod messages;
pub mod metrics;
mod openapi;
mod ops;
mod sso_oidc;
mod sso_saml;
pub mod timing;
mod users;
// Uploads (issue 16).
mod uploads;
// Threads, reads and delivery (issue 16).
mod threads;
// Messages and reactions (issue 16).
mod messages_extra;
// Issue 16 item 8 (tier 2).
mod polls;
mod tier2;
// push devices, /hi (issue 16)
mod devices;
mod guest;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use crate::app::AppState;
use crate::http::error::ApiError;

pub use extract::{ApiJson, ApiPath, Auth};

pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        // Mirrored rather than `*`: a wildcard does not cover `Authorization` (Fetch spec).
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(86400));
    let body_limit = state.config.limits.max_body_bytes;
    Router::new()
        .merge(app_info::router())
        .merge(audit::router())
        .merge(auth::router())
        .merge(admin_sso::router())
        .merge(compliance::router())
        .merge(ops::router())
        .merge(openapi::router())
        .merge(sso_oidc::router())
        .merge(sso_saml::router())
        .merge(users::router())
        .merge(channels::router())
        .merge(messages::router())
        .merge(messages_extra::router())
        .merge(polls::router())
        .merge(tier2::router())
        .merge(members::router())
        .merge(crate::ws::router())
        .merge(uploads::router())
        .merge(threads::router())
        .merge(devices::router())
        .merge(guest::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(enforce_decision))
        .layer(middleware::from_fn(extract::refuse_encoded_nul))
        .layer(middleware::from_fn(created_for_post))
        .layer(CatchPanicLayer::custom(panic_reply))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(cors)
        .layer(middleware::from_fn(timing::layer))
        .layer(middleware::from_fn_with_state(state.clone(), headers::api))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe_latency,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("this endpoint does not exist")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        crate::http::error::code::INPUT,
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}

/// A handler panic becomes a neutral Stream error; the panic payload is not echoed (it could
/// hold request data) and is logged without it.
fn panic_reply(_payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a request handler panicked").into_response()
}

/// Default deny at the edge: a request that succeeded without asking the policy engine
/// anything is turned into an error, so a handler that forgot its check fails closed (and
/// the tests see it). Only routes the table marks public are exempt.
async fn enforce_decision(req: Request, next: Next) -> Response {
    use crate::authz::{DECIDED, routes};
    let Some(route) = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
    else {
        return next.run(req).await;
    };
    let method = req.method().as_str().to_string();
    // A method the route does not serve falls through to the 405 fallback; a route missing
    // from the table still needs a decision to succeed (and fails the route-table test).
    if routes::action_for(&method, &route) == Some(routes::PUBLIC) {
        return next.run(req).await;
    }
    // `durable`: records the request handed to the audit sink (denials, server-side
    // calls) are stored before it is answered.
    let recorded = crate::audit::durable(DECIDED.scope(std::cell::Cell::new(false), async {
        let res = next.run(req).await;
        (res, DECIDED.with(|d| d.get()))
    }))
    .await;
    let (res, decided) = match recorded {
        Ok(answered) => answered,
        Err(lost) => return ApiError::from(lost).into_response(),
    };
    if res.status().is_success() && !decided {
        tracing::error!(method = %method, route = %route, "request answered without an authorization decision");
        return ApiError::internal("request answered without an authorization decision")
            .into_response();
    }
    res
}

/// Records each request's latency by method and route template.
async fn observe_latency(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    state
        .metrics
        .observe_request(&method, &route, started.elapsed().as_secs_f64());
    res
}

/// Stream answers successful POSTs with 201.
async fn created_for_post(req: Request, next: Next) -> Response {
    let is_post = req.method() == Method::POST;
    let mut res = next.run(req).await;
    if is_post && res.status() == StatusCode::OK {
        *res.status_mut() = StatusCode::CREATED;
    }
    res
}

/// A successful reply: the operation's JSON plus `duration`.
pub struct Reply(pub Value);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut v = self.0;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("duration".into(), timing::duration().into());
        }
        axum::Json(v).into_response()
    }
}

pub type HandlerResult = Result<Reply, ApiError>;
