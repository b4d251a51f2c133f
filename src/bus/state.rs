//! Connection state through the bus: who is online and watching (on any node, as the
//! other nodes last reported), watches and presence subscriptions of this node's
//! connections, and their registration and revocation. Everything here applies to this
//! node's hub; counts and answers include the other nodes, whose own hubs report their
//! changes over the cluster bus (see [`super::redis`]). A user's access to a channel is
//! enforced on every node by the read decision ([`super::gate`], invalidated cluster-wide
//! by [`Bus::invalidate_reads`]).

use super::Bus;
use super::local::{Credentials, Registration, TooManyConnections, Unregistered, WatchChange};
use super::wire::Revocation;

impl Bus {
    /// Opens a connection of this node for `user_id`, unless they already hold
    /// `max_per_user` on all nodes.
    pub fn register(
        &self,
        user_id: &str,
        max_per_user: usize,
    ) -> Result<Registration, TooManyConnections> {
        self.hub.register(user_id, max_per_user)
    }

    /// Records the token a connection was opened with (revocations match on it).
    pub fn set_credentials(&self, conn_id: &str, iat: Option<i64>, session: Option<&str>) {
        self.hub.set_credentials(conn_id, iat, session);
    }

    /// Closes a connection's registration: drops its watches and subscriptions.
    pub fn unregister(&self, conn_id: &str) -> Option<Unregistered> {
        self.hub.unregister(conn_id)
    }

    /// The user of an open connection of this node.
    pub fn connection_user(&self, conn_id: &str) -> Option<String> {
        self.hub.connection_user(conn_id)
    }

    /// Connections open on this node.
    pub fn connection_count(&self) -> usize {
        self.hub.connection_count()
    }

    /// Connections open on the other nodes, as last reported.
    pub fn remote_connection_count(&self) -> usize {
        self.hub.remote_connection_count()
    }

    /// Every open, not yet revoked connection of this node, with what its token said.
    pub fn local_credentials(&self) -> Vec<Credentials> {
        self.hub.local_credentials()
    }

    /// Revokes one connection of this node (a re-check found its token no longer valid).
    pub fn revoke_connection(&self, conn_id: &str) -> bool {
        self.hub.revoke_connection(conn_id)
    }

    /// Revokes the connections of this node that `r` covers ([`Bus::revoke`] does it on
    /// every node). Returns how many.
    pub fn revoke_local(&self, r: &Revocation) -> usize {
        self.hub.revoke(r)
    }

    /// Whether `user_id` may read `cid`, by the read decision deliveries pass (no decision
    /// configured: no one may).
    pub async fn may_read(&self, cid: &str, user_id: &str) -> bool {
        match self.hub.gate() {
            Some(gate) => gate.may_read(cid, user_id).await,
            None => false,
        }
    }

    /// Subscribes a connection of this node to a channel's events. `None` if the connection
    /// is gone.
    pub fn watch(&self, conn_id: &str, cid: &str) -> Option<WatchChange> {
        self.hub.watch(conn_id, cid)
    }

    /// Ends a connection's watch on a channel. `None` if it was not watching.
    pub fn unwatch(&self, conn_id: &str, cid: &str) -> Option<WatchChange> {
        self.hub.unwatch(conn_id, cid)
    }

    /// Removes one user's watches on a channel (they left it), on every connection of this
    /// node; other nodes stop delivering to them through the read decision.
    pub fn unwatch_user(&self, cid: &str, user_id: &str) {
        self.hub.unwatch_user(cid, user_id);
    }

    /// Removes every watch of this node on a channel (it was deleted).
    pub fn forget_channel(&self, cid: &str) {
        self.hub.forget_channel(cid);
    }

    /// Subscribes a connection of this node to the presence of `user_ids`.
    pub fn subscribe_presence(&self, conn_id: &str, user_ids: &[String]) {
        self.hub.subscribe_presence(conn_id, user_ids);
    }

    /// Distinct users watching a channel on any node.
    pub fn watcher_count(&self, cid: &str) -> usize {
        self.hub.watcher_count(cid)
    }

    /// Distinct users watching a channel on any node, sorted.
    pub fn watcher_ids(&self, cid: &str) -> Vec<String> {
        self.hub.watcher_ids(cid)
    }

    /// Whether the user watches the channel on any node.
    pub fn is_watching(&self, cid: &str, user_id: &str) -> bool {
        self.hub.is_watching(cid, user_id)
    }

    /// Whether the user has a connection open on any node.
    pub fn is_online(&self, user_id: &str) -> bool {
        self.hub.is_online(user_id)
    }

    /// Resolves once no connection of this node is open (shutdown).
    pub async fn wait_idle(&self) {
        self.hub.wait_idle().await;
    }
}
