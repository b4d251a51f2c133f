//! The SQL both dialects share, as one macro that implements every store trait for a
//! concrete sqlx database. Dialect differences stay out of the SQL: `$n` placeholders
//! (sqlx's SQLite driver accepts them too), `BIGINT` times, text JSON, `ON CONFLICT`,
//! `RETURNING`, and `LOWER(..) LIKE` for case-insensitive search.

macro_rules! impl_sql_store {
    ($store:ident, $db:ty, $row:ty) => {
        use async_trait::async_trait;
        use sqlx::{AssertSqlSafe, QueryBuilder, Row};

        use crate::store::{
            ChannelRow, ChannelStore, Cursor, MemberRow, MessageRow, MessageStore, ReactionRow,
            ReadRow, SettingsStore, StoreError, StoreResult, UsageStore, UserRow, UserStore, fields_text,
            DekRow, KekRow, KeyStore, OutboxRow, Audit, MemberAudit, RemovalAudit,
            parse_fields,
        };
        use crate::time::Micros;

        const USER_COLS: &str = "id, role, data, created_at, updated_at, last_active, deactivated_at, deleted_at, banned";
        const CHANNEL_COLS: &str = "c.cid, c.type, c.id, c.created_by_id, c.data, c.created_at, c.updated_at, \
            c.last_message_at, c.deleted_at, c.truncated_at, c.frozen, c.message_count, \
            (SELECT COUNT(*) FROM channel_members mc WHERE mc.cid = c.cid) AS member_count";
        const MESSAGE_COLS: &str = "m.id, m.cid, m.user_id, m.type, m.text, m.data, m.parent_id, m.show_in_channel, \
            m.silent, m.pinned, (SELECT COUNT(*) FROM messages r WHERE r.parent_id = m.id) AS reply_count, \
            m.created_at, m.updated_at, m.deleted_at";
        const MEMBER_COLS: &str = "cid, user_id, channel_role, created_at, updated_at";
        const READ_COLS: &str = "r.cid, r.user_id, r.last_read, r.last_read_message_id, r.unread_messages";
        const REACTION_COLS: &str = "message_id, user_id, type, score, data, created_at, updated_at";

        fn user_from(row: &$row) -> Result<UserRow, sqlx::Error> {
            Ok(UserRow {
                id: row.try_get("id")?,
                role: row.try_get("role")?,
                data: parse_fields(&row.try_get::<String, _>("data")?),
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                last_active: row.try_get("last_active")?,
                deactivated_at: row.try_get("deactivated_at")?,
                deleted_at: row.try_get("deleted_at")?,
                banned: row.try_get("banned")?,
            })
        }

        fn channel_from(row: &$row) -> Result<ChannelRow, sqlx::Error> {
            Ok(ChannelRow {
                cid: row.try_get("cid")?,
                kind: row.try_get("type")?,
                id: row.try_get("id")?,
                created_by_id: row.try_get("created_by_id")?,
                data: parse_fields(&row.try_get::<String, _>("data")?),
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                last_message_at: row.try_get("last_message_at")?,
                deleted_at: row.try_get("deleted_at")?,
                truncated_at: row.try_get("truncated_at")?,
                frozen: row.try_get("frozen")?,
                message_count: row.try_get("message_count")?,
                member_count: row.try_get("member_count")?,
            })
        }

        fn member_from(row: &$row) -> Result<MemberRow, sqlx::Error> {
            Ok(MemberRow {
                cid: row.try_get("cid")?,
                user_id: row.try_get("user_id")?,
                channel_role: row.try_get("channel_role")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn read_from(row: &$row) -> Result<ReadRow, sqlx::Error> {
            Ok(ReadRow {
                cid: row.try_get("cid")?,
                user_id: row.try_get("user_id")?,
                last_read: row.try_get("last_read")?,
                last_read_message_id: row.try_get("last_read_message_id")?,
                unread_messages: row.try_get("unread_messages")?,
            })
        }

        fn message_from(row: &$row) -> Result<MessageRow, sqlx::Error> {
            Ok(MessageRow {
                id: row.try_get("id")?,
                cid: row.try_get("cid")?,
                user_id: row.try_get("user_id")?,
                kind: row.try_get("type")?,
                text: row.try_get("text")?,
                data: parse_fields(&row.try_get::<String, _>("data")?),
                parent_id: row.try_get("parent_id")?,
                show_in_channel: row.try_get("show_in_channel")?,
                silent: row.try_get("silent")?,
                pinned: row.try_get("pinned")?,
                reply_count: row.try_get("reply_count")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                deleted_at: row.try_get("deleted_at")?,
            })
        }

        fn reaction_from(row: &$row) -> Result<ReactionRow, sqlx::Error> {
            Ok(ReactionRow {
                message_id: row.try_get("message_id")?,
                user_id: row.try_get("user_id")?,
                kind: row.try_get("type")?,
                score: row.try_get("score")?,
                data: parse_fields(&row.try_get::<String, _>("data")?),
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn all<T>(rows: Vec<$row>, f: fn(&$row) -> Result<T, sqlx::Error>) -> StoreResult<Vec<T>> {
            rows.iter().map(|r| f(r).map_err(StoreError::from)).collect()
        }

        /// Appends `(a, b, …)` with one bound parameter per id.
        fn push_list(qb: &mut QueryBuilder<$db>, ids: &[String]) {
            qb.push("(");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(id.clone());
            }
            sep.push_unseparated(")");
        }

        /// Appends the cursor condition and returns whether rows come newest first.
        fn push_cursor(qb: &mut QueryBuilder<$db>, cursor: &Cursor) -> bool {
            match cursor {
                Cursor::Latest => true,
                Cursor::Before { at, id, inclusive } => {
                    let op = if *inclusive { "<=" } else { "<" };
                    qb.push(" AND (m.created_at < ").push_bind(*at);
                    qb.push(" OR (m.created_at = ").push_bind(*at);
                    qb.push(format!(" AND m.id {op} ")).push_bind(id.clone()).push("))");
                    true
                }
                Cursor::After { at, id, inclusive } => {
                    let op = if *inclusive { ">=" } else { ">" };
                    qb.push(" AND (m.created_at > ").push_bind(*at);
                    qb.push(" OR (m.created_at = ").push_bind(*at);
                    qb.push(format!(" AND m.id {op} ")).push_bind(id.clone()).push("))");
                    false
                }
            }
        }

        async fn fetch_page(
            pool: &sqlx::Pool<$db>,
            mut qb: QueryBuilder<$db>,
            newest_first: bool,
            limit: i64,
        ) -> StoreResult<Vec<MessageRow>> {
            let order = if newest_first { "DESC" } else { "ASC" };
            qb.push(format!(" ORDER BY m.created_at {order}, m.id {order} LIMIT ")).push_bind(limit);
            let mut rows = all(qb.build().fetch_all(pool).await?, message_from)?;
            if newest_first {
                rows.reverse();
            }
            Ok(rows)
        }

        #[async_trait]
        impl UserStore for $store {
            async fn upsert_user(&self, u: &UserRow, audit: Audit<'_>) -> StoreResult<UserRow> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let sql = format!(
                    "INSERT INTO users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (id) DO UPDATE SET role = excluded.role, data = excluded.data, \
                     updated_at = excluded.updated_at, deactivated_at = excluded.deactivated_at, \
                     deleted_at = excluded.deleted_at, banned = excluded.banned, \
                     last_active = COALESCE(excluded.last_active, users.last_active) \
                     RETURNING {USER_COLS}"
                );
                let row = sqlx::query(AssertSqlSafe(sql))
                    .bind(&u.id)
                    .bind(&u.role)
                    .bind(fields_text(&u.data))
                    .bind(u.created_at)
                    .bind(u.updated_at)
                    .bind(u.last_active)
                    .bind(u.deactivated_at)
                    .bind(u.deleted_at)
                    .bind(u.banned)
                    .fetch_one(&mut *tx)
                    .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(user_from(&row)?)
            }

            async fn find_user(&self, id: &str) -> StoreResult<Option<UserRow>> {
                let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
                let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(user_from).transpose()?)
            }

            async fn find_users(&self, ids: &[String]) -> StoreResult<Vec<UserRow>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::new(format!("SELECT {USER_COLS} FROM users WHERE id IN "));
                push_list(&mut qb, ids);
                all(qb.build().fetch_all(&self.pool).await?, user_from)
            }

            async fn find_all_users(&self, cap: i64) -> StoreResult<Vec<UserRow>> {
                let sql = format!("SELECT {USER_COLS} FROM users ORDER BY created_at, id LIMIT $1");
                all(sqlx::query(AssertSqlSafe(sql)).bind(cap).fetch_all(&self.pool).await?, user_from)
            }

            async fn update_last_active(&self, id: &str, at: Micros) -> StoreResult<()> {
                sqlx::query("UPDATE users SET last_active = $2 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl ChannelStore for $store {
            async fn insert_channel(&self, c: &ChannelRow, members: &[MemberRow], audit: Audit<'_>) -> StoreResult<bool> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let inserted = sqlx::query(
                    "INSERT INTO channels (cid, type, id, created_by_id, data, created_at, updated_at, \
                     last_message_at, deleted_at, truncated_at, frozen, message_count) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0) ON CONFLICT (cid) DO NOTHING",
                )
                .bind(&c.cid)
                .bind(&c.kind)
                .bind(&c.id)
                .bind(&c.created_by_id)
                .bind(fields_text(&c.data))
                .bind(c.created_at)
                .bind(c.updated_at)
                .bind(c.last_message_at)
                .bind(c.deleted_at)
                .bind(c.truncated_at)
                .bind(c.frozen)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !inserted {
                    return Ok(false);
                }
                for m in members {
                    insert_member(&mut tx, m).await?;
                }
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn find_channel(&self, cid: &str) -> StoreResult<Option<ChannelRow>> {
                let sql = format!("SELECT {CHANNEL_COLS} FROM channels c WHERE c.cid = $1");
                let row = sqlx::query(AssertSqlSafe(sql)).bind(cid).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(channel_from).transpose()?)
            }

            async fn find_channels(&self, cids: &[String]) -> StoreResult<Vec<ChannelRow>> {
                if cids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::new(format!("SELECT {CHANNEL_COLS} FROM channels c WHERE c.cid IN "));
                push_list(&mut qb, cids);
                all(qb.build().fetch_all(&self.pool).await?, channel_from)
            }

            async fn find_channels_for_member(&self, user_id: &str) -> StoreResult<Vec<ChannelRow>> {
                let sql = format!(
                    "SELECT {CHANNEL_COLS} FROM channels c JOIN channel_members m ON m.cid = c.cid \
                     WHERE m.user_id = $1 AND c.deleted_at IS NULL"
                );
                all(sqlx::query(AssertSqlSafe(sql)).bind(user_id).fetch_all(&self.pool).await?, channel_from)
            }

            async fn find_channels_of_types(&self, kinds: &[String], cap: i64) -> StoreResult<Vec<ChannelRow>> {
                if kinds.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::new(format!(
                    "SELECT {CHANNEL_COLS} FROM channels c WHERE c.deleted_at IS NULL AND c.type IN "
                ));
                push_list(&mut qb, kinds);
                qb.push(" ORDER BY c.created_at DESC LIMIT ").push_bind(cap);
                all(qb.build().fetch_all(&self.pool).await?, channel_from)
            }

            async fn update_channel(&self, c: &ChannelRow, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query(
                    "UPDATE channels SET data = $2, frozen = $3, truncated_at = $4, deleted_at = $5, \
                     updated_at = $6 WHERE cid = $1",
                )
                .bind(&c.cid)
                .bind(fields_text(&c.data))
                .bind(c.frozen)
                .bind(c.truncated_at)
                .bind(c.deleted_at)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_channel(&self, cid: &str, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                for sql in [
                    "DELETE FROM reactions WHERE message_id IN (SELECT id FROM messages WHERE cid = $1)",
                    "DELETE FROM messages WHERE cid = $1",
                    "DELETE FROM channel_reads WHERE cid = $1",
                    "DELETE FROM channel_members WHERE cid = $1",
                    "DELETE FROM channels WHERE cid = $1",
                ] {
                    sqlx::query(sql).bind(cid).execute(&mut *tx).await?;
                }
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn truncate_channel(&self, cid: &str, at: Micros, hard: bool, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query("UPDATE channels SET truncated_at = $2, updated_at = $2 WHERE cid = $1")
                    .bind(cid)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE channel_reads SET unread_messages = 0 WHERE cid = $1")
                    .bind(cid)
                    .execute(&mut *tx)
                    .await?;
                if hard {
                    sqlx::query(
                        "DELETE FROM reactions WHERE message_id IN \
                         (SELECT id FROM messages WHERE cid = $1 AND created_at <= $2)",
                    )
                    .bind(cid)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM messages WHERE cid = $1 AND created_at <= $2")
                        .bind(cid)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                }
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_members(&self, cids: &[String]) -> StoreResult<Vec<MemberRow>> {
                if cids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::new(format!("SELECT {MEMBER_COLS} FROM channel_members WHERE cid IN "));
                push_list(&mut qb, cids);
                qb.push(" ORDER BY created_at, user_id");
                all(qb.build().fetch_all(&self.pool).await?, member_from)
            }

            async fn add_members(&self, _cid: &str, members: &[MemberRow], audit: MemberAudit<'_>) -> StoreResult<Vec<MemberRow>> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let mut added = Vec::new();
                let mut records = Vec::new();
                for m in members {
                    if insert_member(&mut tx, m).await? {
                        records.extend(audit(m));
                        added.push(m.clone());
                    }
                }
                insert_outbox(&mut tx, &records).await?;
                tx.commit().await?;
                Ok(added)
            }

            async fn update_member_role(&self, cid: &str, user_id: &str, role: &str, at: Micros, audit: Audit<'_>) -> StoreResult<bool> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let done = sqlx::query(
                    "UPDATE channel_members SET channel_role = $3, updated_at = $4 WHERE cid = $1 AND user_id = $2",
                )
                .bind(cid)
                .bind(user_id)
                .bind(role)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    insert_outbox(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remove_members(&self, cid: &str, user_ids: &[String], audit: RemovalAudit<'_>) -> StoreResult<Vec<String>> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let mut removed = Vec::new();
                for id in user_ids {
                    let done = sqlx::query("DELETE FROM channel_members WHERE cid = $1 AND user_id = $2")
                        .bind(cid)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM channel_reads WHERE cid = $1 AND user_id = $2")
                        .bind(cid)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 1 {
                        removed.push(id.clone());
                    }
                }
                let records: Vec<OutboxRow> = removed.iter().filter_map(|id| audit(id)).collect();
                insert_outbox(&mut tx, &records).await?;
                tx.commit().await?;
                Ok(removed)
            }

            async fn find_reads(&self, cids: &[String]) -> StoreResult<Vec<ReadRow>> {
                if cids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::new(format!("SELECT {READ_COLS} FROM channel_reads r WHERE r.cid IN "));
                push_list(&mut qb, cids);
                all(qb.build().fetch_all(&self.pool).await?, read_from)
            }

            async fn find_reads_for_user(&self, user_id: &str) -> StoreResult<Vec<(ReadRow, String)>> {
                let sql = format!(
                    "SELECT {READ_COLS}, c.type FROM channel_reads r JOIN channels c ON c.cid = r.cid \
                     WHERE r.user_id = $1 AND c.deleted_at IS NULL ORDER BY r.cid"
                );
                let rows = sqlx::query(AssertSqlSafe(sql)).bind(user_id).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| Ok((read_from(r)?, r.try_get::<String, _>("type")?)))
                    .collect()
            }

            async fn upsert_read(&self, r: &ReadRow) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO channel_reads (cid, user_id, last_read, last_read_message_id, unread_messages) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cid, user_id) DO UPDATE SET \
                     last_read = excluded.last_read, last_read_message_id = excluded.last_read_message_id, \
                     unread_messages = excluded.unread_messages",
                )
                .bind(&r.cid)
                .bind(&r.user_id)
                .bind(r.last_read)
                .bind(&r.last_read_message_id)
                .bind(r.unread_messages)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        /// Inserts a member and its read state unless present; returns whether it was added.
        async fn insert_member(
            tx: &mut sqlx::Transaction<'_, $db>,
            m: &MemberRow,
        ) -> StoreResult<bool> {
            let added = sqlx::query(
                "INSERT INTO channel_members (cid, user_id, channel_role, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cid, user_id) DO NOTHING",
            )
            .bind(&m.cid)
            .bind(&m.user_id)
            .bind(&m.channel_role)
            .bind(m.created_at)
            .bind(m.updated_at)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            if added {
                sqlx::query(
                    "INSERT INTO channel_reads (cid, user_id, last_read, unread_messages) \
                     VALUES ($1, $2, $3, 0) ON CONFLICT (cid, user_id) DO NOTHING",
                )
                .bind(&m.cid)
                .bind(&m.user_id)
                .bind(m.created_at)
                .execute(&mut **tx)
                .await?;
            }
            Ok(added)
        }

        /// Stores audit records in the action's own transaction (one statement).
        async fn insert_outbox(
            tx: &mut sqlx::Transaction<'_, $db>,
            rows: &[OutboxRow],
        ) -> StoreResult<()> {
            // Chunks keep each statement under SQLite's bound-parameter limit.
            for rows in rows.chunks(1000) {
            let mut qb = QueryBuilder::new(
                "INSERT INTO audit_outbox (at_ms, event_type, actor, subject, object_kind, object_id, pii, meta) ",
            );
            qb.push_values(rows, |mut b, r| {
                b.push_bind(r.at_ms)
                    .push_bind(i32::from(r.event_type))
                    .push_bind(r.actor.clone())
                    .push_bind(r.subject.clone())
                    .push_bind(r.object_kind.clone())
                    .push_bind(r.object_id.clone())
                    .push_bind(r.pii.clone())
                    .push_bind(r.meta.clone());
            });
            qb.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        #[async_trait]
        impl MessageStore for $store {
            async fn insert_message_with_tokens(&self, m: &MessageRow, count_unread: bool, tokens: &[String], audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let inserted = sqlx::query(
                    "INSERT INTO messages (id, cid, user_id, type, text, data, parent_id, show_in_channel, \
                     silent, pinned, created_at, updated_at, deleted_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&m.id)
                .bind(&m.cid)
                .bind(&m.user_id)
                .bind(&m.kind)
                .bind(&m.text)
                .bind(fields_text(&m.data))
                .bind(&m.parent_id)
                .bind(m.show_in_channel)
                .bind(m.silent)
                .bind(m.pinned)
                .bind(m.created_at)
                .bind(m.updated_at)
                .bind(m.deleted_at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !inserted {
                    return Err(StoreError::Conflict(format!(
                        "a message with ID {} already exists",
                        m.id
                    )));
                }
                // Tokens in one statement; the channel row last, so its lock (which every
                // send to this channel waits for on PostgreSQL) is held only until commit.
                if !tokens.is_empty() {
                    let mut qb = QueryBuilder::new("INSERT INTO message_search_tokens (token, message_id) ");
                    qb.push_values(tokens, |mut row, token| {
                        row.push_bind(token.clone()).push_bind(m.id.clone());
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                let in_channel = m.parent_id.is_none() || m.show_in_channel;
                if in_channel {
                    // Writing a message marks the channel read for its author, as in Stream,
                    // and counts it unread for the others. One statement: two (the author's
                    // row, then the others') lock the rows of concurrent senders in opposite
                    // orders and deadlock on PostgreSQL.
                    let others = if count_unread { "unread_messages + 1" } else { "unread_messages" };
                    let filter = if count_unread { "" } else { " AND user_id = $2" };
                    let sql = format!(
                        "UPDATE channel_reads SET \
                         unread_messages = CASE WHEN user_id = $2 THEN 0 ELSE {others} END, \
                         last_read = CASE WHEN user_id = $2 THEN $3 ELSE last_read END, \
                         last_read_message_id = CASE WHEN user_id = $2 THEN $4 ELSE last_read_message_id END \
                         WHERE cid = $1{filter}"
                    );
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(&m.cid)
                        .bind(&m.user_id)
                        .bind(m.created_at)
                        .bind(&m.id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "UPDATE channels SET last_message_at = $2, message_count = message_count + 1 WHERE cid = $1",
                    )
                    .bind(&m.cid)
                    .bind(m.created_at)
                    .execute(&mut *tx)
                    .await?;
                }
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_message(&self, id: &str) -> StoreResult<Option<MessageRow>> {
                let sql = format!("SELECT {MESSAGE_COLS} FROM messages m WHERE m.id = $1");
                let row = sqlx::query(AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(message_from).transpose()?)
            }

            async fn find_messages(&self, ids: &[String]) -> StoreResult<Vec<MessageRow>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::new(format!("SELECT {MESSAGE_COLS} FROM messages m WHERE m.id IN "));
                push_list(&mut qb, ids);
                all(qb.build().fetch_all(&self.pool).await?, message_from)
            }

            async fn find_channel_messages(
                &self,
                cid: &str,
                since: Option<Micros>,
                cursor: &Cursor,
                limit: i64,
            ) -> StoreResult<Vec<MessageRow>> {
                let mut qb = QueryBuilder::new(format!("SELECT {MESSAGE_COLS} FROM messages m WHERE m.cid = "));
                qb.push_bind(cid.to_string());
                qb.push(" AND (m.parent_id IS NULL OR m.show_in_channel = TRUE)");
                if let Some(since) = since {
                    qb.push(" AND m.created_at > ").push_bind(since);
                }
                let newest_first = push_cursor(&mut qb, cursor);
                fetch_page(&self.pool, qb, newest_first, limit).await
            }

            async fn find_replies(&self, parent_id: &str, cursor: &Cursor, limit: i64) -> StoreResult<Vec<MessageRow>> {
                let mut qb = QueryBuilder::new(format!("SELECT {MESSAGE_COLS} FROM messages m WHERE m.parent_id = "));
                qb.push_bind(parent_id.to_string());
                let newest_first = push_cursor(&mut qb, cursor);
                fetch_page(&self.pool, qb, newest_first, limit).await
            }

            async fn find_pinned_messages(&self, cid: &str, since: Option<Micros>, limit: i64) -> StoreResult<Vec<MessageRow>> {
                let mut qb = QueryBuilder::new(format!("SELECT {MESSAGE_COLS} FROM messages m WHERE m.cid = "));
                qb.push_bind(cid.to_string());
                qb.push(" AND m.pinned = TRUE AND m.deleted_at IS NULL");
                if let Some(since) = since {
                    qb.push(" AND m.created_at > ").push_bind(since);
                }
                fetch_page(&self.pool, qb, true, limit).await
            }

            async fn search_messages(&self, cids: &[String], needle: &str, limit: i64, offset: i64) -> StoreResult<Vec<MessageRow>> {
                if cids.is_empty() {
                    return Ok(Vec::new());
                }
                let escaped = needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                let pattern = format!("%{escaped}%");
                let mut qb = QueryBuilder::new(format!(
                    "SELECT {MESSAGE_COLS} FROM messages m JOIN channels c ON c.cid = m.cid \
                     WHERE m.deleted_at IS NULL AND (c.truncated_at IS NULL OR m.created_at > c.truncated_at) \
                     AND m.cid IN "
                ));
                push_list(&mut qb, cids);
                qb.push(" AND LOWER(m.text) LIKE LOWER(").push_bind(pattern).push(") ESCAPE '\\'");
                qb.push(" ORDER BY m.created_at DESC, m.id DESC LIMIT ").push_bind(limit);
                qb.push(" OFFSET ").push_bind(offset);
                all(qb.build().fetch_all(&self.pool).await?, message_from)
            }

            async fn count_messages_after(&self, cid: &str, after: Micros, user_id: &str) -> StoreResult<i64> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM messages WHERE cid = $1 AND created_at > $2 AND user_id <> $3 \
                     AND deleted_at IS NULL AND (parent_id IS NULL OR show_in_channel = TRUE)",
                )
                .bind(cid)
                .bind(after)
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(n)
            }

            async fn update_message(&self, m: &MessageRow, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query(
                    "UPDATE messages SET text = $2, data = $3, type = $4, pinned = $5, updated_at = $6, \
                     deleted_at = $7 WHERE id = $1",
                )
                .bind(&m.id)
                .bind(&m.text)
                .bind(fields_text(&m.data))
                .bind(&m.kind)
                .bind(m.pinned)
                .bind(m.updated_at)
                .bind(m.deleted_at)
                .execute(&mut *tx)
                .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_message(&self, id: &str, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query("DELETE FROM reactions WHERE message_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM messages WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn upsert_reaction(&self, r: &ReactionRow, enforce_unique: bool) -> StoreResult<bool> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                if enforce_unique {
                    sqlx::query("DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND type <> $3")
                        .bind(&r.message_id)
                        .bind(&r.user_id)
                        .bind(&r.kind)
                        .execute(&mut *tx)
                        .await?;
                }
                let existed: Option<i64> = sqlx::query_scalar(
                    "SELECT score FROM reactions WHERE message_id = $1 AND user_id = $2 AND type = $3",
                )
                .bind(&r.message_id)
                .bind(&r.user_id)
                .bind(&r.kind)
                .fetch_optional(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO reactions (message_id, user_id, type, score, data, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id, user_id, type) DO UPDATE SET \
                     score = excluded.score, data = excluded.data, updated_at = excluded.updated_at",
                )
                .bind(&r.message_id)
                .bind(&r.user_id)
                .bind(&r.kind)
                .bind(r.score)
                .bind(fields_text(&r.data))
                .bind(r.created_at)
                .bind(r.updated_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(existed.is_some())
            }

            async fn delete_reaction(&self, message_id: &str, user_id: &str, kind: &str) -> StoreResult<Option<ReactionRow>> {
                let sql = format!(
                    "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND type = $3 RETURNING {REACTION_COLS}"
                );
                let row = sqlx::query(AssertSqlSafe(sql))
                    .bind(message_id)
                    .bind(user_id)
                    .bind(kind)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(reaction_from).transpose()?)
            }

            async fn find_reactions(&self, message_ids: &[String]) -> StoreResult<Vec<ReactionRow>> {
                if message_ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::new(format!("SELECT {REACTION_COLS} FROM reactions WHERE message_id IN "));
                push_list(&mut qb, message_ids);
                qb.push(" ORDER BY created_at, user_id, type");
                all(qb.build().fetch_all(&self.pool).await?, reaction_from)
            }

            async fn replace_message_tokens(&self, message_id: &str, tokens: &[String]) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query("DELETE FROM message_search_tokens WHERE message_id = $1")
                    .bind(message_id)
                    .execute(&mut *tx)
                    .await?;
                for token in tokens {
                    sqlx::query("INSERT INTO message_search_tokens (token, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                        .bind(token)
                        .bind(message_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn delete_tokens_of_author(&self, user_id: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM message_search_tokens WHERE message_id IN (SELECT id FROM messages WHERE user_id = $1)")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn find_message_ids_by_author(&self, user_id: &str, after: &str, limit: i64) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar("SELECT id FROM messages WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                    .bind(user_id)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn search_messages_by_tokens(&self, tokens: &[String], required: i64, limit: i64, offset: i64) -> StoreResult<Vec<MessageRow>> {
                if tokens.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::new(format!(
                    "SELECT {MESSAGE_COLS} FROM messages m JOIN channels c ON c.cid = m.cid \
                     WHERE m.deleted_at IS NULL AND (c.truncated_at IS NULL OR m.created_at > c.truncated_at) \
                     AND m.id IN (SELECT message_id FROM message_search_tokens WHERE token IN "
                ));
                push_list(&mut qb, tokens);
                qb.push(" GROUP BY message_id HAVING COUNT(*) >= ").push_bind(required);
                qb.push(") ORDER BY m.created_at DESC, m.id DESC LIMIT ").push_bind(limit);
                qb.push(" OFFSET ").push_bind(offset);
                all(qb.build().fetch_all(&self.pool).await?, message_from)
            }
        }

        #[async_trait]
        impl SettingsStore for $store {
            async fn find_setting(&self, key: &str) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn upsert_setting(&self, key: &str, value: &str) -> StoreResult<()> {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn delete_setting(&self, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM settings WHERE key = $1").bind(key).execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await?)
            }
        }
        #[async_trait]
        impl UsageStore for $store {
            async fn insert_active_user(&self, month: &str, day: &str, user_id: &str) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query(
                    "INSERT INTO usage_active_users (month, user_id, first_day) VALUES ($1, $2, $3) \
                     ON CONFLICT (month, user_id) DO NOTHING",
                )
                .bind(month)
                .bind(user_id)
                .bind(day)
                .execute(&mut *tx)
                .await?;
                sqlx::query("INSERT INTO usage_daily_users (day, user_id) VALUES ($1, $2) ON CONFLICT (day, user_id) DO NOTHING")
                    .bind(day)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn upsert_connection_peak(&self, node: &str, bucket: Micros, peak: i64) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO usage_connection_peaks (node, bucket, peak) VALUES ($1, $2, $3) \
                     ON CONFLICT (node, bucket) DO UPDATE SET peak = CASE \
                     WHEN excluded.peak > usage_connection_peaks.peak THEN excluded.peak \
                     ELSE usage_connection_peaks.peak END",
                )
                .bind(node)
                .bind(bucket)
                .bind(peak)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn count_new_active_users_by_day(&self, month: &str) -> StoreResult<Vec<(String, i64)>> {
                let rows = sqlx::query(
                    "SELECT first_day, COUNT(*) AS n FROM usage_active_users WHERE month = $1 \
                     GROUP BY first_day ORDER BY first_day",
                )
                .bind(month)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Ok((r.try_get("first_day")?, r.try_get("n")?))).collect()
            }

            async fn count_daily_users(&self, month: &str) -> StoreResult<Vec<(String, i64)>> {
                let rows = sqlx::query(
                    "SELECT day, COUNT(*) AS n FROM usage_daily_users WHERE day LIKE $1 GROUP BY day ORDER BY day",
                )
                .bind(format!("{month}-%"))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Ok((r.try_get("day")?, r.try_get("n")?))).collect()
            }

            async fn find_connection_peaks(&self, from: Micros, to: Micros) -> StoreResult<Vec<(Micros, i64)>> {
                let rows = sqlx::query(
                    "SELECT bucket, CAST(SUM(peak) AS BIGINT) AS total FROM usage_connection_peaks \
                     WHERE bucket >= $1 AND bucket < $2 GROUP BY bucket ORDER BY bucket",
                )
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(|r| Ok((r.try_get("bucket")?, r.try_get("total")?))).collect()
            }
        }
        fn kek_from(row: &$row) -> Result<KekRow, sqlx::Error> {
            Ok(KekRow {
                id: row.try_get("id")?,
                wrapped: row.try_get("wrapped")?,
                provider: row.try_get("provider")?,
                created_at: row.try_get("created_at")?,
                active: row.try_get("active")?,
            })
        }

        fn dek_from(row: &$row) -> Result<DekRow, sqlx::Error> {
            Ok(DekRow {
                id: row.try_get("id")?,
                subject: row.try_get("subject")?,
                kek_id: row.try_get("kek_id")?,
                wrapped: row.try_get("wrapped")?,
                created_at: row.try_get("created_at")?,
                destroyed_at: row.try_get("destroyed_at")?,
                active: row.try_get("active")?,
            })
        }

        #[async_trait]
        impl KeyStore for $store {
            async fn find_active_kek(&self) -> StoreResult<Option<KekRow>> {
                let row = sqlx::query("SELECT id, wrapped, provider, created_at, active FROM crypto_keks WHERE active = TRUE ORDER BY created_at DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(kek_from).transpose()?)
            }

            async fn find_kek(&self, id: &str) -> StoreResult<Option<KekRow>> {
                let row = sqlx::query("SELECT id, wrapped, provider, created_at, active FROM crypto_keks WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(kek_from).transpose()?)
            }

            async fn insert_kek(&self, k: &KekRow) -> StoreResult<bool> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let existing: Option<String> = sqlx::query_scalar("SELECT id FROM crypto_keks WHERE active = TRUE LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
                if k.active && existing.is_some() {
                    return Ok(false);
                }
                sqlx::query("INSERT INTO crypto_keks (id, wrapped, provider, created_at, active) VALUES ($1, $2, $3, $4, $5)")
                    .bind(&k.id)
                    .bind(&k.wrapped)
                    .bind(&k.provider)
                    .bind(k.created_at)
                    .bind(k.active)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn find_active_dek(&self, subject: &str) -> StoreResult<Option<DekRow>> {
                let row = sqlx::query(
                    "SELECT id, subject, kek_id, wrapped, created_at, destroyed_at, active FROM crypto_deks \
                     WHERE subject = $1 AND active = TRUE AND destroyed_at IS NULL ORDER BY created_at DESC LIMIT 1",
                )
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(dek_from).transpose()?)
            }

            async fn find_dek(&self, id: &str) -> StoreResult<Option<DekRow>> {
                let row = sqlx::query("SELECT id, subject, kek_id, wrapped, created_at, destroyed_at, active FROM crypto_deks WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(dek_from).transpose()?)
            }

            async fn insert_dek(&self, d: &DekRow) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO crypto_deks (id, subject, kek_id, wrapped, created_at, destroyed_at, active) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&d.id)
                .bind(&d.subject)
                .bind(&d.kek_id)
                .bind(&d.wrapped)
                .bind(d.created_at)
                .bind(d.destroyed_at)
                .bind(d.active)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_deks_by_kek(&self, kek_id: &str) -> StoreResult<Vec<DekRow>> {
                let rows = sqlx::query(
                    "SELECT id, subject, kek_id, wrapped, created_at, destroyed_at, active FROM crypto_deks \
                     WHERE kek_id = $1 AND destroyed_at IS NULL ORDER BY id",
                )
                .bind(kek_id)
                .fetch_all(&self.pool)
                .await?;
                all(rows, dek_from)
            }

            async fn update_dek_wrapping(&self, id: &str, kek_id: &str, wrapped: &[u8]) -> StoreResult<()> {
                sqlx::query("UPDATE crypto_deks SET kek_id = $2, wrapped = $3 WHERE id = $1 AND destroyed_at IS NULL")
                    .bind(id)
                    .bind(kek_id)
                    .bind(wrapped)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn activate_kek(&self, kek_id: &str) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query("UPDATE crypto_keks SET active = FALSE WHERE id <> $1").bind(kek_id).execute(&mut *tx).await?;
                sqlx::query("UPDATE crypto_keks SET active = TRUE WHERE id = $1").bind(kek_id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn retire_deks(&self, subject: &str) -> StoreResult<u64> {
                let done = sqlx::query("UPDATE crypto_deks SET active = FALSE WHERE subject = $1 AND active = TRUE")
                    .bind(subject)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn destroy_deks(&self, subject: &str, at: Micros) -> StoreResult<u64> {
                let done = sqlx::query(
                    "UPDATE crypto_deks SET wrapped = NULL, destroyed_at = $2, active = FALSE \
                     WHERE subject = $1 AND destroyed_at IS NULL",
                )
                .bind(subject)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }
        }

        const AUDIT_COLS: &str = "seq, ts, event_type, actor, subject, object_ref, outcome, entry, chain_hash, leaf_hash";

        fn audit_from(row: &$row) -> Result<crate::store::AuditRow, sqlx::Error> {
            Ok(crate::store::AuditRow {
                seq: row.try_get("seq")?,
                ts: row.try_get("ts")?,
                event_type: row.try_get("event_type")?,
                actor: row.try_get("actor")?,
                subject: row.try_get("subject")?,
                object_ref: row.try_get("object_ref")?,
                outcome: row.try_get("outcome")?,
                entry: row.try_get("entry")?,
                chain_hash: row.try_get("chain_hash")?,
                leaf_hash: row.try_get("leaf_hash")?,
            })
        }

        fn checkpoint_from(row: &$row) -> Result<crate::store::CheckpointRow, sqlx::Error> {
            Ok(crate::store::CheckpointRow {
                size: row.try_get("size")?,
                root: row.try_get("root")?,
                note: row.try_get("note")?,
                created_at: row.try_get("created_at")?,
            })
        }

        /// `(kind, natural_id) IN ((…), …)` lookups, in chunks.
        async fn select_pseudonyms<'e, E>(
            exec: E,
            ids: &[(String, String)],
        ) -> StoreResult<Vec<((String, String), Vec<u8>)>>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut qb = QueryBuilder::new(
                "SELECT kind, natural_id, pseudonym FROM audit_pseudonyms WHERE (kind, natural_id) IN (",
            );
            let mut sep = qb.separated(", ");
            for (k, id) in ids {
                sep.push("(");
                sep.push_bind_unseparated(k.clone());
                sep.push_unseparated(", ");
                sep.push_bind_unseparated(id.clone());
                sep.push_unseparated(")");
            }
            qb.push(")");
            let rows = qb.build().fetch_all(exec).await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        (r.try_get::<String, _>("kind")?, r.try_get::<String, _>("natural_id")?),
                        r.try_get::<Vec<u8>, _>("pseudonym")?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        }

        #[async_trait]
        impl crate::store::AuditStore for $store {
            async fn insert_outbox(&self, rows: &[OutboxRow]) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                insert_outbox(&mut tx, rows).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_outbox(&self, limit: i64) -> StoreResult<Vec<(i64, OutboxRow)>> {
                let rows = sqlx::query(
                    "SELECT id, at_ms, event_type, actor, subject, object_kind, object_id, pii, meta                      FROM audit_outbox ORDER BY id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get::<i64, _>("id")?,
                            OutboxRow {
                                at_ms: r.try_get("at_ms")?,
                                event_type: u16::try_from(r.try_get::<i32, _>("event_type")?).unwrap_or(0),
                                actor: r.try_get("actor")?,
                                subject: r.try_get("subject")?,
                                object_kind: r.try_get("object_kind")?,
                                object_id: r.try_get("object_id")?,
                                pii: r.try_get("pii")?,
                                meta: r.try_get("meta")?,
                            },
                        ))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(StoreError::from)
            }

            async fn hold_audit_lease(&self) -> StoreResult<bool> {
                self.audit_lease().await
            }

            async fn resolve_pseudonyms(
                &self,
                ids: &[(String, String)],
            ) -> StoreResult<Vec<((String, String), Vec<u8>)>> {
                let mut found = Vec::new();
                for chunk in ids.chunks(500) {
                    let have = select_pseudonyms(&self.pool, chunk).await?;
                    let missing: Vec<&(String, String)> = chunk
                        .iter()
                        .filter(|k| !have.iter().any(|(h, _)| h == *k))
                        .collect();
                    found.extend(have);
                    if missing.is_empty() {
                        continue;
                    }
                    let mut qb = QueryBuilder::new("INSERT INTO audit_pseudonyms (kind, natural_id, pseudonym) ");
                    qb.push_values(&missing, |mut b, (k, id)| {
                        b.push_bind(k.clone())
                            .push_bind(id.clone())
                            .push_bind(uuid::Uuid::new_v4().as_bytes().to_vec());
                    });
                    qb.push(" ON CONFLICT (kind, natural_id) DO NOTHING");
                    qb.build().execute(&self.pool).await?;
                    let missing: Vec<(String, String)> = missing.into_iter().cloned().collect();
                    found.extend(select_pseudonyms(&self.pool, &missing).await?);
                }
                Ok(found)
            }

            async fn find_pseudonyms(
                &self,
                ids: &[(String, String)],
            ) -> StoreResult<Vec<((String, String), Vec<u8>)>> {
                let mut found = Vec::new();
                for chunk in ids.chunks(500) {
                    found.extend(select_pseudonyms(&self.pool, chunk).await?);
                }
                Ok(found)
            }

            async fn find_natural_ids(
                &self,
                pseudonyms: &[Vec<u8>],
            ) -> StoreResult<Vec<(Vec<u8>, (String, String))>> {
                let mut out = Vec::new();
                for chunk in pseudonyms.chunks(500) {
                    let mut qb = QueryBuilder::new(
                        "SELECT kind, natural_id, pseudonym FROM audit_pseudonyms WHERE pseudonym IN (",
                    );
                    let mut sep = qb.separated(", ");
                    for p in chunk {
                        sep.push_bind(p.clone());
                    }
                    qb.push(")");
                    for r in qb.build().fetch_all(&self.pool).await? {
                        out.push((
                            r.try_get::<Vec<u8>, _>("pseudonym")?,
                            (r.try_get::<String, _>("kind")?, r.try_get::<String, _>("natural_id")?),
                        ));
                    }
                }
                Ok(out)
            }

            async fn delete_pseudonyms(&self, kind: &str, natural_ids: &[String]) -> StoreResult<u64> {
                // Chunks keep each statement under SQLite's bound-parameter limit (a user
                // can have written 100,000 messages).
                let mut n = 0;
                for chunk in natural_ids.chunks(500) {
                    let mut qb = QueryBuilder::new("DELETE FROM audit_pseudonyms WHERE kind = ");
                    qb.push_bind(kind.to_string()).push(" AND natural_id IN ");
                    push_list(&mut qb, chunk);
                    n += qb.build().execute(&self.pool).await?.rows_affected();
                }
                Ok(n)
            }

            async fn append_audit(&self, batch: &crate::store::AuditBatch) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                for chunk in batch.entries.chunks(1000) {
                    let mut qb = QueryBuilder::new(format!("INSERT INTO audit_log ({AUDIT_COLS}) "));
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.seq)
                            .push_bind(e.ts)
                            .push_bind(e.event_type)
                            .push_bind(e.actor.clone())
                            .push_bind(e.subject.clone())
                            .push_bind(e.object_ref.clone())
                            .push_bind(e.outcome.clone())
                            .push_bind(e.entry.clone())
                            .push_bind(e.chain_hash.clone())
                            .push_bind(e.leaf_hash.clone());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                if !batch.nodes.is_empty() {
                    let mut qb = QueryBuilder::new("INSERT INTO audit_nodes (level, idx, hash) ");
                    qb.push_values(&batch.nodes, |mut b, (level, idx, hash)| {
                        b.push_bind(*level as i32)
                            .push_bind(*idx as i64)
                            .push_bind(hash.to_vec());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                let c = &batch.checkpoint;
                sqlx::query("INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(c.size)
                    .bind(c.root.clone())
                    .bind(c.note.clone())
                    .bind(c.created_at)
                    .execute(&mut *tx)
                    .await?;
                for chunk in batch.drained.chunks(1000) {
                    let mut qb = QueryBuilder::new("DELETE FROM audit_outbox WHERE id IN (");
                    let mut sep = qb.separated(", ");
                    for id in chunk {
                        sep.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn find_audit_head(&self) -> StoreResult<Option<crate::store::AuditRow>> {
                let sql = format!("SELECT {AUDIT_COLS} FROM audit_log ORDER BY seq DESC LIMIT 1");
                let row = sqlx::query(AssertSqlSafe(sql)).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(audit_from).transpose()?)
            }

            async fn find_audit_entries(
                &self,
                q: &crate::store::AuditQuery,
            ) -> StoreResult<Vec<crate::store::AuditRow>> {
                let mut qb = QueryBuilder::new(format!("SELECT {AUDIT_COLS} FROM audit_log WHERE 1 = 1"));
                if let Some(v) = q.from_ts {
                    qb.push(" AND ts >= ").push_bind(v);
                }
                if let Some(v) = q.to_ts {
                    qb.push(" AND ts < ").push_bind(v);
                }
                if let Some(v) = &q.actor {
                    qb.push(" AND actor = ").push_bind(v.clone());
                }
                if let Some(v) = &q.subject {
                    qb.push(" AND subject = ").push_bind(v.clone());
                }
                if let Some(v) = q.event_type {
                    qb.push(" AND event_type = ").push_bind(v);
                }
                if let Some(v) = &q.object_ref {
                    qb.push(" AND object_ref = ").push_bind(v.clone());
                }
                if let Some(v) = &q.outcome {
                    qb.push(" AND outcome = ").push_bind(v.clone());
                }
                let (op, order) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
                if let Some(c) = q.cursor {
                    qb.push(format!(" AND seq {op} ")).push_bind(c);
                }
                qb.push(format!(" ORDER BY seq {order} LIMIT ")).push_bind(q.limit);
                all(qb.build().fetch_all(&self.pool).await?, audit_from)
            }

            async fn find_audit_range(&self, from: i64, to: i64) -> StoreResult<Vec<crate::store::AuditRow>> {
                let sql = format!("SELECT {AUDIT_COLS} FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq");
                all(sqlx::query(AssertSqlSafe(sql)).bind(from).bind(to).fetch_all(&self.pool).await?, audit_from)
            }

            async fn find_leaf_hashes(&self, from: i64, to: i64) -> StoreResult<Vec<Vec<u8>>> {
                Ok(sqlx::query_scalar("SELECT leaf_hash FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq")
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn find_audit_nodes(&self, level: i32, from: i64, to: i64) -> StoreResult<Vec<Vec<u8>>> {
                Ok(sqlx::query_scalar(
                    "SELECT hash FROM audit_nodes WHERE level = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
                )
                .bind(level)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn find_latest_checkpoint(&self) -> StoreResult<Option<crate::store::CheckpointRow>> {
                let row = sqlx::query("SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(checkpoint_from).transpose()?)
            }

            async fn find_checkpoint(&self, size: i64) -> StoreResult<Option<crate::store::CheckpointRow>> {
                let row = sqlx::query("SELECT size, root, note, created_at FROM audit_checkpoints WHERE size = $1")
                    .bind(size)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(checkpoint_from).transpose()?)
            }

            async fn find_seq_bounds(&self, from_ts: i64, to_ts: i64) -> StoreResult<Option<(i64, i64)>> {
                let row = sqlx::query("SELECT MIN(seq) AS lo, MAX(seq) AS hi FROM audit_log WHERE ts >= $1 AND ts < $2")
                    .bind(from_ts)
                    .bind(to_ts)
                    .fetch_one(&self.pool)
                    .await?;
                let lo: Option<i64> = row.try_get("lo")?;
                let hi: Option<i64> = row.try_get("hi")?;
                Ok(lo.zip(hi))
            }
        }

        const SESSION_COLS: &str = "id_hash, user_id, method, provider, saml_session_index, mfa, created_at, last_seen, expires_at, revoked_at";
        const PROVIDER_COLS: &str = "id, kind, name, enabled, config, secret, created_at, updated_at";
        const TOTP_COLS: &str = "user_id, secret, confirmed, last_step, failures, locked_until, created_at";

        fn session_from(r: &$row) -> Result<crate::store::SessionRow, sqlx::Error> {
            Ok(crate::store::SessionRow {
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

        fn provider_from(r: &$row) -> Result<crate::store::ProviderRow, sqlx::Error> {
            Ok(crate::store::ProviderRow {
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

        fn totp_from(r: &$row) -> Result<crate::store::TotpRow, sqlx::Error> {
            Ok(crate::store::TotpRow {
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
        impl crate::store::IdentityStore for $store {
            async fn insert_session(&self, s: &crate::store::SessionRow, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query(AssertSqlSafe(format!("INSERT INTO auth_sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")))
                    .bind(&s.id_hash)
                    .bind(&s.user_id)
                    .bind(&s.method)
                    .bind(&s.provider)
                    .bind(&s.saml_session_index)
                    .bind(s.mfa)
                    .bind(s.created_at)
                    .bind(s.last_seen)
                    .bind(s.expires_at)
                    .bind(s.revoked_at)
                    .execute(&mut *tx)
                    .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_session(&self, id_hash: &str) -> StoreResult<Option<crate::store::SessionRow>> {
                let row = sqlx::query(AssertSqlSafe(format!("SELECT {SESSION_COLS} FROM auth_sessions WHERE id_hash = $1")))
                    .bind(id_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(session_from).transpose()?)
            }

            async fn find_sessions_of(&self, user_id: &str) -> StoreResult<Vec<crate::store::SessionRow>> {
                all(
                    sqlx::query(AssertSqlSafe(format!(
                        "SELECT {SESSION_COLS} FROM auth_sessions WHERE user_id = $1 ORDER BY created_at"
                    )))
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?,
                    session_from,
                )
            }

            async fn touch_session(&self, id_hash: &str, at: Micros, mfa: bool) -> StoreResult<()> {
                sqlx::query("UPDATE auth_sessions SET last_seen = $2, mfa = (mfa OR $3) WHERE id_hash = $1")
                    .bind(id_hash)
                    .bind(at)
                    .bind(mfa)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn revoke_session(&self, id_hash: &str, at: Micros, audit: Audit<'_>) -> StoreResult<bool> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let done = sqlx::query("UPDATE auth_sessions SET revoked_at = $2 WHERE id_hash = $1 AND revoked_at IS NULL")
                    .bind(id_hash)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done > 0 {
                    insert_outbox(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(done > 0)
            }

            async fn revoke_sessions_of(&self, user_id: &str, at: Micros, audit: Audit<'_>) -> StoreResult<u64> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let done = sqlx::query("UPDATE auth_sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
                    .bind(user_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(done)
            }

            async fn find_password(&self, user_id: &str) -> StoreResult<Option<String>> {
                Ok(sqlx::query_scalar("SELECT hash FROM auth_passwords WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn upsert_password(&self, user_id: &str, hash: &str, at: Micros, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query(
                    "INSERT INTO auth_passwords (user_id, hash, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, created_at = excluded.created_at",
                )
                .bind(user_id)
                .bind(hash)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_totp(&self, user_id: &str) -> StoreResult<Option<crate::store::TotpRow>> {
                let row = sqlx::query(AssertSqlSafe(format!("SELECT {TOTP_COLS} FROM auth_totp WHERE user_id = $1")))
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(totp_from).transpose()?)
            }

            async fn upsert_totp(&self, t: &crate::store::TotpRow, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO auth_totp ({TOTP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed = excluded.confirmed, \
                     last_step = excluded.last_step, failures = excluded.failures, locked_until = excluded.locked_until"
                )))
                .bind(&t.user_id)
                .bind(&t.secret)
                .bind(t.confirmed)
                .bind(t.last_step)
                .bind(t.failures as i32)
                .bind(t.locked_until)
                .bind(t.created_at)
                .execute(&mut *tx)
                .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_totp(&self, user_id: &str, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query("DELETE FROM auth_totp WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM auth_recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn replace_recovery_codes(&self, user_id: &str, hashes: &[(String, String)]) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query("DELETE FROM auth_recovery_codes WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
                for (id, hash) in hashes {
                    sqlx::query("INSERT INTO auth_recovery_codes (id, user_id, hash) VALUES ($1, $2, $3)")
                        .bind(id)
                        .bind(user_id)
                        .bind(hash)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn find_recovery_codes(&self, user_id: &str) -> StoreResult<Vec<(String, String)>> {
                let rows = sqlx::query("SELECT id, hash FROM auth_recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("id")?, r.try_get("hash")?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(StoreError::from)
            }

            async fn use_recovery_code(&self, id: &str, at: Micros, audit: Audit<'_>) -> StoreResult<bool> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let done = sqlx::query("UPDATE auth_recovery_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done > 0 {
                    insert_outbox(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(done > 0)
            }

            async fn upsert_provider(&self, p: &crate::store::ProviderRow, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO sso_providers ({PROVIDER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, enabled = excluded.enabled, \
                     config = excluded.config, secret = excluded.secret, updated_at = excluded.updated_at"
                )))
                .bind(&p.id)
                .bind(&p.kind)
                .bind(&p.name)
                .bind(p.enabled)
                .bind(&p.config)
                .bind(&p.secret)
                .bind(p.created_at)
                .bind(p.updated_at)
                .execute(&mut *tx)
                .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find_provider(&self, id: &str) -> StoreResult<Option<crate::store::ProviderRow>> {
                let row = sqlx::query(AssertSqlSafe(format!("SELECT {PROVIDER_COLS} FROM sso_providers WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(provider_from).transpose()?)
            }

            async fn find_providers(&self) -> StoreResult<Vec<crate::store::ProviderRow>> {
                all(
                    sqlx::query(AssertSqlSafe(format!("SELECT {PROVIDER_COLS} FROM sso_providers ORDER BY id")))
                        .fetch_all(&self.pool)
                        .await?,
                    provider_from,
                )
            }

            async fn insert_replay(&self, id: &str, expires_at: Micros, now: Micros) -> StoreResult<bool> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query("DELETE FROM sso_replay WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
                let done = sqlx::query("INSERT INTO sso_replay (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                    .bind(id)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(done == 1)
            }

            async fn insert_flow(&self, id: &str, data: &str, expires_at: Micros, now: Micros) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query("DELETE FROM auth_flows WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO auth_flows (id, data, expires_at) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(data)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn take_flow(&self, id: &str, now: Micros) -> StoreResult<Option<String>> {
                let row: Option<(String, i64)> = sqlx::query_as("DELETE FROM auth_flows WHERE id = $1 RETURNING data, expires_at")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.filter(|(_, exp)| *exp >= now).map(|(d, _)| d))
            }

            async fn set_tokens_revoked(&self, user_id: &str, before_secs: i64) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO auth_token_revocations (user_id, revoked_before) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET revoked_before = excluded.revoked_before",
                )
                .bind(user_id)
                .bind(before_secs)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_tokens_revoked(&self, user_id: &str) -> StoreResult<Option<i64>> {
                Ok(sqlx::query_scalar("SELECT revoked_before FROM auth_token_revocations WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }
        }

        const JOB_COLS: &str = "id, kind, payload, status, attempts, max_attempts, run_at, locked_by, locked_until, \
            progress_done, progress_total, result, error, checkpoint, cancel_requested, created_at, updated_at, finished_at";
        /// The claim a worker's write must still hold (see [`crate::store::JobLease`]).
        const JOB_FENCE: &str = "WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND status = 'running'";

        fn job_json(r: &$row, col: &str) -> Result<Option<serde_json::Value>, sqlx::Error> {
            r.try_get::<Option<String>, _>(col)?
                .map(|text| {
                    serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode { index: col.into(), source: Box::new(e) })
                })
                .transpose()
        }

        fn job_from(r: &$row) -> Result<crate::store::JobRow, sqlx::Error> {
            let status: String = r.try_get("status")?;
            Ok(crate::store::JobRow {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                payload: job_json(r, "payload")?.unwrap_or_default(),
                status: crate::store::JobStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
                    index: "status".into(),
                    source: format!("unknown job status {status:?}").into(),
                })?,
                attempts: r.try_get("attempts")?,
                max_attempts: r.try_get("max_attempts")?,
                run_at: r.try_get("run_at")?,
                locked_by: r.try_get("locked_by")?,
                locked_until: r.try_get("locked_until")?,
                progress_done: r.try_get("progress_done")?,
                progress_total: r.try_get("progress_total")?,
                result: job_json(r, "result")?,
                error: r.try_get("error")?,
                checkpoint: job_json(r, "checkpoint")?,
                cancel_requested: r.try_get("cancel_requested")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
                finished_at: r.try_get("finished_at")?,
            })
        }

        #[async_trait]
        impl crate::store::JobStore for $store {
            async fn insert_job(&self, j: &crate::store::JobRow) -> StoreResult<()> {
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO jobs ({JOB_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
                )))
                .bind(&j.id)
                .bind(&j.kind)
                .bind(j.payload.to_string())
                .bind(j.status.as_str())
                .bind(j.attempts)
                .bind(j.max_attempts)
                .bind(j.run_at)
                .bind(&j.locked_by)
                .bind(j.locked_until)
                .bind(j.progress_done)
                .bind(j.progress_total)
                .bind(j.result.as_ref().map(|v| v.to_string()))
                .bind(&j.error)
                .bind(j.checkpoint.as_ref().map(|v| v.to_string()))
                .bind(j.cancel_requested)
                .bind(j.created_at)
                .bind(j.updated_at)
                .bind(j.finished_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_job(&self, id: &str) -> StoreResult<Option<crate::store::JobRow>> {
                let row = sqlx::query(AssertSqlSafe(format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(job_from).transpose()?)
            }

            async fn claim_job(&self, worker: &str, now: Micros, until: Micros) -> StoreResult<Option<crate::store::JobRow>> {
                // SQLite: the IMMEDIATE transaction makes this the only writer, so nobody
                // claims between the pick and the update. PostgreSQL: the row lock taken by
                // the pick (CLAIM_LOCK) does that, and SKIP LOCKED lets concurrent claims
                // pass over it to the next due job instead of waiting.
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let sql = format!(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $2, locked_until = $3, \
                     updated_at = $1 \
                     WHERE id = (SELECT id FROM jobs WHERE status IN ('pending', 'running') AND run_at <= $1 \
                     AND (locked_until IS NULL OR locked_until < $1) ORDER BY run_at, id LIMIT 1{CLAIM_LOCK}) \
                     RETURNING {JOB_COLS}"
                );
                let row = sqlx::query(AssertSqlSafe(sql))
                    .bind(now)
                    .bind(worker)
                    .bind(until)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(row.as_ref().map(job_from).transpose()?)
            }

            async fn update_job_lease(&self, l: &crate::store::JobLease, until: Micros, now: Micros) -> StoreResult<bool> {
                let done = sqlx::query(AssertSqlSafe(format!("UPDATE jobs SET locked_until = $4, updated_at = $5 {JOB_FENCE}")))
                    .bind(&l.id)
                    .bind(&l.worker)
                    .bind(l.attempt)
                    .bind(until)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(done == 1)
            }

            async fn update_job_progress(
                &self,
                l: &crate::store::JobLease,
                done: i64,
                total: i64,
                now: Micros,
            ) -> StoreResult<bool> {
                let n = sqlx::query(AssertSqlSafe(format!(
                    "UPDATE jobs SET progress_done = $4, progress_total = $5, updated_at = $6 {JOB_FENCE}"
                )))
                .bind(&l.id)
                .bind(&l.worker)
                .bind(l.attempt)
                .bind(done)
                .bind(total)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn update_job_checkpoint(
                &self,
                l: &crate::store::JobLease,
                checkpoint: &serde_json::Value,
                now: Micros,
            ) -> StoreResult<bool> {
                let n = sqlx::query(AssertSqlSafe(format!("UPDATE jobs SET checkpoint = $4, updated_at = $5 {JOB_FENCE}")))
                    .bind(&l.id)
                    .bind(&l.worker)
                    .bind(l.attempt)
                    .bind(checkpoint.to_string())
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }

            async fn finish_job(
                &self,
                l: &crate::store::JobLease,
                outcome: &crate::store::JobOutcome,
                now: Micros,
            ) -> StoreResult<bool> {
                use crate::store::JobOutcome;
                const UNLOCK: &str = "locked_by = NULL, locked_until = NULL, updated_at = $4";
                let fenced = |set: &str| AssertSqlSafe(format!("UPDATE jobs SET {set}, {UNLOCK} {JOB_FENCE}"));
                let query = match outcome {
                    JobOutcome::Completed(result) => {
                        sqlx::query(fenced("status = 'completed', result = $5, error = NULL, finished_at = $4"))
                            .bind(&l.id)
                            .bind(&l.worker)
                            .bind(l.attempt)
                            .bind(now)
                            .bind(result.to_string())
                    }
                    // A cancellation requested while the attempt ran wins over the retry.
                    JobOutcome::Retry { error, run_at } => sqlx::query(fenced(
                        "status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END, \
                         finished_at = CASE WHEN cancel_requested THEN $4 ELSE NULL END, error = $5, run_at = $6",
                    ))
                    .bind(&l.id)
                    .bind(&l.worker)
                    .bind(l.attempt)
                    .bind(now)
                    .bind(error.clone())
                    .bind(*run_at),
                    JobOutcome::Failed(error) => sqlx::query(fenced("status = 'failed', error = $5, finished_at = $4"))
                        .bind(&l.id)
                        .bind(&l.worker)
                        .bind(l.attempt)
                        .bind(now)
                        .bind(error.clone()),
                    JobOutcome::Cancelled => sqlx::query(fenced("status = 'cancelled', finished_at = $4"))
                        .bind(&l.id)
                        .bind(&l.worker)
                        .bind(l.attempt)
                        .bind(now),
                    JobOutcome::Released => {
                        sqlx::query(fenced("status = 'pending', attempts = attempts - 1, run_at = $4"))
                            .bind(&l.id)
                            .bind(&l.worker)
                            .bind(l.attempt)
                            .bind(now)
                    }
                };
                Ok(query.execute(&self.pool).await?.rows_affected() == 1)
            }

            async fn cancel_job(&self, id: &str, now: Micros) -> StoreResult<Option<crate::store::JobStatus>> {
                // A pending job, or a running one whose worker is gone (lease expired), ends
                // here; a live run is asked to stop and its worker ends it.
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let stop_now = "status = 'pending' OR locked_until < $2";
                let changed: Option<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "UPDATE jobs SET cancel_requested = TRUE, \
                     status = CASE WHEN {stop_now} THEN 'cancelled' ELSE status END, \
                     finished_at = CASE WHEN {stop_now} THEN $2 ELSE finished_at END, \
                     locked_by = CASE WHEN {stop_now} THEN NULL ELSE locked_by END, \
                     locked_until = CASE WHEN {stop_now} THEN NULL ELSE locked_until END, \
                     updated_at = $2 \
                     WHERE id = $1 AND status IN ('pending', 'running') RETURNING status"
                )))
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let status = match changed {
                    Some(s) => Some(s),
                    None => sqlx::query_scalar("SELECT status FROM jobs WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?,
                };
                tx.commit().await?;
                Ok(status.as_deref().and_then(crate::store::JobStatus::parse))
            }
        }

        /// A condition on a message `m`: an active legal hold covers its channel or its author.
        const HELD_MESSAGE: &str = "(m.cid IN (SELECT target FROM legal_holds WHERE scope = 'channel' AND released_at IS NULL) \
             OR m.user_id IN (SELECT target FROM legal_holds WHERE scope = 'user' AND released_at IS NULL))";
        const HOLD_COLS: &str = "id, scope, target, reason, placed_by, placed_at, released_by, released_at";

        fn hold_from(r: &$row) -> Result<crate::store::HoldRow, sqlx::Error> {
            Ok(crate::store::HoldRow {
                id: r.try_get("id")?,
                scope: r.try_get("scope")?,
                target: r.try_get("target")?,
                reason: r.try_get("reason")?,
                placed_by: r.try_get("placed_by")?,
                placed_at: r.try_get("placed_at")?,
                released_by: r.try_get("released_by")?,
                released_at: r.try_get("released_at")?,
            })
        }

        #[async_trait]
        impl crate::store::ComplianceStore for $store {
            async fn insert_hold(&self, h: &crate::store::HoldRow, audit: Audit<'_>) -> StoreResult<()> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                sqlx::query(AssertSqlSafe(format!("INSERT INTO legal_holds ({HOLD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")))
                    .bind(&h.id)
                    .bind(&h.scope)
                    .bind(&h.target)
                    .bind(&h.reason)
                    .bind(&h.placed_by)
                    .bind(h.placed_at)
                    .bind(&h.released_by)
                    .bind(h.released_at)
                    .execute(&mut *tx)
                    .await?;
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn release_hold(&self, id: &str, by: Option<&str>, at: Micros, audit: Audit<'_>) -> StoreResult<bool> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let done = sqlx::query("UPDATE legal_holds SET released_by = $2, released_at = $3 WHERE id = $1 AND released_at IS NULL")
                    .bind(id)
                    .bind(by)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if done > 0 {
                    insert_outbox(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(done > 0)
            }

            async fn find_hold(&self, id: &str) -> StoreResult<Option<crate::store::HoldRow>> {
                let row = sqlx::query(AssertSqlSafe(format!("SELECT {HOLD_COLS} FROM legal_holds WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(hold_from).transpose()?)
            }

            async fn find_holds(&self, active_only: bool) -> StoreResult<Vec<crate::store::HoldRow>> {
                let filter = if active_only { "WHERE released_at IS NULL" } else { "" };
                all(
                    sqlx::query(AssertSqlSafe(format!("SELECT {HOLD_COLS} FROM legal_holds {filter} ORDER BY placed_at DESC")))
                        .fetch_all(&self.pool)
                        .await?,
                    hold_from,
                )
            }

            async fn find_holds_covering_user(&self, user_id: &str) -> StoreResult<Vec<crate::store::HoldRow>> {
                all(
                    sqlx::query(AssertSqlSafe(format!(
                        "SELECT {HOLD_COLS} FROM legal_holds WHERE released_at IS NULL AND \
                         ((scope = 'user' AND target = $1) OR (scope = 'channel' AND target IN \
                         (SELECT DISTINCT cid FROM messages WHERE user_id = $1) ) OR \
                         (scope = 'channel' AND target IN (SELECT cid FROM channel_members WHERE user_id = $1)))"
                    )))
                    .bind(user_id)
                    .fetch_all(&self.pool)
                    .await?,
                    hold_from,
                )
            }

            async fn erase_user_rows(
                &self,
                user_id: &str,
                hard_messages: bool,
                hard_user: bool,
                at: Micros,
                audit: Audit<'_>,
            ) -> StoreResult<crate::store::EraseCounts> {
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                let mut counts = crate::store::EraseCounts::default();
                let exec = |sql: &'static str| sqlx::query(sql).bind(user_id);
                counts.reactions = exec("DELETE FROM reactions WHERE user_id = $1").execute(&mut *tx).await?.rows_affected();
                exec("DELETE FROM message_search_tokens WHERE message_id IN (SELECT id FROM messages WHERE user_id = $1)")
                    .execute(&mut *tx)
                    .await?;
                counts.messages = if hard_messages {
                    exec("DELETE FROM reactions WHERE message_id IN (SELECT id FROM messages WHERE user_id = $1)")
                        .execute(&mut *tx)
                        .await?;
                    exec("DELETE FROM messages WHERE user_id = $1").execute(&mut *tx).await?.rows_affected()
                } else {
                    sqlx::query(
                        "UPDATE messages SET text = '', data = '{}', type = 'deleted', \
                         deleted_at = COALESCE(deleted_at, $2), updated_at = $2 WHERE user_id = $1",
                    )
                    .bind(user_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                };
                counts.memberships = exec("DELETE FROM channel_members WHERE user_id = $1").execute(&mut *tx).await?.rows_affected();
                exec("DELETE FROM channel_reads WHERE user_id = $1").execute(&mut *tx).await?;
                counts.sessions = exec("DELETE FROM auth_sessions WHERE user_id = $1").execute(&mut *tx).await?.rows_affected();
                for sql in [
                    "DELETE FROM auth_passwords WHERE user_id = $1",
                    "DELETE FROM auth_totp WHERE user_id = $1",
                    "DELETE FROM auth_recovery_codes WHERE user_id = $1",
                ] {
                    sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
                }
                counts.user_rows = if hard_user {
                    exec("DELETE FROM users WHERE id = $1").execute(&mut *tx).await?.rows_affected()
                } else {
                    sqlx::query(
                        "UPDATE users SET data = '{}', role = 'user', deleted_at = COALESCE(deleted_at, $2), \
                         deactivated_at = COALESCE(deactivated_at, $2), updated_at = $2 WHERE id = $1",
                    )
                    .bind(user_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                };
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(counts)
            }

            async fn count_expired_messages(
                &self,
                channel_type: &str,
                before: Micros,
            ) -> StoreResult<crate::store::ExpiredCounts> {
                let row = sqlx::query(AssertSqlSafe(format!(
                    "SELECT COUNT(*) AS expired, COALESCE(SUM(CASE WHEN {HELD_MESSAGE} THEN 1 ELSE 0 END), 0) AS held \
                     FROM messages m JOIN channels c ON c.cid = m.cid WHERE c.type = $1 AND m.created_at < $2"
                )))
                .bind(channel_type)
                .bind(before)
                .fetch_one(&self.pool)
                .await?;
                Ok(crate::store::ExpiredCounts {
                    expired: row.try_get("expired")?,
                    held: row.try_get("held")?,
                })
            }

            async fn find_expired_message_ids(
                &self,
                channel_type: &str,
                before: Micros,
                limit: i64,
            ) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT m.id FROM messages m JOIN channels c ON c.cid = m.cid \
                     WHERE c.type = $1 AND m.created_at < $2 AND NOT {HELD_MESSAGE} \
                     ORDER BY m.created_at, m.id LIMIT $3"
                )))
                .bind(channel_type)
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_unheld_messages(&self, ids: &[String], audit: Audit<'_>) -> StoreResult<bool> {
                if ids.is_empty() {
                    return Ok(true);
                }
                let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
                // Checked inside the transaction: a hold placed since the ids were found wins.
                let mut qb = QueryBuilder::new(format!("SELECT COUNT(*) FROM messages m WHERE NOT {HELD_MESSAGE} AND m.id IN "));
                push_list(&mut qb, ids);
                let unheld: i64 = qb.build_query_scalar().fetch_one(&mut *tx).await?;
                if unheld != ids.len() as i64 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                for sql in [
                    "DELETE FROM reactions WHERE message_id IN ",
                    "DELETE FROM message_search_tokens WHERE message_id IN ",
                    "DELETE FROM messages WHERE id IN ",
                ] {
                    let mut qb = QueryBuilder::new(sql);
                    push_list(&mut qb, ids);
                    qb.build().execute(&mut *tx).await?;
                }
                insert_outbox(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

pub(crate) use impl_sql_store;
