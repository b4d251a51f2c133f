//! Storage: one module per aggregate, each holding its row types, its trait and the SQL of
//! its implementation. One implementation, [`SqlStore`], serves both SQLite and PostgreSQL:
//! the SQL is written once, and the few differences between the two (the transaction that
//! writes, the job-claim lock, the parameter limit, the audit lease) sit in `db.rs`
//! ([`db::Dialect`]) and `audit.rs`. One contract test suite (`tests/api/store_contract/`)
//! runs every aggregate against both.
//!
//! Aggregates: users; channels with their members and read state; messages with their
//! reactions and search tokens; app settings; usage; encryption keys; the audit log and its
//! pseudonyms; identity; jobs; compliance (holds, erasure, retention). Times are
//! microseconds since the epoch ([`crate::time`]); custom fields are a JSON object stored as
//! text (it is ciphertext once fields are encrypted, so no JSON column type is relied upon).

mod audit;
mod channels;
mod compliance;
pub mod db;
mod fault;
mod identity;
mod jobs;
mod keys;
mod members;
mod messages;
mod pseudonyms;
// Issue 16 item 8 (tier 2): polls.
mod drafts;
mod polls;
mod reactions;
mod reads;
mod search;
mod settings;
mod threads;
mod usage;
mod usergroups;
mod users;
// Uploads (issue 16).
mod uploads;
// Messages and reactions (issue 16): messages hidden for one user.
mod message_hides;
// push devices (issue 16)
mod devices;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use audit::{Audit, AuditBatch, AuditQuery, AuditRow, AuditStore, CheckpointRow, OutboxRow};
pub use channels::{ChannelRow, ChannelStore};
pub use compliance::{ComplianceStore, EraseCounts, ExpiredCounts, HoldRow};
pub use drafts::{DraftRow, DraftStore, ReminderRow};
pub use fault::Fault;
pub use identity::{IdentityStore, ProviderRow, SessionRow, TotpRow};
pub use jobs::{JobLease, JobOutcome, JobRow, JobStatus, JobStore};
pub use keys::{DekRow, KekRow, KeyStore};
pub use members::{MemberAudit, MemberRow, MemberState, MemberStore, RemovalAudit};
pub use message_hides::MessageHideStore;
pub use messages::{Cursor, MessageRow, MessageStore};
pub use polls::{PollOptionRow, PollRow, PollStore, PollVoteRow};
pub use reactions::ReactionRow;
pub use reads::ReadRow;
pub use settings::SettingsStore;
pub use threads::{ParticipantRow, ThreadReadRow, ThreadRow, ThreadStore};
pub use usage::UsageStore;
pub use usergroups::{UserGroupMemberRow, UserGroupRow, UserGroupStore};
pub use users::{UserRow, UserStore};
// Uploads (issue 16).
pub use uploads::{UploadRow, UploadStore};
// push devices (issue 16)
pub use devices::{DeviceRow, DeviceStore, PushPreferenceRow};

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

/// The implementation of every aggregate trait, over either database.
pub struct SqlStore {
    db: db::Db,
    /// Whether this process appends to the audit log (see [`audit::AuditLease`]).
    lease: audit::AuditLease,
}

impl SqlStore {
    /// Opens the database named by `url` (`sqlite:` or `postgres://`), creating it when
    /// missing, and with `migrate` runs the migrations of its dialect.
    pub async fn connect(url: &str, migrate: bool) -> anyhow::Result<Self> {
        Ok(Self {
            db: db::Db::connect(url, migrate).await?,
            lease: audit::AuditLease::default(),
        })
    }
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
    pub uploads: Arc<dyn UploadStore>,
    pub threads: Arc<dyn ThreadStore>,
    pub message_hides: Arc<dyn MessageHideStore>,
    pub polls: Arc<dyn PollStore>,
    /// Drafts and message reminders.
    pub drafts: Arc<dyn DraftStore>,
    pub usergroups: Arc<dyn UserGroupStore>,
    /// Push devices and preferences (issue 16); the token arrives sealed.
    pub devices: Arc<dyn DeviceStore>,
    /// Member state and slow mode (`members.rs`).
    pub members: Arc<dyn MemberStore>,
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
        Ok(Self::from_sql(Arc::new(
            SqlStore::connect(url, migrate).await?,
        )))
    }

    /// The embedded migrations of the dialect `url` names.
    pub fn migrator(url: &str) -> sqlx::migrate::Migrator {
        db::migrator(url)
    }

    fn from_sql(s: Arc<SqlStore>) -> Self {
        let dialect = s.db.dialect().name();
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
            uploads: s.clone(),
            message_hides: s.clone(),
            polls: s.clone(),
            drafts: s.clone(),
            usergroups: s.clone(),
            devices: s.clone(),
            members: s.clone(),
            compliance: s.clone(),
            threads: s,
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

/// Decodes every row with `decode`.
fn all<T>(
    rows: Vec<db::Row>,
    decode: fn(&db::Row) -> Result<T, sqlx::Error>,
) -> StoreResult<Vec<T>> {
    rows.iter()
        .map(|r| decode(r).map_err(StoreError::from))
        .collect()
}
