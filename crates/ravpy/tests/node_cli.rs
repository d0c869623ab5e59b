//! The `ravpy run` and `ravpy status` commands as a person meets them: a broken worker file
//! is refused with a sentence naming the file, line and key, and a non-zero exit; `--check`
//! prints the effective settings with the token redacted; `status` says when no node runs.

use std::process::{Command, Output};

fn ravpy(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ravpy"))
        .args(args)
        .current_dir(dir)
        .env_remove("RAVSOCK_TOKEN")
        .env_remove("RUST_LOG")
        .output()
        .expect("ravpy runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_broken_file_is_refused_with_its_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "token = \"t\"\n\n[[participate]]\ngraphs = \"seven\"\n").unwrap();
    let out = ravpy(&["run", "--config", "bad.toml"], dir.path());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.toml, line 4, `participate[0].graphs`: invalid type"), "{stderr}");
    // A sentence for a person, not a debug dump.
    assert!(!stderr.contains("ConfigError"), "{stderr}");
}

#[test]
fn check_prints_the_effective_settings_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = "server = \"http://127.0.0.1:9\"\ntoken = \"s3cret\"\n[[participate]]\ngraphs = [4]\nthen_any = true\n";
    std::fs::write(dir.path().join("w.toml"), file).unwrap();
    let out = ravpy(&["run", "--config", "w.toml", "--check"], dir.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("s3cret") && !text(&out.stderr).contains("s3cret"), "{stdout}");
    assert!(stdout.contains("token = \"<redacted>\""), "{stdout}");
    assert!(stdout.contains("max_delay = \"1m\""), "the defaults are shown: {stdout}");
    assert!(stdout.contains("participate-1 (participate): graphs 4, then any graph"), "{stdout}");

    // No node has run with this file: status says so, with exit status 1 (an error).
    let out = ravpy(&["status", "--config", "w.toml"], dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is a worker node running with this configuration?"), "{}", text(&out.stderr));

    // A node that ran and stopped: its last state, and exit status 3.
    let stopped = r#"{"pid": 1, "config": "w.toml", "server": "http://127.0.0.1:9", "started_at": 1,
        "updated_at": 2, "stopped": "stopped on request", "entries": []}"#;
    std::fs::write(dir.path().join("ravpy-status.json"), stopped).unwrap();
    let out = ravpy(&["status", "--config", "w.toml"], dir.path());
    assert_eq!(out.status.code(), Some(3));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["running"], false);
    assert_eq!(status["stopped"], "stopped on request");
}
