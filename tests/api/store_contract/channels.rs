//! Channel store beyond creation: updates, deletion, member roles and audit records per
//! member, read state per user, and lookups by member and type.

use ward::store::{MemberRow, OutboxRow, ReadRow};

use super::{channel, member, message, store};
use crate::helpers::{Db, on_both_databases};

fn record(object_id: &str) -> OutboxRow {
    OutboxRow {
        at_ms: 1,
        event_type: 4,
        actor: None,
        subject: None,
        object_kind: Some("member".into()),
        object_id: Some(object_id.into()),
        pii: Vec::new(),
        meta: Vec::new(),
    }
}

async fn members_are_added_once_renamed_and_removed_with_one_record_each(db: Db) {
    let (s, _c) = store(db).await;
    let ch = &s.channels;
    ch.insert_channel(
        &channel("messaging:x", 1),
        &[member("messaging:x", "a", 1)],
        &[],
    )
    .await
    .unwrap();
    let audit = |m: &MemberRow| Some(record(&format!("add-{}", m.user_id)));
    let added = ch
        .add_members(
            "messaging:x",
            &[member("messaging:x", "a", 2), member("messaging:x", "b", 2)],
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(
        added,
        [member("messaging:x", "b", 2)],
        "a was a member already"
    );
    let read = ch.find_reads(&["messaging:x".into()]).await.unwrap();
    let b = read.iter().find(|r| r.user_id == "b").unwrap();
    assert_eq!(
        (b.last_read, b.unread_messages),
        (2, 0),
        "read state starts at the join"
    );

    assert!(
        ch.update_member_role(
            "messaging:x",
            "b",
            "channel_moderator",
            3,
            &[record("role-b")]
        )
        .await
        .unwrap()
    );
    assert!(
        !ch.update_member_role(
            "messaging:x",
            "zz",
            "channel_moderator",
            3,
            &[record("role-zz")]
        )
        .await
        .unwrap()
    );
    let members = ch.find_members(&["messaging:x".into()]).await.unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| (m.user_id.as_str(), m.channel_role.as_str(), m.updated_at))
            .collect::<Vec<_>>(),
        [("a", "channel_member", 1), ("b", "channel_moderator", 3)]
    );

    let removed = ch
        .remove_members("messaging:x", &["b".into(), "zz".into()], &|id: &str| {
            Some(record(&format!("rm-{id}")))
        })
        .await
        .unwrap();
    assert_eq!(removed, ["b"]);
    let reads = ch.find_reads(&["messaging:x".into()]).await.unwrap();
    assert_eq!(
        reads.iter().map(|r| r.user_id.as_str()).collect::<Vec<_>>(),
        ["a"],
        "b's read state goes too"
    );
    let outbox: Vec<String> = s
        .audit
        .find_outbox(10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(_, r)| r.object_id)
        .collect();
    assert_eq!(
        outbox,
        ["add-b", "role-b", "rm-b"],
        "one record per change, none for no-ops"
    );
}

async fn channels_are_found_by_member_and_type_updated_and_deleted(db: Db) {
    let (s, _c) = store(db).await;
    let ch = &s.channels;
    for (cid, t) in [("messaging:a", 1), ("team:b", 2), ("messaging:c", 3)] {
        ch.insert_channel(&channel(cid, t), &[member(cid, "u", t)], &[])
            .await
            .unwrap();
    }
    let cids =
        |rows: Vec<ward::store::ChannelRow>| rows.into_iter().map(|c| c.cid).collect::<Vec<_>>();
    assert_eq!(
        cids(
            ch.find_channels_of_types(&["messaging".into()], 10)
                .await
                .unwrap()
        ),
        ["messaging:c", "messaging:a"],
        "newest first"
    );
    assert_eq!(
        cids(
            ch.find_channels_of_types(&["messaging".into(), "team".into()], 2)
                .await
                .unwrap()
        ),
        ["messaging:c", "team:b"]
    );
    let mut found = cids(
        ch.find_channels(&["team:b".into(), "messaging:a".into(), "nope:x".into()])
            .await
            .unwrap(),
    );
    found.sort();
    assert_eq!(found, ["messaging:a", "team:b"]);

    let mut b = ch.find_channel("team:b").await.unwrap().unwrap();
    b.data.insert("name".into(), "Team".into());
    b.frozen = true;
    b.updated_at = 9;
    b.deleted_at = Some(9);
    ch.update_channel(&b, &[]).await.unwrap();
    let stored = ch.find_channel("team:b").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.frozen,
            stored.updated_at,
            stored.deleted_at,
            stored.member_count
        ),
        (true, 9, Some(9), 1)
    );
    assert_eq!(stored.data["name"], "Team");
    let mut mine = cids(ch.find_channels_for_member("u").await.unwrap());
    mine.sort();
    assert_eq!(
        mine,
        ["messaging:a", "messaging:c"],
        "deleted channels are left out"
    );
    let reads: Vec<(String, String)> = ch
        .find_reads_for_user("u")
        .await
        .unwrap()
        .into_iter()
        .map(|(r, kind)| (r.cid, kind))
        .collect();
    assert_eq!(
        reads,
        [
            ("messaging:a".into(), "messaging".into()),
            ("messaging:c".into(), "messaging".into())
        ]
    );

    s.messages
        .insert_message(&message("m", "messaging:a", "u", "hi", 5), false, &[])
        .await
        .unwrap();
    ch.delete_channel("messaging:a", &[]).await.unwrap();
    assert!(ch.find_channel("messaging:a").await.unwrap().is_none());
    assert!(
        s.messages.find_message("m").await.unwrap().is_none(),
        "its messages go with it"
    );
    assert!(
        ch.find_members(&["messaging:a".into()])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_read_state_is_inserted_then_replaced(db: Db) {
    let (s, _c) = store(db).await;
    let read = |last_read, id: Option<&str>, unread| ReadRow {
        cid: "messaging:r".into(),
        user_id: "u".into(),
        last_read,
        last_read_message_id: id.map(Into::into),
        unread_messages: unread,
        last_delivered_at: None,
        last_delivered_message_id: None,
    };
    s.channels.upsert_read(&read(1, None, 4)).await.unwrap();
    s.channels
        .upsert_read(&read(7, Some("m7"), 0))
        .await
        .unwrap();
    assert_eq!(
        s.channels
            .find_reads(&["messaging:r".into()])
            .await
            .unwrap(),
        [read(7, Some("m7"), 0)]
    );
}

on_both_databases!(
    members_are_added_once_renamed_and_removed_with_one_record_each,
    channels_are_found_by_member_and_type_updated_and_deleted,
    a_read_state_is_inserted_then_replaced,
);
