//! Audit store: the outbox, the pseudonym directory, and the chained log with its nodes,
//! checkpoints and searches.

use ward::store::{AuditBatch, AuditQuery, AuditRow, CheckpointRow, OutboxRow};

use super::store;
use crate::helpers::{Db, on_both_databases};

fn outbox(at_ms: i64, object_id: &str) -> OutboxRow {
    OutboxRow {
        at_ms,
        event_type: 7,
        actor: Some("admin".into()),
        subject: None,
        object_kind: Some("channel".into()),
        object_id: Some(object_id.into()),
        pii: vec![1, 2, 3],
        meta: b"{}".to_vec(),
    }
}

fn entry(seq: i64, ts: i64, actor: &[u8], event_type: i32) -> AuditRow {
    AuditRow {
        seq,
        ts,
        event_type,
        actor: actor.to_vec(),
        subject: Vec::new(),
        object_ref: format!("obj-{seq}"),
        outcome: if seq % 2 == 0 { "ok" } else { "denied" }.into(),
        entry: vec![seq as u8; 4],
        chain_hash: vec![0xc0 + seq as u8; 32],
        leaf_hash: vec![0x10 + seq as u8; 32],
    }
}

fn checkpoint(size: i64) -> CheckpointRow {
    CheckpointRow {
        size,
        root: vec![size as u8; 32],
        note: format!("note {size}"),
        created_at: size * 10,
    }
}

fn pair(kind: &str, id: &str) -> (String, String) {
    (kind.into(), id.into())
}

async fn the_outbox_returns_records_oldest_first_with_their_ids(db: Db) {
    let (s, _c) = store(db).await;
    assert!(
        s.audit.hold_audit_lease().await.unwrap(),
        "a lone node is the appender"
    );
    s.audit
        .insert_outbox(&[outbox(1, "a"), outbox(2, "b"), outbox(3, "c")])
        .await
        .unwrap();
    let waiting = s.audit.find_outbox(2).await.unwrap();
    assert_eq!(waiting.len(), 2, "the limit holds");
    assert!(waiting[0].0 < waiting[1].0, "by id");
    assert_eq!(waiting[0].1, outbox(1, "a"), "every field round-trips");
    assert_eq!(waiting[1].1.object_id.as_deref(), Some("b"));
}

