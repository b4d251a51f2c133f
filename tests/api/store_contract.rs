//! The storage contract: every aggregate trait behaves the same on SQLite and PostgreSQL.
//! This file holds the shared fixtures and the first tests; one submodule per aggregate
//! (`store_contract/*.rs`) holds the rest.

use serde_json::json;
use ward::store::{ChannelRow, Cursor, Fields, MemberRow, MessageRow, ReactionRow, Store, UserRow};

use crate::helpers::{Cleanup, Db, fresh_database, on_both_databases};

mod audit;
mod channels;
mod compliance;
mod devices;
mod identity;
mod jobs;
mod keys;
mod members;
mod message_hides;
mod messages;
mod threads;
mod usage;
mod users;
// Uploads (issue 16).
mod uploads;

async fn store(db: Db) -> (Store, Cleanup) {
    let (url, cleanup) = fresh_database(db);
    let store = Store::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{db:?} store opens: {e:#}"));
    (store, cleanup)
}

fn user(id: &str, t: i64) -> UserRow {
    UserRow {
        id: id.into(),
        role: "user".into(),
        data: Fields::new(),
        created_at: t,
        updated_at: t,
        last_active: None,
        deactivated_at: None,
        deleted_at: None,
        banned: false,
    }
}

fn channel(cid: &str, t: i64) -> ChannelRow {
    let (kind, id) = cid.split_once(':').unwrap();
    ChannelRow {
        cid: cid.into(),
        kind: kind.into(),
        id: id.into(),
        created_by_id: Some("a".into()),
        data: Fields::new(),
        created_at: t,
        updated_at: t,
        last_message_at: None,
        deleted_at: None,
        truncated_at: None,
        frozen: false,
        message_count: 0,
        member_count: 0,
    }
}

fn member(cid: &str, user: &str, t: i64) -> MemberRow {
    MemberRow {
        cid: cid.into(),
        user_id: user.into(),
        channel_role: "channel_member".into(),
        created_at: t,
        updated_at: t,
        ..Default::default()
    }
}

fn message(id: &str, cid: &str, user: &str, text: &str, t: i64) -> MessageRow {
    MessageRow {
        id: id.into(),
        cid: cid.into(),
        user_id: user.into(),
        kind: "regular".into(),
        text: text.into(),
        data: Fields::new(),
        parent_id: None,
        show_in_channel: false,
        silent: false,
        pinned: false,
        reply_count: 0,
        created_at: t,
        updated_at: t,
        deleted_at: None,
        text_updated_at: None,
    }
}

async fn upserting_a_user_replaces_data_and_keeps_created_at(db: Db) {
    let (s, _c) = store(db).await;
    let mut u = user("a", 10);
    u.data.insert("color".into(), json!("red"));
    s.users.upsert_user(&u, &[]).await.unwrap();
    let mut again = user("a", 99);
    again.data.insert("size".into(), json!(3));
    let stored = s.users.upsert_user(&again, &[]).await.unwrap();
    assert_eq!(stored.created_at, 10, "created_at is kept");
    assert_eq!(stored.updated_at, 99);
    assert_eq!(
        stored.data.get("color"),
        None,
        "data is replaced, not merged"
    );
    assert_eq!(stored.data["size"], json!(3));
    assert_eq!(
        s.users
            .find_users(&["a".into(), "zz".into()])
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn creating_a_channel_is_idempotent_and_counts_members(db: Db) {
    let (s, _c) = store(db).await;
    let ch = channel("messaging:x", 1);
    assert!(
        s.channels
            .insert_channel(
                &ch,
                &[member("messaging:x", "a", 1), member("messaging:x", "b", 1)],
                &[]
            )
            .await
            .unwrap()
    );
    assert!(
        !s.channels
            .insert_channel(&ch, &[member("messaging:x", "c", 1)], &[])
            .await
            .unwrap(),
        "a second insert changes nothing"
    );
    let stored = s
        .channels
        .find_channel("messaging:x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.member_count, 2);
    let added = s
        .channels
        .add_members(
            "messaging:x",
            &[member("messaging:x", "b", 2), member("messaging:x", "c", 2)],
            &|_| None,
        )
        .await
        .unwrap();
    assert_eq!(
        added.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(
        s.channels
            .find_channels_for_member("c")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.channels
            .remove_members("messaging:x", &["a".into(), "nobody".into()], &|_| None)
            .await
            .unwrap(),
        ["a"]
    );
    assert_eq!(
        s.channels
            .find_reads(&["messaging:x".into()])
            .await
            .unwrap()
            .len(),
        2,
        "read state follows membership"
    );
}

async fn message_pages_run_both_ways_and_break_ties_by_id(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(&channel("messaging:p", 0), &[], &[])
        .await
        .unwrap();
    // m2 and m3 share a timestamp: the id orders them.
    for (id, t) in [("m1", 1), ("m3", 2), ("m2", 2), ("m4", 3)] {
        s.messages
            .insert_message(&message(id, "messaging:p", "a", id, t), true, &[])
            .await
            .unwrap();
    }
    let ids = |rows: Vec<MessageRow>| rows.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let msgs = &s.messages;
    assert_eq!(
        ids(msgs
            .find_channel_messages("messaging:p", None, &Cursor::Latest, 3)
            .await
            .unwrap()),
        ["m2", "m3", "m4"]
    );
    let before = Cursor::Before {
        at: 2,
        id: "m3".into(),
        inclusive: false,
    };
    assert_eq!(
        ids(msgs
            .find_channel_messages("messaging:p", None, &before, 10)
            .await
            .unwrap()),
        ["m1", "m2"]
    );
    let after = Cursor::After {
        at: 2,
        id: "m2".into(),
        inclusive: true,
    };
    assert_eq!(
        ids(msgs
            .find_channel_messages("messaging:p", None, &after, 2)
            .await
            .unwrap()),
        ["m2", "m3"]
    );
    assert_eq!(
        ids(msgs
            .find_channel_messages("messaging:p", Some(1), &Cursor::Latest, 10)
            .await
            .unwrap()),
        ["m2", "m3", "m4"],
        "since excludes older"
    );
}

async fn a_new_message_counts_unread_for_others_and_reads_for_its_author(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(
            &channel("messaging:u", 0),
            &[member("messaging:u", "a", 0), member("messaging:u", "b", 0)],
            &[],
        )
        .await
        .unwrap();
    s.messages
        .insert_message(&message("m1", "messaging:u", "a", "hi", 5), true, &[])
        .await
        .unwrap();
    s.messages
        .insert_message(&message("m2", "messaging:u", "a", "again", 6), true, &[])
        .await
        .unwrap();
    let reads = s
        .channels
        .find_reads(&["messaging:u".into()])
        .await
        .unwrap();
    let of = |u: &str| reads.iter().find(|r| r.user_id == u).unwrap().clone();
    assert_eq!(of("b").unread_messages, 2);
    assert_eq!(of("a").unread_messages, 0);
    assert_eq!(of("a").last_read_message_id.as_deref(), Some("m2"));
    let ch = s
        .channels
        .find_channel("messaging:u")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ch.last_message_at, ch.message_count), (Some(6), 2));
    assert_eq!(
        s.messages
            .count_messages_after("messaging:u", 5, "b")
            .await
            .unwrap(),
        1
    );
}

async fn a_duplicate_message_id_is_a_conflict_and_keeps_the_original(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(&channel("messaging:d", 0), &[], &[])
        .await
        .unwrap();
    s.messages
        .insert_message(&message("same", "messaging:d", "a", "first", 1), true, &[])
        .await
        .unwrap();
    let err = s
        .messages
        .insert_message(&message("same", "messaging:d", "a", "second", 2), true, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, ward::store::StoreError::Conflict(_)), "{err}");
    assert_eq!(
        s.messages.find_message("same").await.unwrap().unwrap().text,
        "first"
    );
}

async fn replies_are_counted_and_paged_apart_from_the_channel(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(&channel("messaging:t", 0), &[], &[])
        .await
        .unwrap();
    s.messages
        .insert_message(&message("parent", "messaging:t", "a", "q", 1), true, &[])
        .await
        .unwrap();
    for (id, t) in [("r1", 2), ("r2", 3)] {
        let mut r = message(id, "messaging:t", "b", "a", t);
        r.parent_id = Some("parent".into());
        r.kind = "reply".into();
        s.messages.insert_message(&r, true, &[]).await.unwrap();
    }
    assert_eq!(
        s.messages
            .find_message("parent")
            .await
            .unwrap()
            .unwrap()
            .reply_count,
        2
    );
    assert_eq!(
        s.messages
            .find_channel_messages("messaging:t", None, &Cursor::Latest, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.messages
            .find_replies("parent", &Cursor::Latest, 10)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn unique_reactions_replace_the_users_other_reactions(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(&channel("messaging:r", 0), &[], &[])
        .await
        .unwrap();
    s.messages
        .insert_message(&message("m", "messaging:r", "a", "x", 1), true, &[])
        .await
        .unwrap();
    let r = |kind: &str| ReactionRow {
        message_id: "m".into(),
        user_id: "b".into(),
        kind: kind.into(),
        score: 1,
        data: Fields::new(),
        created_at: 2,
        updated_at: 2,
    };
    assert!(!s.messages.upsert_reaction(&r("like"), false).await.unwrap());
    assert!(!s.messages.upsert_reaction(&r("love"), false).await.unwrap());
    assert!(
        s.messages.upsert_reaction(&r("love"), false).await.unwrap(),
        "same type again replaces"
    );
    assert_eq!(
        s.messages
            .find_reactions(&["m".into()])
            .await
            .unwrap()
            .len(),
        2
    );
    s.messages.upsert_reaction(&r("wow"), true).await.unwrap();
    let kinds: Vec<String> = s
        .messages
        .find_reactions(&["m".into()])
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, ["wow"]);
    assert!(
        s.messages
            .delete_reaction("m", "b", "wow")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.messages
            .delete_reaction("m", "b", "wow")
            .await
            .unwrap()
            .is_none()
    );
}

async fn search_is_case_insensitive_and_treats_wildcards_literally(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(&channel("messaging:s", 0), &[], &[])
        .await
        .unwrap();
    s.channels
        .insert_channel(&channel("messaging:other", 0), &[], &[])
        .await
        .unwrap();
    s.messages
        .insert_message(
            &message("m1", "messaging:s", "a", "Blood PRESSURE 120/80", 1),
            true,
            &[],
        )
        .await
        .unwrap();
    s.messages
        .insert_message(
            &message("m2", "messaging:s", "a", "100% done_now", 2),
            true,
            &[],
        )
        .await
        .unwrap();
    s.messages
        .insert_message(
            &message("m3", "messaging:other", "a", "pressure elsewhere", 3),
            true,
            &[],
        )
        .await
        .unwrap();
    let cids = vec!["messaging:s".to_string()];
    let hits = s
        .messages
        .search_messages(&cids, "pressure", 10, 0)
        .await
        .unwrap();
    assert_eq!(
        hits.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m1"]
    );
    assert_eq!(
        s.messages
            .search_messages(&cids, "%", 10, 0)
            .await
            .unwrap()
            .len(),
        1,
        "% is literal"
    );
    assert_eq!(
        s.messages
            .search_messages(&cids, "e_n", 10, 0)
            .await
            .unwrap()
            .len(),
        1,
        "_ is literal"
    );
    assert_eq!(
        s.messages
            .search_messages(&cids, "x_y", 10, 0)
            .await
            .unwrap()
            .len(),
        0
    );
}

async fn truncation_hides_messages_and_hard_truncation_deletes_them(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(
            &channel("messaging:tr", 0),
            &[member("messaging:tr", "b", 0)],
            &[],
        )
        .await
        .unwrap();
    s.messages
        .insert_message(&message("old", "messaging:tr", "a", "old", 1), true, &[])
        .await
        .unwrap();
    s.channels
        .truncate_channel("messaging:tr", 5, false, &[])
        .await
        .unwrap();
    let ch = s
        .channels
        .find_channel("messaging:tr")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ch.truncated_at, Some(5));
    assert_eq!(
        s.channels
            .find_reads(&["messaging:tr".into()])
            .await
            .unwrap()[0]
            .unread_messages,
        0
    );
    assert!(
        s.messages.find_message("old").await.unwrap().is_some(),
        "soft truncation keeps rows"
    );
    s.channels
        .truncate_channel("messaging:tr", 5, true, &[])
        .await
        .unwrap();
    assert!(s.messages.find_message("old").await.unwrap().is_none());
}

async fn settings_keep_the_first_value_written(db: Db) {
    let (s, _c) = store(db).await;
    assert_eq!(
        s.settings
            .insert_setting_if_absent("k", "one")
            .await
            .unwrap(),
        "one"
    );
    assert_eq!(
        s.settings
            .insert_setting_if_absent("k", "two")
            .await
            .unwrap(),
        "one"
    );
    assert_eq!(
        s.settings.find_setting("k").await.unwrap().as_deref(),
        Some("one")
    );
    assert_eq!(s.settings.find_setting("missing").await.unwrap(), None);
}

on_both_databases!(
    upserting_a_user_replaces_data_and_keeps_created_at,
    creating_a_channel_is_idempotent_and_counts_members,
    message_pages_run_both_ways_and_break_ties_by_id,
    a_new_message_counts_unread_for_others_and_reads_for_its_author,
    a_duplicate_message_id_is_a_conflict_and_keeps_the_original,
    replies_are_counted_and_paged_apart_from_the_channel,
    unique_reactions_replace_the_users_other_reactions,
    search_is_case_insensitive_and_treats_wildcards_literally,
    truncation_hides_messages_and_hard_truncation_deletes_them,
    settings_keep_the_first_value_written,
);
