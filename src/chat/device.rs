//! Push devices (`POST/GET/DELETE /devices`) and push preferences (`POST /push_preferences`),
//! as the SDK's `addDevice`, `getDevices`, `removeDevice` and `setPushPreferences` send them.
//!
//! Registration storage only: Ward does not deliver push notifications yet (a later issue),
//! so `push_notifications` stays off in every channel config. A device's `id` is the
//! provider's push token: personal and secret-ish, it is sealed under its user's key
//! (`devices.token`), never logged, never put in an audit record, and erased with the user.
//! A user registers, lists and removes only their own devices; a server call names the user.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Actor, Ctx, Error, Result, validate_user_id};
use crate::audit::EventType;
use crate::crypto::fields::{FieldCrypto, Opened};
use crate::crypto::frame::Field;
use crate::crypto::sealed::user_subject;
use crate::store::{DeviceRow, PushPreferenceRow, StoreError};
use crate::time::{now_micros, rfc3339};

/// Stream's push providers.
pub const PROVIDERS: [&str; 4] = ["firebase", "apn", "huawei", "xiaomi"];
/// Devices kept per user: registering one more drops the oldest (as Stream does).
pub const MAX_DEVICES: usize = 25;
/// The longest push token accepted (APNs tokens are 64 hex digits, FCM's about 160
/// characters; web push subscriptions are longer).
pub const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Deserialize)]
pub struct AddDevice {
    pub id: Option<Value>,
    pub push_provider: Option<Value>,
    pub push_provider_name: Option<Value>,
    pub user_id: Option<Value>,
}

fn token_field(row_id: &str) -> Field<'_> {
    Field {
        table: "devices",
        column: "token",
        row_id,
    }
}

fn seal_err(e: anyhow::Error) -> Error {
    Error::Store(StoreError::Crypto(e.to_string()))
}

fn string_field<'a>(value: Option<&'a Value>, name: &str) -> Result<Option<&'a str>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(Error::input(format!("{name} must be a string"))),
    }
}

