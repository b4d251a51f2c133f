-- Enterprise identity: interactive sessions, passwords (bootstrap admins), TOTP, recovery
-- codes, SSO providers, the SAML assertion replay cache, and per-user token revocation.
-- Secrets (TOTP seeds, provider client secrets) are sealed with field encryption; session
-- ids, passwords and recovery codes are stored only as hashes.

CREATE TABLE auth_sessions (
    id_hash TEXT PRIMARY KEY,          -- SHA-256 of the cookie value (the cookie is the secret)
    user_id TEXT NOT NULL,
    method TEXT NOT NULL,              -- password | oidc | saml
    provider TEXT,                     -- SSO provider id
    saml_session_index TEXT,
    mfa BOOLEAN NOT NULL,              -- the second factor was verified in this session
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,        -- absolute timeout
    revoked_at BIGINT
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

CREATE TABLE auth_passwords (
    user_id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,                -- argon2id PHC string
    created_at BIGINT NOT NULL
);

CREATE TABLE auth_totp (
    user_id TEXT PRIMARY KEY,
    secret BYTEA NOT NULL,                -- sealed under the user's key
    confirmed BOOLEAN NOT NULL,
    last_step BIGINT NOT NULL,         -- the last time step accepted (no reuse)
    failures INTEGER NOT NULL,
    locked_until BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE auth_recovery_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    hash TEXT NOT NULL,                -- argon2id PHC string
    used_at BIGINT
);
CREATE INDEX auth_recovery_codes_user ON auth_recovery_codes (user_id);

CREATE TABLE sso_providers (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,                -- oidc | saml
    name TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    config TEXT NOT NULL,              -- JSON, no secrets
    secret BYTEA,                         -- sealed client secret (OIDC)
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sso_replay (
    id TEXT PRIMARY KEY,               -- provider id + assertion id
    expires_at BIGINT NOT NULL
);

CREATE TABLE auth_token_revocations (
    user_id TEXT PRIMARY KEY,
    revoked_before BIGINT NOT NULL     -- tokens issued (iat) before this second are refused
);

-- Login flows in progress (OIDC state → nonce, PKCE verifier, provider; SAML request id →
-- provider), consumed once by the callback.
CREATE TABLE auth_flows (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
