//! Storage: one trait per aggregate, each with a SQLite and a PostgreSQL implementation
//! (`sqlite.rs`, `postgres.rs`, both generated from the SQL in `sql.rs`). One contract test
//! suite (`tests/api/store_contract.rs`) runs against both.
//!
//! Aggregates: users; channels with their members and read state; messages with their
//! reactions; app settings. Times are microseconds since the epoch ([`crate::time`]);
//! custom fields are a JSON object stored as text (it will become ciphertext once fields are
//! encrypted, so no JSON column type is relied upon).

pub mod encrypted;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::time::Micros;

/// Custom fields, flattened on the wire.
pub type Fields = Map<String, Value>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated (for example a duplicate message id). The text is
    /// safe to show to the caller.
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A sealed value failed to open for a reason other than a destroyed key (tampering, a
    /// missing KEK): an integrity failure, never shown as data.
    #[error("field encryption error: {0}")]
    Crypto(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub role: String,
    pub data: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub last_active: Option<Micros>,
    pub deactivated_at: Option<Micros>,
    pub deleted_at: Option<Micros>,
    pub banned: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRow {
    pub cid: String,
    pub kind: String,
    pub id: String,
    pub created_by_id: Option<String>,
    pub data: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub last_message_at: Option<Micros>,
    pub deleted_at: Option<Micros>,
    pub truncated_at: Option<Micros>,
    pub frozen: bool,
    pub message_count: i64,
    /// Derived on read; ignored on write.
    pub member_count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub cid: String,
    pub user_id: String,
    pub channel_role: String,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadRow {
    pub cid: String,
    pub user_id: String,
    pub last_read: Micros,
    pub last_read_message_id: Option<String>,
    pub unread_messages: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: String,
    pub cid: String,
    pub user_id: String,
    /// `regular`, `reply`, `deleted`, `system`.
    pub kind: String,
    pub text: String,
    /// Everything else the client sent: attachments, mentions, custom fields.
    pub data: Fields,
    pub parent_id: Option<String>,
    pub show_in_channel: bool,
    pub silent: bool,
    pub pinned: bool,
    /// Derived from the replies; ignored on write.
    pub reply_count: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub deleted_at: Option<Micros>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReactionRow {
    pub message_id: String,
    pub user_id: String,
    pub kind: String,
    pub score: i64,
    pub data: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// Where a page of messages starts, relative to a message (its time and id).
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    /// The newest messages.
    Latest,
    /// Messages before (or up to, when `inclusive`) the given position, newest first.
    Before {
        at: Micros,
        id: String,
        inclusive: bool,
    },
    /// Messages after (or from, when `inclusive`) the given position, oldest first.
    After {
        at: Micros,
        id: String,
        inclusive: bool,
    },
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts or fully replaces a user (role and custom data); keeps `created_at`.
    async fn upsert_user(&self, user: &UserRow, audit: Audit<'_>) -> StoreResult<UserRow>;
    async fn find_user(&self, id: &str) -> StoreResult<Option<UserRow>>;
    async fn find_users(&self, ids: &[String]) -> StoreResult<Vec<UserRow>>;
    /// All users, oldest first, at most `cap` (queries filter these in memory).
    async fn find_all_users(&self, cap: i64) -> StoreResult<Vec<UserRow>>;
    async fn update_last_active(&self, id: &str, at: Micros) -> StoreResult<()>;
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Creates the channel with its members (and their read state) unless it exists.
    /// Returns whether it was created.
    async fn insert_channel(
        &self,
        channel: &ChannelRow,
        members: &[MemberRow],
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    async fn find_channel(&self, cid: &str) -> StoreResult<Option<ChannelRow>>;
    async fn find_channels(&self, cids: &[String]) -> StoreResult<Vec<ChannelRow>>;
    /// Channels (not deleted) that have `user_id` as a member.
    async fn find_channels_for_member(&self, user_id: &str) -> StoreResult<Vec<ChannelRow>>;
    /// Channels (not deleted) of any of the given types, at most `cap`.
    async fn find_channels_of_types(
        &self,
        kinds: &[String],
        cap: i64,
    ) -> StoreResult<Vec<ChannelRow>>;
    /// Writes data, frozen, truncated_at, deleted_at and updated_at.
    async fn update_channel(&self, channel: &ChannelRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Removes the channel, its members, reads, messages and reactions.
    async fn delete_channel(&self, cid: &str, audit: Audit<'_>) -> StoreResult<()>;
    /// Hides messages before `at`, resets unread counts; with `hard`, deletes them.
    async fn truncate_channel(
        &self,
        cid: &str,
        at: Micros,
        hard: bool,
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn find_members(&self, cids: &[String]) -> StoreResult<Vec<MemberRow>>;
    /// Adds members not already present (with read state starting at their join time);
    /// returns the ones added, with the audit record `audit` makes for each in the same
    /// transaction.
    async fn add_members(
        &self,
        cid: &str,
        members: &[MemberRow],
        audit: MemberAudit<'_>,
    ) -> StoreResult<Vec<MemberRow>>;
    async fn update_member_role(
        &self,
        cid: &str,
        user_id: &str,
        role: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    /// Removes members and their read state; returns the ids removed (with the audit record
    /// `audit` makes for each, in the same transaction).
    async fn remove_members(
        &self,
        cid: &str,
        user_ids: &[String],
        audit: RemovalAudit<'_>,
    ) -> StoreResult<Vec<String>>;
    async fn find_reads(&self, cids: &[String]) -> StoreResult<Vec<ReadRow>>;
    /// Read state of `user_id` in every channel that is not deleted.
    async fn find_reads_for_user(&self, user_id: &str) -> StoreResult<Vec<(ReadRow, String)>>;
    /// Inserts or replaces one read state.
    async fn upsert_read(&self, read: &ReadRow) -> StoreResult<()>;
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a new message, and in the same transaction moves the channel's
    /// `last_message_at`, counts the parent's reply, and (when `count_unread`) adds one
    /// unread message for every other member. A duplicate id is a [`StoreError::Conflict`].
    async fn insert_message(
        &self,
        message: &MessageRow,
        count_unread: bool,
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        self.insert_message_with_tokens(message, count_unread, &[], audit)
            .await
    }
    /// As [`MessageStore::insert_message`], storing the message's blind-index tokens in the
    /// same transaction.
    async fn insert_message_with_tokens(
        &self,
        message: &MessageRow,
        count_unread: bool,
        tokens: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn find_message(&self, id: &str) -> StoreResult<Option<MessageRow>>;
    async fn find_messages(&self, ids: &[String]) -> StoreResult<Vec<MessageRow>>;
    /// A page of channel messages (thread replies only when shown in the channel) newer
    /// than `since`, in ascending order.
    async fn find_channel_messages(
        &self,
        cid: &str,
        since: Option<Micros>,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    /// A page of a thread's replies, in ascending order.
    async fn find_replies(
        &self,
        parent_id: &str,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    async fn find_pinned_messages(
        &self,
        cid: &str,
        since: Option<Micros>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    /// Messages in `cids` whose text contains `needle` (case-insensitive), newest first.
    async fn search_messages(
        &self,
        cids: &[String],
        needle: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    /// Channel messages after `after` not written by `user_id` (thread-only replies excluded).
    async fn count_messages_after(
        &self,
        cid: &str,
        after: Micros,
        user_id: &str,
    ) -> StoreResult<i64>;
    /// Writes text, data, type, pinned, updated_at and deleted_at.
    async fn update_message(&self, message: &MessageRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Removes a message and its reactions (its replies stay, as in Stream).
    async fn delete_message(&self, id: &str, audit: Audit<'_>) -> StoreResult<()>;
    /// Stores a reaction; with `enforce_unique`, removes the user's other reactions on the
    /// message first. Returns true when it replaced an existing reaction of that type.
    async fn upsert_reaction(
        &self,
        reaction: &ReactionRow,
        enforce_unique: bool,
    ) -> StoreResult<bool>;
    async fn delete_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        kind: &str,
    ) -> StoreResult<Option<ReactionRow>>;
    /// All reactions on the given messages, oldest first.
    async fn find_reactions(&self, message_ids: &[String]) -> StoreResult<Vec<ReactionRow>>;
    /// Replaces the blind-index tokens of a message.
    async fn replace_message_tokens(&self, message_id: &str, tokens: &[String]) -> StoreResult<()>;
    /// Drops the blind-index tokens of every message by `user_id` (their key is shredded).
    async fn delete_tokens_of_author(&self, user_id: &str) -> StoreResult<()>;
    /// Ids of the messages written by `user_id`, in id order after `after`.
    async fn find_message_ids_by_author(
        &self,
        user_id: &str,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// Messages (not deleted, not truncated) that carry at least `required` of `tokens`,
    /// newest first.
    async fn search_messages_by_tokens(
        &self,
        tokens: &[String],
        required: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>>;
}

#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn find_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Stores `value` under `key` unless a value is there; returns the stored value.
    async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<String>;
    async fn upsert_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    async fn delete_setting(&self, key: &str) -> StoreResult<()>;
}

/// A stored key-encryption key (wrapped by the root key).
#[derive(Clone)]
pub struct KekRow {
    pub id: String,
    pub wrapped: Vec<u8>,
    pub provider: String,
    pub created_at: Micros,
    pub active: bool,
}

/// A stored data-encryption key (wrapped by a KEK); `wrapped` is `None` once destroyed.
#[derive(Clone)]
pub struct DekRow {
    pub id: String,
    pub subject: String,
    pub kek_id: String,
    pub wrapped: Option<Vec<u8>>,
    pub created_at: Micros,
    pub destroyed_at: Option<Micros>,
    pub active: bool,
}

/// Keys for field encryption. Rows hold only wrapped key material.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn find_active_kek(&self) -> StoreResult<Option<KekRow>>;
    async fn find_kek(&self, id: &str) -> StoreResult<Option<KekRow>>;
    /// Stores a KEK; `true` if stored, `false` if another node stored an active one first.
    async fn insert_kek(&self, kek: &KekRow) -> StoreResult<bool>;
    async fn find_active_dek(&self, subject: &str) -> StoreResult<Option<DekRow>>;
    async fn find_dek(&self, id: &str) -> StoreResult<Option<DekRow>>;
    async fn insert_dek(&self, dek: &DekRow) -> StoreResult<()>;
    /// Destroys every DEK of a subject (drops the wrapped bytes); returns how many.
    async fn destroy_deks(&self, subject: &str, at: Micros) -> StoreResult<u64>;
    /// DEKs (not destroyed) wrapped by the given KEK.
    async fn find_deks_by_kek(&self, kek_id: &str) -> StoreResult<Vec<DekRow>>;
    /// Stores a DEK's new wrapping (KEK rotation).
    async fn update_dek_wrapping(&self, id: &str, kek_id: &str, wrapped: &[u8]) -> StoreResult<()>;
    /// Makes `kek_id` the only active KEK.
    async fn activate_kek(&self, kek_id: &str) -> StoreResult<()>;
    /// Retires the active DEKs of a subject: new writes get a new one.
    async fn retire_deks(&self, subject: &str) -> StoreResult<u64>;
}

/// An audit record waiting in the outbox: written in the same transaction as the action it
/// records, chained later by the appender. Ids are natural here and pseudonymised when
/// chained; `pii` is already ciphertext (or empty), `meta` already canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub at_ms: i64,
    pub event_type: u16,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub pii: Vec<u8>,
    pub meta: Vec<u8>,
}

/// The audit records of one write, stored in its transaction ("both or neither").
pub type Audit<'a> = &'a [OutboxRow];
/// Makes the audit record of each member a write actually adds.
pub type MemberAudit<'a> = &'a (dyn Fn(&MemberRow) -> Option<OutboxRow> + Send + Sync);
/// Makes the audit record of each member a write actually removes.
pub type RemovalAudit<'a> = &'a (dyn Fn(&str) -> Option<OutboxRow> + Send + Sync);

/// One chained entry with the searchable copies of its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: i64,
    pub event_type: i32,
    pub actor: Vec<u8>,
    pub subject: Vec<u8>,
    pub object_ref: String,
    pub outcome: String,
    pub entry: Vec<u8>,
    pub chain_hash: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub created_at: Micros,
}

/// What one appender batch commits at once.
pub struct AuditBatch {
    pub entries: Vec<AuditRow>,
    /// Complete subtree hashes at levels 8, 16, …: (level, index, hash).
    pub nodes: Vec<(u32, u64, [u8; 32])>,
    pub checkpoint: CheckpointRow,
    /// Outbox rows chained by this batch (deleted in the same transaction).
    pub drained: Vec<i64>,
}

/// An auditor's search; every filter optional, newest first when `descending`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub from_ts: Option<i64>,
    pub to_ts: Option<i64>,
    pub actor: Option<Vec<u8>>,
    pub subject: Option<Vec<u8>>,
    pub event_type: Option<i32>,
    pub object_ref: Option<String>,
    pub outcome: Option<String>,
    /// Keyset pagination: entries with seq below (descending) or above this.
    pub cursor: Option<i64>,
    pub descending: bool,
    pub limit: i64,
}

/// The audit log's tables: the outbox, the append-only entries, tree nodes and checkpoints,
/// and the pseudonym directory.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Stores records outside any other write (actions with no write of their own, and
    /// nodes that are not the appender).
    async fn insert_outbox(&self, rows: &[OutboxRow]) -> StoreResult<()>;
    /// The oldest waiting records, by id.
    async fn find_outbox(&self, limit: i64) -> StoreResult<Vec<(i64, OutboxRow)>>;
    /// Whether this process may append: always on SQLite; on PostgreSQL, holding a
    /// session-level advisory lock on a dedicated connection (a leader lease).
    async fn hold_audit_lease(&self) -> StoreResult<bool>;
    /// Pseudonyms for `(kind, natural id)` pairs, created (random) where missing.
    async fn resolve_pseudonyms(
        &self,
        ids: &[(String, String)],
    ) -> StoreResult<Vec<((String, String), Vec<u8>)>>;
    /// Existing pseudonyms only.
    async fn find_pseudonyms(
        &self,
        ids: &[(String, String)],
    ) -> StoreResult<Vec<((String, String), Vec<u8>)>>;
    /// Natural ids of pseudonyms still in the directory.
    async fn find_natural_ids(
        &self,
        pseudonyms: &[Vec<u8>],
    ) -> StoreResult<Vec<(Vec<u8>, (String, String))>>;
    /// Unlinks pseudonyms from a natural id (erasure); returns how many.
    async fn delete_pseudonyms(&self, kind: &str, natural_ids: &[String]) -> StoreResult<u64>;
    async fn append_audit(&self, batch: &AuditBatch) -> StoreResult<()>;
    /// The entry with the highest seq.
    async fn find_audit_head(&self) -> StoreResult<Option<AuditRow>>;
    async fn find_audit_entries(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRow>>;
    /// Entries with seq in [from, to), in order.
    async fn find_audit_range(&self, from: i64, to: i64) -> StoreResult<Vec<AuditRow>>;
    /// Leaf hashes of entries [from, to), in order.
    async fn find_leaf_hashes(&self, from: i64, to: i64) -> StoreResult<Vec<Vec<u8>>>;
    /// Stored subtree hashes of `level` with index in [from, to), in order.
    async fn find_audit_nodes(&self, level: i32, from: i64, to: i64) -> StoreResult<Vec<Vec<u8>>>;
    async fn find_latest_checkpoint(&self) -> StoreResult<Option<CheckpointRow>>;
    async fn find_checkpoint(&self, size: i64) -> StoreResult<Option<CheckpointRow>>;
    /// The smallest seq with ts >= `from_ts` and the largest with ts < `to_ts`.
    async fn find_seq_bounds(&self, from_ts: i64, to_ts: i64) -> StoreResult<Option<(i64, i64)>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub method: String,
    pub provider: Option<String>,
    pub saml_session_index: Option<String>,
    pub mfa: bool,
    pub created_at: Micros,
    pub last_seen: Micros,
    pub expires_at: Micros,
    pub revoked_at: Option<Micros>,
}

/// An SSO provider; `secret` is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    pub config: String,
    pub secret: Option<Vec<u8>>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A TOTP enrolment; `secret` is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRow {
    pub user_id: String,
    pub secret: Vec<u8>,
    pub confirmed: bool,
    pub last_step: i64,
    pub failures: i64,
    pub locked_until: Option<Micros>,
    pub created_at: Micros,
}

/// Interactive identity: sessions, passwords, TOTP, recovery codes, SSO providers, the
/// SAML replay cache and token revocation.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    async fn insert_session(&self, s: &SessionRow, audit: Audit<'_>) -> StoreResult<()>;
    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRow>>;
    async fn find_sessions_of(&self, user_id: &str) -> StoreResult<Vec<SessionRow>>;
    /// Moves `last_seen` (and sets `mfa` when true).
    async fn touch_session(&self, id_hash: &str, at: Micros, mfa: bool) -> StoreResult<()>;
    async fn revoke_session(
        &self,
        id_hash: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    /// Revokes every live session of a user; returns how many.
    async fn revoke_sessions_of(
        &self,
        user_id: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<u64>;
    async fn find_password(&self, user_id: &str) -> StoreResult<Option<String>>;
    async fn upsert_password(
        &self,
        user_id: &str,
        hash: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn find_totp(&self, user_id: &str) -> StoreResult<Option<TotpRow>>;
    async fn upsert_totp(&self, row: &TotpRow, audit: Audit<'_>) -> StoreResult<()>;
    async fn delete_totp(&self, user_id: &str, audit: Audit<'_>) -> StoreResult<()>;
    /// Replaces a user's recovery codes.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[(String, String)],
    ) -> StoreResult<()>;
    /// Unused codes: (id, hash).
    async fn find_recovery_codes(&self, user_id: &str) -> StoreResult<Vec<(String, String)>>;
    /// Marks a code used; false when it already was (a race).
    async fn use_recovery_code(&self, id: &str, at: Micros, audit: Audit<'_>) -> StoreResult<bool>;
    async fn upsert_provider(&self, p: &ProviderRow, audit: Audit<'_>) -> StoreResult<()>;
    async fn find_provider(&self, id: &str) -> StoreResult<Option<ProviderRow>>;
    async fn find_providers(&self) -> StoreResult<Vec<ProviderRow>>;
    /// Remembers a SAML assertion id until `expires_at`; false when it was seen (a replay).
    async fn insert_replay(&self, id: &str, expires_at: Micros, now: Micros) -> StoreResult<bool>;
    /// Stores a login flow in progress (expired ones are dropped on the way).
    async fn insert_flow(
        &self,
        id: &str,
        data: &str,
        expires_at: Micros,
        now: Micros,
    ) -> StoreResult<()>;
    /// Takes a flow (once): its data unless it is unknown, used or expired.
    async fn take_flow(&self, id: &str, now: Micros) -> StoreResult<Option<String>>;
    async fn set_tokens_revoked(&self, user_id: &str, before_secs: i64) -> StoreResult<()>;
    async fn find_tokens_revoked(&self, user_id: &str) -> StoreResult<Option<i64>>;
}

/// A legal hold; `reason` is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub id: String,
    pub scope: String,
    pub target: String,
    pub reason: String,
    pub placed_by: Option<String>,
    pub placed_at: Micros,
    pub released_by: Option<String>,
    pub released_at: Option<Micros>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EraseCounts {
    pub messages: u64,
    pub reactions: u64,
    pub memberships: u64,
    pub sessions: u64,
    pub user_rows: u64,
}

/// Legal holds and the row work of erasure.
#[async_trait]
pub trait ComplianceStore: Send + Sync {
    async fn insert_hold(&self, hold: &HoldRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Releases an active hold; false when it is unknown or already released.
    async fn release_hold(
        &self,
        id: &str,
        by: Option<&str>,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    async fn find_hold(&self, id: &str) -> StoreResult<Option<HoldRow>>;
    /// Every hold, newest first (with `active_only`, unreleased ones).
    async fn find_holds(&self, active_only: bool) -> StoreResult<Vec<HoldRow>>;
    /// Active holds on the user or on any channel they wrote in.
    async fn find_holds_covering_user(&self, user_id: &str) -> StoreResult<Vec<HoldRow>>;
    /// Removes a user's rows in one transaction: reactions, messages (`hard_messages`:
    /// deleted; else emptied and marked deleted), memberships and read state, interactive
    /// credentials and sessions, and the user row (`hard_user`: deleted; else emptied and
    /// marked deleted).
    async fn erase_user_rows(
        &self,
        user_id: &str,
        hard_messages: bool,
        hard_user: bool,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<EraseCounts>;
    /// Messages in channels of `channel_type` created before `before`: how many there are,
    /// and how many of them an active legal hold covers (their channel or their author is
    /// held).
    async fn count_expired_messages(
        &self,
        channel_type: &str,
        before: Micros,
    ) -> StoreResult<ExpiredCounts>;
    /// Ids of up to `limit` of those messages that no active hold covers, oldest first.
    async fn find_expired_message_ids(
        &self,
        channel_type: &str,
        before: Micros,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// Deletes the messages `ids` with their reactions and search tokens, in one
    /// transaction with `audit`, if every one of them still exists and no active hold
    /// covers any; otherwise changes nothing and returns false (the caller finds the
    /// expired ones again).
    async fn delete_unheld_messages(&self, ids: &[String], audit: Audit<'_>) -> StoreResult<bool>;
}

/// What [`ComplianceStore::count_expired_messages`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExpiredCounts {
    /// Every expired message, held or not.
    pub expired: i64,
    /// Of those, the ones a legal hold keeps.
    pub held: i64,
}

/// Usage metering (monthly active users, connection peaks).
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Records that `user_id` connected on `day` (YYYY-MM-DD) of `month` (YYYY-MM).
    async fn insert_active_user(&self, month: &str, day: &str, user_id: &str) -> StoreResult<()>;
    /// Raises a node's peak for a bucket to `peak` (never lowers it).
    async fn upsert_connection_peak(
        &self,
        node: &str,
        bucket: Micros,
        peak: i64,
    ) -> StoreResult<()>;
    /// Distinct users per first-connection day of the month.
    async fn count_new_active_users_by_day(&self, month: &str) -> StoreResult<Vec<(String, i64)>>;
    /// Distinct users per day, for days starting with `month`.
    async fn count_daily_users(&self, month: &str) -> StoreResult<Vec<(String, i64)>>;
    /// Per bucket in [from, to): the sum of every node's peak.
    async fn find_connection_peaks(
        &self,
        from: Micros,
        to: Micros,
    ) -> StoreResult<Vec<(Micros, i64)>>;
}

/// Where a job is in its life. Stream's task API shows `pending`, `running`, `completed` and
/// `failed`; `cancelled` is Ward's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Completed, failed or cancelled: nothing will run it again.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// One job of the durable queue (`src/jobs`). Payload, result and checkpoint are JSON
/// holding ids and counts, never personal data in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    /// The stable name its runner is registered under (`gdpr.export`).
    pub kind: String,
    pub payload: Value,
    pub status: JobStatus,
    /// Claims so far (a crashed run counts).
    pub attempts: i64,
    pub max_attempts: i64,
    /// Due from this time (retries move it by the backoff).
    pub run_at: Micros,
    pub locked_by: Option<String>,
    /// The lease: past it, another worker may claim the job (its worker crashed).
    pub locked_until: Option<Micros>,
    pub progress_done: i64,
    pub progress_total: Option<i64>,
    pub result: Option<Value>,
    /// The last failure, short; never personal data.
    pub error: Option<String>,
    /// The job's own resume cursor.
    pub checkpoint: Option<Value>,
    pub cancel_requested: bool,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub finished_at: Option<Micros>,
}

/// One claim of a job: every write a worker makes while running it names the claim, and
/// changes nothing once the claim is superseded (its lease expired and another worker
/// claimed the job, counting one more attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub id: String,
    pub worker: String,
    pub attempt: i64,
}

/// How a claim ends.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Completed(Value),
    /// Due again at `run_at`; cancelled instead when cancellation was requested meanwhile.
    Retry {
        error: String,
        run_at: Micros,
    },
    Failed(String),
    Cancelled,
    /// Handed back unfinished (the worker is stopping): due at once, the attempt not counted.
    Released,
}

/// The durable job queue.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn insert_job(&self, job: &JobRow) -> StoreResult<()>;
    async fn find_job(&self, id: &str) -> StoreResult<Option<JobRow>>;
    /// Claims the job due first: pending, or running under a lease that expired before
    /// `now`. It becomes running, leased to `worker` until `until`, with one more attempt.
    /// Safe with any number of workers on any number of nodes.
    async fn claim_job(
        &self,
        worker: &str,
        now: Micros,
        until: Micros,
    ) -> StoreResult<Option<JobRow>>;
    /// Extends the lease; false when the claim was superseded.
    async fn update_job_lease(
        &self,
        lease: &JobLease,
        until: Micros,
        now: Micros,
    ) -> StoreResult<bool>;
    /// False when the claim was superseded.
    async fn update_job_progress(
        &self,
        lease: &JobLease,
        done: i64,
        total: i64,
        now: Micros,
    ) -> StoreResult<bool>;
    /// False when the claim was superseded.
    async fn update_job_checkpoint(
        &self,
        lease: &JobLease,
        checkpoint: &Value,
        now: Micros,
    ) -> StoreResult<bool>;
    /// Ends the claim; false (and nothing written) when it was superseded.
    async fn finish_job(
        &self,
        lease: &JobLease,
        outcome: &JobOutcome,
        now: Micros,
    ) -> StoreResult<bool>;
    /// Cancels a pending job at once, and asks a running one to stop (its worker ends it as
    /// cancelled). Returns the status after, `None` for an unknown id; a finished job stays
    /// as it is.
    async fn cancel_job(&self, id: &str, now: Micros) -> StoreResult<Option<JobStatus>>;
}

/// The storage handle: one implementation behind every aggregate trait.
#[derive(Clone)]
pub struct Store {
    pub users: Arc<dyn UserStore>,
    pub channels: Arc<dyn ChannelStore>,
    pub messages: Arc<dyn MessageStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub usage: Arc<dyn UsageStore>,
    pub keys: Arc<dyn KeyStore>,
    pub audit: Arc<dyn AuditStore>,
    pub identity: Arc<dyn IdentityStore>,
    pub jobs: Arc<dyn JobStore>,
    pub compliance: Arc<dyn ComplianceStore>,
    pub dialect: &'static str,
}

impl Store {
    /// Opens the database named by `url` (`sqlite:` or `postgres://`), creating it when
    /// missing, and runs the migrations of its dialect.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::open(url, true).await
    }

    /// As [`Store::connect`], without migrating (for checks that must change nothing).
    pub async fn connect_without_migrating(url: &str) -> anyhow::Result<Self> {
        Self::open(url, false).await
    }

    async fn open(url: &str, migrate: bool) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::from_impl(
                Arc::new(SqliteStore::connect(url, migrate).await?),
                "sqlite",
            ))
        } else {
            Ok(Self::from_impl(
                Arc::new(PgStore::connect(url, migrate).await?),
                "postgres",
            ))
        }
    }

    /// The embedded migrations of the dialect `url` names.
    pub fn migrator(url: &str) -> sqlx::migrate::Migrator {
        if url.starts_with("sqlite:") {
            sqlite::migrator()
        } else {
            postgres::migrator()
        }
    }

    /// The same store with the classified columns sealed on write and opened on read.
    pub fn encrypted(self, crypto: Arc<crate::crypto::fields::FieldCrypto>) -> Self {
        Self {
            users: Arc::new(encrypted::EncryptedUsers {
                inner: self.users,
                crypto: crypto.clone(),
            }),
            channels: Arc::new(encrypted::EncryptedChannels {
                inner: self.channels,
                crypto: crypto.clone(),
            }),
            messages: Arc::new(encrypted::EncryptedMessages {
                inner: self.messages,
                crypto,
            }),
            ..self
        }
    }

    fn from_impl<S>(s: Arc<S>, dialect: &'static str) -> Self
    where
        S: UserStore
            + ChannelStore
            + MessageStore
            + SettingsStore
            + UsageStore
            + KeyStore
            + AuditStore
            + IdentityStore
            + JobStore
            + ComplianceStore
            + 'static,
    {
        Self {
            users: s.clone(),
            channels: s.clone(),
            messages: s.clone(),
            settings: s.clone(),
            usage: s.clone(),
            keys: s.clone(),
            audit: s.clone(),
            identity: s.clone(),
            jobs: s.clone(),
            compliance: s,
            dialect,
        }
    }
}

fn parse_fields(text: &str) -> Fields {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        _ => {
            tracing::error!("stored custom fields are not a JSON object; returning none");
            Fields::new()
        }
    }
}

fn fields_text(fields: &Fields) -> String {
    Value::Object(fields.clone()).to_string()
}
