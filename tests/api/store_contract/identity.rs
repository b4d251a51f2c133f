//! Identity store: sessions, passwords, TOTP and recovery codes, SSO providers, the SAML
//! replay cache, login flows and token revocation. Writes that carry audit records store
//! them in the same transaction.

use ward::store::{OutboxRow, ProviderRow, SessionRow, Store, TotpRow};

use super::store;
use crate::helpers::{Db, on_both_databases};

fn session(id_hash: &str, user: &str, t: i64) -> SessionRow {
    SessionRow {
        id_hash: id_hash.into(),
        user_id: user.into(),
        method: "password".into(),
        provider: None,
        saml_session_index: None,
        mfa: false,
        created_at: t,
        last_seen: t,
        expires_at: t + 1000,
        revoked_at: None,
    }
}

fn record(object_id: &str) -> OutboxRow {
    OutboxRow {
        at_ms: 1,
        event_type: 3,
        actor: None,
        subject: None,
        object_kind: Some("session".into()),
        object_id: Some(object_id.into()),
        pii: Vec::new(),
        meta: Vec::new(),
    }
}

async fn outbox_ids(s: &Store) -> Vec<String> {
    let rows = s.audit.find_outbox(100).await.unwrap();
    rows.into_iter().filter_map(|(_, r)| r.object_id).collect()
}

async fn sessions_are_touched_revoked_once_and_audited(db: Db) {
    let (s, _c) = store(db).await;
    let id = &s.identity;
    id.insert_session(&session("h1", "a", 10), &[record("h1")])
        .await
        .unwrap();
    id.insert_session(&session("h2", "a", 5), &[])
        .await
        .unwrap();
    id.insert_session(&session("h3", "b", 1), &[])
        .await
        .unwrap();
    assert_eq!(
        id.find_session("h1").await.unwrap(),
        Some(session("h1", "a", 10))
    );
    assert!(id.find_session("nope").await.unwrap().is_none());
    let of_a: Vec<String> = id
        .find_sessions_of("a")
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id_hash)
        .collect();
    assert_eq!(of_a, ["h2", "h1"], "oldest first");

    id.touch_session("h1", 20, true).await.unwrap();
    id.touch_session("h1", 30, false).await.unwrap();
    let h1 = id.find_session("h1").await.unwrap().unwrap();
    assert_eq!(
        (h1.last_seen, h1.mfa),
        (30, true),
        "MFA once verified stays verified"
    );

    assert!(
        id.revoke_session("h1", 40, &[record("revoke-h1")])
            .await
            .unwrap()
    );
    assert!(
        !id.revoke_session("h1", 50, &[record("again")])
            .await
            .unwrap()
    );
    assert_eq!(
        id.find_session("h1").await.unwrap().unwrap().revoked_at,
        Some(40)
    );
    assert_eq!(
        id.revoke_sessions_of("a", 60, &[record("all-a")])
            .await
            .unwrap(),
        1,
        "h2 only"
    );
    assert!(
        id.find_session("h3")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    assert_eq!(
        outbox_ids(&s).await,
        ["h1", "revoke-h1", "all-a"],
        "a revocation that changed nothing records nothing"
    );
}

