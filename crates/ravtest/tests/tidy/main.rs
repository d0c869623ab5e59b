//! Tidy: architecture rules that prose alone would not keep (after rust-analyzer's tidy).
//!
//! - Internal crate dependencies follow the allow-list of ARCHITECTURE.md: clients and the
//!   server meet only in `ravproto`.
//! - Inside each crate, the `use crate::…` edges between top-level modules form no circle, and
//!   ravsock's modules follow its declared layering (a module uses only the layers below it).
//! - Every Rust file opens with a `//!` module doc.
//! - No test is skipped or expected to panic, and no `dbg!` is left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Which internal crates each crate may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("ravproto", &[]),
    ("ravexec", &["ravproto"]),
    ("ravop", &["ravproto", "ravexec", "ravftp", "ravfed", "ravclient", "ravenv", "ravwasm"]),
    ("ravclient", &["ravproto"]),
    ("ravenv", &[]),
    ("ravftp", &["ravproto"]),
    ("ravfed", &["ravproto"]),
    // The sandbox runs on providers and in ravop's local runs, never in ravsock.
    ("ravwasm", &["ravproto"]),
    // ravexec for `infer`: what a provider's answer must look like, by the kernels' own rules.
    ("ravsock", &["ravproto", "ravexec", "ravftp", "ravfed", "ravenv"]),
    ("ravpy", &["ravproto", "ravexec", "ravftp", "ravfed", "ravclient", "ravenv", "ravwasm"]),
    ("ravtest", &[]),
];

fn internal_crates(root: &Path) -> BTreeMap<String, toml::Table> {
    std::fs::read_dir(root.join("crates"))
        .expect("crates/ exists")
        .filter_map(|entry| {
            let path = entry.ok()?.path().join("Cargo.toml");
            let text = std::fs::read_to_string(&path).ok()?;
            let manifest: toml::Table = text.parse().expect("manifest parses");
            let name = manifest["package"]["name"].as_str()?.to_string();
            Some((name, manifest))
        })
        .collect()
}

