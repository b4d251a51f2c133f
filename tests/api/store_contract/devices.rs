//! Device store (issue 16): devices per user, oldest first, replaced and deleted only within
//! their user; push preferences per user and channel, upserted.

use ward::store::{DeviceRow, PushPreferenceRow};

use super::store;
use crate::helpers::{Db, on_both_databases};

fn device(row_id: &str, user_id: &str, t: i64) -> DeviceRow {
    DeviceRow {
        row_id: row_id.into(),
        user_id: user_id.into(),
        token: format!("sealed-{row_id}"),
        push_provider: "apn".into(),
        push_provider_name: String::new(),
        created_at: t,
    }
}

async fn devices_are_kept_per_user_and_replaced_within_it(db: Db) {
    let (s, _c) = store(db).await;
    let d = &s.devices;
    d.insert_device(&device("r2", "a", 20), &[], &[])
        .await
        .unwrap();
    d.insert_device(&device("r1", "a", 10), &[], &[])
        .await
        .unwrap();
    d.insert_device(&device("rb", "b", 5), &[], &[])
        .await
        .unwrap();
    let rows = d.find_devices("a").await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.row_id.as_str()).collect::<Vec<_>>(),
        ["r1", "r2"]
    );
    assert_eq!(rows[0], device("r1", "a", 10));

    // Replacing names rows of the same user only.
    d.insert_device(&device("r3", "a", 30), &["r1".into(), "rb".into()], &[])
        .await
        .unwrap();
    let ids: Vec<String> = d
        .find_devices("a")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.row_id)
        .collect();
    assert_eq!(ids, ["r2", "r3"]);
    assert_eq!(
        d.find_devices("b").await.unwrap().len(),
        1,
        "b's device stays"
    );

    assert_eq!(d.delete_devices("a", &["rb".into()], &[]).await.unwrap(), 0);
    assert_eq!(
        d.delete_devices("a", &["r2".into(), "r3".into()], &[])
            .await
            .unwrap(),
        2
    );
    assert_eq!(d.delete_devices("a", &[], &[]).await.unwrap(), 0);
    assert!(d.find_devices("a").await.unwrap().is_empty());
}

async fn push_preferences_are_upserted_per_user_and_channel(db: Db) {
    let (s, _c) = store(db).await;
    let d = &s.devices;
    let pref = |cid: &str, p: &str, t: i64| PushPreferenceRow {
        user_id: "a".into(),
        channel_cid: cid.into(),
        preferences: p.into(),
        updated_at: t,
    };
    d.upsert_push_preferences(
        &[
            pref("", r#"{"chat_level":"all"}"#, 1),
            pref("messaging:x", "{}", 1),
        ],
        &[],
    )
    .await
    .unwrap();
    d.upsert_push_preferences(&[pref("", r#"{"chat_level":"none"}"#, 2)], &[])
        .await
        .unwrap();
    let rows = d.find_push_preferences("a").await.unwrap();
    assert_eq!(
        rows,
        [
            pref("", r#"{"chat_level":"none"}"#, 2),
            pref("messaging:x", "{}", 1)
        ]
    );
    assert!(d.find_push_preferences("b").await.unwrap().is_empty());
}

on_both_databases!(
    devices_are_kept_per_user_and_replaced_within_it,
    push_preferences_are_upserted_per_user_and_channel,
);
