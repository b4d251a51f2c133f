//! Polls, their options and votes. A poll is created alone and attached to at most one
//! message; deleting a poll deletes its options and votes. The personal columns (poll and
//! option `data`, a vote's `answer_text`) are sealed above this module
//! (`crypto::sealed::polls`); the SQL sees ciphertext.

use async_trait::async_trait;

use super::audit::{Audit, insert_outbox};
use super::db::{Row, query};
use super::{Fields, SqlStore, StoreResult, all, fields_text, parse_fields};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct PollRow {
    pub id: String,
    pub created_by_id: String,
    /// Name, description and custom fields.
    pub data: Fields,
    pub voting_visibility: String,
    pub enforce_unique_vote: bool,
    pub max_votes_allowed: Option<i64>,
    pub allow_answers: bool,
    pub allow_user_suggested_options: bool,
    pub is_closed: bool,
    /// The message (and its channel) the poll is attached to; set by
    /// [`PollStore::attach_poll`] only.
    pub message_id: Option<String>,
    pub cid: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PollOptionRow {
    pub poll_id: String,
    pub id: String,
    pub position: i64,
    /// Text and custom fields.
    pub data: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PollVoteRow {
    pub id: String,
    pub poll_id: String,
    pub message_id: String,
    pub user_id: String,
    pub option_id: Option<String>,
    pub is_answer: bool,
    pub answer_text: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[async_trait]
pub trait PollStore: Send + Sync {
    /// Creates the poll with its options. A duplicate id is a `Conflict`.
    async fn insert_poll(
        &self,
        poll: &PollRow,
        options: &[PollOptionRow],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn find_poll(&self, id: &str) -> StoreResult<Option<PollRow>>;
    async fn find_polls(&self, ids: &[String]) -> StoreResult<Vec<PollRow>>;
    /// Polls created by `created_by_id` (any creator with `None`), newest first, at most `cap`.
    async fn find_polls_by_creator(
        &self,
        created_by_id: Option<&str>,
        cap: i64,
    ) -> StoreResult<Vec<PollRow>>;
    /// Writes data and the settings (not the attachment).
    async fn update_poll(&self, poll: &PollRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Attaches the poll to a message unless it is attached already; returns whether it was.
    async fn attach_poll(&self, id: &str, message_id: &str, cid: &str) -> StoreResult<bool>;
    /// Removes the poll, its options and votes; returns whether it existed.
    async fn delete_poll(&self, id: &str, audit: Audit<'_>) -> StoreResult<bool>;
    /// Inserts or (same id) replaces an option's text, position and custom fields.
    async fn upsert_option(&self, option: &PollOptionRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Removes an option and the votes for it; returns whether it existed.
    async fn delete_option(
        &self,
        poll_id: &str,
        option_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    /// The options of these polls, by poll and position.
    async fn find_options(&self, poll_ids: &[String]) -> StoreResult<Vec<PollOptionRow>>;
    /// The votes of these polls, oldest first.
    async fn find_votes(&self, poll_ids: &[String]) -> StoreResult<Vec<PollVoteRow>>;
    /// Removes the votes `replace` and stores `vote`, in one transaction. A second vote for
    /// the same option (or a second answer) is a `Conflict`.
    async fn cast_vote(
        &self,
        vote: &PollVoteRow,
        replace: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    /// Removes one vote of a poll; returns it.
    async fn delete_vote(
        &self,
        poll_id: &str,
        vote_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<PollVoteRow>>;
}

const POLL_COLS: &str = "id, created_by_id, data, voting_visibility, enforce_unique_vote, \
    max_votes_allowed, allow_answers, allow_user_suggested_options, is_closed, message_id, cid, \
    created_at, updated_at";
const OPTION_COLS: &str = "poll_id, id, position, data, created_at, updated_at";
const VOTE_COLS: &str = "id, poll_id, message_id, user_id, option_id, is_answer, answer_text, \
    created_at, updated_at";

fn poll_from(r: &Row) -> Result<PollRow, sqlx::Error> {
    Ok(PollRow {
        id: r.try_get("id")?,
        created_by_id: r.try_get("created_by_id")?,
        data: parse_fields(&r.try_get::<String, _>("data")?),
        voting_visibility: r.try_get("voting_visibility")?,
        enforce_unique_vote: r.try_get("enforce_unique_vote")?,
        max_votes_allowed: r.try_get("max_votes_allowed")?,
        allow_answers: r.try_get("allow_answers")?,
        allow_user_suggested_options: r.try_get("allow_user_suggested_options")?,
        is_closed: r.try_get("is_closed")?,
        message_id: r.try_get("message_id")?,
        cid: r.try_get("cid")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn option_from(r: &Row) -> Result<PollOptionRow, sqlx::Error> {
    Ok(PollOptionRow {
        poll_id: r.try_get("poll_id")?,
        id: r.try_get("id")?,
        position: r.try_get("position")?,
        data: parse_fields(&r.try_get::<String, _>("data")?),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn vote_from(r: &Row) -> Result<PollVoteRow, sqlx::Error> {
    Ok(PollVoteRow {
        id: r.try_get("id")?,
        poll_id: r.try_get("poll_id")?,
        message_id: r.try_get("message_id")?,
        user_id: r.try_get("user_id")?,
        option_id: r.try_get("option_id")?,
        is_answer: r.try_get("is_answer")?,
        answer_text: r.try_get("answer_text")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn insert_option_query(o: &PollOptionRow) -> super::db::Query {
    query(
        "INSERT INTO poll_options (poll_id, id, position, data, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (poll_id, id) DO UPDATE SET \
         position = excluded.position, data = excluded.data, updated_at = excluded.updated_at",
    )
    .bind(&o.poll_id)
    .bind(&o.id)
    .bind(o.position)
    .bind(fields_text(&o.data))
    .bind(o.created_at)
    .bind(o.updated_at)
}

fn conflict_or(e: sqlx::Error, what: &str) -> super::StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            super::StoreError::Conflict(what.to_string())
        }
        _ => e.into(),
    }
}

#[async_trait]
impl PollStore for SqlStore {
    async fn insert_poll(
        &self,
        p: &PollRow,
        options: &[PollOptionRow],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query(format!(
            "INSERT INTO polls ({POLL_COLS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10, $11)"
        ))
        .bind(&p.id)
        .bind(&p.created_by_id)
        .bind(fields_text(&p.data))
        .bind(&p.voting_visibility)
        .bind(p.enforce_unique_vote)
        .bind(p.max_votes_allowed)
        .bind(p.allow_answers)
        .bind(p.allow_user_suggested_options)
        .bind(p.is_closed)
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut tx)
        .await
        .map_err(|e| conflict_or(e, &format!("poll {} already exists", p.id)))?;
        for o in options {
            insert_option_query(o).execute(&mut tx).await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_poll(&self, id: &str) -> StoreResult<Option<PollRow>> {
        let row = query(format!("SELECT {POLL_COLS} FROM polls WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.as_ref().map(poll_from).transpose()?)
    }

    async fn find_polls(&self, ids: &[String]) -> StoreResult<Vec<PollRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = query(format!("SELECT {POLL_COLS} FROM polls WHERE id IN "));
        q.push_list(ids);
        all(q.fetch_all(&self.db).await?, poll_from)
    }

    async fn find_polls_by_creator(
        &self,
        created_by_id: Option<&str>,
        cap: i64,
    ) -> StoreResult<Vec<PollRow>> {
        let mut q = query(format!("SELECT {POLL_COLS} FROM polls"));
        if let Some(by) = created_by_id {
            q.push(" WHERE created_by_id = ").push_bind(by);
        }
        q.push(" ORDER BY created_at DESC, id LIMIT ")
            .push_bind(cap);
        all(q.fetch_all(&self.db).await?, poll_from)
    }

    async fn update_poll(&self, p: &PollRow, audit: Audit<'_>) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query(
            "UPDATE polls SET data = $2, voting_visibility = $3, enforce_unique_vote = $4, \
             max_votes_allowed = $5, allow_answers = $6, allow_user_suggested_options = $7, \
             is_closed = $8, updated_at = $9 WHERE id = $1",
        )
        .bind(&p.id)
        .bind(fields_text(&p.data))
        .bind(&p.voting_visibility)
        .bind(p.enforce_unique_vote)
        .bind(p.max_votes_allowed)
        .bind(p.allow_answers)
        .bind(p.allow_user_suggested_options)
        .bind(p.is_closed)
        .bind(p.updated_at)
        .execute(&mut tx)
        .await?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn attach_poll(&self, id: &str, message_id: &str, cid: &str) -> StoreResult<bool> {
        let changed = query(
            "UPDATE polls SET message_id = $2, cid = $3 WHERE id = $1 AND message_id IS NULL",
        )
        .bind(id)
        .bind(message_id)
        .bind(cid)
        .execute(&self.db)
        .await?;
        Ok(changed > 0)
    }

    async fn delete_poll(&self, id: &str, audit: Audit<'_>) -> StoreResult<bool> {
        let mut tx = self.db.begin_write().await?;
        query("DELETE FROM poll_votes WHERE poll_id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        query("DELETE FROM poll_options WHERE poll_id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        let changed = query("DELETE FROM polls WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        if changed > 0 {
            insert_outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(changed > 0)
    }

    async fn upsert_option(&self, o: &PollOptionRow, audit: Audit<'_>) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        insert_option_query(o).execute(&mut tx).await?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_option(
        &self,
        poll_id: &str,
        option_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin_write().await?;
        query("DELETE FROM poll_votes WHERE poll_id = $1 AND option_id = $2")
            .bind(poll_id)
            .bind(option_id)
            .execute(&mut tx)
            .await?;
        let changed = query("DELETE FROM poll_options WHERE poll_id = $1 AND id = $2")
            .bind(poll_id)
            .bind(option_id)
            .execute(&mut tx)
            .await?;
        if changed > 0 {
            insert_outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(changed > 0)
    }

    async fn find_options(&self, poll_ids: &[String]) -> StoreResult<Vec<PollOptionRow>> {
        if poll_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = query(format!(
            "SELECT {OPTION_COLS} FROM poll_options WHERE poll_id IN "
        ));
        q.push_list(poll_ids);
        q.push(" ORDER BY poll_id, position, created_at, id");
        all(q.fetch_all(&self.db).await?, option_from)
    }

    async fn find_votes(&self, poll_ids: &[String]) -> StoreResult<Vec<PollVoteRow>> {
        if poll_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = query(format!(
            "SELECT {VOTE_COLS} FROM poll_votes WHERE poll_id IN "
        ));
        q.push_list(poll_ids);
        q.push(" ORDER BY created_at, id");
        all(q.fetch_all(&self.db).await?, vote_from)
    }

    async fn cast_vote(
        &self,
        v: &PollVoteRow,
        replace: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        if !replace.is_empty() {
            let mut q = query("DELETE FROM poll_votes WHERE poll_id = ");
            q.push_bind(&v.poll_id)
                .push(" AND id IN ")
                .push_list(replace);
            q.execute(&mut tx).await?;
        }
        query(format!(
            "INSERT INTO poll_votes ({VOTE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&v.id)
        .bind(&v.poll_id)
        .bind(&v.message_id)
        .bind(&v.user_id)
        .bind(&v.option_id)
        .bind(v.is_answer)
        .bind(&v.answer_text)
        .bind(v.created_at)
        .bind(v.updated_at)
        .execute(&mut tx)
        .await
        .map_err(|e| conflict_or(e, "this vote was cast already"))?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_vote(
        &self,
        poll_id: &str,
        vote_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<PollVoteRow>> {
        let mut tx = self.db.begin_write().await?;
        let row = query(format!(
            "DELETE FROM poll_votes WHERE poll_id = $1 AND id = $2 RETURNING {VOTE_COLS}"
        ))
        .bind(poll_id)
        .bind(vote_id)
        .fetch_optional(&mut tx)
        .await?;
        let vote = row.as_ref().map(vote_from).transpose()?;
        if vote.is_some() {
            insert_outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(vote)
    }
}
