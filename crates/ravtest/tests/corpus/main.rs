//! Every input committed under `fuzz/corpus` (the seeds, and each input a fuzzing run found a
//! crash with) replayed through its fuzz target's check, in the ordinary test build: a crash
//! once found and fixed stays fixed without a nightly toolchain or a sanitizer. The fuzzing
//! itself is `bash scripts/fuzz.sh` (README, "Fuzzing").

#[path = "../../../../fuzz/checks/checkpoint.rs"]
mod checkpoint;
#[path = "../../../../fuzz/checks/federated.rs"]
mod federated;
#[path = "../../../../fuzz/checks/op_json.rs"]
mod op_json;
#[path = "../../../../fuzz/checks/subscript.rs"]
mod subscript;
#[path = "../../../../fuzz/checks/tensor_frame.rs"]
mod tensor_frame;

use std::path::PathBuf;

/// Runs `check` on each file of `fuzz/corpus/<target>`, naming the file that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("the committed corpus").flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    for file in files {
        let data = std::fs::read(&file).expect("a readable input");
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its check", file.display());
    }
}

#[test]
fn tensor_frame_corpus() {
    replay("tensor_frame", tensor_frame::check);
}

#[test]
fn op_json_corpus() {
    replay("op_json", op_json::check);
}

#[test]
fn subscript_corpus() {
    replay("subscript", subscript::check);
}

#[test]
fn checkpoint_corpus() {
    replay("checkpoint", checkpoint::check);
}

#[test]
fn federated_corpus() {
    replay("federated", federated::check);
}
