//! The one enforcement point: every chat and admin action is a Cedar request against the
//! policies in `policies/` (embedded at build time), default deny. Policies are validated
//! against the schema at start; an invalid set stops the server.
//!
//! Handlers call [`Authz::authorize`] (a denial is a [`Denied`] naming the action, sent to
//! the audit sink; the edge answers it with code 17) or, to filter lists and compute
//! `own_capabilities`, [`Authz::allows`].
//! Every decision is noted for the current request, so the HTTP layer can refuse to answer a
//! request that reached no decision (see `http::enforce_decision`).

pub mod routes;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::audit::AuditSink;

/// The policy files, in load order. `ward policy check --dir` reads the same names.
pub const POLICY_FILES: &[(&str, &str)] = &[
    ("server.cedar", include_str!("../../policies/server.cedar")),
    ("chat.cedar", include_str!("../../policies/chat.cedar")),
    ("phi.cedar", include_str!("../../policies/phi.cedar")),
    ("users.cedar", include_str!("../../policies/users.cedar")),
    (
        "compliance.cedar",
        include_str!("../../policies/compliance.cedar"),
    ),
];
pub const SCHEMA_FILE: (&str, &str) = (
    "schema.cedarschema",
    include_str!("../../policies/schema.cedarschema"),
);

/// Who asks.
#[derive(Debug, Clone, Copy)]
pub enum Principal<'a> {
    /// A server-side call, acting for the named user if any.
    Server {
        acting_for: Option<&'a str>,
    },
    User {
        id: &'a str,
        role: &'a str,
    },
}

/// A channel and the principal's relation to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelFacts {
    pub cid: String,
    pub channel_type: String,
    pub public: bool,
    pub is_member: bool,
    pub channel_role: String,
    pub is_creator: bool,
    pub is_author: bool,
    pub frozen: bool,
    pub typing_events: bool,
    pub read_events: bool,
    pub reactions: bool,
    pub replies: bool,
    pub search: bool,
}

/// What the action is about.
#[derive(Debug, Clone)]
pub enum Resource<'a> {
    App,
    /// `UpdateUser`: whether the user changed is the principal, and whether a role is set.
    User {
        is_self: bool,
        sets_role: bool,
    },
    Channel(&'a ChannelFacts),
}

pub struct Authz {
    schema: Schema,
    policies: PolicySet,
    authorizer: Authorizer,
    sink: Arc<dyn AuditSink>,
    /// Decisions by (principal kind and role, action, resource attributes, context). Exact
    /// while no policy names a specific entity (then every request has the same answer as
    /// any other with the same key); disabled when one does.
    cache: Option<std::sync::RwLock<HashMap<String, bool>>>,
}

/// Bound on cached decisions; the key space is small (roles × actions × facts).
const CACHE_LIMIT: usize = 100_000;

tokio::task_local! {
    /// Set by the HTTP layer around each request: whether any decision was made.
    pub static DECIDED: std::cell::Cell<bool>;
}

fn note_decision() {
    let _ = DECIDED.try_with(|d| d.set(true));
}

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(kind).expect("entity type names are constants"),
        EntityId::new(id),
    )
}

