//! Slow mode: a channel's `cooldown` (seconds between two messages of one user), set with
//! `cooldown` on `POST /channels/{type}/{id}` (enableSlowMode / disableSlowMode) or
//! `set.cooldown` on `PATCH`, by those who may moderate the channel (`set-channel-cooldown`).
//!
//! It is kept with the channel (`cooldown` among its fields, as Stream renders it) and
//! enforced when a message is sent: the time of each user's last message is claimed in the
//! database in one statement ([`crate::store::MemberStore::claim_cooldown`]), so two sends
//! racing on two nodes cannot both pass. Moderators and admins (`skip-slow-mode`, the
//! `ModerateChannel` decision) and server-side calls are exempt.

use serde_json::{Map, Value};

use crate::chat::channel::Loaded;
use crate::chat::{Actor, Ctx, Error, Result};
use crate::time::now_micros;

/// Stream's largest cooldown.
pub const MAX_COOLDOWN_SECONDS: i64 = 120;

/// Validates a cooldown value: whole seconds, 0 (off) to [`MAX_COOLDOWN_SECONDS`].
pub fn parse_cooldown(v: &Value) -> Result<i64> {
    v.as_i64()
        .filter(|s| (0..=MAX_COOLDOWN_SECONDS).contains(s))
        .ok_or_else(|| {
            Error::input(format!(
                "cooldown must be a whole number of seconds from 0 to {MAX_COOLDOWN_SECONDS}"
            ))
        })
}

/// The channel's cooldown in seconds (0: off).
pub fn cooldown_of(data: &Map<String, Value>) -> i64 {
    data.get("cooldown").and_then(Value::as_i64).unwrap_or(0)
}

/// Sets (or with 0, removes) the cooldown in a channel's fields, after checking that the
/// actor may (`ModerateChannel`, the `set-channel-cooldown` capability).
pub fn apply_cooldown(loaded: &Loaded, data: &mut Map<String, Value>, v: &Value) -> Result<()> {
    let seconds = parse_cooldown(v)?;
    loaded.require("ModerateChannel")?;
    if seconds == 0 {
        data.remove("cooldown");
    } else {
        data.insert("cooldown".into(), seconds.into());
    }
    Ok(())
}

/// Refuses a message sent before the sender's cooldown has passed (Stream's code 60), and
/// otherwise records its time. Call it once the message is otherwise valid.
pub async fn before_send(ctx: &Ctx<'_>, actor: &Actor, loaded: &Loaded) -> Result<()> {
    let cooldown = cooldown_of(&loaded.channel.data);
    if cooldown <= 0 || actor.server || loaded.allows("ModerateChannel") {
        return Ok(());
    }
    let Some(uid) = actor.user_id() else {
        return Ok(());
    };
    let now = now_micros();
    let window = cooldown * 1_000_000;
    match ctx
        .store
        .members
        .claim_cooldown(&loaded.channel.cid, uid, now, window)
        .await?
    {
        Ok(()) => Ok(()),
        Err(last) => {
            let remaining = ((last + window - now).max(0) + 999_999) / 1_000_000;
            Err(Error::SlowMode(format!(
                "slow mode is on in this channel: wait {remaining} more second(s) before sending another message"
            )))
        }
    }
}
