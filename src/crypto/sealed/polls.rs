//! Polls: the poll's and its options' texts sealed under the poll creator's key, an answer
//! under the voter's. Erasing the creator shreds the poll's name, description and options;
//! erasing a voter shreds their answers (votes for options hold no text).

use std::sync::Arc;

use async_trait::async_trait;

use super::{crypto_err, open_fields, user_subject};
use crate::crypto::fields::{FieldCrypto, Opened};
use crate::crypto::frame::Field;
use crate::store::{
    Audit, PollOptionRow, PollRow, PollStore, PollVoteRow, StoreError, StoreResult,
};

/// A [`PollStore`] that seals poll texts and answers on write and opens them on read.
pub struct SealedPolls {
    pub(super) inner: Arc<dyn PollStore>,
    pub(super) crypto: Arc<FieldCrypto>,
}

fn option_row_id(o: &PollOptionRow) -> String {
    format!("{}/{}", o.poll_id, o.id)
}

const POLL_DATA: (&str, &str) = ("polls", "data");
const OPTION_DATA: (&str, &str) = ("poll_options", "data");
const ANSWER: (&str, &str) = ("poll_votes", "answer_text");

fn field<'a>(at: (&'a str, &'a str), row_id: &'a str) -> Field<'a> {
    Field {
        table: at.0,
        column: at.1,
        row_id,
    }
}

impl SealedPolls {
    async fn seal_poll(&self, p: &PollRow) -> StoreResult<PollRow> {
        let mut sealed = p.clone();
        sealed.data = self
            .crypto
            .seal_fields(
                &user_subject(&p.created_by_id),
                field(POLL_DATA, &p.id),
                &p.data,
            )
            .await
            .map_err(crypto_err)?;
        Ok(sealed)
    }

    async fn open_poll(&self, mut p: PollRow) -> StoreResult<PollRow> {
        p.data = open_fields(&self.crypto, field(POLL_DATA, &p.id), &p.data).await?;
        Ok(p)
    }

    async fn seal_option(&self, creator: &str, o: &PollOptionRow) -> StoreResult<PollOptionRow> {
        let mut sealed = o.clone();
        let row_id = option_row_id(o);
        sealed.data = self
            .crypto
            .seal_fields(&user_subject(creator), field(OPTION_DATA, &row_id), &o.data)
            .await
            .map_err(crypto_err)?;
        Ok(sealed)
    }

    async fn open_option(&self, mut o: PollOptionRow) -> StoreResult<PollOptionRow> {
        let row_id = option_row_id(&o);
        o.data = open_fields(&self.crypto, field(OPTION_DATA, &row_id), &o.data).await?;
        Ok(o)
    }

    async fn open_vote(&self, mut v: PollVoteRow) -> StoreResult<PollVoteRow> {
        if let Some(stored) = &v.answer_text {
            v.answer_text = Some(
                match self
                    .crypto
                    .open_text(field(ANSWER, &v.id), stored)
                    .await
                    .map_err(crypto_err)?
                {
                    Opened::Plain(t) => t,
                    Opened::Shredded => String::new(),
                },
            );
        }
        Ok(v)
    }
}

#[async_trait]
impl PollStore for SealedPolls {
    async fn insert_poll(
        &self,
        poll: &PollRow,
        options: &[PollOptionRow],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let sealed = self.seal_poll(poll).await?;
        let mut opts = Vec::with_capacity(options.len());
        for o in options {
            opts.push(self.seal_option(&poll.created_by_id, o).await?);
        }
        self.inner.insert_poll(&sealed, &opts, audit).await
    }
    async fn find_poll(&self, id: &str) -> StoreResult<Option<PollRow>> {
        match self.inner.find_poll(id).await? {
            Some(p) => Ok(Some(self.open_poll(p).await?)),
            None => Ok(None),
        }
    }
    async fn find_polls(&self, ids: &[String]) -> StoreResult<Vec<PollRow>> {
        let mut out = Vec::new();
        for p in self.inner.find_polls(ids).await? {
            out.push(self.open_poll(p).await?);
        }
        Ok(out)
    }
    async fn find_polls_by_creator(
        &self,
        created_by_id: Option<&str>,
        cap: i64,
    ) -> StoreResult<Vec<PollRow>> {
        let mut out = Vec::new();
        for p in self.inner.find_polls_by_creator(created_by_id, cap).await? {
            out.push(self.open_poll(p).await?);
        }
        Ok(out)
    }
    async fn update_poll(&self, poll: &PollRow, audit: Audit<'_>) -> StoreResult<()> {
        let sealed = self.seal_poll(poll).await?;
        self.inner.update_poll(&sealed, audit).await
    }
    async fn attach_poll(&self, id: &str, message_id: &str, cid: &str) -> StoreResult<bool> {
        self.inner.attach_poll(id, message_id, cid).await
    }
    async fn delete_poll(&self, id: &str, audit: Audit<'_>) -> StoreResult<bool> {
        self.inner.delete_poll(id, audit).await
    }
    async fn upsert_option(&self, option: &PollOptionRow, audit: Audit<'_>) -> StoreResult<()> {
        let poll = self
            .inner
            .find_poll(&option.poll_id)
            .await?
            .ok_or_else(|| {
                StoreError::Conflict(format!("poll {} does not exist", option.poll_id))
            })?;
        let sealed = self.seal_option(&poll.created_by_id, option).await?;
        self.inner.upsert_option(&sealed, audit).await
    }
    async fn delete_option(
        &self,
        poll_id: &str,
        option_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        self.inner.delete_option(poll_id, option_id, audit).await
    }
    async fn find_options(&self, poll_ids: &[String]) -> StoreResult<Vec<PollOptionRow>> {
        let mut out = Vec::new();
        for o in self.inner.find_options(poll_ids).await? {
            out.push(self.open_option(o).await?);
        }
        Ok(out)
    }
    async fn find_votes(&self, poll_ids: &[String]) -> StoreResult<Vec<PollVoteRow>> {
        let mut out = Vec::new();
        for v in self.inner.find_votes(poll_ids).await? {
            out.push(self.open_vote(v).await?);
        }
        Ok(out)
    }
    async fn cast_vote(
        &self,
        vote: &PollVoteRow,
        replace: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut sealed = vote.clone();
        if let Some(text) = &vote.answer_text {
            sealed.answer_text = Some(
                self.crypto
                    .seal_text(&user_subject(&vote.user_id), field(ANSWER, &vote.id), text)
                    .await
                    .map_err(crypto_err)?,
            );
        }
        self.inner.cast_vote(&sealed, replace, audit).await
    }
    async fn delete_vote(
        &self,
        poll_id: &str,
        vote_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<PollVoteRow>> {
        match self.inner.delete_vote(poll_id, vote_id, audit).await? {
            Some(v) => Ok(Some(self.open_vote(v).await?)),
            None => Ok(None),
        }
    }
}
