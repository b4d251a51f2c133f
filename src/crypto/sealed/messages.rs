//! Messages and reactions: text and data sealed under the author's key, searched through
//! the blind index.

use std::sync::Arc;

use async_trait::async_trait;

use super::{crypto_err, open_fields, tombstone, user_subject};
use crate::crypto::fields::{FieldCrypto, Opened, lookup_prefix, words};
use crate::crypto::frame::Field;
use crate::store::{Audit, Cursor, MessageRow, MessageStore, ReactionRow, StoreResult};
use crate::time::Micros;
use std::collections::BTreeSet;

/// A [`MessageStore`] that seals messages and reactions on write, opens them on read, and
/// keeps the blind index of their words.
pub struct SealedMessages {
    pub(super) inner: Arc<dyn MessageStore>,
    pub(super) crypto: Arc<FieldCrypto>,
}

fn reaction_row_id(r: &ReactionRow) -> String {
    format!("{}/{}/{}", r.message_id, r.user_id, r.kind)
}

impl SealedMessages {
    async fn seal(&self, m: &MessageRow) -> StoreResult<MessageRow> {
        let subject = user_subject(&m.user_id);
        let mut sealed = m.clone();
        sealed.text = self
            .crypto
            .seal_text(
                &subject,
                Field {
                    table: "messages",
                    column: "text",
                    row_id: &m.id,
                },
                &m.text,
            )
            .await
            .map_err(crypto_err)?;
        sealed.data = self
            .crypto
            .seal_fields(
                &subject,
                Field {
                    table: "messages",
                    column: "data",
                    row_id: &m.id,
                },
                &m.data,
            )
            .await
            .map_err(crypto_err)?;
        Ok(sealed)
    }

    async fn open(&self, mut m: MessageRow) -> StoreResult<MessageRow> {
        let text_field = Field {
            table: "messages",
            column: "text",
            row_id: &m.id,
        };
        match self
            .crypto
            .open_text(text_field, &m.text)
            .await
            .map_err(crypto_err)?
        {
            Opened::Plain(t) => m.text = t,
            Opened::Shredded => {
                m.text = String::new();
                m.data = tombstone();
                return Ok(m);
            }
        }
        m.data = open_fields(
            &self.crypto,
            Field {
                table: "messages",
                column: "data",
                row_id: &m.id,
            },
            &m.data,
        )
        .await?;
        Ok(m)
    }

    async fn open_all(&self, rows: Vec<MessageRow>) -> StoreResult<Vec<MessageRow>> {
        let mut out = Vec::with_capacity(rows.len());
        for m in rows {
            out.push(self.open(m).await?);
        }
        Ok(out)
    }

    async fn index(&self, m: &MessageRow) -> StoreResult<()> {
        let tokens = if m.deleted_at.is_some() {
            Vec::new()
        } else {
            self.crypto
                .tokens(&m.cid, &m.text)
                .await
                .map_err(crypto_err)?
        };
        self.inner.replace_message_tokens(&m.id, &tokens).await
    }

    async fn open_reaction(&self, mut r: ReactionRow) -> StoreResult<ReactionRow> {
        let row_id = reaction_row_id(&r);
        r.data = open_fields(
            &self.crypto,
            Field {
                table: "reactions",
                column: "data",
                row_id: &row_id,
            },
            &r.data,
        )
        .await?;
        Ok(r)
    }
}

