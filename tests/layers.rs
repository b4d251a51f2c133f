//! Imports point down the layers, never up (ARCHITECTURE.md "Layers"). This test reads every
//! `crate::…` path in `src/` and fails on an import from a module to one in a higher layer,
//! and on a cycle between modules of one layer below the edges (the edges wire each other:
//! `app` builds the routers of `http` and `ws`, which take its state). The table below is the
//! rule; there is no exceptions list.

// A benchmark or test reports a failure by panicking: unwrapping is how it fails.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers from the top (edges) down to the leaves. A module may import its own layer
/// (without a cycle) and any layer below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "edges",
        &[
            "main",
            "app",
            "cli",
            "http",
            "ws",
            "ops",
            "ratelimit",
            "tls",
            "logging",
        ],
    ),
    ("domain", &["chat", "auth", "gdpr", "usage", "jobs"]),
    ("decisions and delivery", &["authz", "bus"]),
    ("records and keys", &["audit", "crypto"]),
    ("storage", &["store"]),
    (
        "leaves",
        &[
            "config",
            "time",
            "fsx",
            "startup",
            "metrics",
            "audit::record",
        ],
    ),
];

/// The layer of a module path such as `chat::message` or `audit::record::EventType`: the
/// longest prefix the table names.
fn layer_of(path: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, (_, modules)) in LAYERS.iter().enumerate() {
        for m in *modules {
            let named = path == *m || path.starts_with(&format!("{m}::"));
            if named && best.is_none_or(|(len, _)| m.len() > len) {
                best = Some((m.len(), i));
            }
        }
    }
    best.map(|(_, i)| i)
}

/// The module a source file belongs to, as the table names it (`src/audit/record.rs` is
/// `audit::record`, `src/chat/message.rs` is `chat`).
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix("src").unwrap();
    let parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|p| p != "mod")
        .collect();
    let two = parts.iter().take(2).cloned().collect::<Vec<_>>().join("::");
    if layer_of(&two).is_some() && LAYERS.iter().any(|(_, ms)| ms.contains(&two.as_str())) {
        two
    } else {
        parts[0].clone()
    }
}

/// Every `crate::a::b` path in `text` (in `use` lines and inline), with `use crate::{a, b::c}`
/// groups expanded to their first two segments.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("//")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top(&group[..end]) {
                out.push(first_two(item.trim()));
            }
            rest = &group[end..];
        } else {
            out.push(first_two(rest));
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `a::b` from `a::b::c…` (or `a` when the second segment is not a plain name).
fn first_two(s: &str) -> String {
    let ident = |s: &str| -> usize {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let a = &s[..ident(s)];
    let rest = &s[a.len()..];
    match rest.strip_prefix("::") {
        Some(r) if !r.starts_with('{') => format!("{a}::{}", &r[..ident(r)]),
        _ => a.to_string(),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The imports between modules: `(from, to) → files`.
fn imports() -> BTreeMap<(String, String), BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).unwrap();
    let mut files = Vec::new();
    rust_files(Path::new("src"), &mut files);
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let from = module_of(&file);
        let text = std::fs::read_to_string(&file).unwrap();
        for path in crate_paths(&text) {
            let to = if layer_of(&path).is_some()
                && LAYERS.iter().any(|(_, ms)| ms.contains(&path.as_str()))
            {
                path
            } else {
                path.split("::").next().unwrap().to_string()
            };
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_default()
                    .insert(file.display().to_string());
            }
        }
    }
    edges
}

#[test]
fn every_module_of_src_is_in_the_table() {
    let mut missing = BTreeSet::new();
    for ((from, to), _) in imports() {
        for m in [from, to] {
            if layer_of(&m).is_none() {
                missing.insert(m);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules missing from the layer table in tests/layers.rs: {missing:?}"
    );
}

#[test]
fn imports_point_down_the_layers() {
    let mut upward = Vec::new();
    for ((from, to), files) in imports() {
        let (Some(a), Some(b)) = (layer_of(&from), layer_of(&to)) else {
            continue;
        };
        if b < a {
            upward.push(format!(
                "{from} ({}) imports {to} ({}) in {}",
                LAYERS[a].0,
                LAYERS[b].0,
                files.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    assert!(
        upward.is_empty(),
        "imports from a lower layer to a higher one:\n{}",
        upward.join("\n")
    );
}

#[test]
fn modules_of_one_layer_import_each_other_one_way() {
    let edges = imports();
    let mut both = Vec::new();
    for (from, to) in edges.keys() {
        if from < to
            && layer_of(from) == layer_of(to)
            && layer_of(from) != Some(0)
            && edges.contains_key(&(to.clone(), from.clone()))
        {
            both.push(format!("{from} <-> {to}"));
        }
    }
    assert!(both.is_empty(), "cycles within a layer: {both:?}");
}

#[test]
fn the_leaf_audit_record_imports_nothing_of_ward() {
    let edges = imports();
    let from_record: Vec<_> = edges
        .iter()
        .filter(|((from, _), _)| from == "audit::record")
        .map(|((_, to), files)| format!("{to} in {files:?}"))
        .collect();
    assert!(from_record.is_empty(), "{from_record:?}");
}

#[test]
fn the_reader_sees_grouped_and_nested_paths() {
    let paths = crate_paths(
        "use crate::{audit::{AuditEvent, EventType}, store::Store};\n\
         // crate::http::error in a comment\n\
         let x = crate::time::now_micros();\n",
    );
    assert_eq!(paths, ["audit", "store::Store", "time::now_micros"]);
    assert_eq!(first_two("audit::record::EventType"), "audit::record");
    assert_eq!(layer_of("audit::record"), Some(5));
    assert_eq!(layer_of("audit::AuditLog"), Some(3));
    assert_eq!(layer_of("http::error"), Some(0));
}
