//! Channels: `channels.data` sealed under the channel's key; members and reads pass through.

use std::sync::Arc;

use async_trait::async_trait;

use super::{channel_subject, crypto_err, open_fields};
use crate::crypto::fields::FieldCrypto;
use crate::crypto::frame::Field;
use crate::store::{
    Audit, ChannelRow, ChannelStore, MemberAudit, MemberRow, ReadRow, RemovalAudit, StoreResult,
};
use crate::time::Micros;

/// A [`ChannelStore`] that seals channel data on write and opens it on read.
pub struct SealedChannels {
    pub(super) inner: Arc<dyn ChannelStore>,
    pub(super) crypto: Arc<FieldCrypto>,
}

impl SealedChannels {
    async fn seal(&self, c: &ChannelRow) -> StoreResult<ChannelRow> {
        let mut sealed = c.clone();
        sealed.data = self
            .crypto
            .seal_fields(
                &channel_subject(&c.cid),
                Field {
                    table: "channels",
                    column: "data",
                    row_id: &c.cid,
                },
                &c.data,
            )
            .await
            .map_err(crypto_err)?;
        Ok(sealed)
    }
    async fn open(&self, mut c: ChannelRow) -> StoreResult<ChannelRow> {
        c.data = open_fields(
            &self.crypto,
            Field {
                table: "channels",
                column: "data",
                row_id: &c.cid,
            },
            &c.data,
        )
        .await?;
        Ok(c)
    }
    async fn open_all(&self, rows: Vec<ChannelRow>) -> StoreResult<Vec<ChannelRow>> {
        let mut out = Vec::with_capacity(rows.len());
        for c in rows {
            out.push(self.open(c).await?);
        }
        Ok(out)
    }
}

#[async_trait]
impl ChannelStore for SealedChannels {
    async fn insert_channel(
        &self,
        channel: &ChannelRow,
        members: &[MemberRow],
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        self.inner
            .insert_channel(&self.seal(channel).await?, members, audit)
            .await
    }
    async fn find_channel(&self, cid: &str) -> StoreResult<Option<ChannelRow>> {
        match self.inner.find_channel(cid).await? {
            Some(c) => Ok(Some(self.open(c).await?)),
            None => Ok(None),
        }
    }
    async fn find_channels(&self, cids: &[String]) -> StoreResult<Vec<ChannelRow>> {
        self.open_all(self.inner.find_channels(cids).await?).await
    }
    async fn find_channels_for_member(&self, user_id: &str) -> StoreResult<Vec<ChannelRow>> {
        self.open_all(self.inner.find_channels_for_member(user_id).await?)
            .await
    }
    async fn find_channels_of_types(
        &self,
        kinds: &[String],
        cap: i64,
    ) -> StoreResult<Vec<ChannelRow>> {
        self.open_all(self.inner.find_channels_of_types(kinds, cap).await?)
            .await
    }
    async fn update_channel(&self, channel: &ChannelRow, audit: Audit<'_>) -> StoreResult<()> {
        self.inner
            .update_channel(&self.seal(channel).await?, audit)
            .await
    }
    async fn delete_channel(&self, cid: &str, audit: Audit<'_>) -> StoreResult<()> {
        self.inner.delete_channel(cid, audit).await
    }
    async fn truncate_channel(
        &self,
        cid: &str,
        at: Micros,
        hard: bool,
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        self.inner.truncate_channel(cid, at, hard, audit).await
    }
    async fn find_members(&self, cids: &[String]) -> StoreResult<Vec<MemberRow>> {
        self.inner.find_members(cids).await
    }
    async fn add_members(
        &self,
        cid: &str,
        members: &[MemberRow],
        audit: MemberAudit<'_>,
    ) -> StoreResult<Vec<MemberRow>> {
        self.inner.add_members(cid, members, audit).await
    }
    async fn update_member_role(
        &self,
        cid: &str,
        user_id: &str,
        role: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        self.inner
            .update_member_role(cid, user_id, role, at, audit)
            .await
    }
    async fn remove_members(
        &self,
        cid: &str,
        user_ids: &[String],
        audit: RemovalAudit<'_>,
    ) -> StoreResult<Vec<String>> {
        self.inner.remove_members(cid, user_ids, audit).await
    }
    async fn find_reads(&self, cids: &[String]) -> StoreResult<Vec<ReadRow>> {
        self.inner.find_reads(cids).await
    }
    async fn find_reads_for_user(&self, user_id: &str) -> StoreResult<Vec<(ReadRow, String)>> {
        self.inner.find_reads_for_user(user_id).await
    }
    async fn upsert_read(&self, read: &ReadRow) -> StoreResult<()> {
        self.inner.upsert_read(read).await
    }
}
