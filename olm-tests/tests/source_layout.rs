//! The shape of the sources, kept by a test (issue #17): no Rust source file
//! over [`MAX_LINES`] lines, and no import cycle between the modules of a
//! crate (no module uses one that uses it back, directly or through others).
//!
//! Imports are read from the text: `crate::a::b` and `super::…` paths (and
//! `use crate::{a, b::c}` groups) outside comments and outside the trailing
//! `#[cfg(test)] mod tests`, each resolved to the deepest module it names. A
//! module using its own ancestor or descendant is not a cycle (`mod.rs`
//! re-exporting its children is how a module is built).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use olm_tests::operator::workspace_root;

/// The longest a source file may be.
const MAX_LINES: usize = 1200;
/// The crates whose `src/` is checked for cycles.
const CRATES: [&str; 3] = ["operator", "manifests-gen", "olm-tests"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `["a", "b"]`; `lib.rs`/`main.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    Some(parts)
}

/// The text that counts: no line comments, nothing from `#[cfg(test)] mod tests`.
fn code(text: &str) -> String {
    let text = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i]);
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths (as segments) a module's code names: `crate::…` from the root,
/// `super::…` from the module's parent.
fn named_paths(module: &[String], code: &str) -> Vec<Vec<String>> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (anchor, base) in [
        ("crate::", Vec::new()),
        ("super::", module[..module.len().saturating_sub(1)].to_vec()),
    ] {
        let mut rest = code;
        while let Some(i) = rest.find(anchor) {
            let preceded = rest[..i].chars().next_back().is_some_and(ident);
            rest = &rest[i + anchor.len()..];
            if preceded {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a, b::c, d::{e, f}}`: the first segment of each item.
                let end = group.find("};").unwrap_or(group.len());
                let mut depth = 0;
                let mut item = String::new();
                for ch in group[..end].chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            push_path(&base, &item, &mut out);
                            item.clear();
                        }
                        _ => item.push(ch),
                    }
                }
                push_path(&base, &item, &mut out);
                continue;
            }
            let len = rest
                .find(|c: char| !(ident(c) || c == ':'))
                .unwrap_or(rest.len());
            push_path(&base, &rest[..len], &mut out);
        }
    }
    out
}

fn push_path(base: &[String], item: &str, out: &mut Vec<Vec<String>>) {
    let mut path = base.to_vec();
    path.extend(
        item.trim()
            .split("::")
            .map(|s| s.trim().trim_end_matches(['{', ' ']))
            .take_while(|s| {
                !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .map(str::to_owned),
    );
    out.push(path);
}

/// The module graph of one crate: module → modules it uses.
fn graph(krate: &Path) -> Result<BTreeMap<Vec<String>, BTreeSet<Vec<String>>>> {
    let src = krate.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files)?;
    let mut texts = BTreeMap::new();
    for f in files {
        if let Some(m) = module_of(&src, &f) {
            texts.insert(m, std::fs::read_to_string(&f)?);
        }
    }
    let modules: BTreeSet<Vec<String>> = texts.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (m, text) in &texts {
        let mut to = BTreeSet::new();
        for path in named_paths(m, &code(text)) {
            let Some(target) = (1..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|p| modules.contains(p))
            else {
                continue;
            };
            let related = target.starts_with(m) || m.starts_with(&target);
            if !related {
                to.insert(target);
            }
        }
        edges.insert(m.clone(), to);
    }
    Ok(edges)
}

/// One cycle of `edges`, if there is any (as module paths, first repeated last).
fn find_cycle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<String>> {
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next) {
                Some(1) => {
                    let start = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|m| m.join("::")).collect();
                    cycle.push(next.join("::"));
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(next, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        if !state.contains_key(node)
            && let Some(c) = visit(node, edges, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_source_file_is_over_the_limit() -> Result<()> {
    let root = workspace_root();
    let mut files = Vec::new();
    for krate in CRATES {
        rust_files(&root.join(krate), &mut files)?;
    }
    ensure!(files.len() > 100, "found only {} files", files.len());
    let mut long = Vec::new();
    for f in files {
        let lines = std::fs::read_to_string(&f)?.lines().count();
        if lines > MAX_LINES {
            long.push(format!("{} ({lines} lines)", f.display()));
        }
    }
    ensure!(
        long.is_empty(),
        "over {MAX_LINES} lines, split by concern: {long:?}"
    );
    Ok(())
}

#[test]
fn no_import_cycles() -> Result<()> {
    let root = workspace_root();
    for krate in CRATES {
        let edges = graph(&root.join(krate))?;
        ensure!(
            edges.len() > 10,
            "{krate}: found only {} modules",
            edges.len()
        );
        if let Some(cycle) = find_cycle(&edges) {
            anyhow::bail!("{krate}: import cycle {}", cycle.join(" -> "));
        }
    }
    Ok(())
}

/// The reader and the cycle finder on a small made-up crate.
#[test]
fn the_checker_sees_cycles() {
    let m = |s: &str| -> Vec<String> {
        s.split("::")
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        named_paths(
            &m("a::b"),
            "use crate::{c, d::e::{f, g}};\nuse super::h::X;\nfn x() { other_crate::y(); crate::k::z() }"
        ),
        vec![m("c"), m("d::e"), m("k::z"), m("a::h::X")]
    );
    assert!(
        !code("use crate::a; // crate::b\n#[cfg(test)]\nmod tests { use crate::c; }")
            .contains("crate::b")
    );
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    edges.insert(m("a"), [m("b")].into());
    edges.insert(m("b"), [m("c")].into());
    edges.insert(m("c"), BTreeSet::new());
    assert_eq!(find_cycle(&edges), None);
    edges.insert(m("c"), [m("a")].into());
    assert_eq!(
        find_cycle(&edges),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
