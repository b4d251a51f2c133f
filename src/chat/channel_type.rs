//! Built-in channel types and their feature flags (Stream's `config`), and the
//! capabilities a caller has in a channel (`own_capabilities`).

use serde_json::{Value, json};

use crate::chat::Actor;
use crate::store::{ChannelRow, MemberRow};

/// The feature flags of one channel type.
#[derive(Debug, Clone, Copy)]
pub struct ChannelConfig {
    pub name: &'static str,
    pub typing_events: bool,
    pub read_events: bool,
    pub connect_events: bool,
    pub search: bool,
    pub reactions: bool,
    pub replies: bool,
    pub mutes: bool,
    /// Anyone may read and write without being a member (Stream's livestream semantics).
    pub public: bool,
}

const MESSAGING: ChannelConfig = ChannelConfig {
    name: "messaging",
    typing_events: true,
    read_events: true,
    connect_events: true,
    search: true,
    reactions: true,
    replies: true,
    mutes: true,
    public: false,
};

const TEAM: ChannelConfig = ChannelConfig {
    name: "team",
    ..MESSAGING
};

/// Stream's advice for big events: no read, typing or connect events.
const LIVESTREAM: ChannelConfig = ChannelConfig {
    name: "livestream",
    typing_events: false,
    read_events: false,
    connect_events: false,
    search: true,
    reactions: true,
    replies: true,
    mutes: false,
    public: true,
};

/// Clinical conversations: members only, no guests or anonymous users (`policies/phi.cedar`).
const PHI: ChannelConfig = ChannelConfig {
    name: "phi",
    ..MESSAGING
};

pub const ALL: [ChannelConfig; 4] = [MESSAGING, TEAM, LIVESTREAM, PHI];

pub fn lookup(kind: &str) -> Option<ChannelConfig> {
    ALL.into_iter().find(|c| c.name == kind)
}

impl ChannelConfig {
    /// The `config` object of a channel response.
    pub fn to_json(&self, max_message_length: usize) -> Value {
        json!({
            "name": self.name,
            "typing_events": self.typing_events,
            "read_events": self.read_events,
            "connect_events": self.connect_events,
            "search": self.search,
            "reactions": self.reactions,
            "replies": self.replies,
            "quotes": true,
            "mutes": self.mutes,
            "uploads": false,
            "url_enrichment": false,
            "custom_events": true,
            "push_notifications": false,
            "delivery_events": false,
            "polls": false,
            "shared_locations": false,
            "user_message_reminders": false,
            "skip_last_msg_update_for_system_msgs": false,
            "message_retention": "infinite",
            "max_message_length": max_message_length,
            "automod": "disabled",
            "automod_behavior": "flag",
            "commands": [],
        })
    }
}

/// What the actor may do in the channel; the same rules the operations enforce.
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub moderate: bool,
    pub update_channel: bool,
}

pub fn access(
    actor: &Actor,
    config: &ChannelConfig,
    channel: &ChannelRow,
    membership: Option<&MemberRow>,
) -> Access {
    let privileged = actor.is_admin();
    let member = membership.is_some();
    let moderator = privileged
        || actor.is_moderator()
        || membership.is_some_and(|m| m.channel_role == "channel_moderator");
    let creator = actor.user_id().is_some() && channel.created_by_id.as_deref() == actor.user_id();
    let write = !channel.frozen || privileged;
    Access {
        read: privileged || member || creator || config.public,
        write: (privileged || member || creator || config.public) && write && !actor.is_anonymous(),
        moderate: moderator,
        update_channel: moderator || creator,
    }
}

/// `own_capabilities` for the actor, derived from [`access`] and the type's flags.
pub fn capabilities(
    actor: &Actor,
    config: &ChannelConfig,
    channel: &ChannelRow,
    membership: Option<&MemberRow>,
) -> Vec<&'static str> {
    let a = access(actor, config, channel, membership);
    let mut caps = Vec::new();
    if a.read {
        caps.extend(["read-events", "connect-events"]);
        if config.search {
            caps.push("search-messages");
        }
    }
    if a.write {
        caps.extend([
            "send-message",
            "create-mention",
            "quote-message",
            "send-links",
            "flag-message",
            "update-own-message",
            "delete-own-message",
            "pin-message",
            "send-custom-events",
        ]);
        if config.reactions {
            caps.push("send-reaction");
        }
        if config.replies {
            caps.push("send-reply");
        }
        if config.typing_events {
            caps.extend(["typing-events", "send-typing-events"]);
        }
        if config.mutes {
            caps.push("mute-channel");
        }
    }
    if membership.is_some() {
        caps.push("leave-channel");
    } else if config.public {
        caps.push("join-channel");
    }
    if a.moderate {
        caps.extend([
            "update-any-message",
            "delete-any-message",
            "ban-channel-members",
            "freeze-channel",
            "set-channel-cooldown",
            "skip-slow-mode",
            "truncate-channel",
        ]);
    }
    if a.update_channel {
        caps.extend(["update-channel", "update-channel-members", "delete-channel"]);
    }
    if !config.read_events {
        caps.retain(|c| *c != "read-events");
    }
    caps
}
