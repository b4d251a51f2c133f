//! The shapes of the successful replies of Ward's own endpoints. The handlers build these
//! with `json!`, so the types exist only to be described: they are never constructed.
//! Every `Reply` also carries `duration` (time spent, e.g. `0.42ms`); objects may carry
//! more fields than listed.
#![allow(dead_code, reason = "schema-only types describing json! replies")]

use std::collections::BTreeMap;

use utoipa::ToSchema;

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Health {
    /// `degraded` while the cross-node bus is down (local connections still work).
    #[schema(inline)]
    status: HealthStatus,
    /// `local` (one node), `up` or `down`.
    #[schema(inline)]
    bus: BusState,
    /// `sqlite` or `postgres`.
    database: String,
    node: String,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
enum HealthStatus {
    Ok,
    Degraded,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
enum BusState {
    Local,
    Up,
    Down,
}

/// `GET /usage`: the month's monthly active users and peak concurrent connections.
#[derive(ToSchema)]
pub struct UsageReply {
    usage: UsageReport,
}

#[derive(ToSchema)]
pub struct UsageReport {
    /// `YYYY-MM`.
    month: String,
    mau: i64,
    pcc: i64,
    pcc_at: Option<String>,
    granularity_seconds: u64,
    /// The plan's included MAU and PCC.
    #[schema(value_type = Object)]
    plan: serde_json::Value,
    #[schema(value_type = Object)]
    overage: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    daily: Vec<serde_json::Value>,
}

/// `GET /audit/entries`: a page of entries, newest first unless `order=asc`.
#[derive(ToSchema)]
pub struct AuditEntries {
    entries: Vec<AuditEntry>,
    /// The `cursor` of the next page; `null` on the last page.
    next: Option<i64>,
}

/// One audit entry, its identifiers resolved from their pseudonyms where still known.
#[derive(ToSchema)]
pub struct AuditEntry {
    seq: i64,
    /// RFC 3339.
    time: String,
    ts_ms: i64,
    /// The event's name in the catalogue (`auth.login`, `gdpr.erase`...).
    event: Option<String>,
    event_type: i32,
    #[schema(value_type = Option<Object>)]
    actor: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    subject: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    object: serde_json::Value,
    outcome: Option<String>,
    #[schema(value_type = Object)]
    meta: serde_json::Value,
    /// The entry's personal data, decrypted; `null` once crypto-shredded.
    #[schema(value_type = Option<Object>)]
    pii: serde_json::Value,
    pii_state: String,
    /// The entry's bytes as chained (base64).
    entry: String,
    leaf_hash: String,
    chain_hash: String,
}

/// `GET /audit/checkpoint`: the latest signed checkpoint (a C2SP signed note).
#[derive(ToSchema)]
pub struct Checkpoint {
    origin: String,
    tree_size: i64,
    /// The Merkle root (base64).
    root: String,
    /// The signed note.
    checkpoint: String,
    verifier_key: String,
}

/// `GET /audit/proof/inclusion`.
#[derive(ToSchema)]
pub struct InclusionProofReply {
    seq: u64,
    tree_size: u64,
    /// The entry's bytes (base64).
    entry: String,
    /// The proof's hashes (base64).
    proof: Vec<String>,
    checkpoint: String,
    /// The proof in the C2SP tlog-proof text format.
    tlog_proof: String,
}

/// `GET /audit/proof/consistency`.
#[derive(ToSchema)]
pub struct ConsistencyProofReply {
    old: u64,
    new: u64,
    proof: Vec<String>,
    /// The signed checkpoints of those sizes, where one was signed.
    old_checkpoint: Option<String>,
    new_checkpoint: Option<String>,
}

/// `GET /audit/verifier-key`.
#[derive(ToSchema)]
pub struct VerifierKey {
    origin: String,
    /// The note verifier key (`<origin>+<hash>+<base64 Ed25519 key>`).
    verifier_key: String,
}

#[derive(ToSchema)]
pub struct SessionUser {
    id: String,
    role: String,
}

/// `POST /auth/login`.
#[derive(ToSchema)]
pub struct LoggedIn {
    user: SessionUser,
    /// Whether this account's role must verify a second factor.
    mfa_required: bool,
    totp_enrolled: bool,
}

/// `POST /auth/logout`.
#[derive(ToSchema)]
pub struct LoggedOut {
    logged_out: bool,
}

/// `GET /auth/session`.
#[derive(ToSchema)]
pub struct SessionView {
    user: SessionUser,
    /// `password`, `oidc` or `saml`.
    method: String,
    provider: Option<String>,
    /// Whether the second factor was verified in this session.
    mfa: bool,
    mfa_required: bool,
    totp_enrolled: bool,
}

/// `GET /auth/sessions`: the caller's live sessions.
#[derive(ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionSummary>,
}

#[derive(ToSchema)]
pub struct SessionSummary {
    /// A prefix of the session's hash: names it, cannot log in.
    id: String,
    method: String,
    provider: Option<String>,
    mfa: bool,
    created_at: String,
    last_seen: String,
    expires_at: String,
    /// The session making this request.
    current: bool,
}

/// `DELETE /auth/sessions` and `DELETE /auth/sessions/{id}`.
#[derive(ToSchema)]
pub struct Revoked {
    revoked: u64,
}

/// `POST /auth/totp/enroll`: the new TOTP secret, to confirm with a first code.
#[derive(ToSchema)]
pub struct TotpEnrolment {
    otpauth_url: String,
    qr_png_base64: String,
    /// Base32.
    secret: String,
}

/// `POST /auth/totp/verify`: the recovery codes come once, when an enrolment is confirmed.
#[derive(ToSchema)]
pub struct TotpVerified {
    mfa: bool,
    recovery_codes: Option<Vec<String>>,
}

/// `POST /auth/recovery`.
#[derive(ToSchema)]
pub struct SecondFactorVerified {
    mfa: bool,
}

/// `POST /auth/chat-token`.
#[derive(ToSchema)]
pub struct ChatToken {
    /// A Stream user token.
    token: String,
    user_id: String,
    /// RFC 3339.
    expires_at: String,
}

/// An SSO provider as the admin API shows it (the client secret never leaves).
#[derive(ToSchema)]
pub struct Provider {
    id: String,
    /// `oidc` or `saml`.
    kind: String,
    name: String,
    enabled: bool,
    #[schema(value_type = Object)]
    config: serde_json::Value,
    has_secret: bool,
}

#[derive(ToSchema)]
pub struct ProviderReply {
    provider: Provider,
}

#[derive(ToSchema)]
pub struct ProviderList {
    providers: Vec<Provider>,
}

/// `GET`/`PUT /admin/auth/2fa-policy`: the roles that must use a second factor.
#[derive(ToSchema)]
pub struct TwoFactorRoles {
    roles: Vec<String>,
}

/// `POST /admin/users/{id}/deprovision`.
#[derive(ToSchema)]
pub struct Deprovisioned {
    user_id: String,
    sessions_revoked: u64,
}

/// A legal hold.
#[derive(ToSchema)]
pub struct Hold {
    id: String,
    /// `user` or `channel`.
    scope: String,
    target: String,
    /// `null` once the reason was crypto-shredded.
    reason: Option<String>,
    placed_by: Option<String>,
    placed_at: String,
    released_by: Option<String>,
    released_at: Option<String>,
    active: bool,
}

#[derive(ToSchema)]
pub struct HoldReply {
    hold: Hold,
}

#[derive(ToSchema)]
pub struct HoldList {
    holds: Vec<Hold>,
}

/// `GET /compliance/retention`: days kept, per channel type (`null`: kept forever).
#[derive(ToSchema)]
pub struct RetentionReply {
    policy: RetentionPolicy,
}

#[derive(ToSchema)]
pub struct RetentionPolicy {
    channel_types: BTreeMap<String, KeepDays>,
}

#[derive(ToSchema)]
pub struct KeepDays {
    keep_days: Option<u32>,
}

/// A task started on the job queue; `GET /tasks/{id}` follows it.
#[derive(ToSchema)]
pub struct TaskStarted {
    task_id: String,
}
