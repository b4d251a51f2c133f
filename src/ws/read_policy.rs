//! The read decision deliveries pass ([`crate::bus::gate`]), as REST makes it: the Cedar
//! policy's `ReadChannel` on the facts `chat::channel_type::facts` derives from the channel,
//! the user and their membership. The bus caches the answers; this edge supplies them, so the
//! bus needs nothing of the domain.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::authz::{Authz, Resource};
use crate::bus::gate::ReadPolicy;
use crate::chat::{Actor, channel_type};
use crate::store::{ChannelStore, MemberRow, UserStore};

/// `ReadChannel` for each user, from the channel, its members and the users as stored now.
pub struct ChannelReadPolicy {
    users: Arc<dyn UserStore>,
    channels: Arc<dyn ChannelStore>,
    authz: Arc<Authz>,
}

impl ChannelReadPolicy {
    pub fn new(
        users: Arc<dyn UserStore>,
        channels: Arc<dyn ChannelStore>,
        authz: Arc<Authz>,
    ) -> Self {
        Self {
            users,
            channels,
            authz,
        }
    }
}

#[async_trait::async_trait]
impl ReadPolicy for ChannelReadPolicy {
    async fn decide(
        &self,
        cid: &str,
        user_ids: &[String],
    ) -> anyhow::Result<HashMap<String, bool>> {
        let mut out: HashMap<String, bool> = user_ids.iter().map(|u| (u.clone(), false)).collect();
        let Some(config) = cid
            .split_once(':')
            .and_then(|(kind, _)| channel_type::lookup(kind))
        else {
            return Ok(out);
        };
        // A soft-deleted channel keeps its decisions (its `channel.deleted` reaches those who
        // could read it); a channel that is gone is readable by no one.
        let Some(channel) = self.channels.find_channel(cid).await? else {
            return Ok(out);
        };
        let wanted: HashSet<&str> = user_ids.iter().map(String::as_str).collect();
        let members: HashMap<String, MemberRow> = self
            .channels
            .find_members(&[cid.to_string()])
            .await?
            .into_iter()
            .filter(|m| wanted.contains(m.user_id.as_str()))
            .map(|m| (m.user_id.clone(), m))
            .collect();
        // Anonymous connections (never stored users): decided as the anonymous principal,
        // with no membership.
        for id in user_ids
            .iter()
            .filter(|u| crate::chat::guest::is_anonymous_id(u))
        {
            let actor = Actor::anonymous();
            let facts = channel_type::facts(&actor, &config, &channel, None);
            let allowed =
                self.authz
                    .allows(actor.principal(), "ReadChannel", &Resource::Channel(&facts));
            out.insert(id.clone(), allowed);
        }
        for user in self.users.find_users(user_ids).await? {
            if user.deleted_at.is_some() {
                continue;
            }
            let membership = members.get(&user.id);
            let id = user.id.clone();
            let actor = Actor::user(user);
            let facts = channel_type::facts(&actor, &config, &channel, membership);
            let allowed =
                self.authz
                    .allows(actor.principal(), "ReadChannel", &Resource::Channel(&facts));
            out.insert(id, allowed);
        }
        Ok(out)
    }
}