#[test]
fn internal_dependencies_follow_the_allow_list() {
    let root = workspace_root();
    let crates = internal_crates(&root);
    assert!(crates.contains_key("ravproto") && crates.contains_key("ravexec"), "found the crates");
    let mut problems = Vec::new();
    for (name, manifest) in &crates {
        let Some((_, allowed)) = ALLOWED.iter().find(|(crate_name, _)| crate_name == name) else {
            problems.push(format!("{name} is not in the allow-list; add it to ARCHITECTURE.md and this test"));
            continue;
        };
        let deps = manifest.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default();
        for dep in deps.keys().filter(|dep| crates.contains_key(*dep)) {
            if !allowed.contains(&dep.as_str()) {
                problems.push(format!("{name} must not depend on {dep}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn sources_have_module_docs_and_no_skipped_tests() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("examples"), &mut files);
    rust_files(&root.join("fuzz"), &mut files);
    assert!(files.len() > 20, "found the sources");
    let banned = [["#[should", "_panic"].concat(), ["#[ign", "ore"].concat(), ["db", "g!("].concat()];
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        let shown = file.strip_prefix(&root).unwrap_or(file).display();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!("{shown}: does not open with a `//!` module doc"));
        }
        for pattern in &banned {
            if text.contains(pattern.as_str()) {
                problems.push(format!("{shown}: contains `{pattern}`"));
            }
        }
        // reqwest is built with rustls and no crypto provider of its own: a client built
        // anywhere but `ravclient::Trust` panics at its first use.
        let in_ravclient = file.starts_with(root.join("crates").join("ravclient"));
        for pattern in [["reqwest::Client::", "new()"].concat(), ["reqwest::", "get("].concat()] {
            if !in_ravclient && text.contains(pattern.as_str()) {
                problems.push(format!("{shown}: `{pattern}` panics: build clients with ravclient::Trust::reqwest"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// ravsock's top-level modules, from the front doors down: a module may use only modules of
/// the layers after its own (ARCHITECTURE.md, "ravsock").
const RAVSOCK_LAYERS: &[&[&str]] = &[
    &["api"],
    &["service"],
    &["dispatch", "config"],
    &["db", "bulk", "validate", "scheduler"],
    &["auth", "metrics"],
    &["error"],
];

/// The top-level modules of a crate (files and folders of `src`, without the crate root) and
/// the other top-level modules each one names through `crate::` in code (comments skipped).
fn module_edges(src: &Path) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("src/ exists").flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if path.is_dir() {
            let mut inside = Vec::new();
            rust_files(&path, &mut inside);
            files.entry(name).or_default().extend(inside);
        } else if let Some(module) = name.strip_suffix(".rs")
            && module != "lib"
            && module != "main"
        {
            files.entry(module.to_string()).or_default().push(path);
        }
    }
    let modules: std::collections::BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(module, paths)| {
            let mut used = std::collections::BTreeSet::new();
            for path in paths {
                let text = std::fs::read_to_string(path).expect("readable source");
                let code: String = text
                    .lines()
                    .filter(|line| !line.trim_start().starts_with("//"))
                    .map(|line| format!("{line}\n"))
                    .collect();
                used.extend(crate_paths(&code).into_iter().filter(|m| m != module && modules.contains(m)));
            }
            (module.clone(), used)
        })
        .collect()
}

/// The first segment of every `crate::…` path in `code`, `use crate::{a, b::c}` included.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.push(ident(item.trim()));
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

/// A circle in `edges`, as the modules along it, if there is one.
fn circle(edges: &BTreeMap<String, std::collections::BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        edges: &BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module.to_string());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in edges.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    edges.keys().find_map(|module| visit(module, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_circle_between_its_modules() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for name in internal_crates(&root).keys() {
        let src = root.join("crates").join(name).join("src");
        if !src.is_dir() {
            continue;
        }
        if let Some(circle) = circle(&module_edges(&src)) {
            problems.push(format!("{name}: {}", circle.join(" -> ")));
        }
    }
    assert!(problems.is_empty(), "import circles:\n{}", problems.join("\n"));
    // The checker sees a circle where there is one.
    let edges =
        BTreeMap::from([("a".to_string(), ["b".to_string()].into()), ("b".to_string(), ["a".to_string()].into())]);
    assert_eq!(circle(&edges), Some(vec!["a".into(), "b".into(), "a".into()]));
    assert_eq!(crate_paths("use crate::{db::{Db, Row}, error};\nlet x = crate::api::router;"), ["db", "error", "api"]);
}

#[test]
fn ravsock_modules_follow_their_layering() {
    let root = workspace_root();
    let edges = module_edges(&root.join("crates/ravsock/src"));
    let layer = |module: &str| RAVSOCK_LAYERS.iter().position(|layer| layer.contains(&module));
    let mut problems = Vec::new();
    for (module, used) in &edges {
        let Some(own) = layer(module) else {
            problems.push(format!(
                "ravsock's module `{module}` is in no layer; add it to RAVSOCK_LAYERS and ARCHITECTURE.md"
            ));
            continue;
        };
        for other in used {
            if layer(other).is_none_or(|theirs| theirs <= own) {
                problems.push(format!("ravsock's `{module}` uses `{other}`, which is not below it"));
            }
        }
    }
    assert!(edges.contains_key("api") && edges.contains_key("db"), "found the modules");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// ravsock registers a route only by a `ravproto::routes` constant, so `routes::ALL` is every
/// route the server has, and ravsock's test that calls each one (without a token, with
/// another account's) cannot miss one.
#[test]
fn ravsock_registers_only_the_routes_of_ravproto() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates").join("ravsock").join("src"), &mut files);
    let mut problems = Vec::new();
    let mut registered = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for (at, _) in text.match_indices(".route(") {
            registered += 1;
            let argument = text[at + ".route(".len()..].trim_start();
            if !argument.starts_with("routes::") {
                let line = text[..at].lines().count();
                let shown = file.strip_prefix(&root).unwrap_or(file).display();
                problems.push(format!("{shown}:{line}: a route that is not a ravproto::routes constant"));
            }
        }
    }
    assert!(registered >= ravproto::routes::ALL.len(), "found the router ({registered} routes)");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
