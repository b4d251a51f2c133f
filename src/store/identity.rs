//! Interactive identity: sessions, passwords, TOTP, recovery codes, SSO providers, the
//! SAML replay cache, login flows and token revocation.

use async_trait::async_trait;

use super::audit::{Audit, execute_audited, execute_audited_if_changed, insert_outbox};
use super::db::{Row, query};
use super::{SqlStore, StoreError, StoreResult, all};
use crate::time::Micros;

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

const SESSION_COLS: &str = "id_hash, user_id, method, provider, saml_session_index, mfa, \
    created_at, last_seen, expires_at, revoked_at";
const PROVIDER_COLS: &str = "id, kind, name, enabled, config, secret, created_at, updated_at";
const TOTP_COLS: &str = "user_id, secret, confirmed, last_step, failures, locked_until, created_at";

fn session_from(r: &Row) -> Result<SessionRow, sqlx::Error> {
    Ok(SessionRow {
        id_hash: r.try_get("id_hash")?,
        user_id: r.try_get("user_id")?,
        method: r.try_get("method")?,
        provider: r.try_get("provider")?,
        saml_session_index: r.try_get("saml_session_index")?,
        mfa: r.try_get("mfa")?,
        created_at: r.try_get("created_at")?,
        last_seen: r.try_get("last_seen")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

fn provider_from(r: &Row) -> Result<ProviderRow, sqlx::Error> {
    Ok(ProviderRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        enabled: r.try_get("enabled")?,
        config: r.try_get("config")?,
        secret: r.try_get("secret")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn totp_from(r: &Row) -> Result<TotpRow, sqlx::Error> {
    Ok(TotpRow {
        user_id: r.try_get("user_id")?,
        secret: r.try_get("secret")?,
        confirmed: r.try_get("confirmed")?,
        last_step: r.try_get("last_step")?,
        failures: r.try_get::<i32, _>("failures")? as i64,
        locked_until: r.try_get("locked_until")?,
        created_at: r.try_get("created_at")?,
    })
}

#[async_trait]
impl IdentityStore for SqlStore {
    async fn insert_session(&self, s: &SessionRow, audit: Audit<'_>) -> StoreResult<()> {
        execute_audited(
            &self.db,
            query(format!(
                "INSERT INTO auth_sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, \
             $7, $8, $9, $10)"
            ))
            .bind(&s.id_hash)
            .bind(&s.user_id)
            .bind(&s.method)
            .bind(&s.provider)
            .bind(&s.saml_session_index)
            .bind(s.mfa)
            .bind(s.created_at)
            .bind(s.last_seen)
            .bind(s.expires_at)
            .bind(s.revoked_at),
            audit,
        )
        .await?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRow>> {
        let row = query(format!(
            "SELECT {SESSION_COLS} FROM auth_sessions WHERE id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(session_from).transpose()?)
    }

    async fn find_sessions_of(&self, user_id: &str) -> StoreResult<Vec<SessionRow>> {
        all(
            query(format!(
                "SELECT {SESSION_COLS} FROM auth_sessions WHERE user_id = $1 ORDER BY created_at"
            ))
            .bind(user_id)
            .fetch_all(&self.db)
            .await?,
            session_from,
        )
    }

    async fn touch_session(&self, id_hash: &str, at: Micros, mfa: bool) -> StoreResult<()> {
        query("UPDATE auth_sessions SET last_seen = $2, mfa = (mfa OR $3) WHERE id_hash = $1")
            .bind(id_hash)
            .bind(at)
            .bind(mfa)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn revoke_session(
        &self,
        id_hash: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        let done = execute_audited_if_changed(&self.db, query(
            "UPDATE auth_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL",
        )
        .bind(id_hash)
        .bind(at), audit).await?;
        Ok(done > 0)
    }

    async fn revoke_sessions_of(
        &self,
        user_id: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<u64> {
        let done = execute_audited(&self.db, query(
            "UPDATE auth_sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(at), audit).await?;
        Ok(done)
    }

    async fn find_password(&self, user_id: &str) -> StoreResult<Option<String>> {
        Ok(query("SELECT hash FROM auth_passwords WHERE user_id = $1")
            .bind(user_id)
            .scalar_optional(&self.db)
            .await?)
    }

    async fn upsert_password(
        &self,
        user_id: &str,
        hash: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        execute_audited(
            &self.db,
            query(
                "INSERT INTO auth_passwords (user_id, hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, created_at = \
             excluded.created_at",
            )
            .bind(user_id)
            .bind(hash)
            .bind(at),
            audit,
        )
        .await?;
        Ok(())
    }

    async fn find_totp(&self, user_id: &str) -> StoreResult<Option<TotpRow>> {
        let row = query(format!(
            "SELECT {TOTP_COLS} FROM auth_totp WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(totp_from).transpose()?)
    }

    async fn upsert_totp(&self, t: &TotpRow, audit: Audit<'_>) -> StoreResult<()> {
        execute_audited(
            &self.db,
            query(format!(
                "INSERT INTO auth_totp ({TOTP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed = \
             excluded.confirmed, \
             last_step = excluded.last_step, failures = excluded.failures, locked_until = \
             excluded.locked_until"
            ))
            .bind(&t.user_id)
            .bind(&t.secret)
            .bind(t.confirmed)
            .bind(t.last_step)
            .bind(t.failures as i32)
            .bind(t.locked_until)
            .bind(t.created_at),
            audit,
        )
        .await?;
        Ok(())
    }

    async fn delete_totp(&self, user_id: &str, audit: Audit<'_>) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query("DELETE FROM auth_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        query("DELETE FROM auth_recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[(String, String)],
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query("DELETE FROM auth_recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        for (id, hash) in hashes {
            query("INSERT INTO auth_recovery_codes (id, user_id, hash) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(user_id)
                .bind(hash)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn find_recovery_codes(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
        let rows = query(
            "SELECT id, hash FROM auth_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("hash")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn use_recovery_code(&self, id: &str, at: Micros, audit: Audit<'_>) -> StoreResult<bool> {
        let used =
            query("UPDATE auth_recovery_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id)
                .bind(at);
        Ok(execute_audited_if_changed(&self.db, used, audit).await? > 0)
    }

    async fn upsert_provider(&self, p: &ProviderRow, audit: Audit<'_>) -> StoreResult<()> {
        execute_audited(&self.db, query(format!(
            "INSERT INTO sso_providers ({PROVIDER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, enabled = \
             excluded.enabled, \
             config = excluded.config, secret = excluded.secret, updated_at = excluded.updated_at"
        ))
        .bind(&p.id)
        .bind(&p.kind)
        .bind(&p.name)
        .bind(p.enabled)
        .bind(&p.config)
        .bind(&p.secret)
        .bind(p.created_at)
        .bind(p.updated_at), audit).await?;
        Ok(())
    }

    async fn find_provider(&self, id: &str) -> StoreResult<Option<ProviderRow>> {
        let row = query(format!(
            "SELECT {PROVIDER_COLS} FROM sso_providers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(provider_from).transpose()?)
    }

    async fn find_providers(&self) -> StoreResult<Vec<ProviderRow>> {
        all(
            query(format!(
                "SELECT {PROVIDER_COLS} FROM sso_providers ORDER BY id"
            ))
            .fetch_all(&self.db)
            .await?,
            provider_from,
        )
    }

    async fn insert_replay(&self, id: &str, expires_at: Micros, now: Micros) -> StoreResult<bool> {
        let mut tx = self.db.begin_write().await?;
        query("DELETE FROM sso_replay WHERE expires_at < $1")
            .bind(now)
            .execute(&mut tx)
            .await?;
        let done = query(
            "INSERT INTO sso_replay (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(expires_at)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(done == 1)
    }

    async fn insert_flow(
        &self,
        id: &str,
        data: &str,
        expires_at: Micros,
        now: Micros,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query("DELETE FROM auth_flows WHERE expires_at < $1")
            .bind(now)
            .execute(&mut tx)
            .await?;
        query("INSERT INTO auth_flows (id, data, expires_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(data)
            .bind(expires_at)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_flow(&self, id: &str, now: Micros) -> StoreResult<Option<String>> {
        let row = query("DELETE FROM auth_flows WHERE id = $1 RETURNING data, expires_at")
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        Ok((expires_at >= now)
            .then(|| row.try_get("data"))
            .transpose()?)
    }

    async fn set_tokens_revoked(&self, user_id: &str, before_secs: i64) -> StoreResult<()> {
        query(
            "INSERT INTO auth_token_revocations (user_id, revoked_before) VALUES ($1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET revoked_before = excluded.revoked_before",
        )
        .bind(user_id)
        .bind(before_secs)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn find_tokens_revoked(&self, user_id: &str) -> StoreResult<Option<i64>> {
        Ok(
            query("SELECT revoked_before FROM auth_token_revocations WHERE user_id = $1")
                .bind(user_id)
                .scalar_optional(&self.db)
                .await?,
        )
    }
}
