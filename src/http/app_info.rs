//! `GET /app`: the app settings the SDK reads.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::channel_type;

pub fn router() -> Router<AppState> {
    Router::new().route("/app", get(get_app))
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
    // Uploads are not offered yet: every extension is blocked and the size limit is zero.
    let upload = json!({
        "allowed_file_extensions": [], "blocked_file_extensions": [], "allowed_mime_types": [],
        "blocked_mime_types": [], "size_limit": 0,
    });
    Ok(Reply(json!({
        "app": {
            "name": "ward",
            "disable_auth_checks": state.config.dev_tokens,
            "disable_permissions_checks": false,
            "multi_tenant_enabled": false,
            "channel_configs": configs,
            "file_upload_config": upload,
            "image_upload_config": upload,
            "grants": {},
            "policies": {},
        }
    })))
}
