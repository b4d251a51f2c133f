//! Micro-benchmark: the latency one authorization decision adds (`cargo bench --bench authz`).
//! Builds the request and entities and evaluates the embedded policies, as a handler does.

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
}
