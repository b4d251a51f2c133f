//! What an audit entry records: the event catalogue (`audit/events.toml`, stable numeric
//! codes) and [`AuditEvent`], the typed builder every audited action fills in. It accepts
//! only identifiers (pseudonymised when the entry is written), catalogue-listed metadata
//! keys, and personal data that will be sealed under the subject's key — so no plaintext
//! personal data can reach the append-only log, where it could never be erased.
//!
//! Also the two ways code hands records over: [`AuditSink`] (synchronous; at the REST edge
//! the response waits until the records are durable) and [`DurableSink`] (waits itself).
//!
//! A leaf: it imports nothing of Ward, so every layer (the keyring, the policy engine, the
//! store's callers) can make records without depending on the log that chains them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

/// The catalogue. Codes are hashed into entries: never renumber or reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    WsConnect,
    WsDisconnect,
    TokenRejected,
    Login,
    LoginFailed,
    Logout,
    TwoFactor,
    SessionRevoked,
    MessageRead,
    MessageCreate,
    MessageUpdate,
    MessageDelete,
    ChannelCreate,
    ChannelUpdate,
    ChannelDelete,
    ChannelTruncate,
    MemberAdd,
    MemberRemove,
    MemberRole,
    UserUpsert,
    UserRole,
    UserState,
    AuthzDenied,
    AuthzServerCall,
    ConfigChange,
    KeyOperation,
    GdprExport,
    GdprErase,
    LegalHoldPlace,
    LegalHoldRelease,
    RetentionRun,
    AuditRead,
    AuditExport,
    OpsBackup,
    OpsRestore,
    // Uploads (issue 16).
    UploadCreate,
    UploadRead,
    UploadDelete,
    /// A push device registered or removed, or push preferences set (issue 16).
    UserDevice,
}

impl EventType {
    pub const ALL: [EventType; 39] = [
        Self::WsConnect,
        Self::WsDisconnect,
        Self::TokenRejected,
        Self::Login,
        Self::LoginFailed,
        Self::Logout,
        Self::TwoFactor,
        Self::SessionRevoked,
        Self::MessageRead,
        Self::MessageCreate,
        Self::MessageUpdate,
        Self::MessageDelete,
        Self::ChannelCreate,
        Self::ChannelUpdate,
        Self::ChannelDelete,
        Self::ChannelTruncate,
        Self::MemberAdd,
        Self::MemberRemove,
        Self::MemberRole,
        Self::UserUpsert,
        Self::UserRole,
        Self::UserState,
        Self::AuthzDenied,
        Self::AuthzServerCall,
        Self::ConfigChange,
        Self::KeyOperation,
        Self::GdprExport,
        Self::GdprErase,
        Self::LegalHoldPlace,
        Self::LegalHoldRelease,
        Self::RetentionRun,
        Self::AuditRead,
        Self::AuditExport,
        Self::OpsBackup,
        Self::OpsRestore,
        Self::UploadCreate,
        Self::UploadRead,
        Self::UploadDelete,
        Self::UserDevice,
    ];

    /// (code, name) as in `audit/events.toml`.
    pub const fn describe(self) -> (u16, &'static str) {
        match self {
            Self::WsConnect => (1, "ws.connect"),
            Self::WsDisconnect => (2, "ws.disconnect"),
            Self::TokenRejected => (3, "token.rejected"),
            Self::Login => (10, "auth.login"),
            Self::LoginFailed => (11, "auth.login_failed"),
            Self::Logout => (12, "auth.logout"),
            Self::TwoFactor => (13, "auth.2fa"),
            Self::SessionRevoked => (14, "session.revoked"),
            Self::MessageRead => (20, "message.read"),
            Self::MessageCreate => (21, "message.create"),
            Self::MessageUpdate => (22, "message.update"),
            Self::MessageDelete => (23, "message.delete"),
            Self::ChannelCreate => (30, "channel.create"),
            Self::ChannelUpdate => (31, "channel.update"),
            Self::ChannelDelete => (32, "channel.delete"),
            Self::ChannelTruncate => (33, "channel.truncate"),
            Self::MemberAdd => (34, "member.add"),
            Self::MemberRemove => (35, "member.remove"),
            Self::MemberRole => (36, "member.role"),
            Self::UserUpsert => (37, "user.upsert"),
            Self::UserRole => (38, "user.role"),
            Self::UserState => (39, "user.state"),
            Self::AuthzDenied => (40, "authz.denied"),
            Self::AuthzServerCall => (41, "authz.server_call"),
            Self::ConfigChange => (50, "config.change"),
            Self::KeyOperation => (60, "key.operation"),
            Self::GdprExport => (70, "gdpr.export"),
            Self::GdprErase => (71, "gdpr.erase"),
            Self::LegalHoldPlace => (72, "legal_hold.place"),
            Self::LegalHoldRelease => (73, "legal_hold.release"),
            Self::RetentionRun => (74, "retention.run"),
            Self::AuditRead => (80, "audit.read"),
            Self::AuditExport => (81, "audit.export"),
            Self::OpsBackup => (90, "ops.backup"),
            Self::OpsRestore => (91, "ops.restore"),
            Self::UploadCreate => (100, "upload.create"),
            Self::UploadRead => (101, "upload.read"),
            Self::UploadDelete => (102, "upload.delete"),
            Self::UserDevice => (46, "user.device"),
        }
    }

