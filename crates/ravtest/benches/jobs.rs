//! The jobs benchmark: ravsock and two providers as processes on loopback, a requester mapping
//! a trivial work function (`examples/work/square.wat`, one f64 squared) over `JOB_SLICES`
//! (10,000) slices, end to end: from the job's submission to every result in slice order in
//! hand. Beside it, in the same run when `DASK_PYTHON` names a Python with `dask.distributed`,
//! the anchor: `scripts/bench_jobs_dask.py`, Dask's `client.map` of the same function over
//! the same inputs on a local cluster of 2 worker processes. Each is run `JOB_RUNS` (3) times,
//! alternating.
//!
//! Run with `bash scripts/bench_jobs.sh` (it builds the release binaries first and sets up
//! Dask in a virtual environment when it can).

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use ravop::Client;
use ravop::jobs::{WorkFunction, slice};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Children are killed when the benchmark ends, however it ends.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn token(ravsock: &Path, data_dir: &Path, name: &str, role: &str) -> String {
    let out = Command::new(ravsock)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["token", "create", "--name", name, "--role", role])
        .env("RUST_LOG", "error")
        .output()
        .expect("ravsock token create");
    assert!(out.status.success(), "token create failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Dask's tasks per second on the same map, from the anchor script.
fn dask(python: &str, slices: usize) -> Option<f64> {
    let out = Command::new(python)
        .arg(root().join("scripts/bench_jobs_dask.py"))
        .arg(slices.to_string())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|line| line.strip_prefix("tasks/s ")?.trim().parse().ok())
}

#[tokio::main]
async fn main() {
    let bins = std::env::var_os("RAVEN_BIN_DIR").map_or_else(|| root().join("target/release"), PathBuf::from);
    let (ravsock, ravpy) = (bins.join("ravsock"), bins.join("ravpy"));
    assert!(ravsock.exists() && ravpy.exists(), "build first: cargo build --release -p ravsock -p ravpy");
    let dir = tempfile::tempdir().unwrap();
    let requester = token(&ravsock, dir.path(), "bench", "requester");
    let providers =
        [token(&ravsock, dir.path(), "workers-1", "provider"), token(&ravsock, dir.path(), "workers-2", "provider")];
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut procs = Procs(vec![]);
    procs.0.push(
        Command::new(&ravsock)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--bind", &format!("127.0.0.1:{port}"), "--ftp-bind", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start ravsock"),
    );
    let client = loop {
        match Client::connect(&url, &requester).await {
            Ok(client) => break client,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    for provider in &providers {
        procs.0.push(
            Command::new(&ravpy)
                .args(["participate", "--server", &url, "--token", provider])
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .spawn()
                .expect("start ravpy"),
        );
    }
    let module = wat::parse_str(include_str!("../../../examples/work/square.wat")).expect("module");
    let work = || WorkFunction::wasm(module.clone(), "square");
    let slices = env_or("JOB_SLICES", 10_000);
    let inputs: Vec<Vec<u8>> = (0..slices).map(|i| slice::f64(i as f64)).collect();
    // Warm up: both providers joined and ran a job.
    let warm = client.compute_for(inputs[..100].to_vec(), work()).exec().await.expect("warm-up job");
    warm.wait().await.expect("warm-up results");
    let python = std::env::var("DASK_PYTHON").ok();
    println!(
        "jobs benchmark: ravsock + 2 providers (processes) on loopback, {} cores, {slices} slices of a trivial function{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if python.is_some() { ", beside Dask's client.map on 2 worker processes" } else { "" }
    );
    for run in 1..=env_or("JOB_RUNS", 3) {
        let started = Instant::now();
        let handle = client.compute_for(inputs.clone(), work()).exec().await.expect("job");
        let results = handle.wait().await.expect("results");
        let took = started.elapsed();
        assert_eq!(results.len(), slices);
        assert_eq!(slice::to_f64(results[slices - 1].as_ref().unwrap()).unwrap(), ((slices - 1) as f64).powi(2));
        let rate = slices as f64 / took.as_secs_f64();
        let anchor = python.as_deref().and_then(|python| dask(python, slices));
        match anchor {
            Some(dask) => println!(
                "run {run}: raven {rate:.0} slices/s ({:.3} s); dask {dask:.0} tasks/s; ratio {:.1}x",
                took.as_secs_f64(),
                rate / dask
            ),
            None => println!("run {run}: raven {rate:.0} slices/s ({:.3} s)", took.as_secs_f64()),
        }
    }
    // The sandbox alone, in this process: the floor of the per-slice cost.
    let started = Instant::now();
    let local = ravop::jobs::JobBuilder::local(inputs, work()).local_exec();
    assert_eq!(local.results.len(), slices);
    println!("local_exec of the same slices: {:.0} slices/s", slices as f64 / started.elapsed().as_secs_f64());
}
