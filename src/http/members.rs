//! Members and membership: `GET /members` (queryMembers), the member's own state
//! (`PATCH /channels/{type}/{id}/member[/{user_id}]`), hide/show, and deleting several
//! channels (`POST /channels/delete`). The operations are in `chat::member*`,
//! `chat::channel_delete`.

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, patch, post};
use serde::Deserialize;

use super::{ApiJson, ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::auth::Caller;
use crate::chat::Actor;
use crate::chat::channel_delete::{self, DeleteChannels};
use crate::chat::member::{self, HideChannel, PartialUpdateMember};
use crate::chat::member_query::{self, QueryMembers};
use crate::chat::{validate_channel_id, validate_channel_type};
use crate::http::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/members", get(query_members))
        .route("/channels/delete", post(delete_channels))
        .route("/channels/{type}/{id}/member", patch(update_own_member))
        .route(
            "/channels/{type}/{id}/member/{user_id}",
            patch(update_member),
        )
        .route("/channels/{type}/{id}/hide", post(hide_channel))
        .route("/channels/{type}/{id}/show", post(show_channel))
}

/// Server side: acting for the member named; a user acts as themselves (changing someone
/// else's membership is then a moderator's decision, `UpdateChannelMembers`).
async fn member_actor(state: &AppState, auth: &Auth, named: Option<&str>) -> ApiResult<Actor> {
    if auth.caller == Caller::Server {
        auth.actor_for(state, named).await
    } else {
        Ok(auth.actor.clone())
    }
}

fn cid_of(kind: &str, id: &str) -> ApiResult<String> {
    validate_channel_type(kind)?;
    validate_channel_id(id)?;
    Ok(format!("{kind}:{id}"))
}

async fn query_members(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let q: QueryMembers = auth.payload()?;
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        member_query::query_members(&state.chat(), &actor, &q).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
struct MemberQuery {
    user_id: Option<String>,
}

/// `updateMemberPartial`: the caller's own membership, or `?user_id=` (server side, or
/// moderators for someone else).
async fn update_own_member(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    Query(q): Query<MemberQuery>,
    ApiJson(body): ApiJson<PartialUpdateMember>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let actor = member_actor(&state, &auth, q.user_id.as_deref()).await?;
    Ok(Reply(
        member::partial_update_member(&state.chat(), &actor, &cid, q.user_id.as_deref(), &body)
            .await?,
    ))
}

/// `partialUpdateMember(user_id)`, which `channel.pin/unpin/archive/unarchive` call.
async fn update_member(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id, user_id)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<PartialUpdateMember>,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let actor = member_actor(&state, &auth, Some(&user_id)).await?;
    Ok(Reply(
        member::partial_update_member(&state.chat(), &actor, &cid, Some(&user_id), &body).await?,
    ))
}

async fn set_hidden(
    state: AppState,
    auth: Auth,
    kind: String,
    id: String,
    body: HideChannel,
    hidden: bool,
) -> HandlerResult {
    let cid = cid_of(&kind, &id)?;
    let actor = auth.actor_for(&state, body.user_id.as_deref()).await?;
    Ok(Reply(
        member::set_hidden(&state.chat(), &actor, &cid, &body, hidden).await?,
    ))
}

async fn hide_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<HideChannel>,
) -> HandlerResult {
    set_hidden(state, auth, kind, id, body, true).await
}

async fn show_channel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<HideChannel>,
) -> HandlerResult {
    set_hidden(state, auth, kind, id, body, false).await
}

async fn delete_channels(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<DeleteChannels>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        channel_delete::delete_channels(&state.chat(), &actor, &body).await?,
    ))
}
