//! The keyring: KEKs wrapped by the root key, one DEK per data subject wrapped by the active
//! KEK, unwrapped keys cached in memory for a while so the per-message path makes no root-key
//! (KMS) call. Keys are picked by the id in each frame; a destroyed (shredded) key reads as
//! `None`, which callers render as a tombstone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, anyhow};
use rand::RngCore;
use zeroize::Zeroizing;

use super::frame::Dek;
use super::root::RootKey;
use crate::audit::record::AuditSink;
use crate::store::{DekRow, KekRow, KeyStore};
use crate::time::now_micros;

/// How long unwrapped keys stay in memory.
const TTL: Duration = Duration::from_secs(300);

fn unhex(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Unwrapped DEKs by id, with the time each was loaded.
type DekCache = HashMap<[u8; 16], (Arc<Dek>, Instant)>;

struct Kek {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

pub struct Keyring {
    keys: Arc<dyn KeyStore>,
    root: Arc<dyn RootKey>,
    /// Every key operation (creation, rotation, destruction) is recorded here.
    audit: Arc<dyn AuditSink>,
    kek: tokio::sync::Mutex<Option<Arc<Kek>>>,
    /// DEK id → (key, loaded at). A sync mutex: lookups only, never held across an await.
    deks: Mutex<DekCache>,
    /// subject → its active DEK id.
    active: Mutex<HashMap<String, ([u8; 16], Instant)>>,
    /// Set when another node rotated the KEK: the cached one is reloaded on next use.
    kek_stale: AtomicBool,
}

fn dek_aad(subject: &str, dek_id: &str, kek_id: &str) -> Vec<u8> {
    format!("ward-dek/v1|{subject}|{dek_id}|{kek_id}").into_bytes()
}

fn seal_key(kek: &Kek, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new_from_slice(kek.key.as_ref()).expect("a 32-byte key");
    let ct = cipher
        .encrypt(
            &Nonce::try_from(&nonce[..]).expect("12 bytes"),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("in-range lengths");
    [&nonce[..], &ct].concat()
}

fn open_key(kek: &Kek, wrapped: &[u8], aad: &[u8]) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    if wrapped.len() != 12 + 32 + 16 {
        return Err(anyhow!("a wrapped DEK has the wrong length"));
    }
    let cipher = Aes256Gcm::new_from_slice(kek.key.as_ref()).expect("a 32-byte key");
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                &Nonce::try_from(&wrapped[..12]).expect("12 bytes"),
                Payload {
                    msg: &wrapped[12..],
                    aad,
                },
            )
            .map_err(|_| anyhow!("a wrapped DEK does not authenticate under its KEK"))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&plain);
    Ok(key)
}

impl Keyring {
    pub fn new(keys: Arc<dyn KeyStore>, root: Arc<dyn RootKey>, audit: Arc<dyn AuditSink>) -> Self {
        Self {
            keys,
            root,
            audit,
            kek: Default::default(),
            deks: Default::default(),
            active: Default::default(),
            kek_stale: AtomicBool::new(false),
        }
    }

    fn record(&self, operation: &str, target: String) {
        self.audit
            .record(super::key_event(operation, &target).meta("provider", self.root.describe()));
    }

    pub fn root_description(&self) -> String {
        self.root.describe()
    }

    async fn load_kek(&self, row: &KekRow) -> anyhow::Result<Arc<Kek>> {
        let plain = self
            .root
            .unwrap(&row.wrapped, &format!("kek:{}", row.id))
            .await?;
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(plain.get(..32).context("a KEK has 32 bytes")?);
        Ok(Arc::new(Kek {
            id: row.id.clone(),
            key,
        }))
    }

    /// The active KEK, created (and wrapped by the root key) on first use.
    async fn active_kek(&self) -> anyhow::Result<Arc<Kek>> {
        let mut slot = self.kek.lock().await;
        if self.kek_stale.swap(false, Ordering::SeqCst) {
            *slot = None;
        }
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let row = match self.keys.find_active_kek().await? {
            Some(row) => row,
            None => {
                let id = uuid::Uuid::now_v7().simple().to_string();
                let mut key = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(key.as_mut());
                let wrapped = self.root.wrap(key.as_ref(), &format!("kek:{id}")).await?;
                let row = KekRow {
                    id,
                    wrapped,
                    provider: self.root.describe(),
                    created_at: now_micros(),
                    active: true,
                };
                if !self.keys.insert_kek(&row).await? {
                    // Another node made one first: use theirs.
                    self.keys
                        .find_active_kek()
                        .await?
                        .context("an active KEK")?
                } else {
                    tracing::info!(kek_id = %row.id, "created a key-encryption key");
                    self.record("kek_created", format!("kek:{}", row.id));
                    row
                }
            }
        };
        let kek = self.load_kek(&row).await?;
        *slot = Some(kek.clone());
        Ok(kek)
    }

    async fn kek_by_id(&self, id: &str) -> anyhow::Result<Arc<Kek>> {
        let active = self.active_kek().await?;
        if active.id == id {
            return Ok(active);
        }
        let row = self
            .keys
            .find_kek(id)
            .await?
            .with_context(|| format!("unknown KEK {id}"))?;
        self.load_kek(&row).await
    }

