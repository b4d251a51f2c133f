//! TOTP second factor (RFC 6238, SHA-1, 6 digits, 30 s steps — what authenticator apps
//! support): enrolment with an otpauth URL and a QR code, verification with one step of
//! skew, no reuse of a step (RFC 6238 §5.2), lockout with exponential backoff after
//! repeated failures, and ten one-time recovery codes stored as argon2 hashes. The seed is
//! sealed under the user's own key. Every step is audited (`auth.2fa`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, EventType, Outcome};
use crate::auth::Ctx;
use crate::auth::error::{Error, Result};
use crate::crypto::frame::Field;
use crate::store::TotpRow;
use crate::time::now_micros;

/// Failures allowed before the account locks; each further failure doubles the lock.
pub const FREE_FAILURES: i64 = 5;
const RECOVERY_CODES: usize = 10;

fn field(user_id: &str) -> Field<'_> {
    Field {
        table: "auth_totp",
        column: "secret",
        row_id: user_id,
    }
}

fn totp(user_id: &str, seed: &[u8]) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(seed.to_vec())
        .with_account_name(user_id)
        .with_issuer(Some("Ward"))
        .build()
        .map_err(Error::internal)
}

async fn seed(state: &Ctx<'_>, row: &TotpRow) -> Result<Zeroizing<Vec<u8>>> {
    let crypto = state
        .crypto
        .as_ref()
        .ok_or_else(|| Error::internal("TOTP needs field encryption"))?;
    let text = String::from_utf8(row.secret.clone()).map_err(Error::internal)?;
    match crypto
        .open_text(field(&row.user_id), &text)
        .await
        .map_err(Error::internal)?
    {
        crate::crypto::fields::Opened::Plain(b64) => Ok(Zeroizing::new(
            STANDARD.decode(b64).map_err(Error::internal)?,
        )),
        crate::crypto::fields::Opened::Shredded => {
            Err(Error::not_allowed("this user's keys were destroyed"))
        }
    }
}

/// Stores a TOTP row with the record of the step that changed it.
async fn upsert_audited(state: &Ctx<'_>, row: &TotpRow, record: AuditEvent) -> Result<()> {
    state
        .audit
        .audited([record], async |records| {
            state.store.identity.upsert_totp(row, &records).await
        })
        .await?;
    Ok(())
}

fn event(user_id: &str, step: &str) -> AuditEvent {
    AuditEvent::new(EventType::TwoFactor)
        .actor(user_id)
        .subject(user_id)
        .meta("step", step)
}

/// Starts (or restarts, while unconfirmed) an enrolment: returns the otpauth URL, the QR
/// code as a base64 PNG, and the base32 secret for manual entry.
pub async fn enroll(state: &Ctx<'_>, user_id: &str) -> Result<serde_json::Value> {
    if let Some(row) = state.store.identity.find_totp(user_id).await?
        && row.confirmed
    {
        return Err(Error::input(
            "TOTP is already enrolled; use a recovery code and ask an admin to reset it",
        ));
    }
    let crypto = state.crypto.as_ref().ok_or_else(|| {
        Error::input("field encryption is off: TOTP seeds cannot be stored encrypted")
    })?;
    let mut raw = Zeroizing::new(vec![0u8; 20]);
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let t = totp(user_id, &raw)?;
    let sealed = crypto
        .seal_text(
            &crate::crypto::sealed::user_subject(user_id),
            field(user_id),
            &STANDARD.encode(raw.as_slice()),
        )
        .await
        .map_err(Error::internal)?;
    let row = TotpRow {
        user_id: user_id.to_string(),
        secret: sealed.into_bytes(),
        confirmed: false,
        last_step: 0,
        failures: 0,
        locked_until: None,
        created_at: now_micros(),
    };
    state
        .audit
        .audited([event(user_id, "enroll_started")], async |records| {
            state.store.identity.upsert_totp(&row, &records).await
        })
        .await?;
    Ok(serde_json::json!({
        "otpauth_url": t.to_url().map_err(Error::internal)?,
        "qr_png_base64": t.to_qr_base64().map_err(Error::internal)?,
        "secret": t.secret().to_base32(),
    }))
}

pub enum Checked {
    Ok,
    /// Confirmed an enrolment: the recovery codes to show once.
    Enrolled(Vec<String>),
}

