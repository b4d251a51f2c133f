//! Usage store: monthly active users counted once, daily users per day, connection peaks
//! that only rise and add up across nodes.

use super::store;
use crate::helpers::{Db, on_both_databases};

async fn active_users_count_once_a_month_and_once_a_day(db: Db) {
    let (s, _c) = store(db).await;
    let u = &s.usage;
    u.insert_active_user("2026-05", "2026-05-01", "a")
        .await
        .unwrap();
    u.insert_active_user("2026-05", "2026-05-01", "a")
        .await
        .unwrap();
    u.insert_active_user("2026-05", "2026-05-03", "a")
        .await
        .unwrap();
    u.insert_active_user("2026-05", "2026-05-03", "b")
        .await
        .unwrap();
    u.insert_active_user("2026-06", "2026-06-01", "a")
        .await
        .unwrap();
    assert_eq!(
        u.count_new_active_users_by_day("2026-05").await.unwrap(),
        [("2026-05-01".to_string(), 1), ("2026-05-03".to_string(), 1)],
        "a user counts on their first day of the month only"
    );
    assert_eq!(
        u.count_daily_users("2026-05").await.unwrap(),
        [("2026-05-01".to_string(), 1), ("2026-05-03".to_string(), 2)]
    );
    assert_eq!(
        u.count_new_active_users_by_day("2026-06").await.unwrap(),
        [("2026-06-01".to_string(), 1)]
    );
    assert!(u.count_daily_users("2026-07").await.unwrap().is_empty());
}

async fn connection_peaks_only_rise_and_sum_across_nodes(db: Db) {
    let (s, _c) = store(db).await;
    let u = &s.usage;
    u.upsert_connection_peak("n1", 100, 5).await.unwrap();
    u.upsert_connection_peak("n1", 100, 3).await.unwrap();
    u.upsert_connection_peak("n2", 100, 4).await.unwrap();
    u.upsert_connection_peak("n1", 200, 7).await.unwrap();
    u.upsert_connection_peak("n1", 200, 9).await.unwrap();
    u.upsert_connection_peak("n1", 300, 1).await.unwrap();
    assert_eq!(
        u.find_connection_peaks(100, 300).await.unwrap(),
        [(100, 9), (200, 9)],
        "a lower peak never replaces a higher one; [from, to) is half-open"
    );
    assert!(u.find_connection_peaks(0, 100).await.unwrap().is_empty());
}

on_both_databases!(
    active_users_count_once_a_month_and_once_a_day,
    connection_peaks_only_rise_and_sum_across_nodes,
);
