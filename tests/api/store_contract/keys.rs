//! Key store: one active KEK at a time, DEKs per subject that can be rewrapped, retired and
//! destroyed.

use ward::store::{DekRow, KekRow};

use super::store;
use crate::helpers::{Db, on_both_databases};

fn kek(id: &str, t: i64, active: bool) -> KekRow {
    KekRow {
        id: id.into(),
        wrapped: format!("wrapped-{id}").into_bytes(),
        provider: "local".into(),
        created_at: t,
        active,
    }
}

fn dek(id: &str, subject: &str, kek_id: &str, t: i64) -> DekRow {
    DekRow {
        id: id.into(),
        subject: subject.into(),
        kek_id: kek_id.into(),
        wrapped: Some(format!("dek-{id}").into_bytes()),
        created_at: t,
        destroyed_at: None,
        active: true,
    }
}

async fn only_one_active_kek_is_stored_and_activation_moves_it(db: Db) {
    let (s, _c) = store(db).await;
    assert!(s.keys.find_active_kek().await.unwrap().is_none());
    assert!(s.keys.insert_kek(&kek("k1", 1, true)).await.unwrap());
    assert!(
        !s.keys.insert_kek(&kek("k2", 2, true)).await.unwrap(),
        "a second active KEK loses to the first"
    );
    assert!(s.keys.find_kek("k2").await.unwrap().is_none());
    assert!(
        s.keys.insert_kek(&kek("k3", 3, false)).await.unwrap(),
        "an inactive KEK is stored beside the active one"
    );
    let active = s.keys.find_active_kek().await.unwrap().unwrap();
    assert_eq!(
        (active.id.as_str(), active.wrapped),
        ("k1", b"wrapped-k1".to_vec())
    );

    s.keys.activate_kek("k3").await.unwrap();
    assert_eq!(s.keys.find_active_kek().await.unwrap().unwrap().id, "k3");
    assert!(!s.keys.find_kek("k1").await.unwrap().unwrap().active);
    let k3 = s.keys.find_kek("k3").await.unwrap().unwrap();
    assert_eq!((k3.provider.as_str(), k3.created_at), ("local", 3));
}

async fn deks_are_rewrapped_retired_and_destroyed_per_subject(db: Db) {
    let (s, _c) = store(db).await;
    s.keys.insert_kek(&kek("k1", 1, true)).await.unwrap();
    s.keys
        .insert_dek(&dek("d1", "user:a", "k1", 10))
        .await
        .unwrap();
    s.keys
        .insert_dek(&dek("d2", "user:a", "k1", 20))
        .await
        .unwrap();
    s.keys
        .insert_dek(&dek("d3", "user:b", "k1", 30))
        .await
        .unwrap();
    assert_eq!(
        s.keys.find_active_dek("user:a").await.unwrap().unwrap().id,
        "d2",
        "the newest active DEK of the subject"
    );

    s.keys
        .update_dek_wrapping("d1", "k2", b"rewrapped")
        .await
        .unwrap();
    let d1 = s.keys.find_dek("d1").await.unwrap().unwrap();
    assert_eq!(
        (d1.kek_id.as_str(), d1.wrapped),
        ("k2", Some(b"rewrapped".to_vec()))
    );
    let by_k1: Vec<String> = s
        .keys
        .find_deks_by_kek("k1")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(by_k1, ["d2", "d3"]);

    assert_eq!(
        s.keys.retire_deks("user:a").await.unwrap(),
        2,
        "both of the subject's DEKs"
    );
    assert_eq!(
        s.keys.retire_deks("user:a").await.unwrap(),
        0,
        "retired once"
    );
    assert!(s.keys.find_active_dek("user:a").await.unwrap().is_none());
    assert!(
        s.keys
            .find_dek("d2")
            .await
            .unwrap()
            .unwrap()
            .wrapped
            .is_some(),
        "retired, not destroyed"
    );

    assert_eq!(s.keys.destroy_deks("user:a", 99).await.unwrap(), 2);
    assert_eq!(
        s.keys.destroy_deks("user:a", 100).await.unwrap(),
        0,
        "destroyed once"
    );
    let d2 = s.keys.find_dek("d2").await.unwrap().unwrap();
    assert_eq!(
        (d2.wrapped, d2.destroyed_at, d2.active),
        (None, Some(99), false)
    );
    let by_k1: Vec<String> = s
        .keys
        .find_deks_by_kek("k1")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(by_k1, ["d3"], "destroyed DEKs are not rewrapped");
    s.keys
        .update_dek_wrapping("d2", "k1", b"back")
        .await
        .unwrap();
    assert_eq!(
        s.keys.find_dek("d2").await.unwrap().unwrap().wrapped,
        None,
        "a destroyed DEK stays destroyed"
    );
    assert_eq!(
        s.keys.find_active_dek("user:b").await.unwrap().unwrap().id,
        "d3"
    );
}

on_both_databases!(
    only_one_active_kek_is_stored_and_activation_moves_it,
    deks_are_rewrapped_retired_and_destroyed_per_subject,
);
