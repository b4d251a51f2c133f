//! Transparent field encryption: decorators that seal the classified columns on write and
//! open them on read, around any store implementation (`policies/data_classification.toml`):
//! `users.data` under the user's key, `channels.data` under the channel's, message `text`
//! and `data` and reaction `data` under their author's. Search goes through the blind index.
//! A value whose key was destroyed reads as a tombstone: empty text and `{"erased": true}`.
//!
//! The decorators wrap the store's traits from above ([`seal_store`]): the store itself
//! knows nothing of keys or ciphertext.

mod channels;
mod messages;
mod threads;
mod users;
// Issue 16 item 8 (tier 2).
mod drafts;
mod polls;

use std::sync::Arc;

use serde_json::{Map, Value};

use super::fields::{FieldCrypto, Opened};
use super::frame::Field;
use crate::store::{Fields, Store, StoreError, StoreResult};

pub use channels::SealedChannels;
pub use drafts::SealedDrafts;
pub use messages::SealedMessages;
pub use polls::SealedPolls;
pub use threads::SealedThreads;
pub use users::SealedUsers;

/// The same store with the classified columns sealed on write and opened on read.
pub fn seal_store(store: Store, crypto: Arc<FieldCrypto>) -> Store {
    Store {
        users: Arc::new(SealedUsers {
            inner: store.users,
            crypto: crypto.clone(),
        }),
        channels: Arc::new(SealedChannels {
            inner: store.channels,
            crypto: crypto.clone(),
        }),
        messages: Arc::new(SealedMessages {
            inner: store.messages,
            crypto: crypto.clone(),
        }),
        threads: Arc::new(SealedThreads {
            inner: store.threads,
            crypto: crypto.clone(),
        }),
        polls: Arc::new(SealedPolls {
            inner: store.polls,
            crypto: crypto.clone(),
        }),
        drafts: Arc::new(SealedDrafts {
            inner: store.drafts,
            crypto,
        }),
        ..store
    }
}

fn crypto_err(e: anyhow::Error) -> StoreError {
    StoreError::Crypto(e.to_string())
}

fn tombstone() -> Fields {
    Map::from_iter([("erased".to_string(), Value::Bool(true))])
}

/// The key subject of a user: their profile, messages and reactions are sealed under it.
pub fn user_subject(id: &str) -> String {
    format!("user:{id}")
}

/// The key subject of a channel: its custom data is sealed under it.
pub fn channel_subject(cid: &str) -> String {
    format!("channel:{cid}")
}

async fn open_fields(c: &FieldCrypto, field: Field<'_>, stored: &Fields) -> StoreResult<Fields> {
    Ok(
        match c.open_fields(field, stored).await.map_err(crypto_err)? {
            Opened::Plain(f) => f,
            Opened::Shredded => tombstone(),
        },
    )
}