async fn pseudonyms_are_created_once_and_unlinked_on_erasure(db: Db) {
    let (s, _c) = store(db).await;
    let a = pair("user", "alice");
    let b = pair("user", "bob");
    let first = s
        .audit
        .resolve_pseudonyms(&[a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let again = s
        .audit
        .resolve_pseudonyms(std::slice::from_ref(&a))
        .await
        .unwrap();
    let alice = first.iter().find(|(k, _)| *k == a).unwrap().1.clone();
    assert_eq!(
        again,
        [(a.clone(), alice.clone())],
        "resolving again keeps the pseudonym"
    );
    assert_ne!(alice, first.iter().find(|(k, _)| *k == b).unwrap().1);

    let carol = pair("user", "carol");
    let found = s
        .audit
        .find_pseudonyms(&[a.clone(), carol.clone()])
        .await
        .unwrap();
    assert_eq!(
        found,
        [(a.clone(), alice.clone())],
        "finding creates nothing"
    );
    assert!(s.audit.find_pseudonyms(&[carol]).await.unwrap().is_empty());
    assert_eq!(
        s.audit
            .find_natural_ids(&[alice.clone(), vec![9; 16]])
            .await
            .unwrap(),
        [(alice.clone(), a.clone())]
    );

    assert_eq!(
        s.audit
            .delete_pseudonyms("user", &["alice".into(), "nobody".into()])
            .await
            .unwrap(),
        1
    );
    assert!(s.audit.find_natural_ids(&[alice]).await.unwrap().is_empty());
    assert_eq!(
        s.audit
            .find_pseudonyms(std::slice::from_ref(&b))
            .await
            .unwrap()
            .len(),
        1,
        "other ids stay linked"
    );
    assert_eq!(
        s.audit
            .delete_pseudonyms("channel", &["bob".into()])
            .await
            .unwrap(),
        0,
        "by kind"
    );
}

async fn an_appended_batch_is_read_back_by_range_search_and_checkpoint(db: Db) {
    let (s, _c) = store(db).await;
    s.audit
        .insert_outbox(&[outbox(1, "a"), outbox(2, "b")])
        .await
        .unwrap();
    let drained: Vec<i64> = s
        .audit
        .find_outbox(10)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(s.audit.find_audit_head().await.unwrap().is_none());
    let entries: Vec<AuditRow> = (0..5)
        .map(|seq| {
            entry(
                seq,
                100 + seq * 10,
                if seq < 3 { b"x" } else { b"y" },
                1 + (seq as i32 % 2),
            )
        })
        .collect();
    s.audit
        .append_audit(&AuditBatch {
            entries: entries.clone(),
            nodes: vec![(8, 0, [7; 32]), (8, 1, [8; 32])],
            checkpoint: checkpoint(5),
            drained: drained[..1].to_vec(),
        })
        .await
        .unwrap();
    let left = s.audit.find_outbox(10).await.unwrap();
    assert_eq!(
        left.len(),
        1,
        "the drained record is gone in the same commit"
    );
    assert_eq!(left[0].0, drained[1]);

    assert_eq!(
        s.audit.find_audit_head().await.unwrap().as_ref(),
        entries.last()
    );
    assert_eq!(s.audit.find_audit_range(1, 3).await.unwrap(), entries[1..3]);
    assert_eq!(
        s.audit.find_leaf_hashes(3, 10).await.unwrap(),
        [entries[3].leaf_hash.clone(), entries[4].leaf_hash.clone()]
    );
    assert_eq!(
        s.audit.find_audit_nodes(8, 0, 2).await.unwrap(),
        [vec![7; 32], vec![8; 32]]
    );
    assert!(s.audit.find_audit_nodes(16, 0, 2).await.unwrap().is_empty());
    assert_eq!(
        s.audit.find_latest_checkpoint().await.unwrap(),
        Some(checkpoint(5))
    );
    assert_eq!(
        s.audit.find_checkpoint(5).await.unwrap(),
        Some(checkpoint(5))
    );
    assert_eq!(s.audit.find_checkpoint(4).await.unwrap(), None);
    assert_eq!(
        s.audit.find_seq_bounds(110, 140).await.unwrap(),
        Some((1, 3))
    );
    assert_eq!(s.audit.find_seq_bounds(500, 600).await.unwrap(), None);

    let seqs = |rows: Vec<AuditRow>| rows.into_iter().map(|r| r.seq).collect::<Vec<_>>();
    let by_actor = AuditQuery {
        actor: Some(b"x".to_vec()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        seqs(s.audit.find_audit_entries(&by_actor).await.unwrap()),
        [0, 1, 2]
    );
    let newest_first = AuditQuery {
        descending: true,
        limit: 2,
        ..Default::default()
    };
    assert_eq!(
        seqs(s.audit.find_audit_entries(&newest_first).await.unwrap()),
        [4, 3]
    );
    let next_page = AuditQuery {
        cursor: Some(3),
        ..newest_first
    };
    assert_eq!(
        seqs(s.audit.find_audit_entries(&next_page).await.unwrap()),
        [2, 1]
    );
    let filtered = AuditQuery {
        from_ts: Some(110),
        to_ts: Some(140),
        event_type: Some(1),
        outcome: Some("ok".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        seqs(s.audit.find_audit_entries(&filtered).await.unwrap()),
        [2]
    );
    let by_object = AuditQuery {
        object_ref: Some("obj-4".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        seqs(s.audit.find_audit_entries(&by_object).await.unwrap()),
        [4]
    );
}

on_both_databases!(
    the_outbox_returns_records_oldest_first_with_their_ids,
    pseudonyms_are_created_once_and_unlinked_on_erasure,
    an_appended_batch_is_read_back_by_range_search_and_checkpoint,
);
