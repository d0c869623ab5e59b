//! The grid benchmark: ravsock and two ravpy providers as real processes on loopback, and a
//! requester driving them with the ravop client.
//!
//! Reports (P1) 100,000 independent scalar ops, ops/s; (P2) a chain of 1,000 dependent ops,
//! ops/s; (P3) the median round trip of a single-op graph, ms; (P5) a 256 MiB tensor there
//! and back, MB/s; and the resident memory of ravsock and of an idle provider.
//!
//! Run with `bash scripts/bench_grid.sh` (it builds the release binaries first). Sizes can be
//! cut for a quick look: `P1_OPS`, `P2_OPS`, `P3_RUNS`, `P5_MIB`. With `RAVSOCK_ACCOUNTING=on`
//! ravsock pays for the work through its ledger (the requester is credited first), to compare
//! with a run without. With `P1_REPLICAS=n` the P1 graph asks for `verify: replicas(n)` (each
//! provider has an account of its own, so two can agree). With `GRID_WATCH=1` the dashboard is
//! open in Chromium the whole time (`dash/tests/watch.mjs`, logged in as an admin: P1's graph
//! page, then the graphs page) and `GET /metrics` is scraped every second, to compare with a
//! run without them (needs `npm ci` in `dash/`).

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use ravop::ops::ReduceParams;
use ravop::{Client, Graph};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn bin_dir() -> PathBuf {
    std::env::var_os("RAVEN_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release"))
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

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN);
    kib / 1024.0
}

