use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::Utf8Bytes;

use super::{Hub, WatchChange};
use crate::bus::wire::Revocation;

#[test]
fn per_user_cap_is_enforced_and_released() {
    let hub = Hub::new(4);
    let a = hub.register("u", 2).unwrap();
    let _b = hub.register("u", 2).unwrap();
    assert!(hub.register("u", 2).is_err());
    assert!(hub.unregister(&a.conn_id).is_some());
    assert!(hub.register("u", 2).is_ok());
}

#[test]
fn watcher_counts_are_distinct_users_and_stop_reports_the_last_tab() {
    let hub = Hub::new(4);
    let a1 = hub.register("a", 5).unwrap();
    let a2 = hub.register("a", 5).unwrap();
    let b = hub.register("b", 5).unwrap();
    assert!(hub.watch(&a1.conn_id, "m:x").unwrap().user_changed);
    assert!(!hub.watch(&a2.conn_id, "m:x").unwrap().user_changed);
    assert_eq!(hub.watch(&b.conn_id, "m:x").unwrap().watcher_count, 2);
    let gone = hub.unregister(&a1.conn_id).unwrap();
    assert!(!gone.went_offline);
    assert!(!gone.stopped[0].user_changed);
    let gone = hub.unregister(&a2.conn_id).unwrap();
    assert!(gone.went_offline);
    assert_eq!(
        gone.stopped[0],
        WatchChange {
            cid: "m:x".into(),
            user_changed: true,
            watcher_count: 1
        }
    );
}

#[tokio::test]
async fn wait_idle_resolves_once_the_last_connection_closes() {
    let hub = Arc::new(Hub::new(4));
    hub.wait_idle().await;
    let a = hub.register("a", 5).unwrap();
    let waiter = tokio::spawn({
        let hub = hub.clone();
        async move { hub.wait_idle().await }
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    hub.unregister(&a.conn_id);
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_revoked_connection_gets_nothing_more_and_is_told_to_close() {
    let hub = Hub::new(8);
    let mut old = hub.register("a", 5).unwrap();
    hub.set_credentials(&old.conn_id, Some(100), None);
    let mut fresh = hub.register("a", 5).unwrap();
    hub.set_credentials(&fresh.conn_id, Some(200), Some("s1"));
    let mut other = hub.register("c", 5).unwrap();
    for r in [&old, &fresh, &other] {
        hub.watch(&r.conn_id, "m:x");
    }
    let before = |user: &str, before| Revocation::UserTokensBefore {
        user_id: user.into(),
        before,
    };
    assert_eq!(hub.revoke(&before("a", 150)), 1);
    assert!(old.revoked.load(Ordering::SeqCst));
    assert!(!fresh.revoked.load(Ordering::SeqCst));
    hub.send_to_channel("m:x", &Utf8Bytes::from("{}"));
    hub.send_to_user("a", &Utf8Bytes::from("{}"));
    assert!(
        old.rx.try_recv().is_err(),
        "nothing reaches a revoked connection"
    );
    assert!(fresh.rx.try_recv().is_ok() && fresh.rx.try_recv().is_ok());
    assert!(other.rx.try_recv().is_ok());
    // The stored permit makes this return at once.
    old.restart.notified().await;
    assert_eq!(
        hub.local_credentials().len(),
        2,
        "a revoked connection is not re-checked"
    );

    assert_eq!(
        hub.revoke(&Revocation::Session {
            sid: "other".into()
        }),
        0
    );
    assert_eq!(
        hub.revoke(&Revocation::SessionsOf {
            user_id: "a".into()
        }),
        1
    );
    assert!(fresh.revoked.load(Ordering::SeqCst));
    // A token without `iat` counts as issued before any cut-off.
    assert_eq!(hub.revoke(&Revocation::AllTokensBefore { before: 1 }), 1);
    assert!(other.revoked.load(Ordering::SeqCst));
    assert!(hub.local_credentials().is_empty());
}

#[tokio::test]
async fn a_full_queue_signals_the_slow_connection_without_blocking() {
    let hub = Hub::new(2);
    let reg = hub.register("slow", 5).unwrap();
    hub.watch(&reg.conn_id, "m:x");
    let event = Utf8Bytes::from("{}");
    for _ in 0..5 {
        hub.send_to_channel("m:x", &event);
    }
    assert_eq!(hub.delivered.load(Ordering::Relaxed), 2);
    assert_eq!(hub.dropped_slow.load(Ordering::Relaxed), 3);
    // The stored permit makes this return at once.
    reg.slow.notified().await;
}
