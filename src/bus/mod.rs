//! Event fan-out. Every event is serialised exactly once here and the same bytes are shared
//! by every receiving connection. Today the bus delivers in-process to this node's hub;
//! cross-node delivery (Redis pub/sub) plugs in behind the same calls.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;

use crate::ws::hub::Hub;

#[derive(Clone)]
pub struct Bus {
    hub: Arc<Hub>,
}

impl Bus {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }

    fn encode(event: &Value) -> Utf8Bytes {
        Utf8Bytes::from(event.to_string())
    }

    /// To every connection watching the channel, the actor's own included.
    pub fn to_channel(&self, cid: &str, event: &Value) {
        self.hub.send_to_channel(cid, &Self::encode(event));
    }

    /// To every connection of one user (`notification.*` events).
    pub fn to_user(&self, user_id: &str, event: &Value) {
        self.hub.send_to_user(user_id, &Self::encode(event));
    }

    /// To every connection of each user, serialised once for all of them.
    pub fn to_users<'a>(&self, user_ids: impl IntoIterator<Item = &'a str>, event: &Value) {
        let bytes = Self::encode(event);
        for user_id in user_ids {
            self.hub.send_to_user(user_id, &bytes);
        }
    }

    /// To the connections subscribed to a user's presence.
    pub fn to_presence_subscribers(&self, user_id: &str, event: &Value) {
        self.hub
            .send_to_presence_subscribers(user_id, &Self::encode(event));
    }

    /// To one connection (health checks).
    pub fn to_connection(&self, conn_id: &str, event: &Value) {
        self.hub.send_to_connection(conn_id, &Self::encode(event));
    }
}
