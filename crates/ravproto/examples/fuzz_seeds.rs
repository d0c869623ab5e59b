//! Writes the seed corpus of the fuzz targets (`fuzz/corpus/<target>/`): op chunks from the
//! golden op fixtures, their tensors in the binary encoding, frames, checkpoints, fitted
//! models, subscripts and federated cases. libFuzzer grows the corpus from these; they are
//! committed, and this regenerates them: `cargo run -p ravproto --example fuzz_seeds`.

use ravproto::checkpoint::Checkpoint;
use ravproto::frame::Frame;
use ravproto::messages::{OpChunkRequest, OpRecord, OpRef};
use ravproto::model::FittedModel;
use ravproto::provider::{AssignHeader, ResultHeader};
use ravproto::{Operation, Value};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One case of `crates/ravexec/tests/it/fixtures/golden.json`.
#[derive(serde::Deserialize)]
struct Golden {
    operation: Operation,
    inputs: Vec<Value>,
}

/// Golden cases kept per operator: enough to reach every kernel, few enough to run fast.
const PER_OPERATOR: usize = 2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?;
    let cases: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(root.join("crates/ravexec/tests/it/fixtures/golden.json"))?)?;
    // Some cases are refusals by design (params the catalogue rejects): those are skipped.
    let golden: Vec<Golden> = cases.into_iter().filter_map(|case| serde_json::from_value(case).ok()).collect();
    let corpus = root.join("fuzz/corpus");
    let mut seeds = Seeds::default();

    let mut per_operator: BTreeMap<String, usize> = BTreeMap::new();
    for case in &golden {
        let seen = per_operator.entry(case.operation.kind().short_name().to_string()).or_default();
        if *seen == PER_OPERATOR {
            continue;
        }
        *seen += 1;
        for input in &case.inputs {
            seeds.add("tensor_frame", input.encode_binary());
        }
        if let Some(chunk) = chunk_of(case) {
            seeds.add("op_json", serde_json::to_vec(&chunk)?);
        }
    }
    let values: Vec<Value> = golden.iter().take(3).flat_map(|case| case.inputs.clone()).collect();
    seeds.add("tensor_frame", Value::List(values.clone()).encode_binary());
    let result: ResultHeader =
        serde_json::from_value(json!({"assignment": 7, "outputs": (0..values.len()).collect::<Vec<_>>()}))?;
    seeds.add("tensor_frame", Frame { header: result, values: values.clone() }.encode());
    let assign: AssignHeader = serde_json::from_value(json!({
        "assignment": 7, "graph": 2,
        "ops": [{"id": 11, "operation": {"operator": "sum", "params": {}}, "inputs": [10]}],
        "inputs": [10], "outputs": [11]
    }))?;
    seeds.add("tensor_frame", Frame { header: assign, values: values[..1].to_vec() }.encode());

    for text in ["[1:, ::2, -1]", "[[0, 2]]", "..., None", "[[True, False], 1:3]", "0", "[::-1, newaxis]", "[]"] {
        seeds.add("subscript", text.as_bytes().to_vec());
    }

    let tensor = |shape: &[usize]| json!({"dtype": "f64", "shape": shape, "data": vec![0.5; shape.iter().product()]});
    let checkpoint: Checkpoint = serde_json::from_value(json!({
        "version": 3, "seeds": 2,
        "layers": [{
            "id": 5, "kind": "forward_pass_dense",
            "params": [
                {"name": "w", "value": tensor(&[2, 3]),
                 "optimizer": {"spec": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "step": 3,
                               "buffers": [["momentum_buffer", tensor(&[2, 3])]]}},
                {"name": "b", "value": tensor(&[3])}
            ],
            "batchnorm": {"momentum": 0.1, "eps": 1e-5, "running_mean": tensor(&[3]), "running_var": tensor(&[3])}
        }],
        "layer_of": [[5, 5], [9, 5]]
    }))?;
    seeds.add("checkpoint", checkpoint.encode());
    seeds.add("checkpoint", Checkpoint::empty().encode());
    for model in [
        json!({"model": "linear_regression", "coef": tensor(&[3]), "intercept": 1.5}),
        json!({"model": "knn_classifier", "k": 2, "x": tensor(&[4, 3]), "y": tensor(&[4])}),
    ] {
        seeds.add("checkpoint", serde_json::from_value::<FittedModel>(model)?.encode());
    }

    let federated = json!({
        "rules": {"columns": {"age": {"min": 18.0, "max": 80.0}, "bmi": {}}, "min_clients": 1,
                  "max_clients": 3, "privacy": "plain"},
        "columns": [{"column": "age", "squares": true}, {"column": "bmi", "squares": false}],
        "submissions": [
            {"plain": [{"count": 2, "sum": 6000000, "sum_sq": 18_500_000_000_000_u64}, {"count": 1, "sum": 25000000}]},
            {"plain": [{"count": 1, "sum": 4000000, "sum_sq": 16_000_000_000_000_u64}, {"count": 0, "sum": 0}]},
            {"encrypted": "AAAA"}
        ]
    });
    seeds.add("federated", serde_json::to_vec(&federated)?);

    seeds.write(&corpus)?;

    // A dictionary for op_json: every operator name and the common keys, as JSON strings.
    let mut words: Vec<String> = ravproto::OpKind::ALL
        .iter()
        .flat_map(|kind| [kind.short_name(), kind.wire_name()])
        .chain(["operator", "params", "local_id", "inputs", "local", "server", "value", "tensor", "dtype", "shape"])
        .chain(["data", "persist", "axis", "axes", "keepdims", "reps", "repeats", "indices", "f32", "f64", "i64"])
        .chain(["u8", "bool", "seed", "start", "stop", "step", "num", "k", "n", "ord", "kind", "list"])
        .map(|word| format!("{:?}", format!("\"{word}\"")))
        .collect();
    words.sort();
    words.dedup();
    std::fs::write(root.join("fuzz/op_json.dict"), words.join("\n") + "\n")?;
    Ok(())
}

