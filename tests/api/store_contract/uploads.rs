//! Upload store: rows found by id, by uploader and by channel type and age (retention),
//! app-level uploads without a channel, deletion reported once.

use ward::store::UploadRow;

use super::store;
use crate::helpers::{Db, on_both_databases};

on_both_databases!(uploads_are_found_by_id_uploader_and_age_and_deleted_once);

fn row(id: &str, cid: Option<&str>, user: &str, t: i64) -> UploadRow {
    UploadRow {
        id: id.into(),
        cid: cid.map(str::to_string),
        user_id: user.into(),
        kind: "file".into(),
        name: "ward:v1:sealed".into(),
        mime_type: "application/pdf".into(),
        size: 42,
        storage: "local".into(),
        created_at: t,
    }
}

async fn uploads_are_found_by_id_uploader_and_age_and_deleted_once(db: Db) {
    let (s, _c) = store(db).await;
    let u = &s.uploads;
    let a = row(
        "0190a5b4-0000-7000-8000-000000000001",
        Some("phi:ward"),
        "ann",
        10,
    );
    let b = row(
        "0190a5b4-0000-7000-8000-000000000002",
        Some("messaging:x"),
        "ann",
        5,
    );
    let c = row("0190a5b4-0000-7000-8000-000000000003", None, "ben", 1);
    for r in [&a, &b, &c] {
        u.insert_upload(r).await.unwrap();
    }
    assert!(u.insert_upload(&a).await.is_err(), "ids are unique");
    assert_eq!(u.find_upload(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(u.find_upload(&c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(u.find_upload("missing").await.unwrap(), None);
    assert_eq!(
        u.find_uploads_of_user("ann").await.unwrap(),
        [a.clone(), b.clone()]
    );
    assert_eq!(
        u.find_uploads_before("phi", 11, 10).await.unwrap(),
        std::slice::from_ref(&a)
    );
    assert_eq!(u.find_uploads_before("phi", 10, 10).await.unwrap(), []);
    assert_eq!(
        u.find_uploads_before("messaging", 100, 10).await.unwrap(),
        std::slice::from_ref(&b)
    );
    assert!(u.delete_upload(&a.id).await.unwrap());
    assert!(!u.delete_upload(&a.id).await.unwrap());
    assert_eq!(u.find_upload(&a.id).await.unwrap(), None);
}
