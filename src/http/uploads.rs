//! Uploads: `POST/DELETE /channels/{type}/{id}/file|image`, `POST/DELETE
//! /uploads/file|image` (multipart as the SDK's `sendFile` sends it: a `file` part and an
//! optional `user` JSON part), and `GET /uploads/blob/{id}[/{name}]`, where the files are
//! served back through a signed link or an authenticated request (`chat::upload`).

use axum::Router;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{ApiPath, Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::chat::upload::{self, Fetcher, Kind, Part, link};
use crate::http::error::{ApiError, code};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/channels/{type}/{id}/file",
            post(upload_channel_file).delete(delete_channel_file),
        )
        .route(
            "/channels/{type}/{id}/image",
            post(upload_channel_image).delete(delete_channel_image),
        )
        .route("/uploads/file", post(upload_file).delete(delete_file))
        .route("/uploads/image", post(upload_image).delete(delete_image))
        // The multipart reader counts the bytes itself against `WARD_UPLOADS_MAX_BYTES`.
        .layer(DefaultBodyLimit::disable())
        .route("/uploads/blob/{id}", get(download))
        .route("/uploads/blob/{id}/{name}", get(download_named))
}

/// The `user` part and other form fields are small; anything beyond this is refused.
const MAX_FIELD_BYTES: usize = 64 * 1024;

fn too_big(limit: usize) -> ApiError {
    ApiError::new(
        code::PAYLOAD_TOO_BIG,
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the file is larger than the limit of {limit} bytes"),
    )
}

fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_big(limit)
    } else {
        ApiError::input("the multipart body is malformed")
    }
}

async fn read_field(mut field: Field<'_>, limit: usize, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, max))? {
        if out.len() + chunk.len() > limit {
            return Err(too_big(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The `file` part and the user the `user` part names (server-side calls act for them).
async fn parse(
    multipart: Result<Multipart, MultipartRejection>,
    max: usize,
) -> Result<(Part, Option<String>), ApiError> {
    let mut multipart = multipart
        .map_err(|_| ApiError::input("the request must be multipart/form-data with a file part"))?;
    let mut file: Option<Part> = None;
    let mut user: Option<String> = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(e, max))?
    {
        match field.name() {
            Some("file") => {
                if file.is_some() {
                    return Err(ApiError::input("the request holds more than one file part"));
                }
                let name = field.file_name().map(str::to_string);
                let bytes = read_field(field, max, max).await?;
                file = Some(Part { name, bytes });
            }
            Some("user") => {
                let text = read_field(field, MAX_FIELD_BYTES, max).await?;
                let value: serde_json::Value = serde_json::from_slice(&text)
                    .map_err(|_| ApiError::input("the user part is not a JSON object"))?;
                let id = value
                    .get("id")
                    .and_then(serde_json::Value::as_str)
                    .ok_or_else(|| ApiError::input("the user part has no id"))?;
                user = Some(id.to_string());
            }
            _ => {
                read_field(field, MAX_FIELD_BYTES, max).await?;
            }
        }
    }
    let file = file.ok_or_else(|| ApiError::input("the request has no file part"))?;
    Ok((file, user))
}

async fn do_upload(
    state: &AppState,
    auth: &Auth,
    cid: Option<String>,
    kind: Kind,
    multipart: Result<Multipart, MultipartRejection>,
) -> HandlerResult {
    let max = state.config.uploads.max_bytes;
    let (part, named) = parse(multipart, max).await?;
    let named = named.or_else(|| auth.query_user().map(str::to_string));
    let actor = auth.actor_for(state, named.as_deref()).await?;
    let ctx = state.uploads();
    Ok(Reply(
        upload::upload(&ctx, &actor, cid.as_deref(), kind, part).await?,
    ))
}

async fn upload_channel_file(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    multipart: Result<Multipart, MultipartRejection>,
) -> HandlerResult {
    do_upload(
        &state,
        &auth,
        Some(format!("{kind}:{id}")),
        Kind::File,
        multipart,
    )
    .await
}

async fn upload_channel_image(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
    multipart: Result<Multipart, MultipartRejection>,
) -> HandlerResult {
    do_upload(
        &state,
        &auth,
        Some(format!("{kind}:{id}")),
        Kind::Image,
        multipart,
    )
    .await
}

async fn upload_file(
    State(state): State<AppState>,
    auth: Auth,
    multipart: Result<Multipart, MultipartRejection>,
) -> HandlerResult {
    do_upload(&state, &auth, None, Kind::File, multipart).await
}

async fn upload_image(
    State(state): State<AppState>,
    auth: Auth,
    multipart: Result<Multipart, MultipartRejection>,
) -> HandlerResult {
    do_upload(&state, &auth, None, Kind::Image, multipart).await
}

async fn do_delete(
    state: &AppState,
    auth: &Auth,
    cid: Option<String>,
    kind: Kind,
) -> HandlerResult {
    let url = auth
        .query
        .get("url")
        .ok_or_else(|| ApiError::input("url is required"))?;
    let actor = auth.actor_for(state, auth.query_user()).await?;
    Ok(Reply(
        upload::delete(&state.uploads(), &actor, cid.as_deref(), kind, url).await?,
    ))
}

async fn delete_channel_file(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> HandlerResult {
    do_delete(&state, &auth, Some(format!("{kind}:{id}")), Kind::File).await
}

async fn delete_channel_image(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((kind, id)): ApiPath<(String, String)>,
) -> HandlerResult {
    do_delete(&state, &auth, Some(format!("{kind}:{id}")), Kind::Image).await
}

async fn delete_file(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    do_delete(&state, &auth, None, Kind::File).await
}

async fn delete_image(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    do_delete(&state, &auth, None, Kind::Image).await
}

async fn download_named(
    State(state): State<AppState>,
    ApiPath((id, _name)): ApiPath<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    serve(&state, &id, req).await
}

async fn download(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    req: Request,
) -> Result<Response, ApiError> {
    serve(&state, &id, req).await
}

/// With `sig` in the query: the signed link decides (and the user it names must still
/// read the channel); without: an ordinary authenticated request, and the caller must.
async fn serve(state: &AppState, id: &str, req: Request) -> Result<Response, ApiError> {
    let ctx = state.uploads();
    let query = super::extract::decode_query(req.uri().query())?;
    let file = if query.contains_key("sig") {
        let q = link::Query {
            user: query.get("user").cloned().unwrap_or_default(),
            exp: query.get("exp").cloned().unwrap_or_default(),
            sig: query.get("sig").cloned().unwrap_or_default(),
        };
        upload::download(&ctx, id, Fetcher::Link(&q)).await?
    } else {
        let (mut parts, _) = req.into_parts();
        let auth = Auth::from_request_parts(&mut parts, state).await?;
        let actor = auth.actor_for(state, auth.query_user()).await?;
        upload::download(&ctx, id, Fetcher::Caller(actor)).await?
    };
    let disposition = if file.kind == "image" {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| *c != '\\')
        .collect();
    let encoded: String = file
        .name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let cd = format!("{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut res = file.bytes.to_vec().into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.mime_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&cd) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(res)
}
