//! One WebSocket connection: authenticate, register, handshake, then a writer task that
//! drains the bounded queue in batches and a reader that answers heartbeats.

use crate::audit::{AuditEvent, EventType};
use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::chat::{event, read, user, view};
use crate::http::error::{ApiError, code};
use crate::http::extract as ex;
use crate::store::UserRow;
use crate::time::{now_micros, rfc3339};

/// A client pings 25 s after each `health.check`; silence much longer than that means the
/// peer is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(70);
/// Frames written per flush: one `sendto` carries many events under load.
const WRITE_BATCH: usize = 64;
/// Close codes: 1001 on shutdown and 1013 for a client too slow to keep up; both make the
/// SDK reconnect (anything but 1000 does) and recover its watches.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_TRY_AGAIN: u16 = 1013;
/// 1012 "service restart": events may have been missed while the cross-node bus was down.
const CLOSE_SERVICE_RESTART: u16 = 1012;
/// 1008 "policy violation": the user, token or session was revoked (deleted, deactivated,
/// deprovisioned, tokens revoked, session ended). The SDK reconnects, and the reconnect is
/// refused unless it brings a token that is still valid.
const CLOSE_REVOKED: u16 = 1008;
/// 1009 "message too big" (RFC 6455 §7.4.1) also covers frames that fail to parse.
const CLOSE_TOO_BIG_OR_INVALID: u16 = 1009;

#[derive(Deserialize, Default)]
struct ConnectPayload {
    user_id: Option<String>,
    user_details: Option<Map<String, Value>>,
}

/// The connect query's `json` parameter: the user the SDK connects as and its details.
fn connect_payload(query: &HashMap<String, String>) -> Result<ConnectPayload, ApiError> {
    match query.get("json") {
        Some(text) => serde_json::from_str(text)
            .map_err(|_| ApiError::input("the json parameter is not valid JSON")),
        None => Err(ApiError::input("the json parameter is required")),
    }
}

/// What a connect request carries before the store is consulted, read as `authenticate`
/// reads it: the query string, its `json` payload (its user id validated) and its token,
/// verified under `secret` at `now`. The fuzz target `ws_connect` drives it.
#[doc(hidden)]
pub fn parse_connect(
    raw_query: Option<&str>,
    secret: &[u8],
    now: i64,
) -> Result<crate::auth::token::Claims, ApiError> {
    let query = ex::decode_query(raw_query)?;
    if let Some(user_id) = connect_payload(&query)?.user_id {
        crate::chat::validate_user_id(&user_id)?;
    }
    let token = query.get("authorization").map_or("", String::as_str);
    Ok(crate::auth::token::verify(
        token.strip_prefix("Bearer ").unwrap_or(token),
        secret,
        false,
        now,
    )?)
}

/// The connecting user, and the token's `iat` and interactive session (whose chat token
/// they present), if any.
async fn authenticate(
    state: &AppState,
    raw_query: Option<&str>,
) -> Result<(UserRow, Option<i64>, Option<String>), ApiError> {
    let query: HashMap<String, String> = ex::decode_query(raw_query)?;
    ex::check_api_key(state, &query)?;
    let payload = connect_payload(&query)?;
    if query.get("stream-auth-type").map(String::as_str) == Some("anonymous") {
        if !state.config.anonymous_users {
            return Err(ApiError::unauthorized(
                code::ACCESS_KEY,
                "anonymous connections are disabled on this server (WARD_ANONYMOUS_USERS)",
            ));
        }
        // The SDK names the connection with a random id; nothing is stored for it.
        let client_id = payload
            .user_id
            .ok_or_else(|| ApiError::input("the json parameter needs a user_id"))?;
        let user = crate::chat::guest::anonymous_user(&client_id)?;
        crate::chat::Actor::anonymous().authorize_app(state, "Connect")?;
        return Ok((user, None, None));
    }
    let token = query
        .get("authorization")
        .filter(|t| !t.is_empty() && *t != "undefined")
        .ok_or_else(|| {
            ApiError::unauthorized(code::ACCESS_KEY, "the authorization parameter is missing")
        })?;
    let claims = match ex::verify_token(state, token) {
        Ok(c) => c,
        Err(e) => {
            ex::record_rejection(state, "ws", &e).await;
            return Err(e);
        }
    };
    if let Err(e) = crate::auth::check_revocation(&state.auth(), &claims).await {
        let e = ApiError::from(e);
        ex::record_rejection(state, "ws", &e).await;
        return Err(e);
    }
    let token_user = claims.user_id.filter(|_| !claims.server).ok_or_else(|| {
        ApiError::unauthorized(
            code::TOKEN_SIGNATURE_INVALID,
            "a server token cannot open a user connection",
        )
    })?;
    let user_id = payload.user_id.unwrap_or_else(|| token_user.clone());
    if user_id != token_user {
        return Err(ApiError::unauthorized(
            code::TOKEN_SIGNATURE_INVALID,
            "the token's user_id does not match json.user_id",
        ));
    }
    let user =
        user::upsert_on_connect(&state.chat(), &user_id, payload.user_details.as_ref()).await?;
    crate::chat::Actor::user(user.clone()).authorize_app(state, "Connect")?;
    Ok((user, claims.iat, claims.sid))
}