#[async_trait]
impl MessageStore for SealedMessages {
    async fn insert_message_with_tokens(
        &self,
        message: &MessageRow,
        count_unread: bool,
        _tokens: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        // The words are only known here, in plaintext: compute the tokens and store them with
        // the sealed message in one transaction.
        let tokens = self
            .crypto
            .tokens(&message.cid, &message.text)
            .await
            .map_err(crypto_err)?;
        self.inner
            .insert_message_with_tokens(&self.seal(message).await?, count_unread, &tokens, audit)
            .await
    }
    async fn find_message(&self, id: &str) -> StoreResult<Option<MessageRow>> {
        match self.inner.find_message(id).await? {
            Some(m) => Ok(Some(self.open(m).await?)),
            None => Ok(None),
        }
    }
    async fn find_messages(&self, ids: &[String]) -> StoreResult<Vec<MessageRow>> {
        self.open_all(self.inner.find_messages(ids).await?).await
    }
    async fn find_channel_messages(
        &self,
        cid: &str,
        since: Option<Micros>,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        self.open_all(
            self.inner
                .find_channel_messages(cid, since, cursor, limit)
                .await?,
        )
        .await
    }
    async fn find_replies(
        &self,
        parent_id: &str,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        self.open_all(self.inner.find_replies(parent_id, cursor, limit).await?)
            .await
    }
    async fn find_pinned_messages(
        &self,
        cid: &str,
        since: Option<Micros>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        self.open_all(self.inner.find_pinned_messages(cid, since, limit).await?)
            .await
    }
    /// Every word of `needle` must appear in the message (whole words, case-insensitive):
    /// the blind index matches tokens, never substrings of ciphertext.
    async fn search_messages(
        &self,
        cids: &[String],
        needle: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let wanted = words(needle);
        if wanted.is_empty() {
            return self
                .open_all(self.inner.search_messages(cids, "", limit, offset).await?)
                .await;
        }
        let mut tokens = Vec::with_capacity(cids.len() * wanted.len());
        for cid in cids {
            tokens.extend(
                self.crypto
                    .tokens_for_words(cid, &wanted)
                    .await
                    .map_err(crypto_err)?,
            );
        }
        let rows = self
            .inner
            .search_messages_by_tokens(&tokens, wanted.len() as i64, limit, offset)
            .await?;
        self.open_all(rows).await
    }
    /// Every word of `needle` must start a word of the message: the index holds keyed
    /// HMACs of word prefixes (`fields::prefixes`); words shorter than the shortest kept
    /// prefix are not looked up, and a needle of only such words finds nothing.
    async fn search_messages_by_prefix(
        &self,
        cids: &[String],
        needle: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let wanted: BTreeSet<String> = words(needle)
            .iter()
            .filter_map(|w| lookup_prefix(w))
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut tokens = Vec::with_capacity(cids.len() * wanted.len());
        for cid in cids {
            tokens.extend(
                self.crypto
                    .tokens_for_prefixes(cid, &wanted)
                    .await
                    .map_err(crypto_err)?,
            );
        }
        let rows = self
            .inner
            .search_messages_by_tokens(&tokens, wanted.len() as i64, limit, offset)
            .await?;
        self.open_all(rows).await
    }
    async fn count_messages_after(
        &self,
        cid: &str,
        after: Micros,
        user_id: &str,
    ) -> StoreResult<i64> {
        self.inner.count_messages_after(cid, after, user_id).await
    }
    async fn update_message(&self, message: &MessageRow, audit: Audit<'_>) -> StoreResult<()> {
        self.inner
            .update_message(&self.seal(message).await?, audit)
            .await?;
        self.index(message).await
    }
    async fn delete_message(&self, id: &str, audit: Audit<'_>) -> StoreResult<()> {
        self.inner.replace_message_tokens(id, &[]).await?;
        self.inner.delete_message(id, audit).await
    }
    async fn upsert_reaction(
        &self,
        reaction: &ReactionRow,
        enforce_unique: bool,
    ) -> StoreResult<bool> {
        let mut sealed = reaction.clone();
        let row_id = reaction_row_id(reaction);
        sealed.data = self
            .crypto
            .seal_fields(
                &user_subject(&reaction.user_id),
                Field {
                    table: "reactions",
                    column: "data",
                    row_id: &row_id,
                },
                &reaction.data,
            )
            .await
            .map_err(crypto_err)?;
        self.inner.upsert_reaction(&sealed, enforce_unique).await
    }
    async fn delete_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        kind: &str,
    ) -> StoreResult<Option<ReactionRow>> {
        match self
            .inner
            .delete_reaction(message_id, user_id, kind)
            .await?
        {
            Some(r) => Ok(Some(self.open_reaction(r).await?)),
            None => Ok(None),
        }
    }
    async fn find_reactions(&self, message_ids: &[String]) -> StoreResult<Vec<ReactionRow>> {
        let mut out = Vec::new();
        for r in self.inner.find_reactions(message_ids).await? {
            out.push(self.open_reaction(r).await?);
        }
        Ok(out)
    }
    async fn replace_message_tokens(&self, message_id: &str, tokens: &[String]) -> StoreResult<()> {
        self.inner.replace_message_tokens(message_id, tokens).await
    }
    async fn delete_tokens_of_author(&self, user_id: &str) -> StoreResult<()> {
        self.inner.delete_tokens_of_author(user_id).await
    }
    async fn find_message_ids_by_author(
        &self,
        user_id: &str,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        self.inner
            .find_message_ids_by_author(user_id, after, limit)
            .await
    }
    async fn search_messages_by_tokens(
        &self,
        tokens: &[String],
        required: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        self.open_all(
            self.inner
                .search_messages_by_tokens(tokens, required, limit, offset)
                .await?,
        )
        .await
    }
}
