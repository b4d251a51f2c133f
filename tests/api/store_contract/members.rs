//! Member state (migration 0010): pin/archive/hide/mute and invite answers written as one,
//! un-hiding on a new message, invited members, and the slow-mode cooldown claim.

use ward::store::{MemberRow, MemberState};

use super::{channel, member, store};
use crate::helpers::{Db, on_both_databases};

async fn member_state_is_written_whole_and_read_back(db: Db) {
    let (s, _c) = store(db).await;
    let invited = MemberRow {
        invited: true,
        ..member("messaging:x", "b", 1)
    };
    s.channels
        .insert_channel(
            &channel("messaging:x", 1),
            &[member("messaging:x", "a", 1), invited],
            &[],
        )
        .await
        .unwrap();
    let find = async |uid: &str| {
        s.channels
            .find_members(&["messaging:x".into()])
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.user_id == uid)
            .unwrap()
    };
    let b = find("b").await;
    assert!(b.invited && !b.is_active(), "an invite is pending");
    assert!(find("a").await.is_active());

    let state = MemberState {
        pinned_at: Some(5),
        archived_at: Some(6),
        hidden: true,
        notifications_muted: true,
        invite_accepted_at: None,
        invite_rejected_at: None,
    };
    assert!(
        s.members
            .update_member_state("messaging:x", "a", &state, 7, &[])
            .await
            .unwrap()
    );
    let a = find("a").await;
    assert_eq!(
        (
            a.pinned_at,
            a.archived_at,
            a.hidden,
            a.notifications_muted,
            a.updated_at
        ),
        (Some(5), Some(6), true, true, 7)
    );
    assert!(
        !s.members
            .update_member_state("messaging:x", "ghost", &state, 7, &[])
            .await
            .unwrap(),
        "no such member"
    );
    let accepted = MemberState {
        invite_accepted_at: Some(9),
        ..MemberState::default()
    };
    s.members
        .update_member_state("messaging:x", "b", &accepted, 9, &[])
        .await
        .unwrap();
    assert!(find("b").await.is_active());

    assert_eq!(
        s.members.unhide_channel("messaging:x").await.unwrap(),
        ["a"]
    );
    assert!(!find("a").await.hidden);
    assert!(
        s.members
            .unhide_channel("messaging:x")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_cooldown_claim_lets_one_message_through_per_window(db: Db) {
    let (s, _c) = store(db).await;
    let m = &s.members;
    assert_eq!(
        m.claim_cooldown("messaging:x", "a", 1_000, 500)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        m.claim_cooldown("messaging:x", "a", 1_200, 500)
            .await
            .unwrap(),
        Err(1_000)
    );
    assert_eq!(
        m.claim_cooldown("messaging:x", "b", 1_200, 500)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        m.claim_cooldown("messaging:x", "a", 1_500, 500)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        m.claim_cooldown("messaging:x", "a", 1_600, 500)
            .await
            .unwrap(),
        Err(1_500)
    );
}

on_both_databases!(
    member_state_is_written_whole_and_read_back,
    the_cooldown_claim_lets_one_message_through_per_window,
);