async fn credentials_are_replaced_and_recovery_codes_used_once(db: Db) {
    let (s, _c) = store(db).await;
    let id = &s.identity;
    assert!(id.find_password("a").await.unwrap().is_none());
    id.upsert_password("a", "hash1", 1, &[]).await.unwrap();
    id.upsert_password("a", "hash2", 2, &[record("pw")])
        .await
        .unwrap();
    assert_eq!(
        id.find_password("a").await.unwrap().as_deref(),
        Some("hash2")
    );

    let totp = TotpRow {
        user_id: "a".into(),
        secret: b"sealed".to_vec(),
        confirmed: false,
        last_step: 0,
        failures: 0,
        locked_until: None,
        created_at: 5,
    };
    id.upsert_totp(&totp, &[]).await.unwrap();
    let confirmed = TotpRow {
        confirmed: true,
        last_step: 77,
        failures: 2,
        locked_until: Some(9),
        ..totp
    };
    id.upsert_totp(&confirmed, &[]).await.unwrap();
    assert_eq!(id.find_totp("a").await.unwrap(), Some(confirmed));

    let codes = [
        ("c1".to_string(), "x1".to_string()),
        ("c2".into(), "x2".into()),
    ];
    id.replace_recovery_codes("a", &codes).await.unwrap();
    assert!(
        id.use_recovery_code("c1", 10, &[record("c1")])
            .await
            .unwrap()
    );
    assert!(
        !id.use_recovery_code("c1", 11, &[record("c1-again")])
            .await
            .unwrap()
    );
    assert_eq!(
        id.find_recovery_codes("a").await.unwrap(),
        [("c2".to_string(), "x2".to_string())]
    );
    id.replace_recovery_codes("a", &[("c3".into(), "x3".into())])
        .await
        .unwrap();
    assert_eq!(
        id.find_recovery_codes("a").await.unwrap(),
        [("c3".to_string(), "x3".to_string())]
    );

    id.delete_totp("a", &[record("totp-off")]).await.unwrap();
    assert!(id.find_totp("a").await.unwrap().is_none());
    assert!(
        id.find_recovery_codes("a").await.unwrap().is_empty(),
        "codes go with the TOTP"
    );
    assert_eq!(outbox_ids(&s).await, ["pw", "c1", "totp-off"]);
}

async fn providers_replays_flows_and_revocations_round_trip(db: Db) {
    let (s, _c) = store(db).await;
    let id = &s.identity;
    let provider = |pid: &str, name: &str, t: i64| ProviderRow {
        id: pid.into(),
        kind: "oidc".into(),
        name: name.into(),
        enabled: true,
        config: "{}".into(),
        secret: Some(b"sealed".to_vec()),
        created_at: t,
        updated_at: t,
    };
    id.upsert_provider(&provider("p2", "Two", 1), &[])
        .await
        .unwrap();
    id.upsert_provider(&provider("p1", "One", 2), &[])
        .await
        .unwrap();
    let renamed = ProviderRow {
        enabled: false,
        secret: None,
        updated_at: 3,
        ..provider("p2", "Deux", 1)
    };
    id.upsert_provider(&renamed, &[]).await.unwrap();
    assert_eq!(id.find_provider("p2").await.unwrap(), Some(renamed));
    let ids: Vec<String> = id
        .find_providers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["p1", "p2"]);

    assert!(id.insert_replay("assertion", 100, 10).await.unwrap());
    assert!(
        !id.insert_replay("assertion", 100, 20).await.unwrap(),
        "a replay"
    );
    assert!(
        id.insert_replay("assertion", 300, 200).await.unwrap(),
        "expired entries are dropped"
    );

    id.insert_flow("f1", "state", 100, 10).await.unwrap();
    id.insert_flow("f2", "late", 50, 10).await.unwrap();
    assert_eq!(
        id.take_flow("f1", 20).await.unwrap().as_deref(),
        Some("state")
    );
    assert_eq!(id.take_flow("f1", 20).await.unwrap(), None, "taken once");
    assert_eq!(id.take_flow("f2", 60).await.unwrap(), None, "expired");
    assert_eq!(id.take_flow("nope", 60).await.unwrap(), None);

    assert_eq!(id.find_tokens_revoked("a").await.unwrap(), None);
    id.set_tokens_revoked("a", 1000).await.unwrap();
    id.set_tokens_revoked("a", 2000).await.unwrap();
    assert_eq!(id.find_tokens_revoked("a").await.unwrap(), Some(2000));
}

on_both_databases!(
    sessions_are_touched_revoked_once_and_audited,
    credentials_are_replaced_and_recovery_codes_used_once,
    providers_replays_flows_and_revocations_round_trip,
);
