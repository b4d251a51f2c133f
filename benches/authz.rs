//! Micro-benchmark: the latency one authorization decision adds (`cargo bench --bench authz`).
//! Builds the request and entities and evaluates the embedded policies, as a handler does.
//! Then the read decision every delivery passes (`bus::gate`): one event to 1,000 watchers
//! without the decision, with it cached, and with a cold cache (one load from SQLite).

// A benchmark or test reports a failure by panicking: unwrapping is how it fails.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ward::audit::MemorySink;
use ward::authz::{Authz, ChannelFacts, Principal, Resource};

fn measure(label: &str, iterations: usize, mut f: impl FnMut() -> bool) {
    let mut samples = Vec::with_capacity(iterations);
    let mut allowed = 0usize;
    for _ in 0..iterations {
        let t = Instant::now();
        allowed += usize::from(std::hint::black_box(f()));
        samples.push(t.elapsed());
    }
    samples.sort();
    let total: Duration = samples.iter().sum();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "RESULT {label}: n={iterations} mean={:.1}µs p50={:.1}µs p99={:.1}µs allowed={allowed}",
        total.as_secs_f64() * 1e6 / iterations as f64,
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
    );
}

fn main() {
    let authz = Authz::embedded(Arc::new(MemorySink::new())).expect("policies load");
    let facts = ChannelFacts {
        cid: "messaging:bench".into(),
        channel_type: "messaging".into(),
        public: false,
        is_member: true,
        channel_role: "channel_member".into(),
        is_creator: false,
        is_author: false,
        frozen: false,
        typing_events: true,
        read_events: true,
        reactions: true,
        replies: true,
        search: true,
    };
    let user = Principal::User {
        id: "u-1",
        role: "user",
    };
    let n = 20_000;
    // The same policies plus one naming an entity: the decision cache switches off, so this
    // measures a full Cedar evaluation (request, entities, every policy).
    let mut files = ward::authz::POLICY_FILES.to_vec();
    files.push((
        "uncached.cedar",
        r#"forbid (principal == Ward::User::"nobody", action, resource);"#,
    ));
    let uncached = Authz::from_sources(
        ward::authz::SCHEMA_FILE,
        &files,
        Arc::new(MemorySink::new()),
    )
    .expect("policies load");
    assert!(!uncached.caches_decisions());
    measure("uncached channel decision (full evaluation)", 5_000, || {
        uncached.allows(user, "SendMessage", &Resource::Channel(&facts))
    });
    measure("uncached app decision (full evaluation)", 5_000, || {
        uncached.allows(user, "QueryChannels", &Resource::App)
    });
    // Warm up allocator and caches.
    for _ in 0..1_000 {
        authz.allows(user, "SendMessage", &Resource::Channel(&facts));
    }
    measure("channel decision (SendMessage, member)", n, || {
        authz.allows(user, "SendMessage", &Resource::Channel(&facts))
    });
    measure("channel decision denied (DeleteAnyMessage)", n, || {
        authz.allows(user, "DeleteAnyMessage", &Resource::Channel(&facts))
    });
    measure("app decision (QueryChannels)", n, || {
        authz.allows(user, "QueryChannels", &Resource::App)
    });
    let actor = ward::chat::Actor::user(ward::store::UserRow {
        id: "u-1".into(),
        role: "user".into(),
        data: Default::default(),
        created_at: 0,
        updated_at: 0,
        last_active: None,
        deactivated_at: None,
        deleted_at: None,
        banned: false,
    });
    let config = ward::chat::channel_type::lookup("messaging").unwrap();
    measure(
        "own_capabilities of one channel (all decisions)",
        2_000,
        || !ward::chat::channel_type::capabilities(&authz, &actor, &config, &facts).is_empty(),
    );
    delivery();
}