async fn reject(mut socket: WebSocket, err: ApiError) {
    err.log();
    let frame = json!({ "error": err.body() }).to_string();
    let _ = socket.send(Message::Text(frame.into())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: Utf8Bytes::from(err.message),
        })))
        .await;
}

fn health_check(conn_id: &str) -> Value {
    json!({"type": "health.check", "connection_id": conn_id, "cid": "*", "created_at": rfc3339(now_micros())})
}

pub async fn run(
    state: AppState,
    mut socket: WebSocket,
    raw_query: Option<String>,
    user_agent: Option<String>,
) {
    let (user, iat, session) = match authenticate(&state, raw_query.as_deref()).await {
        Ok(u) => u,
        Err(err) => return reject(socket, err).await,
    };
    let reg = match state
        .bus
        .register(&user.id, state.config.limits.max_connections_per_user)
    {
        Ok(reg) => reg,
        Err(_) => {
            let err = ApiError::new(
                code::TOO_MANY_CONNECTIONS,
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too many connections for this user",
            );
            return reject(socket, err).await;
        }
    };
    let conn_id = reg.conn_id.clone();
    state.bus.set_credentials(&conn_id, iat, session.as_deref());
    // A revocation committed after the token check but before the registration found no
    // connection to close: check again, now that any later one will find this connection.
    let recheck = crate::auth::token::Claims {
        user_id: Some(user.id.clone()),
        iat,
        sid: session.clone(),
        ..Default::default()
    };
    let anonymous = crate::chat::guest::is_anonymous_id(&user.id);
    if !anonymous && let Err(e) = crate::auth::check_revocation(&state.auth(), &recheck).await {
        state.bus.unregister(&conn_id);
        return reject(socket, e.into()).await;
    }
    if let Some(sid) = &session {
        close_at_session_expiry(&state, sid, &conn_id).await;
    }
    if let Err(e) = state
        .usage
        .connection_opened(&user.id, now_micros(), state.bus.connection_count())
        .await
    {
        tracing::warn!(user_id = %user.id, error = %e, "could not meter the connection");
    }
    tracing::debug!(user_id = %user.id, connection_id = %conn_id, "connection opened");
    let opened = AuditEvent::new(EventType::WsConnect)
        .actor(user.id.clone())
        .subject(user.id.clone())
        .meta("connection_id", &conn_id)
        .meta("node", &state.config.node_id)
        .pii(json!({ "user_agent": user_agent }));
    if let Err(e) = state.audit.record(opened).await {
        tracing::error!(connection_id = %conn_id, error = %e, "could not record the connection; closing it");
        state.bus.unregister(&conn_id);
        return reject(socket, ApiError::internal("the audit log is unavailable")).await;
    }

    let first = match read::own_user_json(&state.chat(), &user).await {
        Ok(mut me) => {
            // The user's push devices (sealed at rest, opened for their own connection).
            match crate::chat::device::own_devices(&state.chat(), state.crypto.as_deref(), &user.id)
                .await
            {
                Ok(devices) => me["devices"] = devices,
                Err(e) => {
                    tracing::warn!(user_id = %user.id, error = %e, "could not load the user's devices")
                }
            }
            let mut hc = health_check(&conn_id);
            hc["me"] = me;
            hc
        }
        Err(err) => {
            state.bus.unregister(&conn_id);
            return reject(socket, err.into()).await;
        }
    };
    if reg.came_online && !anonymous {
        let ctx = state.chat();
        crate::chat::presence::changed(&ctx, &user.id, view::user_json(&ctx, &user)).await;
    }
    if socket
        .send(Message::Text(first.to_string().into()))
        .await
        .is_err()
    {
        return finish(&state, &conn_id).await;
    }

    let (mut sink, mut stream) = socket.split();
    let mut rx = reg.rx;
    let slow = reg.slow;
    let restart = reg.restart;
    let revoked = reg.revoked;
    let mut shutdown = state.shutdown.clone();
    // The reader's reason to close (client close, idle, oversized frame), sent as a frame.
    let (close_tx, mut close_rx) = tokio::sync::oneshot::channel::<(u16, &'static str)>();
    let writer_hub = state.bus.local().clone();
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        let close = |code: u16, reason: &'static str| {
            Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }))
        };
        loop {
            tokio::select! {
                biased;
                _ = restart.notified() => {
                    let frame = if revoked.load(std::sync::atomic::Ordering::SeqCst) {
                        close(CLOSE_REVOKED, "access revoked")
                    } else {
                        close(CLOSE_SERVICE_RESTART, "event bus recovered: reconnect and resync")
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
                    break;
                }
                _ = slow.notified() => {
                    writer_hub.slow_closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(CLOSE_TRY_AGAIN, "too slow: reconnect and recover"))).await;
                    break;
                }
                reason = &mut close_rx => {
                    if let Ok((code, why)) = reason {
                        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(code, why))).await;
                    }
                    break;
                }
                _ = async { shutdown.wait_for(|s| *s).await.map(|_| ()) } => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close(CLOSE_GOING_AWAY, "server shutting down"))).await;
                    break;
                }
                n = rx.recv_many(&mut batch, WRITE_BATCH) => {
                    if n == 0 {
                        break;
                    }
                    let mut failed = false;
                    for frame in batch.drain(..) {
                        // Revoked meanwhile: send nothing more (the close follows).
                        if revoked.load(std::sync::atomic::Ordering::SeqCst) {
                            break;
                        }
                        if sink.feed(Message::Text(frame)).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed || sink.flush().await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let reader_state = state.clone();
    let reader_conn = conn_id.clone();
    let reader = tokio::spawn(async move {
        loop {
            let frame = match tokio::time::timeout(IDLE_TIMEOUT, stream.next()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(_))) => {
                    return (CLOSE_TOO_BIG_OR_INVALID, "invalid or oversized frame");
                }
                Ok(None) => return (1000, "closed"),
                Err(_) => return (CLOSE_GOING_AWAY, "idle for too long"),
            };
            match frame {
                // The SDK pings with `[{"type":"health.check","client_id":…}]`.
                Message::Text(text) if text.contains("health.check") => {
                    reader_state
                        .bus
                        .to_connection(&reader_conn, &health_check(&reader_conn));
                }
                Message::Close(_) => return (1000, "closed"),
                _ => {}
            }
        }
    });

    let mut writer = writer;
    let mut reader = reader;
    tokio::select! {
        _ = &mut writer => reader.abort(),
        reason = &mut reader => {
            if let Ok(reason) = reason {
                let _ = close_tx.send(reason);
            }
            // The writer sends the close frame and stops; don't wait on a stuck peer.
            if tokio::time::timeout(Duration::from_secs(2), &mut writer).await.is_err() {
                writer.abort();
            }
        }
    }
    finish(&state, &conn_id).await;
}

