//! The worker file: a table of broken files, each refused with the key and line at fault,
//! and a good one read with its defaults, its paths resolved and its token never shown.

use super::config::{ConfigError, parse_text};
use std::path::Path;

/// The error for a TOML text, with RAVSOCK_TOKEN unset unless the text gives a token.
fn refused(text: &str) -> ConfigError {
    parse_text("worker.toml", text, false, Path::new("/etc/raven"), |_| None).expect_err("refused")
}

const ENTRY: &str = "\n[[participate]]\n";

#[test]
fn broken_files_are_refused_naming_the_key_and_the_line() {
    let token = "token = \"t\"\n";
    let cases: Vec<(String, &str, Option<usize>, &str)> = vec![
        // (text, key, line, words of the message)
        (format!("{token}{ENTRY}graphs = \"seven\"\n"), "participate[0].graphs", Some(4), "invalid type"),
        (format!("{token}sever = \"http://a\"{ENTRY}"), "sever", Some(2), "unknown field `sever`"),
        (format!("{token}{ENTRY}max_memory = \"8X\"\n"), "participate[0].max_memory", Some(4), "unknown unit"),
        (format!("server = \"http://a\"{ENTRY}"), "token", None, "no token"),
        (format!("{token}server = \"localhost:9999\"{ENTRY}"), "server", Some(2), "scheme is `localhost`"),
        (format!("{token}server = \"http//a b\"{ENTRY}"), "server", Some(2), "is not a URL"),
        (
            format!("{token}{ENTRY}name = \"a\"\n{ENTRY}name = \"a\"\n"),
            "participate[1].name",
            Some(7),
            "already used by participate[0]",
        ),
        (
            format!(
                "{token}\n[[federated]]\ngraph = 3\nfile = \"a.csv\"\n\n[[federated]]\ngraph = 3\nfile = \"b.csv\"\n"
            ),
            "federated[1].graph",
            Some(8),
            "contributes once",
        ),
        (format!("{token}\n[[federated]]\nfile = \"a.csv\"\n"), "federated[0]", Some(3), "missing field `graph`"),
        (format!("{token}\n[retry]\nfirst_delay = \"soon\"{ENTRY}"), "retry.first_delay", Some(4), "not a duration"),
        (format!("{token}\n[retry]\nfirst_delay = \"0s\"{ENTRY}"), "retry.first_delay", Some(4), "more than zero"),
        (format!("{token}{ENTRY}retry = {{ jitter = 1.5 }}\n"), "participate[0].retry.jitter", Some(4), "fraction"),
        (format!("{token}{ENTRY}then_any = true\n"), "participate[0].then_any", Some(4), "needs `graphs`"),
        (format!("{token}{ENTRY}graphs = [4, 4]\n"), "participate[0].graphs", Some(4), "listed twice"),
        (format!("{token}token_env = \"X\"{ENTRY}"), "token", Some(1), "one way"),
        (token.to_string(), "participate", None, "no entries"),
        (format!("{token}{ENTRY}graphs = [1,\n"), "", None, "TOML"),
    ];
    for (text, key, line, words) in cases {
        let error = refused(&text);
        let shown = error.to_string();
        if key.is_empty() {
            // A syntax error: the line, no key.
            assert!(error.line.is_some(), "{text:?}: {shown}");
            continue;
        }
        assert_eq!(error.key.as_deref(), Some(key), "{text:?}: {shown}");
        assert_eq!(error.line, line, "{text:?}: {shown}");
        assert!(shown.contains(words), "{text:?}: {shown}");
        assert!(shown.starts_with("worker.toml"), "{shown}");
        if let Some(line) = line {
            assert!(shown.contains(&format!("line {line}, `{key}`")), "{shown}");
        }
    }
}

#[test]
fn a_json_file_gets_the_same_checks_with_lines_where_serde_json_knows_them() {
    let text = "{\n  \"token\": \"t\",\n  \"participate\": [\n    {\"graphs\": [1], \"speed\": 3}\n  ]\n}\n";
    let error = parse_text("worker.json", text, true, Path::new("."), |_| None).expect_err("refused");
    assert_eq!(error.key.as_deref(), Some("participate[0].speed"), "{error}");
    assert_eq!(error.line, Some(4), "{error}");
    assert!(error.message.contains("unknown field `speed`"), "{error}");
    let ok = "{\"token_env\": \"MY_TOKEN\", \"participate\": [{}]}";
    let (config, token) =
        parse_text("worker.json", ok, true, Path::new("."), |name| (name == "MY_TOKEN").then(|| "s3cret".into()))
            .expect("read");
    assert_eq!((config.participate.len(), token.0.as_str()), (1, "s3cret"));
}

