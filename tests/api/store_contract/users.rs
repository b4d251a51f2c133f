//! User and settings stores beyond upserts: listing, activity, and settings replaced and
//! deleted.

use super::{store, user};
use crate::helpers::{Db, on_both_databases};

async fn users_are_listed_oldest_first_and_keep_their_last_activity(db: Db) {
    let (s, _c) = store(db).await;
    for (id, t) in [("c", 3), ("a", 1), ("b", 2), ("d", 4)] {
        s.users.upsert_user(&user(id, t), &[]).await.unwrap();
    }
    let ids = |rows: Vec<ward::store::UserRow>| rows.into_iter().map(|u| u.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.users.find_all_users(3).await.unwrap()),
        ["a", "b", "c"]
    );
    assert!(s.users.find_user("zz").await.unwrap().is_none());

    s.users.update_last_active("b", 50).await.unwrap();
    assert_eq!(
        s.users.find_user("b").await.unwrap().unwrap().last_active,
        Some(50)
    );
    let stored = s.users.upsert_user(&user("b", 60), &[]).await.unwrap();
    assert_eq!(
        stored.last_active,
        Some(50),
        "an upsert without activity keeps it"
    );
}

async fn settings_are_replaced_and_deleted(db: Db) {
    let (s, _c) = store(db).await;
    s.settings.upsert_setting("k", "one").await.unwrap();
    s.settings.upsert_setting("k", "two").await.unwrap();
    assert_eq!(
        s.settings.find_setting("k").await.unwrap().as_deref(),
        Some("two")
    );
    s.settings.delete_setting("k").await.unwrap();
    assert_eq!(s.settings.find_setting("k").await.unwrap(), None);
    assert_eq!(
        s.settings
            .insert_setting_if_absent("k", "three")
            .await
            .unwrap(),
        "three"
    );
}

on_both_databases!(
    users_are_listed_oldest_first_and_keep_their_last_activity,
    settings_are_replaced_and_deleted,
);
