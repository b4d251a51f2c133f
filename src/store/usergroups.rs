//! User groups (for group mentions) and their members. Names are organisational labels set
//! by admins (`policies/data_classification.toml`), stored in clear.

use async_trait::async_trait;

use super::audit::{Audit, insert_outbox};
use super::db::{Row, query};
use super::{SqlStore, StoreError, StoreResult, all};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct UserGroupRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub team_id: String,
    pub created_by_id: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserGroupMemberRow {
    pub group_id: String,
    pub user_id: String,
    pub is_admin: bool,
    pub created_at: Micros,
}

#[async_trait]
pub trait UserGroupStore: Send + Sync {
    /// Creates the group with its members; a duplicate id is a `Conflict`.
    async fn insert_group(
        &self,
        group: &UserGroupRow,
        members: &[UserGroupMemberRow],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn find_group(&self, id: &str) -> StoreResult<Option<UserGroupRow>>;
    /// Groups by id, at most `cap`.
    async fn find_groups(&self, cap: i64) -> StoreResult<Vec<UserGroupRow>>;
    /// Writes name, description, team and updated_at.
    async fn update_group(&self, group: &UserGroupRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Removes the group and its members; returns whether it existed.
    async fn delete_group(&self, id: &str, audit: Audit<'_>) -> StoreResult<bool>;
    /// Adds (or re-flags) members.
    async fn upsert_group_members(
        &self,
        members: &[UserGroupMemberRow],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn delete_group_members(
        &self,
        group_id: &str,
        user_ids: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn find_group_members(
        &self,
        group_ids: &[String],
    ) -> StoreResult<Vec<UserGroupMemberRow>>;
}

const GROUP_COLS: &str = "id, name, description, team_id, created_by_id, created_at, updated_at";

fn group_from(r: &Row) -> Result<UserGroupRow, sqlx::Error> {
    Ok(UserGroupRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        team_id: r.try_get("team_id")?,
        created_by_id: r.try_get("created_by_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn member_from(r: &Row) -> Result<UserGroupMemberRow, sqlx::Error> {
    Ok(UserGroupMemberRow {
        group_id: r.try_get("group_id")?,
        user_id: r.try_get("user_id")?,
        is_admin: r.try_get("is_admin")?,
        created_at: r.try_get("created_at")?,
    })
}

fn upsert_member(m: &UserGroupMemberRow) -> super::db::Query {
    query(
        "INSERT INTO user_group_members (group_id, user_id, is_admin, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (group_id, user_id) DO UPDATE SET \
         is_admin = excluded.is_admin",
    )
    .bind(&m.group_id)
    .bind(&m.user_id)
    .bind(m.is_admin)
    .bind(m.created_at)
}

#[async_trait]
impl UserGroupStore for SqlStore {
    async fn insert_group(
        &self,
        g: &UserGroupRow,
        members: &[UserGroupMemberRow],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        let inserted = query(format!(
            "INSERT INTO user_groups ({GROUP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(&g.team_id)
        .bind(&g.created_by_id)
        .bind(g.created_at)
        .bind(g.updated_at)
        .execute(&mut tx)
        .await?;
        if inserted == 0 {
            tx.rollback().await?;
            return Err(StoreError::Conflict(format!(
                "user group {} already exists",
                g.id
            )));
        }
        for m in members {
            upsert_member(m).execute(&mut tx).await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_group(&self, id: &str) -> StoreResult<Option<UserGroupRow>> {
        let row = query(format!(
            "SELECT {GROUP_COLS} FROM user_groups WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(group_from).transpose()?)
    }

    async fn find_groups(&self, cap: i64) -> StoreResult<Vec<UserGroupRow>> {
        let rows = query(format!(
            "SELECT {GROUP_COLS} FROM user_groups ORDER BY id LIMIT $1"
        ))
        .bind(cap)
        .fetch_all(&self.db)
        .await?;
        all(rows, group_from)
    }

    async fn update_group(&self, g: &UserGroupRow, audit: Audit<'_>) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query(
            "UPDATE user_groups SET name = $2, description = $3, team_id = $4, updated_at = $5 \
             WHERE id = $1",
        )
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.description)
        .bind(&g.team_id)
        .bind(g.updated_at)
        .execute(&mut tx)
        .await?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_group(&self, id: &str, audit: Audit<'_>) -> StoreResult<bool> {
        let mut tx = self.db.begin_write().await?;
        query("DELETE FROM user_group_members WHERE group_id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        let changed = query("DELETE FROM user_groups WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        if changed > 0 {
            insert_outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(changed > 0)
    }

    async fn upsert_group_members(
        &self,
        members: &[UserGroupMemberRow],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        for m in members {
            upsert_member(m).execute(&mut tx).await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_group_members(
        &self,
        group_id: &str,
        user_ids: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        if !user_ids.is_empty() {
            let mut q = query("DELETE FROM user_group_members WHERE group_id = ");
            q.push_bind(group_id)
                .push(" AND user_id IN ")
                .push_list(user_ids);
            q.execute(&mut tx).await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_group_members(
        &self,
        group_ids: &[String],
    ) -> StoreResult<Vec<UserGroupMemberRow>> {
        if group_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = query(
            "SELECT group_id, user_id, is_admin, created_at FROM user_group_members \
             WHERE group_id IN ",
        );
        q.push_list(group_ids);
        q.push(" ORDER BY group_id, created_at, user_id");
        all(q.fetch_all(&self.db).await?, member_from)
    }
}
