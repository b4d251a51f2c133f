//! Thread store: a thread's own data, participants and read state derived from the
//! replies, the threads a user takes part in, and delivery receipts that never move back.

use serde_json::json;
use ward::store::{Fields, ThreadReadRow, ThreadRow};

use super::{channel, member, message, store};
use crate::helpers::{Db, on_both_databases};

fn reply(id: &str, parent: &str, user: &str, t: i64) -> ward::store::MessageRow {
    let mut m = message(id, "messaging:t", user, "reply", t);
    m.parent_id = Some(parent.into());
    m.kind = "reply".into();
    m
}

fn read(parent: &str, user: &str, last_read: i64) -> ThreadReadRow {
    ThreadReadRow {
        parent_id: parent.into(),
        user_id: user.into(),
        cid: "messaging:t".into(),
        last_read,
        last_read_message_id: None,
        unread_messages: 0,
    }
}

async fn threads_derive_participants_and_unread_replies(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(
            &channel("messaging:t", 1),
            &[member("messaging:t", "a", 1), member("messaging:t", "b", 1)],
            &[],
        )
        .await
        .unwrap();
    let m = |id, user, t| message(id, "messaging:t", user, "text", t);
    for row in [
        m("p1", "a", 10),
        m("p2", "b", 11),
        m("alone", "a", 12),
        reply("r1", "p1", "b", 20),
        reply("r2", "p1", "b", 30),
        reply("r3", "p1", "a", 40),
        reply("r4", "p2", "b", 50),
    ] {
        s.messages.insert_message(&row, true, &[]).await.unwrap();
    }
    let parts = s
        .threads
        .find_participants(&["p1".into(), "p2".into()])
        .await
        .unwrap();
    let p1: Vec<(&str, i64, i64, i64)> = parts
        .iter()
        .filter(|p| p.parent_id == "p1")
        .map(|p| {
            (
                p.user_id.as_str(),
                p.replies,
                p.first_reply_at,
                p.last_reply_at,
            )
        })
        .collect();
    assert_eq!(p1, [("b", 2, 20, 30), ("a", 1, 40, 40)]);
    assert_eq!(
        s.threads.find_thread_ids_for_user("a", 10).await.unwrap(),
        ["p1"],
        "a wrote p1 and replied there; p2 is b's and a never replied"
    );
    assert_eq!(
        s.threads.find_thread_ids_for_user("b", 10).await.unwrap(),
        ["p2", "p1"],
        "newest reply first"
    );
    s.threads
        .upsert_thread_read(&read("p1", "a", 25), false)
        .await
        .unwrap();
    s.threads
        .upsert_thread_read(&read("p1", "a", 1), true)
        .await
        .unwrap();
    let state = s
        .threads
        .find_thread_reads(&["p1".into()], Some("a"))
        .await
        .unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(
        (state[0].last_read, state[0].unread_messages),
        (25, 1),
        "only_if_absent keeps the position; b's r2 after it is unread, a's own r3 is not"
    );
}

async fn thread_data_is_upserted_and_receipts_never_move_back(db: Db) {
    let (s, _c) = store(db).await;
    s.channels
        .insert_channel(
            &channel("messaging:t", 1),
            &[member("messaging:t", "a", 1), member("messaging:t", "b", 1)],
            &[],
        )
        .await
        .unwrap();
    let mut data = Fields::new();
    data.insert("title".into(), json!("Dosing"));
    let row = ThreadRow {
        parent_id: "p".into(),
        cid: "messaging:t".into(),
        data,
        created_at: 5,
        updated_at: 5,
    };
    s.threads.upsert_thread(&row, &[]).await.unwrap();
    let mut changed = row.clone();
    changed.data.insert("title".into(), json!("Dosing 2"));
    changed.created_at = 99;
    changed.updated_at = 9;
    s.threads.upsert_thread(&changed, &[]).await.unwrap();
    let got = s.threads.find_threads(&["p".into()]).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data["title"], "Dosing 2");
    assert_eq!((got[0].created_at, got[0].updated_at), (5, 9));

    for (id, t) in [("m1", 10), ("m2", 20)] {
        s.messages
            .insert_message(&message(id, "messaging:t", "a", "x", t), true, &[])
            .await
            .unwrap();
    }
    let t = &s.threads;
    assert!(
        t.update_delivered("messaging:t", "b", 100, "m2", 20)
            .await
            .unwrap()
    );
    assert!(
        !t.update_delivered("messaging:t", "b", 200, "m1", 10)
            .await
            .unwrap()
    );
    assert!(
        !t.update_delivered("messaging:t", "b", 300, "m2", 20)
            .await
            .unwrap()
    );
    let reads = s
        .channels
        .find_reads(&["messaging:t".into()])
        .await
        .unwrap();
    let b = reads.iter().find(|r| r.user_id == "b").unwrap();
    assert_eq!(
        (b.last_delivered_at, b.last_delivered_message_id.as_deref()),
        (Some(100), Some("m2"))
    );
}

on_both_databases!(
    threads_derive_participants_and_unread_replies,
    thread_data_is_upserted_and_receipts_never_move_back,
);