impl Authz {
    /// Parses and validates a schema and policy files; any error names the file.
    pub fn from_sources(
        schema: (&str, &str),
        files: &[(&str, &str)],
        sink: Arc<dyn AuditSink>,
    ) -> anyhow::Result<Self> {
        let (schema, _warnings) = Schema::from_cedarschema_str(schema.1)
            .map_err(|e| anyhow::anyhow!("{}: {e}", schema.0))?;
        let mut policies = PolicySet::new();
        for (name, text) in files {
            let set = PolicySet::from_str(text).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            for (i, p) in set.policies().enumerate() {
                // Policy ids are the `@id` annotations, so decisions name readable rules.
                let id = p
                    .annotation("id")
                    .map_or_else(|| format!("{name}#{i}"), str::to_string);
                let p = p.new_id(PolicyId::new(id.clone()));
                policies
                    .add(p)
                    .with_context(|| format!("{name}: duplicate policy id {id}"))?;
            }
        }
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let errors: Vec<String> = result
                .validation_errors()
                .map(|e| format!("  {e}"))
                .collect();
            bail!(
                "the policies do not validate against the schema:\n{}",
                errors.join("\n")
            );
        }
        // Entity literals look like `Ward::User::"id"` (action literals aside): with one, ids
        // matter and nothing is cached.
        let names_entities = files.iter().any(|(_, text)| {
            text.match_indices("::\"")
                .any(|(i, _)| !text[..i].ends_with("Action"))
        });
        Ok(Self {
            schema,
            policies,
            authorizer: Authorizer::new(),
            sink,
            cache: (!names_entities).then(Default::default),
        })
    }

    /// The policies embedded in this build.
    pub fn embedded(sink: Arc<dyn AuditSink>) -> anyhow::Result<Self> {
        Self::from_sources(SCHEMA_FILE, POLICY_FILES, sink)
    }

    /// The policies in a directory (`ward policy check --dir`).
    pub fn from_dir(dir: &Path, sink: Arc<dyn AuditSink>) -> anyhow::Result<Self> {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).with_context(|| format!("reading {name}"))
        };
        let schema = read(SCHEMA_FILE.0)?;
        let files: Vec<(String, String)> = POLICY_FILES
            .iter()
            .map(|(n, _)| Ok((n.to_string(), read(n)?)))
            .collect::<anyhow::Result<_>>()?;
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Self::from_sources((SCHEMA_FILE.0, &schema), &refs, sink)
    }

    /// Whether decisions are cached (no policy names a specific entity).
    pub fn caches_decisions(&self) -> bool {
        self.cache.is_some()
    }

    pub fn policy_count(&self) -> usize {
        self.policies.policies().count()
    }

    fn cache_key(principal: Principal<'_>, action: &str, resource: &Resource<'_>) -> String {
        let who = match principal {
            Principal::Server { .. } => "server".to_string(),
            Principal::User { role, .. } => format!("user:{role}"),
        };
        let what = match resource {
            Resource::App => "app".to_string(),
            Resource::User { is_self, sets_role } => format!("user:{is_self}:{sets_role}"),
            Resource::Channel(f) => format!(
                "channel:{}:{}:{}:{}:{}:{}:{}:{}{}{}{}{}",
                f.channel_type,
                f.public,
                f.is_member,
                f.channel_role,
                f.is_creator,
                f.is_author,
                f.frozen,
                u8::from(f.typing_events),
                u8::from(f.read_events),
                u8::from(f.reactions),
                u8::from(f.replies),
                u8::from(f.search)
            ),
        };
        format!("{who}|{action}|{what}")
    }

    fn decide(&self, principal: Principal<'_>, action: &str, resource: &Resource<'_>) -> Decision {
        note_decision();
        let Some(cache) = &self.cache else {
            return self.evaluate(principal, action, resource);
        };
        let key = Self::cache_key(principal, action, resource);
        if let Some(allowed) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return if *allowed {
                Decision::Allow
            } else {
                Decision::Deny
            };
        }
        let decision = self.evaluate(principal, action, resource);
        let mut cache = cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, decision == Decision::Allow);
        decision
    }

    fn evaluate(
        &self,
        principal: Principal<'_>,
        action: &str,
        resource: &Resource<'_>,
    ) -> Decision {
        match self.request(principal, action, resource) {
            Ok((request, entities)) => self
                .authorizer
                .is_authorized(&request, &self.policies, &entities)
                .decision(),
            Err(e) => {
                // A request that does not fit the schema is a bug; deny it.
                tracing::error!(action = %action, error = %e, "authorization request does not fit the schema");
                Decision::Deny
            }
        }
    }

    fn request(
        &self,
        principal: Principal<'_>,
        action: &str,
        resource: &Resource<'_>,
    ) -> anyhow::Result<(Request, Entities)> {
        let mut entities = Vec::new();
        let principal_uid = match principal {
            Principal::Server { .. } => {
                let u = uid("Ward::Server", "api-secret");
                entities.push(Entity::new_no_attrs(u.clone(), HashSet::new()));
                u
            }
            Principal::User { id, role } => {
                let u = uid("Ward::User", id);
                let attrs = HashMap::from([(
                    "role".to_string(),
                    RestrictedExpression::new_string(role.to_string()),
                )]);
                entities.push(Entity::new(u.clone(), attrs, HashSet::new())?);
                u
            }
        };
        let b = RestrictedExpression::new_bool;
        let (resource_uid, context) = match resource {
            Resource::App | Resource::User { .. } => {
                let u = uid("Ward::App", "ward");
                entities.push(Entity::new_no_attrs(u.clone(), HashSet::new()));
                let ctx = match resource {
                    Resource::User { is_self, sets_role } => Context::from_pairs([
                        ("is_self".to_string(), b(*is_self)),
                        ("sets_role".to_string(), b(*sets_role)),
                    ])?,
                    _ => Context::empty(),
                };
                (u, ctx)
            }
            Resource::Channel(f) => {
                let u = uid("Ward::Channel", &f.cid);
                let attrs = HashMap::from([
                    (
                        "channel_type".to_string(),
                        RestrictedExpression::new_string(f.channel_type.clone()),
                    ),
                    ("public".to_string(), b(f.public)),
                ]);
                entities.push(Entity::new(u.clone(), attrs, HashSet::new())?);
                let ctx = Context::from_pairs([
                    ("is_member".to_string(), b(f.is_member)),
                    (
                        "channel_role".to_string(),
                        RestrictedExpression::new_string(f.channel_role.clone()),
                    ),
                    ("is_creator".to_string(), b(f.is_creator)),
                    ("is_author".to_string(), b(f.is_author)),
                    ("frozen".to_string(), b(f.frozen)),
                    ("typing_events".to_string(), b(f.typing_events)),
                    ("read_events".to_string(), b(f.read_events)),
                    ("reactions".to_string(), b(f.reactions)),
                    ("replies".to_string(), b(f.replies)),
                    ("search".to_string(), b(f.search)),
                ])?;
                (u, ctx)
            }
        };
        let action_uid = uid("Ward::Action", action);
        // Debug builds (tests) check every request against the schema; release builds rely on
        // the load-time validation and the decision-matrix test.
        let schema = cfg!(debug_assertions).then_some(&self.schema);
        let request = Request::new(principal_uid, action_uid, resource_uid, context, schema)?;
        let entities = Entities::from_entities(entities, schema)?;
        Ok((request, entities))
    }

    /// Whether the policies permit the action (no audit record: for filtering lists and
    /// computing capabilities).
    pub fn allows(&self, principal: Principal<'_>, action: &str, resource: &Resource<'_>) -> bool {
        self.decide(principal, action, resource) == Decision::Allow
    }

    /// Permits the action or refuses it with [`Denied`] naming it, recording the denial
    /// for the audit log.
    pub fn authorize(
        &self,
        principal: Principal<'_>,
        action: &str,
        resource: &Resource<'_>,
    ) -> Result<(), Denied> {
        let allowed = self.allows(principal, action, resource);
        // Denials are always recorded; so is every server-side call (the API secret can do
        // everything, so each use is attributed to the user it acted for).
        if !allowed || matches!(principal, Principal::Server { .. }) {
            use crate::audit::{AuditEvent, EventType, Outcome};
            let mut event = if allowed {
                AuditEvent::new(EventType::AuthzServerCall)
            } else {
                AuditEvent::new(EventType::AuthzDenied).outcome(Outcome::Denied)
            }
            .meta("action", action);
            event = match principal {
                Principal::Server { acting_for } => {
                    let e = event.actor_opt(acting_for);
                    if allowed { e } else { e.meta("via", "server") }
                }
                Principal::User { id, .. } => event.actor(id),
            };
            event = match resource {
                Resource::Channel(f) => event
                    .object("channel", f.cid.clone())
                    .meta("resource_kind", "channel")
                    .meta("channel_type", &f.channel_type),
                Resource::User { .. } => event.meta("resource_kind", "user"),
                Resource::App => event.meta("resource_kind", "app"),
            };
            self.sink.record(event);
        }
        if allowed {
            return Ok(());
        }
        let on = match resource {
            Resource::Channel(f) => format!(" in channel {}", f.cid),
            _ => String::new(),
        };
        Err(Denied(format!("{action} is not allowed for this user{on}")))
    }
}

impl AsRef<Authz> for Authz {
    fn as_ref(&self) -> &Authz {
        self
    }
}

/// A request the policies refused. The message names the action (and the channel), as
/// the caller sees it: the edge answers it with Stream's code 17.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::MemorySink;

    #[test]
    fn the_embedded_policies_validate_and_an_invalid_set_is_refused() {
        let sink = Arc::new(MemorySink::new());
        let authz = Authz::embedded(sink.clone()).unwrap();
        assert!(authz.policy_count() > 10);
        assert!(
            authz.caches_decisions(),
            "the built-in policies name no entity"
        );
        let named = [(
            "n.cedar",
            r#"forbid (principal == Ward::User::"mallory", action, resource);"#,
        )];
        assert!(
            !Authz::from_sources(SCHEMA_FILE, &named, sink.clone())
                .unwrap()
                .caches_decisions()
        );
        let bad = [(
            "bad.cedar",
            r#"permit (principal is Ward::User, action == Ward::Action::"ReadChannel", resource) when { principal.nope == 1 };"#,
        )];
        let err = Authz::from_sources(SCHEMA_FILE, &bad, sink)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("do not validate"), "{err}");
    }
}
