//! The provider's self-benchmark: a timed matmul on the kernels it will run, plus RAM, cores
//! and GPU presence. No external speed test (the original ran speedtest.net on every start).

use ndarray::{ArrayD, IxDyn};
use ravexec::{Tensor, TensorValue, execute};
use ravproto::Operation;
use ravproto::messages::Benchmark;
use ravproto::ops::NoParams;
use std::time::Instant;

/// Measures this machine.
pub fn measure() -> Benchmark {
    let n = 256;
    let matrix = TensorValue::Tensor(Tensor::F32(ArrayD::from_elem(IxDyn(&[n, n]), 0.5)));
    let inputs = [matrix.clone(), matrix];
    let op = Operation::Matmul(NoParams {});
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let _ = execute(&op, &inputs);
        best = best.min(start.elapsed().as_secs_f64());
    }
    let speed_score = 2.0 * (n as f64).powi(3) / best / 1e9;
    Benchmark {
        ram_bytes: total_ram_bytes().unwrap_or(0),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        gpu: std::path::Path::new("/dev/nvidia0").exists(),
        speed_score,
        onnx: cfg!(feature = "onnx"),
        // Half of the RAM (`Benchmark::memory_budget`) unless `--max-memory` says otherwise.
        memory_budget_bytes: None,
    }
}

fn total_ram_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