/// One `message.new` to 1,000 watchers of a channel: the hub alone, the hub with the read
/// decision cached for every watcher, and with the channel's decisions invalidated before
/// each delivery (a load of the channel, its members and the users from SQLite).
fn delivery() {
    use axum::extract::ws::Utf8Bytes;
    use ward::bus::gate::{Gate, Scope};
    use ward::bus::local::Hub;
    use ward::bus::wire::TargetKind;
    use ward::store::{ChannelRow, MemberRow, Store};
    use ward::ws::read_policy::ChannelReadPolicy;

    const WATCHERS: usize = 1_000;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = std::env::temp_dir().join(format!("ward_bench_gate_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = rt
        .block_on(Store::connect(&format!(
            "sqlite://{}",
            dir.join("ward.db").display()
        )))
        .expect("store");
    let cid = "messaging:bench";
    let users: Vec<String> = (0..WATCHERS).map(|i| format!("u-{i}")).collect();
    rt.block_on(async {
        for id in &users {
            let user = ward::chat::user::new_user(id, 1);
            store.users.upsert_user(&user, &[]).await.expect("user");
        }
        let channel = ChannelRow {
            cid: cid.into(),
            kind: "messaging".into(),
            id: "bench".into(),
            created_by_id: Some("u-0".into()),
            data: Default::default(),
            created_at: 1,
            updated_at: 1,
            last_message_at: None,
            deleted_at: None,
            truncated_at: None,
            frozen: false,
            message_count: 0,
            member_count: 0,
        };
        let members: Vec<MemberRow> = users
            .iter()
            .map(|u| MemberRow {
                cid: cid.into(),
                user_id: u.clone(),
                channel_role: "channel_member".into(),
                created_at: 1,
                updated_at: 1,
                ..Default::default()
            })
            .collect();
        store
            .channels
            .insert_channel(&channel, &members, &[])
            .await
            .expect("channel");
    });
    let hub = Arc::new(Hub::new(64));
    let gate = Arc::new(Gate::new(Arc::new(ChannelReadPolicy::new(
        store.users.clone(),
        store.channels.clone(),
        Arc::new(Authz::embedded(Arc::new(MemorySink::new())).expect("policies load")),
    ))));
    hub.set_gate(gate.clone());
    let mut queues = Vec::new();
    for u in &users {
        let reg = hub.register(u, 5).expect("register");
        hub.watch(&reg.conn_id, cid);
        queues.push(reg.rx);
    }
    let event = Utf8Bytes::from(
        serde_json::json!({"type": "message.new", "cid": cid, "message": {"text": "x".repeat(300)}})
            .to_string(),
    );
    let drain = |queues: &mut Vec<tokio::sync::mpsc::Receiver<Utf8Bytes>>| {
        let mut n = 0;
        for q in queues.iter_mut() {
            while q.try_recv().is_ok() {
                n += 1;
            }
        }
        n
    };
    let mut run = |label: &str, iterations: usize, gated: bool, cold: bool| {
        let mut samples = Vec::with_capacity(iterations);
        let mut delivered = 0;
        for _ in 0..iterations {
            if cold {
                gate.invalidate(&Scope {
                    cid: Some(cid.into()),
                    user_id: None,
                });
            }
            let t = Instant::now();
            rt.block_on(ward::bus::deliver_local(
                &hub,
                TargetKind::Channel,
                cid,
                gated.then_some(cid),
                &event,
            ));
            samples.push(t.elapsed());
            delivered += drain(&mut queues);
        }
        assert_eq!(
            delivered,
            iterations * WATCHERS,
            "{label}: every watcher may read"
        );
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
        let mean = samples.iter().sum::<Duration>().as_secs_f64() / iterations as f64;
        println!(
            "RESULT {label}: n={iterations} watchers={WATCHERS} mean={:.1}µs p50={:.1}µs p99={:.1}µs per-watcher={:.0}ns",
            mean * 1e6,
            pct(0.50).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6,
            mean * 1e9 / WATCHERS as f64,
        );
    };
    run("delivery without the read decision", 500, false, false);
    run("delivery, read decision cached", 500, true, false);
    run(
        "delivery, read decision loaded (cold cache)",
        50,
        true,
        true,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
