//! Compliance store: legal holds, erasure of a user's rows, and retention that never deletes
//! what a hold covers.

use ward::store::{EraseCounts, ExpiredCounts, HoldRow, ReactionRow, SessionRow, Store};

use super::{channel, member, message, store, user};
use crate::helpers::{Db, on_both_databases};

fn hold(id: &str, scope: &str, target: &str, t: i64) -> HoldRow {
    HoldRow {
        id: id.into(),
        scope: scope.into(),
        target: target.into(),
        reason: "sealed".into(),
        placed_by: Some("admin".into()),
        placed_at: t,
        released_by: None,
        released_at: None,
    }
}

/// Channels `messaging:x` (members a, b) and `team:y` (member a), with messages by a and b.
async fn seed(s: &Store) {
    for u in ["a", "b"] {
        s.users.upsert_user(&user(u, 1), &[]).await.unwrap();
    }
    let members = [member("messaging:x", "a", 1), member("messaging:x", "b", 1)];
    s.channels
        .insert_channel(&channel("messaging:x", 1), &members, &[])
        .await
        .unwrap();
    s.channels
        .insert_channel(&channel("team:y", 1), &[member("team:y", "a", 1)], &[])
        .await
        .unwrap();
    for (id, cid, author, t) in [
        ("m1", "messaging:x", "a", 10),
        ("m2", "messaging:x", "b", 20),
        ("m3", "team:y", "a", 30),
        ("m4", "messaging:x", "a", 40),
    ] {
        s.messages
            .insert_message(&message(id, cid, author, "hello", t), false, &[])
            .await
            .unwrap();
    }
}

async fn holds_are_released_once_and_cover_a_users_channels(db: Db) {
    let (s, _c) = store(db).await;
    seed(&s).await;
    let c = &s.compliance;
    c.insert_hold(&hold("h1", "user", "b", 1), &[])
        .await
        .unwrap();
    c.insert_hold(&hold("h2", "channel", "team:y", 2), &[])
        .await
        .unwrap();
    assert_eq!(
        c.find_hold("h1").await.unwrap(),
        Some(hold("h1", "user", "b", 1))
    );
    let ids = |holds: Vec<HoldRow>| holds.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(
        ids(c.find_holds(false).await.unwrap()),
        ["h2", "h1"],
        "newest first"
    );
    assert_eq!(
        ids(c.find_holds_covering_user("a").await.unwrap()),
        ["h2"],
        "a's channel"
    );
    assert_eq!(ids(c.find_holds_covering_user("b").await.unwrap()), ["h1"]);

    assert!(c.release_hold("h2", Some("admin"), 5, &[]).await.unwrap());
    assert!(
        !c.release_hold("h2", Some("admin"), 6, &[]).await.unwrap(),
        "released once"
    );
    assert!(!c.release_hold("nope", None, 6, &[]).await.unwrap());
    let h2 = c.find_hold("h2").await.unwrap().unwrap();
    assert_eq!(
        (h2.released_by.as_deref(), h2.released_at),
        (Some("admin"), Some(5))
    );
    assert_eq!(ids(c.find_holds(true).await.unwrap()), ["h1"]);
    assert_eq!(ids(c.find_holds(false).await.unwrap()), ["h2", "h1"]);
    assert!(c.find_holds_covering_user("a").await.unwrap().is_empty());
}

async fn retention_counts_lists_and_deletes_only_unheld_messages(db: Db) {
    let (s, _c) = store(db).await;
    seed(&s).await;
    let c = &s.compliance;
    c.insert_hold(&hold("h1", "user", "b", 1), &[])
        .await
        .unwrap();
    assert_eq!(
        c.count_expired_messages("messaging", 40).await.unwrap(),
        ExpiredCounts {
            expired: 2,
            held: 1
        },
        "m1 and m2 are older than 40; b's m2 is held"
    );
    assert_eq!(
        c.find_expired_message_ids("messaging", 100, 10)
            .await
            .unwrap(),
        ["m1", "m4"]
    );
    assert_eq!(
        c.find_expired_message_ids("messaging", 100, 1)
            .await
            .unwrap(),
        ["m1"]
    );

    let reaction = ReactionRow {
        message_id: "m1".into(),
        user_id: "b".into(),
        kind: "like".into(),
        score: 1,
        data: Default::default(),
        created_at: 50,
        updated_at: 50,
    };
    s.messages.upsert_reaction(&reaction, false).await.unwrap();
    assert!(
        !c.delete_unheld_messages(&["m1".into(), "m2".into()], &[])
            .await
            .unwrap(),
        "a held message stops the whole batch"
    );
    assert!(s.messages.find_message("m1").await.unwrap().is_some());
    assert!(
        c.delete_unheld_messages(&["m1".into(), "m4".into()], &[])
            .await
            .unwrap()
    );
    assert!(
        s.messages
            .find_messages(&["m1".into(), "m4".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.messages
            .find_reactions(&["m1".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !c.delete_unheld_messages(&["m1".into()], &[]).await.unwrap(),
        "a message that is gone is not counted as deleted"
    );
    assert_eq!(
        c.count_expired_messages("messaging", 100).await.unwrap(),
        ExpiredCounts {
            expired: 1,
            held: 1
        }
    );
}

async fn erasure_empties_or_deletes_a_users_rows(db: Db) {
    let (s, _c) = store(db).await;
    seed(&s).await;
    let session = SessionRow {
        id_hash: "h".into(),
        user_id: "a".into(),
        method: "password".into(),
        provider: None,
        saml_session_index: None,
        mfa: false,
        created_at: 1,
        last_seen: 1,
        expires_at: 100,
        revoked_at: None,
    };
    s.identity.insert_session(&session, &[]).await.unwrap();
    s.identity
        .upsert_password("a", "hash", 1, &[])
        .await
        .unwrap();
    let counts = s
        .compliance
        .erase_user_rows("a", false, false, 99, &[])
        .await
        .unwrap();
    assert_eq!(
        counts,
        EraseCounts {
            messages: 3,
            reactions: 0,
            memberships: 2,
            sessions: 1,
            user_rows: 1
        }
    );
    let m1 = s.messages.find_message("m1").await.unwrap().unwrap();
    assert_eq!(
        (m1.text.as_str(), m1.kind.as_str(), m1.deleted_at),
        ("", "deleted", Some(99))
    );
    let a = s.users.find_user("a").await.unwrap().unwrap();
    assert_eq!(
        (a.deleted_at, a.deactivated_at, a.data.len()),
        (Some(99), Some(99), 0)
    );
    assert!(s.identity.find_password("a").await.unwrap().is_none());
    assert!(s.identity.find_session("h").await.unwrap().is_none());
    let members = s
        .channels
        .find_members(&["messaging:x".into()])
        .await
        .unwrap();
    assert_eq!(
        members
            .iter()
            .map(|m| m.user_id.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );

    let counts = s
        .compliance
        .erase_user_rows("b", true, true, 100, &[])
        .await
        .unwrap();
    assert_eq!(
        (counts.messages, counts.user_rows, counts.memberships),
        (1, 1, 1)
    );
    assert!(s.messages.find_message("m2").await.unwrap().is_none());
    assert!(s.users.find_user("b").await.unwrap().is_none());
}

on_both_databases!(
    holds_are_released_once_and_cover_a_users_channels,
    retention_counts_lists_and_deletes_only_unheld_messages,
    erasure_empties_or_deletes_a_users_rows,
);
