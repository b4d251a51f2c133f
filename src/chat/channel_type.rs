//! Built-in channel types and their feature flags (Stream's `config`), and the
//! facts and capabilities (`own_capabilities`) the policy engine decides for a caller.

use serde_json::{Value, json};

use std::collections::HashMap;

use crate::authz::{Authz, ChannelFacts, Resource};
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
    /// App roles this type refuses as members, at creation and later (the policies would
    /// never let them read it anyway).
    pub refused_member_roles: &'static [&'static str],
    /// Delivery receipts (`POST /channels/delivered`, `message.delivered`): read-receipt
    /// metadata, on for every built-in type but livestream (no read events there either).
    pub delivery_events: bool,
    /// Polls can be sent and voted on (issue 16 item 8).
    pub polls: bool,
    /// Message reminders and "save for later" (issue 16 item 8).
    pub user_message_reminders: bool,
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
    refused_member_roles: &[],
    delivery_events: true,
    polls: true,
    user_message_reminders: true,
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
    delivery_events: false,
    refused_member_roles: &[],
    polls: false,
    user_message_reminders: false,
};

/// Clinical conversations: members only, no guests or anonymous users (`policies/phi.cedar`).
const PHI: ChannelConfig = ChannelConfig {
    name: "phi",
    refused_member_roles: &["guest", "anonymous"],
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
            // Uploads (issue 16): every type takes them; the policies decide who.
            "uploads": true,
            "url_enrichment": false,
            "custom_events": true,
            "push_notifications": false,
            "delivery_events": self.delivery_events,
            "polls": self.polls,
            "shared_locations": false,
            "user_message_reminders": self.user_message_reminders,
            "skip_last_msg_update_for_system_msgs": false,
            "message_retention": "infinite",
            "max_message_length": max_message_length,
            "automod": "disabled",
            "automod_behavior": "flag",
            "commands": [],
        })
    }
}

/// The facts the policies need about `actor` and a channel of this type.
pub fn facts(
    actor: &Actor,
    config: &ChannelConfig,
    channel: &ChannelRow,
    membership: Option<&MemberRow>,
) -> ChannelFacts {
    ChannelFacts {
        cid: channel.cid.clone(),
        channel_type: channel.kind.clone(),
        public: config.public,
        is_member: membership.is_some_and(|m| m.is_active()),
        channel_role: membership
            .filter(|m| m.is_active())
            .map(|m| m.channel_role.clone())
            .unwrap_or_default(),
        is_creator: actor.user_id().is_some()
            && channel.created_by_id.as_deref() == actor.user_id(),
        is_author: false,
        frozen: channel.frozen,
        typing_events: config.typing_events,
        read_events: config.read_events,
        reactions: config.reactions,
        replies: config.replies,
        search: config.search,
    }
}

/// Each capability the SDK knows and the policy action that grants it. Capabilities about
/// one's own messages are asked as the author of a message.
const CAPABILITIES: &[(&str, &str)] = &[
    ("send-message", "SendMessage"),
    ("create-mention", "SendMessage"),
    ("quote-message", "SendMessage"),
    ("send-links", "SendMessage"),
    ("flag-message", "ReadChannel"),
    ("send-reply", "SendReply"),
    ("send-reaction", "SendReaction"),
    ("pin-message", "PinMessage"),
    ("send-custom-events", "SendCustomEvents"),
    ("read-events", "MarkRead"),
    ("typing-events", "SendTypingEvents"),
    ("send-typing-events", "SendTypingEvents"),
    ("search-messages", "SearchMessages"),
    ("update-own-message", "UpdateOwnMessage"),
    ("delete-own-message", "DeleteOwnMessage"),
    ("update-any-message", "UpdateAnyMessage"),
    ("delete-any-message", "DeleteAnyMessage"),
    ("ban-channel-members", "ModerateChannel"),
    ("freeze-channel", "ModerateChannel"),
    ("set-channel-cooldown", "ModerateChannel"),
    ("skip-slow-mode", "ModerateChannel"),
    ("truncate-channel", "TruncateChannel"),
    ("update-channel", "UpdateChannel"),
    ("update-channel-members", "UpdateChannelMembers"),
    ("delete-channel", "DeleteChannel"),
    ("leave-channel", "LeaveChannel"),
    // Uploads (issue 16).
    ("upload-file", "UploadFile"),
];

/// `own_capabilities`, computed from the same policies the operations enforce.
pub fn capabilities(
    authz: &Authz,
    actor: &Actor,
    config: &ChannelConfig,
    facts: &ChannelFacts,
) -> Vec<&'static str> {
    let mut decided: HashMap<&str, bool> = HashMap::new();
    let principal = actor.principal();
    let mut allows = |action: &'static str| {
        *decided.entry(action).or_insert_with(|| {
            let mut f = facts.clone();
            f.is_author = matches!(action, "UpdateOwnMessage" | "DeleteOwnMessage");
            authz.allows(principal, action, &Resource::Channel(&f))
        })
    };
    let mut caps: Vec<&'static str> = CAPABILITIES
        .iter()
        .filter(|(_, action)| allows(action))
        .map(|(cap, _)| *cap)
        .collect();
    if allows("ReadChannel") {
        if config.connect_events {
            caps.push("connect-events");
        }
        if config.mutes {
            caps.push("mute-channel");
        }
        if config.public && !facts.is_member {
            caps.push("join-channel");
        }
    }
    if config.delivery_events && allows("MarkRead") {
        caps.push("delivery-events");
    }
    // Issue 16 item 8: polls, where the type has them.
    if config.polls {
        if allows("SendPoll") {
            caps.push("send-poll");
        }
        if allows("CastPollVote") {
            caps.push("cast-poll-vote");
            caps.push("query-poll-votes");
        }
    }
    caps
}