fn token(ravsock: &Path, data_dir: &Path, name: &str, role: &str) -> String {
    let out = Command::new(ravsock)
        .args(["--data-dir"])
        .arg(data_dir)
        .args(["token", "create", "--name", name, "--role", role])
        .env("RUST_LOG", "error")
        .output()
        .expect("ravsock token create");
    assert!(out.status.success(), "token create failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11..13).map_or(f64::NAN, |t| t.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks / 100.0
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The dashboard open in Chromium, and `/metrics` scraped every second, while the benchmark runs.
struct Watch {
    browser: ChildStdin,
    scraper: tokio::task::JoinHandle<()>,
    /// Scrapes answered, and refused or failed.
    scrapes: std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]>,
}

impl Watch {
    fn start(procs: &mut Procs, url: &str, admin: &str) -> Watch {
        let dash = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dash");
        let mut child = Command::new("node")
            .arg(dash.join("tests/watch.mjs"))
            .current_dir(&dash)
            .env("DASH_URL", url)
            .env("DASH_TOKEN", admin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node dash/tests/watch.mjs (npm ci in dash/ first)");
        let browser = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        procs.0.push(child);
        assert!(
            lines.by_ref().map_while(Result::ok).any(|line| line == "WATCHING"),
            "the dashboard did not open (see the watcher's errors above)"
        );
        // The watcher's later lines are read so that its pipe never fills.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        let scrapes =
            std::sync::Arc::new([std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)]);
        let (count, metrics, bearer) = (scrapes.clone(), format!("{url}/metrics"), admin.to_string());
        let scraper = tokio::spawn(async move {
            let http = ravclient::Trust::system().reqwest().expect("an HTTP client");
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let body = http.get(&metrics).bearer_auth(&bearer).send().await.and_then(|r| r.error_for_status());
                let answered = match body {
                    Ok(response) => response.text().await.is_ok(),
                    Err(_) => false,
                };
                count[usize::from(!answered)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        Watch { browser, scraper, scrapes }
    }

    fn show(&mut self, line: &str) {
        writeln!(self.browser, "{line}").expect("the dashboard's watcher is running");
    }

    /// Closes the browser; answers the scrapes answered and failed.
    fn end(mut self) -> (usize, usize) {
        self.scraper.abort();
        let _ = writeln!(self.browser, "end");
        let [answered, failed] = &*self.scrapes;
        (answered.load(std::sync::atomic::Ordering::Relaxed), failed.load(std::sync::atomic::Ordering::Relaxed))
    }
}

async fn timed_run(client: &Client, graph: &Graph) -> (Duration, ravproto::GraphId) {
    let start = Instant::now();
    let id = client.run(graph, |_| {}).await.expect("graph runs");
    (start.elapsed(), id)
}

#[tokio::main]
async fn main() {
    let bins = bin_dir();
    let (ravsock, ravpy) = (bins.join("ravsock"), bins.join("ravpy"));
    assert!(
        ravsock.exists() && ravpy.exists(),
        "build first: cargo build --release -p ravsock -p ravpy ({})",
        bins.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let requester = token(&ravsock, dir.path(), "bench", "requester");
    // An account per provider: replicas must come from distinct accounts.
    let providers =
        [token(&ravsock, dir.path(), "workers-1", "provider"), token(&ravsock, dir.path(), "workers-2", "provider")];
    let accounting = std::env::var("RAVSOCK_ACCOUNTING").is_ok_and(|on| on == "on");
    let watching = std::env::var("GRID_WATCH").is_ok_and(|on| on == "1");
    let admin = token(&ravsock, dir.path(), "watch", "admin");
    if accounting {
        let out = Command::new(&ravsock)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["account", "credit", "--name", "bench", "--amount", "1000000000000"])
            .env("RUST_LOG", "error")
            .output()
            .expect("ravsock account credit");
        assert!(out.status.success(), "credit failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let port = free_port();
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
    // Warm up: both providers joined and computed something.
    let warm = Graph::new("warm-up");
    let one = warm.scalar(1.0);
    for _ in 0..2_000 {
        let _ = &one + 1.0;
    }
    timed_run(&client, &warm).await;
    let idle_provider = rss_mib(procs.0[2].id());
    let mut watch = watching.then(|| Watch::start(&mut procs, &url, &admin));
    println!(
        "grid benchmark: ravsock + 2 providers (processes) on loopback, {} cores, accounting {}, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if accounting { "on" } else { "off" },
        if watching { "dashboard open and /metrics scraped every second" } else { "no dashboard" }
    );

    // P1: independent scalar ops.
    let p1 = env_or("P1_OPS", 100_000);
    let replicas = env_or("P1_REPLICAS", 0) as u32;
    let verify = match replicas {
        0 => ravproto::verify::Verify::None,
        n => ravproto::verify::Verify::Replicas(n),
    };
    let requirements = ravproto::messages::Requirements { verify, ..Default::default() };
    let graph =
        Graph::with_meta(ravproto::messages::GraphMeta { name: "p1".into(), requirements, ..Default::default() });
    let (a, b) = (graph.scalar(1.5), graph.scalar(2.5));
    for i in 0..p1 {
        let sum = &a + &b;
        if i == 0 {
            sum.persist("first");
        }
    }
    let cpu_before = cpu_s(procs.0[0].id());
    let start = Instant::now();
    let id = client.submit(&graph).await.unwrap();
    let uploaded = start.elapsed();
    if let Some(watch) = &mut watch {
        watch.show(&format!("graph {}", id.0));
    }
    client.execute(id).await.unwrap();
    client.wait(id, |_| {}).await.unwrap();
    let took = start.elapsed();
    let p1_cpu = cpu_s(procs.0[0].id()) - cpu_before;
    let first = client.fetch(id, "first").await.unwrap();
    assert_eq!(first.as_tensor().unwrap().to_f64_array().sum(), 4.0);
    let computing = took - uploaded;
    println!(
        "P1 {p1} independent scalar ops (verify {verify:?}): {:.2} s, {:.0} ops/s end to end (upload {:.2} s; execute to done {:.2} s, {:.0} ops/s)",
        took.as_secs_f64(),
        p1 as f64 / took.as_secs_f64(),
        uploaded.as_secs_f64(),
        computing.as_secs_f64(),
        p1 as f64 / computing.as_secs_f64()
    );
    println!("P1 ravsock CPU: {p1_cpu:.2} s");

    if let Some(watch) = &mut watch {
        watch.show("page graphs");
    }

    // P2: a chain of dependent ops.
    let p2 = env_or("P2_OPS", 1_000);
    let graph = Graph::new("p2");
    let mut x = graph.scalar(0.0);
    for _ in 0..p2 {
        x = &x + 1.0;
    }
    x.persist("end");
    let (took, id) = timed_run(&client, &graph).await;
    let end = client.fetch(id, "end").await.unwrap().as_tensor().unwrap().to_f64_array().sum();
    assert_eq!(end, p2 as f64);
    println!(
        "P2 chain of {p2} dependent ops: {:.3} s, {:.0} ops/s",
        took.as_secs_f64(),
        p2 as f64 / took.as_secs_f64()
    );

    // P3: single-op round trips. `Client::compute` sends the graph, waits for it and gets its
    // results in one request; the three-request path (`run`, which submits and waits, then
    // `fetch`) is timed beside it.
    let runs = env_or("P3_RUNS", 50);
    let mut times = Vec::with_capacity(runs);
    let mut long_way = Vec::with_capacity(runs);
    for i in 0..runs {
        let graph = Graph::new("p3");
        (graph.scalar(i as f64) * 2.0).persist("y");
        let start = Instant::now();
        let (_, results) = client.compute(&graph).await.unwrap();
        times.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(results.array::<f64>("y").unwrap().sum(), 2.0 * i as f64);
        let graph = Graph::new("p3");
        (graph.scalar(i as f64) * 3.0).persist("y");
        let start = Instant::now();
        let id = client.run(&graph, |_| {}).await.unwrap();
        let y = client.fetch(id, "y").await.unwrap();
        long_way.push(start.elapsed().as_secs_f64() * 1e3);
        assert_eq!(y.as_tensor().unwrap().to_f64_array().sum(), 3.0 * i as f64);
    }
    long_way.sort_by(f64::total_cmp);
    println!("P3 run + fetch (two requests): median {:.2} ms", long_way[runs / 2]);
    times.sort_by(f64::total_cmp);
    println!("P3 single-op graph round trip: median {:.2} ms, min {:.2} ms ({runs} runs)", times[runs / 2], times[0]);

    // P5: a big tensor there and back (upload, to a provider, back, download).
    let mib = env_or("P5_MIB", 256);
    let n = mib * (1 << 20) / 8;
    let graph = Graph::new("p5");
    let big = graph.t(ndarray::Array1::from_shape_fn(n, |i| i as f64).into_dyn());
    (&big + 1.0).persist("back");
    big.sum(ReduceParams::all()).persist("check");
    let start = Instant::now();
    let id = client.run(&graph, |_| {}).await.unwrap();
    let ran = start.elapsed().as_secs_f64();
    let back = client.fetch(id, "back").await.unwrap();
    let took = start.elapsed().as_secs_f64();
    println!("P5 phases: build + upload + compute {ran:.2} s, fetch {:.2} s", took - ran);
    let back = back.as_tensor().unwrap().to_f64_array();
    assert_eq!(back.len(), n);
    assert_eq!(back[n - 1], n as f64);
    println!(
        "P5 {mib} MiB tensor there and back: {took:.2} s, {:.0} MB/s ({mib} MiB / round trip)",
        (mib << 20) as f64 / 1e6 / took
    );

    if let Some(watch) = watch {
        let (answered, failed) = watch.end();
        println!("dashboard: /metrics scraped {answered} times ({failed} failed)");
    }
    println!("RSS ravsock: {:.1} MiB after the runs", rss_mib(procs.0[0].id()));
    println!(
        "RSS provider: {idle_provider:.1} MiB idle after joining, {:.1} MiB after the runs",
        rss_mib(procs.0[2].id())
    );
}
