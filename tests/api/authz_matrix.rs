//! The decision matrix in `policies/decision-matrix.md` against the policies: every row must
//! come out as the table says.

use std::sync::Arc;

use ward::audit::MemorySink;
use ward::authz::{Authz, ChannelFacts, Principal, Resource};
use ward::chat::channel_type;

const MATRIX: &str = include_str!("../../policies/decision-matrix.md");

#[test]
fn the_decision_matrix_matches_the_policies() {
    let authz = Authz::embedded(Arc::new(MemorySink::new())).unwrap();
    let mut rows = 0;
    let mut wrong = Vec::new();
    for line in MATRIX
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| role"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let [role, action, on, facts, expected] = cells[..] else {
            panic!("malformed row: {line}")
        };
        let facts: Vec<&str> = facts
            .split(',')
            .map(str::trim)
            .filter(|f| *f != "-")
            .collect();
        let has = |f: &str| facts.contains(&f);
        let principal = if role == "server" {
            Principal::Server { acting_for: None }
        } else {
            Principal::User {
                id: "someone",
                role,
            }
        };
        let channel;
        let resource = if on == "app" {
            if has("self") || has("sets_role") || action == "UpdateUser" {
                Resource::User {
                    is_self: has("self"),
                    sets_role: has("sets_role"),
                }
            } else {
                Resource::App
            }
        } else {
            let config =
                channel_type::lookup(on).unwrap_or_else(|| panic!("unknown channel type {on}"));
            channel = ChannelFacts {
                cid: format!("{on}:matrix"),
                channel_type: on.to_string(),
                public: config.public,
                is_member: has("member") || has("channel_moderator"),
                channel_role: if has("channel_moderator") {
                    "channel_moderator".into()
                } else if has("member") {
                    "channel_member".into()
                } else {
                    String::new()
                },
                is_creator: has("creator"),
                is_author: has("author"),
                frozen: has("frozen"),
                typing_events: config.typing_events,
                read_events: config.read_events,
                reactions: config.reactions,
                replies: config.replies,
                search: config.search,
            };
            Resource::Channel(&channel)
        };
        let allowed = authz.allows(principal, action, &resource);
        let want = match expected {
            "allow" => true,
            "deny" => false,
            other => panic!("decision must be allow or deny, not {other}"),
        };
        if allowed != want {
            wrong.push(line.to_string());
        }
        rows += 1;
    }
    assert!(rows > 50, "the matrix has its rows ({rows})");
    assert!(
        wrong.is_empty(),
        "rows the policies decide differently:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_route_has_a_policy_action() {
    // The routers declare routes as `.route("/path", get(..).post(..))`; read them from the
    // source so a new route without an entry in ROUTE_ACTIONS fails here.
    let mut missing = Vec::new();
    let mut seen = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))
        .unwrap()
        .chain(std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http")).unwrap())
        .chain(std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/ws")).unwrap())
    {
        let path = entry.unwrap().path();
        // The metrics listener is not the API: it serves `/metrics` alone, on its own port.
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("http/metrics.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for chunk in text.split(".route(").skip(1) {
            let Some(rest) = chunk.trim_start().strip_prefix('"') else {
                continue;
            };
            let route = &rest[..rest.find('"').unwrap()];
            let call = &rest[..rest
                .find("\n        .route(")
                .or_else(|| rest.find(";"))
                .unwrap_or(rest.len())];
            for (method, needle) in [
                ("GET", "get("),
                ("POST", "post("),
                ("PUT", "put("),
                ("PATCH", "patch("),
                ("DELETE", "delete("),
            ] {
                if call.contains(needle) {
                    seen += 1;
                    if ward::authz::routes::action_for(method, route).is_none() {
                        missing.push(format!("{method} {route}"));
                    }
                }
            }
        }
    }
    assert!(
        seen >= 25,
        "the route scan found the routers ({seen} routes)"
    );
    assert!(
        missing.is_empty(),
        "routes without a policy action: {missing:?}"
    );
}