#[test]
fn a_good_file_gets_defaults_resolved_paths_and_a_redacted_token() {
    let text = r#"
server = "https://ravsock.example:9999"
token = "s3cret-token"
log_dir = "logs"

[retry]
max_delay = "2m"

[[participate]]
name = "gpu-box"
graphs = [7, 9]
then_any = true
max_memory = "8G"
retry = { failed_after = 10 }

[[federated]]
graph = 3
file = "data/clinic.csv"
"#;
    let (config, token) = parse_text("w.toml", text, false, Path::new("/etc/raven"), |_| None).expect("read");
    assert_eq!(token.0, "s3cret-token");
    assert_eq!(format!("{token:?}"), "<redacted>");
    assert_eq!(config.federated[0].file, Path::new("/etc/raven/data/clinic.csv"));
    assert_eq!(config.log_dir.as_deref(), Some(Path::new("/etc/raven/logs")));
    assert_eq!(config.participate[0].max_memory.map(|m| m.0), Some(8 << 30));
    let loaded = super::config::Loaded { path: "/etc/raven/w.toml".into(), config, token };
    let entries = loaded.entries();
    assert_eq!(entries.iter().map(|e| e.name().to_string()).collect::<Vec<_>>(), ["gpu-box", "federated-1"]);
    let retry = entries[0].retry();
    assert_eq!((retry.failed_after, retry.max_delay.0.as_secs(), retry.first_delay.0.as_secs()), (10, 120, 1));
    assert_eq!(loaded.status_file(), Path::new("/etc/raven/logs/ravpy-status.json"));
    let shown = super::describe(&loaded);
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("token = \"<redacted>\""), "{shown}");
    assert!(shown.contains("gpu-box (participate): graphs 7, then 9, then any graph"), "{shown}");
}

#[test]
fn the_sample_worker_file_reads() {
    let text = include_str!("../../../../examples/worker.toml");
    let env = |name: &str| (name == "RAVSOCK_TOKEN").then(|| "t".to_string());
    let (config, _) = parse_text("examples/worker.toml", text, false, Path::new("examples"), env).expect("valid");
    assert_eq!(config.participate.len(), 1);
    assert_eq!(config.retry, super::config::RetryPolicy::default(), "the sample shows the defaults");
}

#[test]
fn a_participate_entry_joins_groups_from_the_file_and_the_environment_and_shows_no_secret() {
    let text = r#"
token = "t"

[[participate]]
groups = ["lab:file-secret"]
groups_env = "LAB_GROUPS"
engine = "wasmi"
slice_fuel = 1000
"#;
    let env = |name: &str| (name == "LAB_GROUPS").then(|| "gpu:env-secret, cpu:other-secret".to_string());
    let (config, token) = parse_text("w.toml", text, false, Path::new("."), env).expect("read");
    let entry = &config.participate[0];
    let groups: Vec<(&str, &str)> = entry.groups.iter().map(|g| (g.0.key.as_str(), g.0.secret.as_str())).collect();
    assert_eq!(groups, [("lab", "file-secret"), ("gpu", "env-secret"), ("cpu", "other-secret")]);
    assert_eq!(entry.engine.map(|e| e.0), Some(ravwasm::EngineKind::Wasmi));
    assert_eq!(entry.slice_fuel, Some(1000));
    let loaded = super::config::Loaded { path: "w.toml".into(), config, token };
    let shown = super::describe(&loaded);
    assert!(["file-secret", "env-secret", "other-secret"].iter().all(|s| !shown.contains(s)), "{shown}");
    assert!(["lab:<redacted>", "gpu:<redacted>", "cpu:<redacted>"].iter().all(|g| shown.contains(g)), "{shown}");

    // A missing variable, a malformed group and an unknown engine are located errors that
    // never quote a secret.
    let missing = parse_text("w.toml", text, false, Path::new("."), |_| None).unwrap_err();
    assert_eq!((missing.key.as_deref(), missing.line), (Some("participate[0].groups_env"), Some(6)));
    let bad_env = |name: &str| (name == "LAB_GROUPS").then(|| "just-a-secret".to_string());
    let error = parse_text("w.toml", text, false, Path::new("."), bad_env).unwrap_err();
    assert!(!error.to_string().contains("just-a-secret"), "{error}");
    let unquoted = text.replace("lab:file-secret", "file-secret");
    let error = parse_text("w.toml", &unquoted, false, Path::new("."), env).unwrap_err();
    assert_eq!(error.key.as_deref(), Some("participate[0].groups[0]"), "{error}");
    assert!(!error.to_string().contains("file-secret"), "{error}");
    let error = parse_text("w.toml", &text.replace("wasmi", "v8"), false, Path::new("."), env).unwrap_err();
    assert!(error.to_string().contains("no WebAssembly engine called `v8`"), "{error}");
}
