//! The layering of `src/` as docs/architecture.md draws it, checked from the source text: no
//! module imports from a module above it, and no two files depend on each other in a circle
//! (a module and its own submodules aside: `super::` inside a module is not a circle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules, highest first. A module may use any module below it, never one above.
/// Modules on one line are peers that must not use each other.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["doctor", "pipeline"],
    &["sink"],
    &["source"],
    &["aws"],
    &["auth"],
    &["config"],
    &["http"],
    &["retry"],
    &["trust", "bq_model", "describe", "secret", "failpoint"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// A file's module path: `src/auth/sts.rs` → `auth::sts`, `src/auth/mod.rs` → `auth`.
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Every `crate::…`, `super::…` and `self::…` path in `text`, braces expanded one level.
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let starts = ["crate::", "super::", "self::"].iter().find(|p| rest.starts_with(p.as_bytes()));
        let boundary = i == 0 || !ident(bytes[i - 1]);
        let (Some(_), true) = (starts, boundary) else {
            i += 1;
            continue;
        };
        let mut segs = Vec::new();
        let mut j = i;
        loop {
            let start = j;
            while j < bytes.len() && ident(bytes[j]) {
                j += 1;
            }
            if start == j {
                break;
            }
            segs.push(text[start..j].to_owned());
            if bytes[j..].starts_with(b"::") {
                j += 2;
            } else {
                break;
            }
        }
        if bytes[j..].starts_with(b"{") {
            let end = text[j..].find('}').map_or(text.len(), |e| j + e);
            for item in text[j + 1..end].split(',') {
                let first: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !first.is_empty() && first != "self" {
                    let mut p = segs.clone();
                    p.push(first);
                    out.push(p);
                }
            }
            j = end;
        }
        out.push(segs);
        i = j.max(i + 1);
    }
    out
}

/// Resolves a path used in `from` to the module file it names (the longest module prefix).
fn resolve(from: &[String], path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut base: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => from.to_vec(),
        Some("super") => from[..from.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    let mut rest = &path[1..];
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    let mut best = None;
    for seg in rest {
        base.push(seg.clone());
        if modules.contains(&base) {
            best = Some(base.clone());
        } else {
            break;
        }
    }
    best
}

/// The layering violations and file circles in `files` (path relative to `src/`, text).
fn problems(files: &[(String, String)]) -> Vec<String> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(p, _)| module_of(p)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut found = Vec::new();
    for (path, text) in files {
        let from = module_of(path);
        for p in paths(text) {
            let Some(to) = resolve(&from, &p, &modules) else { continue };
            let related = to.starts_with(&from) || from.starts_with(&to);
            if !related {
                edges.entry(from.clone()).or_default().insert(to.clone());
            }
            let (Some(a), Some(b)) = (from.first(), to.first()) else { continue };
            if a != b
                && let (Some(ra), Some(rb)) = (rank(a), rank(b))
                && rb <= ra
            {
                found.push(format!("{path}: `{}` uses `{}`, which is not below it", from.join("::"), to.join("::")));
            }
        }
    }
    for m in &modules {
        if let Some(top) = m.first()
            && rank(top).is_none()
        {
            found.push(format!("module `{top}` has no layer in LAYERS (docs/architecture.md)"));
        }
    }
    found.extend(circles(&edges));
    found.sort();
    found.dedup();
    found
}

/// Every circle in the file graph, each named by its files.
fn circles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<String> {
    let mut out = Vec::new();
    for start in edges.keys() {
        // Depth-first search back to `start`; each circle is reported from its smallest file.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, trail)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> = trail.iter().map(|m| m.join("::")).collect();
                    out.push(format!("circle: {} -> {}", names.join(" -> "), start.join("::")));
                } else if next > start && seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
    out
}

fn read_tree(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            if rel != "main.rs" {
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
}

#[test]
fn modules_only_use_modules_below_them_and_files_form_no_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    assert!(files.len() > 50, "read {} files", files.len());
    let found = problems(&files);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_checker_sees_an_upward_import_and_a_circle() {
    let f = |p: &str, t: &str| (p.to_owned(), t.to_owned());
    let files = vec![
        f("lib.rs", "pub mod auth; pub mod config;"),
        f("auth/mod.rs", "mod a; mod b;"),
        f("auth/a.rs", "use super::b::Thing;"),
        f("auth/b.rs", "use super::{a::Other, Parent};"),
        f("config/mod.rs", "use crate::auth::Token;"),
    ];
    let found = problems(&files);
    assert!(found.iter().any(|p| p.contains("`config` uses `auth`")), "{found:?}");
    assert!(found.iter().any(|p| p == "circle: auth::a -> auth::b -> auth::a"), "{found:?}");
    assert_eq!(found.len(), 2, "{found:?}");
}
