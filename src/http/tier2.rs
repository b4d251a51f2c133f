//! Drafts (`/channels/{type}/{id}/draft`, `/drafts/query`) and message reminders
//! (`/messages/{id}/reminders`, `/reminders/query`), user groups (`/usergroups…`) and
//! `/sync`: issue 16 item 8.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde_json::{Map, Value};

use super::extract::named_user;
use super::{ApiJson, ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::draft::{self, CreateDraft};
use crate::chat::listing::QueryPage;
use crate::chat::reminder::{self, ReminderBody};
use crate::chat::sync::SyncRequest;
use crate::chat::usergroup::{self, GroupBody, GroupListing};
use crate::http::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{type}/{id}/draft",
            post(create_draft).get(get_draft).delete(delete_draft),
        )
        .route("/drafts/query", post(query_drafts))
        .route(
            "/messages/{id}/reminders",
            post(create_reminder)
                .patch(update_reminder)
                .delete(delete_reminder),
        )
        .route("/reminders/query", post(query_reminders))
        .route("/usergroups", get(list_groups).post(create_group))
        .route("/usergroups/search", get(search_groups))
        .route(
            "/usergroups/{id}",
            get(get_group).put(update_group).delete(delete_group),
        )
        .route("/usergroups/{id}/members", post(add_members))
        .route("/usergroups/{id}/members/delete", post(remove_members))
        .route("/sync", post(sync))
}

fn listing(auth: &Auth) -> Result<GroupListing, ApiError> {
    let q = &auth.query;
    Ok(GroupListing {
        query: q.get("query").cloned(),
        limit: match q.get("limit") {
            Some(l) => Some(
                l.parse()
                    .map_err(|_| ApiError::input("limit must be a number"))?,
            ),
            None => None,
        },
        id_gt: q.get("id_gt").cloned(),
        name_gt: q.get("name_gt").cloned(),
        created_at_gt: q.get("created_at_gt").cloned(),
        team_id: q.get("team_id").cloned(),
    })
}

fn parse<T: serde::de::DeserializeOwned>(body: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::input(format!("invalid request body: {e}")))
}

async fn create_draft(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let named = named_user(&body).or_else(|| {
        body.get("message")
            .and_then(Value::as_object)
            .and_then(named_user)
    });
    let actor = auth.actor_for(&state, named).await?;
    let req: CreateDraft = parse(body)?;
    let cid = format!("{kind}:{id}");
    Ok(Reply(
        draft::create_draft(&state.chat(), &actor, &cid, &req).await?,
    ))
}

async fn get_draft(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let parent = auth.query.get("parent_id").map(String::as_str);
    let cid = format!("{kind}:{id}");
    Ok(Reply(
        draft::get_draft(&state.chat(), &actor, &cid, parent).await?,
    ))
}

async fn delete_draft(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let parent = auth.query.get("parent_id").map(String::as_str);
    let cid = format!("{kind}:{id}");
    Ok(Reply(
        draft::delete_draft(&state.chat(), &actor, &cid, parent).await?,
    ))
}

async fn query_drafts(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    let q: QueryPage = parse(body)?;
    Ok(Reply(draft::query_drafts(&state.chat(), &actor, &q).await?))
}

async fn create_reminder(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    let req: ReminderBody = parse(body)?;
    Ok(Reply(
        reminder::create_reminder(&state.chat(), &actor, &id, &req).await?,
    ))
}

async fn update_reminder(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    let req: ReminderBody = parse(body)?;
    Ok(Reply(
        reminder::update_reminder(&state.chat(), &actor, &id, &req).await?,
    ))
}

async fn delete_reminder(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        reminder::delete_reminder(&state.chat(), &actor, &id).await?,
    ))
}

async fn query_reminders(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    let q: QueryPage = parse(body)?;
    Ok(Reply(
        reminder::query_reminders(&state.chat(), &actor, &q).await?,
    ))
}

async fn list_groups(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let q = listing(&auth)?;
    Ok(Reply(
        usergroup::list_groups(&state.chat(), &actor, &q, false).await?,
    ))
}

async fn search_groups(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let q = listing(&auth)?;
    Ok(Reply(
        usergroup::list_groups(&state.chat(), &actor, &q, true).await?,
    ))
}

async fn create_group(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let req: GroupBody = parse(body)?;
    Ok(Reply(
        usergroup::create_group(&state.chat(), &actor, &req).await?,
    ))
}

async fn get_group(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        usergroup::get_group(&state.chat(), &actor, &id).await?,
    ))
}

async fn update_group(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let req: GroupBody = parse(body)?;
    Ok(Reply(
        usergroup::update_group(&state.chat(), &actor, &id, &req).await?,
    ))
}

async fn delete_group(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    Ok(Reply(
        usergroup::delete_group(&state.chat(), &actor, &id).await?,
    ))
}

async fn add_members(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let req: GroupBody = parse(body)?;
    Ok(Reply(
        usergroup::change_members(&state.chat(), &actor, &id, &req, true).await?,
    ))
}

async fn remove_members(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, auth.query_user()).await?;
    let req: GroupBody = parse(body)?;
    Ok(Reply(
        usergroup::change_members(&state.chat(), &actor, &id, &req, false).await?,
    ))
}

async fn sync(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> HandlerResult {
    let actor = auth.actor_for(&state, named_user(&body)).await?;
    let req: SyncRequest = parse(body)?;
    Ok(Reply(
        crate::chat::sync::sync(&state.chat(), &actor, &req).await?,
    ))
}
