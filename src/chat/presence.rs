//! `user.presence.changed` as Stream delivers it: to the watchers of every channel the user
//! is a member of (of a type with `connect_events`), whether or not they asked for
//! `presence`, and to the connections that subscribed to the user's presence. Delivery, one
//! event per connection and the read decision per watched channel, is the bus's
//! ([`crate::bus::presence`]), on every node.

use serde_json::Value;

use super::{Ctx, channel, event};

/// Announces that `user_id` came online or went offline; `user` is the user object as the
/// event carries it (`online` and `last_active` already set).
pub async fn changed(ctx: &Ctx<'_>, user_id: &str, user: Value) {
    let cids: Vec<String> = match ctx.store.channels.find_channels_for_member(user_id).await {
        Ok(channels) => channels
            .into_iter()
            .map(|c| c.cid)
            .filter(|cid| channel::connect_events(cid))
            .collect(),
        Err(e) => {
            // The subscribers still hear of it; watchers recover presence on their next query.
            tracing::warn!(user_id = %user_id, error = %e, "could not load the user's channels for presence");
            Vec::new()
        }
    };
    ctx.bus
        .to_member_watchers(user_id, &cids, &event::presence(user))
        .await;
}
