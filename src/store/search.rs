//! Message search: a case-insensitive text match (unencrypted deployments) and the
//! blind-index tokens of encrypted messages.

use super::db::{Db, query};
use super::messages::{MESSAGE_COLS, MessageRow, message_from};
use super::{StoreResult, all};

pub(super) async fn search_messages(
    db: &Db,
    cids: &[String],
    needle: &str,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<MessageRow>> {
    if cids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = query(format!(
        "SELECT {MESSAGE_COLS} FROM messages m JOIN channels c ON c.cid = m.cid \
         WHERE m.deleted_at IS NULL AND (c.truncated_at IS NULL OR m.created_at > c.truncated_at) \
         AND m.cid IN "
    ));
    qb.push_list(cids);
    // Each whitespace-separated part of the needle, anywhere in the text; wildcards literal.
    for part in needle.split_whitespace().take(32) {
        let escaped = part
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        qb.push(" AND LOWER(m.text) LIKE LOWER(")
            .push_bind(format!("%{escaped}%"))
            .push(") ESCAPE '\\'");
    }
    qb.push(" ORDER BY m.created_at DESC, m.id DESC LIMIT ")
        .push_bind(limit);
    qb.push(" OFFSET ").push_bind(offset);
    all(qb.fetch_all(db).await?, message_from)
}

/// Messages in `cids` containing every word of `needle` of three or more characters
/// (case-insensitive, anywhere in the text); no such word, no match.
pub(super) async fn search_message_words(
    db: &Db,
    cids: &[String],
    needle: &str,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<MessageRow>> {
    // Letters and digits only, as the blind index splits words: no LIKE wildcard survives.
    let words: std::collections::BTreeSet<String> = needle
        .split(|c: char| !c.is_alphanumeric())
        // As the blind index: prefixes of fewer than three characters are not looked up.
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    if cids.is_empty() || words.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = query(format!(
        "SELECT {MESSAGE_COLS} FROM messages m JOIN channels c ON c.cid = m.cid \
         WHERE m.deleted_at IS NULL AND (c.truncated_at IS NULL OR m.created_at > c.truncated_at) \
         AND m.cid IN "
    ));
    qb.push_list(cids);
    for w in words.iter().take(32) {
        qb.push(" AND LOWER(m.text) LIKE ")
            .push_bind(format!("%{w}%"));
    }
    qb.push(" ORDER BY m.created_at DESC, m.id DESC LIMIT ")
        .push_bind(limit);
    qb.push(" OFFSET ").push_bind(offset);
    all(qb.fetch_all(db).await?, message_from)
}

pub(super) async fn replace_message_tokens(
    db: &Db,
    message_id: &str,
    tokens: &[String],
) -> StoreResult<()> {
    let mut tx = db.begin_write().await?;
    query("DELETE FROM message_search_tokens WHERE message_id = $1")
        .bind(message_id)
        .execute(&mut tx)
        .await?;
    for token in tokens {
        query(
            "INSERT INTO message_search_tokens (token, message_id) VALUES ($1, $2) ON CONFLICT \
             DO NOTHING",
        )
        .bind(token)
        .bind(message_id)
        .execute(&mut tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete_tokens_of_author(db: &Db, user_id: &str) -> StoreResult<()> {
    query(
        "DELETE FROM message_search_tokens WHERE message_id IN (SELECT id FROM messages WHERE \
         user_id = $1)",
    )
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(())
}

pub(super) async fn search_messages_by_tokens(
    db: &Db,
    tokens: &[String],
    required: i64,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<MessageRow>> {
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = query(format!(
        "SELECT {MESSAGE_COLS} FROM messages m JOIN channels c ON c.cid = m.cid \
         WHERE m.deleted_at IS NULL AND (c.truncated_at IS NULL OR m.created_at > c.truncated_at) \
         AND m.id IN (SELECT message_id FROM message_search_tokens WHERE token IN "
    ));
    qb.push_list(tokens);
    qb.push(" GROUP BY message_id HAVING COUNT(*) >= ")
        .push_bind(required);
    qb.push(") ORDER BY m.created_at DESC, m.id DESC LIMIT ")
        .push_bind(limit);
    qb.push(" OFFSET ").push_bind(offset);
    all(qb.fetch_all(db).await?, message_from)
}