/// Unregisters the connection and tells others what changed: watchers of each channel it
/// watched, and presence subscribers if the user went offline.
async fn finish(state: &AppState, conn_id: &str) {
    let Some(gone) = state.bus.unregister(conn_id) else {
        return;
    };
    tracing::debug!(user_id = %gone.user_id, connection_id = %conn_id, "connection closed");
    let closed = AuditEvent::new(EventType::WsDisconnect)
        .actor(gone.user_id.clone())
        .subject(gone.user_id.clone())
        .meta("connection_id", conn_id)
        .meta("node", &state.config.node_id);
    if let Err(e) = state.audit.record(closed).await {
        tracing::error!(connection_id = %conn_id, error = %e, "could not record the disconnection");
    }
    let user = match state.store.users.find_user(&gone.user_id).await {
        Ok(Some(u)) => u,
        _ => return,
    };
    let user_json = view::user_json(&state.chat(), &user);
    for change in gone
        .stopped
        .iter()
        .filter(|c| c.user_changed && crate::chat::channel::connect_events(&c.cid))
    {
        state
            .bus
            .to_channel(
                &change.cid,
                &event::watching(
                    "user.watching.stop",
                    &change.cid,
                    user_json.clone(),
                    change.watcher_count,
                ),
            )
            .await;
    }
    if gone.went_offline {
        let now = now_micros();
        if let Err(e) = state.store.users.update_last_active(&user.id, now).await {
            tracing::warn!(user_id = %user.id, error = %e, "could not record last_active");
        }
        let mut offline = user_json;
        offline["online"] = false.into();
        offline["last_active"] = rfc3339(now).into();
        crate::chat::presence::changed(&state.chat(), &user.id, offline).await;
    }
}

/// Closes a connection opened with a session's chat token when that session reaches its
/// absolute expiry (revocation closes it at once, see `auth::session::revoke`).
async fn close_at_session_expiry(state: &AppState, sid: &str, conn_id: &str) {
    let Ok(Some(row)) = state.store.identity.find_session(sid).await else {
        return;
    };
    let wait = (row.expires_at - now_micros()).max(0) as u64;
    let bus = state.bus.clone();
    let (sid, conn_id) = (sid.to_string(), conn_id.to_string());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_micros(wait)).await;
        if bus.connection_user(&conn_id).is_some() {
            bus.revoke_local(&crate::bus::wire::Revocation::Session { sid });
        }
    });
}