    pub fn code(self) -> u16 {
        self.describe().0
    }

    pub fn name(self) -> &'static str {
        self.describe().1
    }

    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.code() == code)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// What an audit entry is about besides its actor and subject. The id is pseudonymised
/// when the entry is written (message ids made by the SDK embed the user id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `channel`, `message`, `user`, `key`, `setting`, `task`, `hold`, `audit`.
    pub kind: &'static str,
    pub id: String,
}

/// One audited fact, before it is pseudonymised, sealed and chained.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub event: EventType,
    /// The user who acted; `None` for the system itself.
    pub actor: Option<String>,
    /// The data subject the entry is about (whose key seals `pii`).
    pub subject: Option<String>,
    pub object: Option<ObjectRef>,
    pub outcome: Outcome,
    /// Non-personal metadata; keys must be listed for the event in `audit/events.toml`.
    pub meta: BTreeMap<String, String>,
    /// Personal data the record needs (client address, user agent); stored only as
    /// ciphertext under the subject's key, dropped when there is no subject or no key.
    pub pii: Option<Value>,
    /// When it happened (ms since the epoch).
    pub at_ms: i64,
}

impl AuditEvent {
    pub fn new(event: EventType) -> Self {
        Self {
            event,
            actor: None,
            subject: None,
            object: None,
            outcome: Outcome::Ok,
            meta: BTreeMap::new(),
            pii: None,
            at_ms: chrono::Utc::now().timestamp_millis(),
        }
    }

    pub fn actor(mut self, id: impl Into<String>) -> Self {
        self.actor = Some(id.into());
        self
    }

    pub fn actor_opt(mut self, id: Option<&str>) -> Self {
        self.actor = id.map(str::to_string);
        self
    }

    pub fn subject(mut self, id: impl Into<String>) -> Self {
        self.subject = Some(id.into());
        self
    }

    pub fn object(mut self, kind: &'static str, id: impl Into<String>) -> Self {
        self.object = Some(ObjectRef {
            kind,
            id: id.into(),
        });
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn meta(mut self, key: &str, value: impl ToString) -> Self {
        self.meta.insert(key.to_string(), value.to_string());
        self
    }

    pub fn pii(mut self, value: Value) -> Self {
        self.pii = Some(value);
        self
    }
}

/// Where code that cannot wait (the policy engine, the keyring) sends records. The audit
/// log appends them; at the REST edge the response waits until they are durable.
pub trait AuditSink: Send + Sync {
    fn record(&self, event: AuditEvent);
}

/// Where code that must know its record is stored before it goes on sends it (a key
/// shredded, a secret sealed in place): `record_durable` returns once the record is
/// durable, and an error when it could not be stored (the action must then not be reported
/// as done).
pub trait DurableSink: Send + Sync {
    fn record_durable(&self, event: AuditEvent) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Keeps records in memory (unit tests, offline commands).
pub struct MemorySink {
    records: Mutex<Vec<AuditEvent>>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self {
            records: Mutex::new(Vec::new()),
        }
    }

    pub fn recent(&self) -> Vec<AuditEvent> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Default for MemorySink {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: AuditEvent) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}

impl DurableSink for MemorySink {
    async fn record_durable(&self, event: AuditEvent) -> anyhow::Result<()> {
        AuditSink::record(self, event);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_file_and_the_event_list_agree() {
        let text = include_str!("../../audit/events.toml");
        let doc: toml::Table = toml::from_str(text).unwrap();
        let listed = doc["event"].as_array().unwrap();
        assert_eq!(listed.len(), EventType::ALL.len());
        let mut codes = std::collections::HashSet::new();
        for e in listed {
            let code = e["code"].as_integer().unwrap() as u16;
            let name = e["name"].as_str().unwrap();
            assert!(codes.insert(code), "code {code} is used twice");
            let ty =
                EventType::from_code(code).unwrap_or_else(|| panic!("no EventType for {code}"));
            assert_eq!(ty.name(), name, "code {code}");
            assert!(e["meta"].as_array().is_some(), "{name} lists its meta keys");
        }
    }
}
