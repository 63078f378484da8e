//! The module layering (docs/architecture.md#layering): dependencies point down. Every file under `src/` is read,
//! its `crate::<module>` paths (also inside `use crate::{a, b}` groups) and the `super::<module>` paths that reach
//! the crate root are collected, and each is checked against [`LAYERS`]: a module may import modules of lower
//! layers only, never one of its own layer (siblings stay independent) or of a higher one.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers, highest first; a module may import only modules of the layers after its own.
const LAYERS: &[(&str, &[&str])] = &[
    ("the entry points", &["cli", "server"]),
    ("the router and the wire dialects", &["api"]),
    ("the browser flows", &["oauth", "upstream"]),
    (
        "the browser plumbing: pages, cookies, CSRF, forms",
        &["web"],
    ),
    ("the composition root's shared handles", &["state"]),
    ("the use cases", &["core"]),
    ("storage and configuration", &["store", "config"]),
    ("the domain types", &["model"]),
    ("the domain error", &["error"]),
    ("the leaves", &["crypto", "clock", "wire", "telemetry"]),
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/`: `src/core/user.rs` → `[core, user]`, `src/web/mod.rs` → `[web]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The crate-root modules `line` names: `crate::x`, each entry of `crate::{x, y::z}`, and the same after the
/// `depth` `super`s that reach the crate root.
fn imports(line: &str, depth: usize) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let supers = "super::".repeat(depth);
    let mut found = Vec::new();
    for root in ["crate::", supers.as_str()] {
        for (i, _) in code.match_indices(root) {
            let before = &code[..i];
            let rest = &code[i + root.len()..];
            // Part of a longer name (`my_crate::`), or of a longer `super::super::` chain.
            if before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                || rest.starts_with("super::")
            {
                continue;
            }
            match rest.strip_prefix('{') {
                Some(group) => {
                    let group = group.split('}').next().unwrap_or("");
                    found.extend(group.split(',').map(|e| ident_at(e.trim()).to_owned()));
                }
                None => found.push(ident_at(rest).to_owned()),
            }
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

#[test]
fn lower_modules_never_import_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let path = module_path(rel);
        // The crate root (lib.rs) and the binary (main.rs) sit above every module.
        if matches!(path[0].as_str(), "lib" | "main") {
            continue;
        }
        let module = path[0].as_str();
        let Some(own) = layer(module) else {
            violations.push(format!(
                "src/{}: module `{module}` is not in the layer table of tests/layering.rs; add it",
                rel.display()
            ));
            continue;
        };
        let text = fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for target in imports(line, path.len()) {
                if target == module {
                    continue;
                }
                let Some(theirs) = layer(&target) else {
                    continue;
                };
                if theirs > own {
                    continue;
                }
                let why = if theirs == own {
                    "siblings in one layer never import each other".to_owned()
                } else {
                    format!("`{target}` is {}, above", LAYERS[theirs].0)
                };
                violations.push(format!(
                    "src/{}:{}: `{module}` ({}) imports `{target}`: {why}",
                    rel.display(),
                    n + 1,
                    LAYERS[own].0,
                ));
            }
        }
    }
    let rule = LAYERS
        .iter()
        .map(|(_, ms)| ms.join("/"))
        .collect::<Vec<_>>()
        .join(" → ");
    assert!(
        violations.is_empty(),
        "dependencies must point down ({rule}); see docs/architecture.md#layering:\n{}",
        violations.join("\n")
    );
}

#[test]
fn imports_are_found_in_paths_groups_and_supers() {
    assert_eq!(imports("use crate::core::user;", 2), ["core"]);
    assert_eq!(
        imports("use crate::{clock::Clock, store, web::x};", 2),
        ["clock", "store", "web"]
    );
    assert_eq!(
        imports("    let x = crate::oauth::f(); // crate::api", 2),
        ["oauth"]
    );
    assert_eq!(imports("use super::pages;", 2), Vec::<String>::new());
    assert_eq!(imports("use super::state::AppState;", 1), ["state"]);
    assert_eq!(imports("use super::super::api;", 2), ["api"]);
    assert_eq!(imports("use super::super::api;", 1), Vec::<String>::new());
    assert_eq!(imports("use super::{state, web::x};", 1), ["state", "web"]);
    assert_eq!(imports("latchkey_crate::x", 1), Vec::<String>::new());
}