    /// The DEK new values of `subject` are sealed with, created on first use.
    pub async fn dek_for_write(&self, subject: &str) -> anyhow::Result<Arc<Dek>> {
        let cached = self
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(subject)
            .filter(|(_, t)| t.elapsed() < TTL)
            .map(|(id, _)| *id);
        if let Some(id) = cached
            && let Some(dek) = self.dek(&id).await?
        {
            return Ok(dek);
        }
        let dek = match self.keys.find_active_dek(subject).await? {
            Some(row) => self
                .unwrap_row(&row)
                .await?
                .context("an active DEK is not destroyed")?,
            None => {
                let kek = self.active_kek().await?;
                let dek = Arc::new(Dek::generate());
                let id = hex::encode(dek.id);
                let wrapped = seal_key(&kek, dek.secret(), &dek_aad(subject, &id, &kek.id));
                self.keys
                    .insert_dek(&DekRow {
                        id,
                        subject: subject.to_string(),
                        kek_id: kek.id.clone(),
                        wrapped: Some(wrapped),
                        created_at: now_micros(),
                        destroyed_at: None,
                        active: true,
                    })
                    .await?;
                self.deks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(dek.id, (dek.clone(), Instant::now()));
                dek
            }
        };
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(subject.to_string(), (dek.id, Instant::now()));
        Ok(dek)
    }

    async fn unwrap_row(&self, row: &DekRow) -> anyhow::Result<Option<Arc<Dek>>> {
        let Some(wrapped) = &row.wrapped else {
            return Ok(None);
        };
        let id = unhex(&row.id).context("a DEK id is 32 hex digits")?;
        let kek = self.kek_by_id(&row.kek_id).await?;
        let key = open_key(&kek, wrapped, &dek_aad(&row.subject, &row.id, &row.kek_id))?;
        let dek = Arc::new(Dek::new(id, key));
        self.deks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (dek.clone(), Instant::now()));
        Ok(Some(dek))
    }

    /// The DEK with this id; `None` when it was destroyed. An id no key ever had is an error
    /// (a corrupted or foreign value), not a tombstone.
    pub async fn dek(&self, id: &[u8; 16]) -> anyhow::Result<Option<Arc<Dek>>> {
        if let Some((dek, at)) = self.deks.lock().unwrap_or_else(|e| e.into_inner()).get(id)
            && at.elapsed() < TTL
        {
            return Ok(Some(dek.clone()));
        }
        match self.keys.find_dek(&hex::encode(id)).await? {
            Some(row) => self.unwrap_row(&row).await,
            None => Err(anyhow!(
                "unknown key id {} in a sealed value",
                hex::encode(id)
            )),
        }
    }

    /// Rotates the KEK: a new KEK (wrapped by the root key) re-wraps every DEK the active one
    /// wrapped; the data is untouched. Returns (old KEK id, new KEK id, DEKs re-wrapped).
    /// A crash midway leaves every DEK readable (each row names the KEK that wraps it).
    pub async fn rotate_kek(&self) -> anyhow::Result<(String, String, usize)> {
        let old = self.active_kek().await?;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let wrapped = self.root.wrap(key.as_ref(), &format!("kek:{id}")).await?;
        self.keys
            .insert_kek(&KekRow {
                id: id.clone(),
                wrapped,
                provider: self.root.describe(),
                created_at: now_micros(),
                active: false,
            })
            .await?;
        let new = Arc::new(Kek {
            id: id.clone(),
            key,
        });
        let mut count = 0;
        for row in self.keys.find_deks_by_kek(&old.id).await? {
            let Some(wrapped) = &row.wrapped else {
                continue;
            };
            let dek = open_key(&old, wrapped, &dek_aad(&row.subject, &row.id, &old.id))?;
            let rewrapped = seal_key(&new, dek.as_ref(), &dek_aad(&row.subject, &row.id, &new.id));
            self.keys
                .update_dek_wrapping(&row.id, &new.id, &rewrapped)
                .await?;
            count += 1;
        }
        self.keys.activate_kek(&new.id).await?;
        *self.kek.lock().await = Some(new);
        tracing::info!(old_kek = %old.id, new_kek = %id, deks = count, "key-encryption key rotated");
        self.record("kek_rotated", format!("kek:{id}"));
        Ok((old.id.clone(), id, count))
    }

    /// Retires a subject's DEK: new values get a fresh one; old values stay readable under
    /// the retired key until re-encrypted.
    pub async fn rotate_dek(&self, subject: &str) -> anyhow::Result<u64> {
        let retired = self.keys.retire_deks(subject).await?;
        self.record("dek_retired", subject.to_string());
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(subject);
        Ok(retired)
    }

    /// Drops cached keys, so the next use reads the database: those of `subject` (shredded
    /// or rotated elsewhere), or with `None` every key and the KEK (rotated elsewhere).
    /// Cached DEKs do not record their subject, so all of them go either way.
    pub fn evict(&self, subject: Option<&str>) {
        {
            let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
            match subject {
                Some(s) => {
                    active.remove(s);
                }
                None => active.clear(),
            }
        }
        if subject.is_none() {
            self.kek_stale.store(true, Ordering::SeqCst);
        }
        self.deks.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Crypto-shreds a subject: destroys every DEK it has, here and in the cache. Other nodes
    /// drop their cached copies when told over the bus (`gdpr::erase`).
    pub async fn shred(&self, subject: &str) -> anyhow::Result<u64> {
        let rows = self.keys.destroy_deks(subject, now_micros()).await?;
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(subject);
        // Cached DEKs do not record their subject: drop them all; they reload on demand.
        self.deks.lock().unwrap_or_else(|e| e.into_inner()).clear();
        tracing::info!(keys = rows, "subject keys destroyed");
        self.record("deks_destroyed", subject.to_string());
        Ok(rows)
    }
}
