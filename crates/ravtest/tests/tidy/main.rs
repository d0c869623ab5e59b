//! Tidy: architecture rules that prose alone would not keep (after rust-analyzer's tidy).
//!
//! - Internal crate dependencies follow the allow-list of ARCHITECTURE.md: clients and the
//!   server meet only in `ravproto`.
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
    ("ravop", &["ravproto", "ravexec", "ravftp", "ravfed"]),
    ("ravftp", &["ravproto"]),
    ("ravfed", &["ravproto"]),
    ("ravsock", &["ravproto", "ravftp", "ravfed"]),
    ("ravpy", &["ravproto", "ravexec", "ravftp", "ravfed"]),
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
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
