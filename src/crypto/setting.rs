//! Secrets kept in the settings table (the generated API secret), sealed under the root key
//! with the setting's name bound as the context: whoever can read the database file (a local
//! user, a backup) cannot mint server tokens without the root key too. A value from before
//! this rule is stored in clear; it is sealed in place on the next start, and audited.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use super::root::RootKey;
use crate::audit::record::{AuditEvent, DurableSink, EventType};
use crate::store::Store;

/// Marks a sealed value; anything else is a clear value from an older version.
const PREFIX: &str = "sealed:v1:";

/// The root-key context of the setting `name` (a sealed value cannot be moved to another
/// setting).
fn context(name: &str) -> String {
    format!("setting:{name}")
}

/// `secret` sealed for the setting `name`, as stored.
pub async fn seal(root: &dyn RootKey, name: &str, secret: &SecretString) -> anyhow::Result<String> {
    let wrapped = root
        .wrap(secret.expose_secret().as_bytes(), &context(name))
        .await?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(wrapped)))
}

/// Opens the stored value of the setting `name`; `None` when it is in clear.
async fn open(
    root: &dyn RootKey,
    name: &str,
    stored: &str,
) -> anyhow::Result<Option<SecretString>> {
    let Some(encoded) = stored.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    let wrapped = STANDARD
        .decode(encoded)
        .with_context(|| format!("the sealed setting {name} is not base64"))?;
    let plain = root
        .unwrap(&wrapped, &context(name))
        .await
        .with_context(|| format!("opening the sealed setting {name}"))?;
    let text = String::from_utf8(plain.to_vec())
        .with_context(|| format!("the sealed setting {name} is not UTF-8"))?;
    Ok(Some(SecretString::from(text)))
}

/// The secret setting `name`, if set: opened, or (stored in clear by an older version)
/// sealed in place first, with a `key.operation` record (`secret_sealed`).
pub async fn find(
    store: &Store,
    root: &dyn RootKey,
    audit: &impl DurableSink,
    name: &str,
) -> anyhow::Result<Option<SecretString>> {
    let Some(stored) = store.settings.find_setting(name).await? else {
        return Ok(None);
    };
    if let Some(secret) = open(root, name, &stored).await? {
        return Ok(Some(secret));
    }
    let secret = SecretString::from(stored);
    store
        .settings
        .upsert_setting(name, &seal(root, name, &secret).await?)
        .await?;
    audit
        .record_durable(
            AuditEvent::new(EventType::KeyOperation)
                .object("setting", name.to_string())
                .meta("operation", "secret_sealed")
                .meta("provider", root.describe()),
        )
        .await?;
    tracing::info!(
        setting = name,
        "sealed a secret setting stored in clear under the root key"
    );
    Ok(Some(secret))
}

/// Stores `secret` sealed as the setting `name` unless it is set; returns the secret kept
/// (another node starting at the same time may have set it first) and whether it was ours.
pub async fn insert_if_absent(
    store: &Store,
    root: &dyn RootKey,
    audit: &impl DurableSink,
    name: &str,
    secret: SecretString,
) -> anyhow::Result<(SecretString, bool)> {
    let sealed = seal(root, name, &secret).await?;
    let kept = store
        .settings
        .insert_setting_if_absent(name, &sealed)
        .await?;
    if kept == sealed {
        return Ok((secret, true));
    }
    let theirs = find(store, root, audit, name)
        .await?
        .with_context(|| format!("the setting {name} vanished while it was being set"))?;
    Ok((theirs, false))
}