/// A push token: non-empty, bounded, printable ASCII (every provider's tokens are).
fn validate_token(token: &str) -> Result<()> {
    if token.is_empty() {
        return Err(Error::input("id (the device token) is required"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::input(format!(
            "id (the device token) is longer than {MAX_TOKEN_LEN} characters"
        )));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::input(
            "id (the device token) must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

/// The user whose devices a call is about: the caller, or for a server call the user it
/// names. A user naming someone else is refused by the policies (`ManageDevices`).
async fn target_user(ctx: &Ctx<'_>, actor: &Actor, named: Option<&str>) -> Result<String> {
    if actor.is_anonymous() {
        return Err(Error::not_allowed(
            "anonymous users cannot manage push devices",
        ));
    }
    let id = match (named, actor.user_id()) {
        (Some(n), _) => n.to_string(),
        (None, Some(own)) => own.to_string(),
        (None, None) => {
            return Err(Error::input(
                "user_id must be provided when using server side auth",
            ));
        }
    };
    validate_user_id(&id)?;
    ctx.authz.authorize(
        actor.principal(),
        "ManageDevices",
        &crate::authz::Resource::User {
            is_self: actor.user_id() == Some(id.as_str()),
            sets_role: false,
        },
    )?;
    if ctx.store.users.find_user(&id).await?.is_none() {
        return Err(Error::not_found(format!("user {id} does not exist")));
    }
    Ok(id)
}

/// The user's devices with their tokens opened (a shredded one is left out).
async fn open_devices(
    ctx: &Ctx<'_>,
    crypto: Option<&FieldCrypto>,
    user_id: &str,
) -> Result<Vec<(DeviceRow, String)>> {
    let mut out = Vec::new();
    for d in ctx.store.devices.find_devices(user_id).await? {
        let opened = match crypto {
            Some(c) => c
                .open_text(token_field(&d.row_id), &d.token)
                .await
                .map_err(seal_err)?,
            None => Opened::Plain(d.token.clone()),
        };
        match opened {
            Opened::Plain(token) => out.push((d, token)),
            Opened::Shredded => {}
        }
    }
    Ok(out)
}

fn device_json(d: &DeviceRow, token: &str) -> Value {
    let mut v = json!({
        "id": token,
        "push_provider": d.push_provider,
        "user_id": d.user_id,
        "created_at": rfc3339(d.created_at),
        "disabled": false,
    });
    if !d.push_provider_name.is_empty() {
        v["push_provider_name"] = d.push_provider_name.clone().into();
    }
    v
}

/// `POST /devices`: registers (or re-registers) a device for the user.
pub async fn add_device(
    ctx: &Ctx<'_>,
    crypto: Option<&FieldCrypto>,
    actor: &Actor,
    req: &AddDevice,
) -> Result<()> {
    let token = string_field(req.id.as_ref(), "id")?.unwrap_or("");
    validate_token(token)?;
    let provider = string_field(req.push_provider.as_ref(), "push_provider")?.unwrap_or("");
    if !PROVIDERS.contains(&provider) {
        return Err(Error::input(format!(
            "push_provider must be one of {}",
            PROVIDERS.join(", ")
        )));
    }
    let provider_name =
        string_field(req.push_provider_name.as_ref(), "push_provider_name")?.unwrap_or("");
    if !provider_name.is_empty() && !super::valid_chars(provider_name, 64, &['.']) {
        return Err(Error::input(
            "push_provider_name must be at most 64 letters, digits, '.', '_' or '-'",
        ));
    }
    let named = string_field(req.user_id.as_ref(), "user_id")?;
    let user_id = target_user(ctx, actor, named).await?;
    let existing = open_devices(ctx, crypto, &user_id).await?;
    // The same token registered again replaces its row; past the cap the oldest go.
    let mut replaced: Vec<String> = existing
        .iter()
        .filter(|(_, t)| t == token)
        .map(|(d, _)| d.row_id.clone())
        .collect();
    let kept = existing.len() - replaced.len();
    if kept >= MAX_DEVICES {
        replaced.extend(
            existing
                .iter()
                .filter(|(_, t)| t != token)
                .take(kept + 1 - MAX_DEVICES)
                .map(|(d, _)| d.row_id.clone()),
        );
    }
    let row_id = uuid::Uuid::now_v7().to_string();
    // Without field encryption (`WARD_ENCRYPTION=false`, for measuring its cost only) the
    // token is stored as every other classified column then is: in clear.
    let sealed = match crypto {
        Some(c) => c
            .seal_text(&user_subject(&user_id), token_field(&row_id), token)
            .await
            .map_err(seal_err)?,
        None => token.to_string(),
    };
    let device = DeviceRow {
        row_id,
        user_id: user_id.clone(),
        token: sealed,
        push_provider: provider.to_string(),
        push_provider_name: provider_name.to_string(),
        created_at: now_micros(),
    };
    let record = actor
        .audit(EventType::UserDevice)
        .subject(user_id.clone())
        .object("device", device.row_id.clone())
        .meta("change", "device.add")
        .meta("push_provider", provider);
    ctx.audit
        .audited([record], async |records| {
            ctx.store
                .devices
                .insert_device(&device, &replaced, &records)
                .await
        })
        .await?;
    Ok(())
}

/// `GET /devices`: the user's devices.
pub async fn list_devices(
    ctx: &Ctx<'_>,
    crypto: Option<&FieldCrypto>,
    actor: &Actor,
    named: Option<&str>,
) -> Result<Value> {
    let user_id = target_user(ctx, actor, named).await?;
    let devices = open_devices(ctx, crypto, &user_id).await?;
    Ok(Value::Array(
        devices.iter().map(|(d, t)| device_json(d, t)).collect(),
    ))
}

/// The user's devices as `me.devices` shows them.
pub async fn own_devices(
    ctx: &Ctx<'_>,
    crypto: Option<&FieldCrypto>,
    user_id: &str,
) -> Result<Value> {
    let devices = open_devices(ctx, crypto, user_id).await?;
    Ok(Value::Array(
        devices.iter().map(|(d, t)| device_json(d, t)).collect(),
    ))
}

/// `DELETE /devices?id=`: removes one of the user's devices. Removing a device that is not
/// registered is not an error (the SDK calls it at every logout).
pub async fn remove_device(
    ctx: &Ctx<'_>,
    crypto: Option<&FieldCrypto>,
    actor: &Actor,
    token: Option<&str>,
    named: Option<&str>,
) -> Result<()> {
    let token = token.unwrap_or("");
    validate_token(token)?;
    let user_id = target_user(ctx, actor, named).await?;
    let gone: Vec<String> = open_devices(ctx, crypto, &user_id)
        .await?
        .into_iter()
        .filter(|(_, t)| t == token)
        .map(|(d, _)| d.row_id)
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    let record = actor
        .audit(EventType::UserDevice)
        .subject(user_id.clone())
        .meta("change", "device.remove")
        .meta("count", gone.len());
    ctx.audit
        .audited([record], async |records| {
            ctx.store
                .devices
                .delete_devices(&user_id, &gone, &records)
                .await
        })
        .await?;
    Ok(())
}

/// Levels the push preference fields take (Stream's vocabulary).
const CHAT_LEVELS: [&str; 6] = [
    "all",
    "mentions",
    "direct_mentions",
    "all_mentions",
    "none",
    "default",
];
const CALL_LEVELS: [&str; 3] = ["all", "none", "default"];
const SUB_LEVELS: [&str; 2] = ["all", "none"];
const CHAT_PREFERENCE_KEYS: [&str; 7] = [
    "channel_mentions",
    "default_preference",
    "direct_mentions",
    "group_mentions",
    "here_mentions",
    "role_mentions",
    "thread_replies",
];
/// Preference entries accepted in one call.
const MAX_PREFERENCES: usize = 100;

fn level(v: Option<&Value>, name: &str, allowed: &[&str]) -> Result<Option<String>> {
    match string_field(v, name)? {
        None => Ok(None),
        Some(s) if allowed.contains(&s) => Ok(Some(s.to_string())),
        Some(_) => Err(Error::input(format!(
            "{name} must be one of {}",
            allowed.join(", ")
        ))),
    }
}

/// One validated preference: (user, cid or "", the stored levels).
fn preference(
    item: &Value,
    own: Option<&str>,
    server: bool,
) -> Result<(String, String, Map<String, Value>)> {
    let Value::Object(item) = item else {
        return Err(Error::input("each preference must be an object"));
    };
    let user_id = match (string_field(item.get("user_id"), "user_id")?, own) {
        (Some(u), Some(o)) if u != o && !server => {
            return Err(Error::not_allowed(
                "a user can set only their own push preferences",
            ));
        }
        (Some(u), _) => u.to_string(),
        (None, Some(o)) => o.to_string(),
        (None, None) => return Err(Error::input("user_id is required server-side")),
    };
    validate_user_id(&user_id)?;
    let cid = string_field(item.get("channel_cid"), "channel_cid")?.unwrap_or("");
    if !cid.is_empty() {
        let (kind, id) = cid
            .split_once(':')
            .ok_or_else(|| Error::input("channel_cid must be type:id"))?;
        super::validate_channel_type(kind)?;
        super::validate_channel_id(id)?;
    }
    let mut out = Map::new();
    if let Some(l) = level(item.get("chat_level"), "chat_level", &CHAT_LEVELS)? {
        out.insert("chat_level".into(), l.into());
    }
    if let Some(l) = level(item.get("call_level"), "call_level", &CALL_LEVELS)? {
        out.insert("call_level".into(), l.into());
    }
    match item.get("chat_preferences") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            let mut prefs = Map::new();
            for (k, v) in p {
                if !CHAT_PREFERENCE_KEYS.contains(&k.as_str()) {
                    return Err(Error::input(format!("chat_preferences.{k} is not known")));
                }
                if let Some(l) = level(Some(v), &format!("chat_preferences.{k}"), &SUB_LEVELS)? {
                    prefs.insert(k.clone(), l.into());
                }
            }
            out.insert("chat_preferences".into(), Value::Object(prefs));
        }
        Some(_) => return Err(Error::input("chat_preferences must be an object")),
    }
    let remove_disable = matches!(item.get("remove_disable"), Some(Value::Bool(true)));
    if !remove_disable
        && let Some(until) = string_field(item.get("disabled_until"), "disabled_until")?
    {
        let t = chrono::DateTime::parse_from_rfc3339(until)
            .map_err(|_| Error::input("disabled_until must be an RFC 3339 time"))?;
        out.insert(
            "disabled_until".into(),
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into(),
        );
    }
    Ok((user_id, cid.to_string(), out))
}

/// `POST /push_preferences`: stores the preferences (they take effect once push delivery
/// exists) and answers with the resulting preferences per user and channel.
pub async fn set_push_preferences(ctx: &Ctx<'_>, actor: &Actor, body: &Value) -> Result<Value> {
    let items = match body.get("preferences") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => return Err(Error::input("preferences must be a non-empty array")),
    };
    if items.len() > MAX_PREFERENCES {
        return Err(Error::input(format!(
            "at most {MAX_PREFERENCES} preferences per call"
        )));
    }
    if actor.is_anonymous() {
        return Err(Error::not_allowed(
            "anonymous users cannot set push preferences",
        ));
    }
    let mut rows = Vec::new();
    let now = now_micros();
    for item in items {
        let (user_id, cid, prefs) = preference(item, actor.user_id(), actor.server)?;
        ctx.authz.authorize(
            actor.principal(),
            "ManageDevices",
            &crate::authz::Resource::User {
                is_self: actor.user_id() == Some(user_id.as_str()),
                sets_role: false,
            },
        )?;
        rows.push(PushPreferenceRow {
            user_id,
            channel_cid: cid,
            preferences: Value::Object(prefs).to_string(),
            updated_at: now,
        });
    }
    let records: Vec<_> = rows
        .iter()
        .map(|r| {
            actor
                .audit(EventType::UserDevice)
                .subject(r.user_id.clone())
                .meta("change", "push_preferences")
        })
        .collect();
    ctx.audit
        .audited(records, async |records| {
            ctx.store
                .devices
                .upsert_push_preferences(&rows, &records)
                .await
        })
        .await?;
    let mut users = Map::new();
    let mut channels = Map::new();
    for r in &rows {
        let prefs: Value = serde_json::from_str(&r.preferences).unwrap_or_else(|_| json!({}));
        if r.channel_cid.is_empty() {
            users.insert(r.user_id.clone(), prefs);
        } else if let Value::Object(per_user) = channels
            .entry(r.user_id.clone())
            .or_insert_with(|| json!({}))
        {
            per_user.insert(r.channel_cid.clone(), prefs);
        }
    }
    Ok(json!({"user_preferences": users, "user_channel_preferences": channels}))
}