/// Checks a code: confirms a pending enrolment, or verifies an enrolled user. Wrong,
/// reused and locked-out attempts are refused (and counted, and audited).
pub async fn check(state: &Ctx<'_>, user_id: &str, code: &str) -> Result<Checked> {
    let mut row = state
        .store
        .identity
        .find_totp(user_id)
        .await?
        .ok_or_else(|| Error::input("TOTP is not enrolled: POST /auth/totp/enroll first"))?;
    let now = now_micros();
    if let Some(until) = row.locked_until
        && until > now
    {
        record(
            state,
            event(user_id, "locked_attempt").outcome(Outcome::Denied),
        )
        .await;
        return Err(Error::TooManyAttempts(format!(
            "too many wrong codes: try again in {} s",
            (until - now) / 1_000_000 + 1
        )));
    }
    let seed = seed(state, &row).await?;
    let t = totp(user_id, &seed)?;
    let matched = t.check(code.trim(), (now / 1_000_000) as u64);
    match matched {
        Some(step) if (step as i64) > row.last_step => {
            row.last_step = step as i64;
            row.failures = 0;
            row.locked_until = None;
            let enrolling = !row.confirmed;
            row.confirmed = true;
            let step = if enrolling { "enrolled" } else { "verified" };
            upsert_audited(state, &row, event(user_id, step)).await?;
            if enrolling {
                return Ok(Checked::Enrolled(new_recovery_codes(state, user_id).await?));
            }
            Ok(Checked::Ok)
        }
        other => {
            let reason = if other.is_some() { "reused" } else { "wrong" };
            row.failures += 1;
            let mut step = "failed";
            if row.failures >= FREE_FAILURES {
                let minutes = 1i64 << (row.failures - FREE_FAILURES).min(6);
                row.locked_until = Some(now + minutes * 60 * 1_000_000);
                step = "lockout";
            }
            let record = event(user_id, step)
                .outcome(Outcome::Denied)
                .meta("reason", reason);
            upsert_audited(state, &row, record).await?;
            Err(Error::not_authenticated(if reason == "reused" {
                "this code was already used; wait for the next one"
            } else {
                "the code is not valid"
            }))
        }
    }
}

async fn record(state: &Ctx<'_>, e: AuditEvent) {
    if let Err(err) = state.audit.record(e).await {
        tracing::error!(error = %err, "could not record a 2FA event");
    }
}

async fn new_recovery_codes(state: &Ctx<'_>, user_id: &str) -> Result<Vec<String>> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut raw = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let code = raw.chunks(2).map(hex::encode).collect::<Vec<_>>().join("-");
        hashes.push((
            uuid::Uuid::new_v4().to_string(),
            super::password::hash(&code).map_err(Error::internal)?,
        ));
        codes.push(code);
    }
    state
        .store
        .identity
        .replace_recovery_codes(user_id, &hashes)
        .await?;
    Ok(codes)
}

/// Uses one recovery code (once).
pub async fn use_recovery_code(state: &Ctx<'_>, user_id: &str, code: &str) -> Result<()> {
    let code = code.trim().to_ascii_lowercase();
    for (id, hash) in state.store.identity.find_recovery_codes(user_id).await? {
        if super::password::verify(&code, &hash) {
            let used = state
                .audit
                .audited([event(user_id, "recovery_code_used")], async |records| {
                    let identity = &state.store.identity;
                    identity
                        .use_recovery_code(&id, now_micros(), &records)
                        .await
                })
                .await?;
            if used {
                return Ok(());
            }
        }
    }
    record(
        state,
        event(user_id, "recovery_code_failed").outcome(Outcome::Denied),
    )
    .await;
    Err(Error::not_authenticated("the recovery code is not valid"))
}

/// Removes a user's TOTP and recovery codes (the audited admin recovery path).
pub async fn reset(state: &Ctx<'_>, user_id: &str, by: Option<&str>, via: &str) -> Result<()> {
    let record = AuditEvent::new(EventType::TwoFactor)
        .actor_opt(by)
        .subject(user_id)
        .meta("step", "reset")
        .meta("reason", via);
    state
        .audit
        .audited([record], async |records| {
            state.store.identity.delete_totp(user_id, &records).await
        })
        .await?;
    Ok(())
}