/// The golden case as one chunk: a `lin` op per tensor input, then the op itself.
fn chunk_of(case: &Golden) -> Option<OpChunkRequest> {
    let mut ops = Vec::new();
    for (local_id, input) in (0..).zip(&case.inputs) {
        let Value::Tensor(tensor) = input else { return None };
        let lin = json!({"operator": "lin", "params": {"dtype": tensor.dtype(), "shape": tensor.shape()}});
        ops.push(OpRecord {
            local_id,
            operation: serde_json::from_value(lin).ok()?,
            inputs: Vec::new(),
            persist: None,
            value: Some(input.clone()),
            value_file: None,
        });
    }
    let inputs = (0..case.inputs.len() as u64).map(OpRef::Local).collect();
    ops.push(OpRecord {
        local_id: case.inputs.len() as u64,
        operation: case.operation.clone(),
        inputs,
        persist: Some("out".into()),
        value: None,
        value_file: None,
    });
    Some(OpChunkRequest { ops })
}

/// Seeds by target, written as `seed-NNNN` files (libFuzzer names what it adds by hash).
#[derive(Default)]
struct Seeds(BTreeMap<&'static str, Vec<Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, bytes: Vec<u8>) {
        self.0.entry(target).or_default().push(bytes);
    }

    #[allow(clippy::print_stdout, reason = "a command-line tool telling what it wrote")]
    fn write(&self, corpus: &Path) -> Result<(), Box<dyn std::error::Error>> {
        for (target, seeds) in &self.0 {
            let dir: PathBuf = corpus.join(target);
            std::fs::create_dir_all(&dir)?;
            for (n, bytes) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{n:04}")), bytes)?;
            }
            println!("{}: {} seeds", dir.display(), seeds.len());
        }
        Ok(())
    }
}
