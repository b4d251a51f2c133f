//! `GET /app`: the app settings the SDK reads; `PATCH /app`: app-wide token revocation.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{ApiJson, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::channel_type;

pub fn router() -> Router<AppState> {
    Router::new().route("/app", get(get_app).patch(update_app))
}

/// Stream's `updateAppSettings` / `revokeTokens`: only `revoke_tokens_issued_before` is
/// supported (every user token issued before it is refused and its sockets closed, on every
/// node; `null` lifts it). Server-side only.
async fn update_app(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    if auth.caller != crate::auth::Caller::Server {
        return Err(crate::http::error::ApiError::not_allowed(
            "app settings are updated server-side only: use the API secret",
        ));
    }
    if let Some(other) = body
        .keys()
        .find(|k| k.as_str() != crate::auth::APP_TOKENS_REVOKED)
    {
        return Err(crate::http::error::ApiError::input(format!(
            "app setting {other} cannot be updated on this server"
        )));
    }
    if let Some(value) = body.get(crate::auth::APP_TOKENS_REVOKED) {
        let before = crate::auth::lifecycle::parse_cutoff(value)?;
        crate::auth::lifecycle::revoke_app_tokens(&state.auth(), &auth.actor, before).await?;
    }
    Ok(Reply(json!({})))
}

async fn get_app(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    auth.actor.authorize_app(&state, "ReadAppSettings")?;
    let configs: Map<String, Value> = channel_type::ALL
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.to_json(state.config.limits.max_message_length),
            )
        })
        .collect();
    // The configured upload rules (`WARD_UPLOADS_*`); with field encryption off uploads
    // are refused, and reported as blocked (size limit 0, every MIME type blocked).
    let enabled = state.blobs.is_some();
    let upload_config = |r: &crate::config::UploadRules| {
        json!({
            "allowed_file_extensions": r.allowed_extensions,
            "blocked_file_extensions": r.blocked_extensions,
            "allowed_mime_types": r.allowed_mime_types,
            "blocked_mime_types": if enabled { json!(r.blocked_mime_types) } else { json!(["*/*"]) },
            "size_limit": if enabled { state.config.uploads.max_bytes } else { 0 },
        })
    };
    let file_upload = upload_config(&state.config.uploads.file);
    let image_upload = upload_config(&state.config.uploads.image);
    Ok(Reply(json!({
        "app": {
            "name": "ward",
            "disable_auth_checks": state.config.dev_tokens,
            "disable_permissions_checks": false,
            "multi_tenant_enabled": false,
            "channel_configs": configs,
            "file_upload_config": file_upload,
            "image_upload_config": image_upload,
            "grants": {},
            "policies": {},
        }
    })))
}
