//! The swarm benchmark: one ravsock process and a volunteer network of simulated providers,
//! each a real `ravpy::participate` (its own socket.io connection, the real kernels) in this
//! one process.
//!
//! Reports: the time for 1,000 providers to connect; ravsock's resident memory with them
//! connected; the CPU ravsock spends while they are connected and idle (heartbeats), as a
//! share of one core; P1 (100,000 independent scalar ops) with 2 providers and with 1,000,
//! and their ratio; and after a SIGKILL of ravsock and a new process on the same port, the time
//! until every provider is connected again, with a graph submitted before the kill completing.
//!
//! Run with `bash scripts/bench_swarm.sh` (it builds the release binaries first). Sizes:
//! `SWARM_PROVIDERS` (1,000), `P1_OPS` (100,000), `IDLE_SECS` (30).

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use ravop::{Client, Graph};
use ravproto::messages::Benchmark;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn bin_dir() -> PathBuf {
    std::env::var_os("RAVEN_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release"))
}

/// The ravsock process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proc_status(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
}

fn rss_mib(pid: u32) -> f64 {
    proc_status(pid, "VmRSS:") / 1024.0
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
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

fn start(ravsock: &Path, data_dir: &Path, port: u16) -> Server {
    Server(
        Command::new(ravsock)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--bind", &format!("127.0.0.1:{port}"), "--ftp-bind", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start ravsock"),
    )
}

/// Simulated providers: `participate` futures in this process, stopped together.
struct Swarm {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Result<ravpy::Summary, ravpy::Error>>>,
}

impl Swarm {
    fn start(url: &str, token: &str, n: usize) -> Swarm {
        let (stop, stopping) = watch::channel(false);
        let tasks = (0..n)
            .map(|_| {
                let mut stopping = stopping.clone();
                let config = ravpy::ParticipateConfig {
                    server: url.to_string(),
                    token: token.to_string(),
                    trust: Default::default(),
                    ftp_host: None,
                    graph: None,
                    benchmark: Some(Benchmark {
                        ram_bytes: 1 << 30,
                        cores: 1,
                        gpu: false,
                        speed_score: 1.0,
                        onnx: false,
                        memory_budget_bytes: None,
                    }),
                    events: None,
                    max_subgraphs: None,
                    groups: Vec::new(),
                    slice_cap: ravproto::work::Limits::default(),
                    engine: None,
                    max_memory: None,
                };
                tokio::spawn(ravpy::participate(config, async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                }))
            })
            .collect();
        Swarm { stop, tasks }
    }

    async fn stop(self) -> u64 {
        let _ = self.stop.send(true);
        let mut subgraphs = 0;
        for task in self.tasks {
            subgraphs += task.await.expect("provider task").expect("provider leaves cleanly").subgraphs;
        }
        subgraphs
    }
}

/// `ravsock_providers_connected` from `GET /metrics`, or `None` while ravsock cannot answer.
async fn connected(http: &reqwest::Client, url: &str, admin: &str) -> Option<u64> {
    let answer = http.get(format!("{url}{}", ravproto::routes::metrics())).bearer_auth(admin).send().await.ok()?;
    let text = answer.text().await.ok()?;
    text.lines().find_map(|line| line.strip_prefix("ravsock_providers_connected ")).and_then(|n| n.trim().parse().ok())
}

/// Waits until `n` providers are connected; the time it took.
async fn until_connected(http: &reqwest::Client, url: &str, admin: &str, n: u64) -> Duration {
    let start = Instant::now();
    loop {
        if connected(http, url, admin).await == Some(n) {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(600), "{n} providers never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// P1: `ops` independent scalar ops; ops/s from submit to computed, and the CPU seconds
/// ravsock (`pid`) spent meanwhile.
async fn p1(client: &Client, ops: usize, pid: u32) -> (f64, f64) {
    let cpu = cpu_seconds(pid);
    let graph = Graph::new("p1");
    let (a, b) = (graph.scalar(1.5), graph.scalar(2.5));
    for i in 0..ops {
        let sum = &a + &b;
        if i == 0 {
            sum.persist("first");
        }
    }
    let start = Instant::now();
    let id = client.run(&graph, |_| {}).await.expect("P1 runs");
    let took = start.elapsed();
    let first = client.fetch(id, "first").await.unwrap();
    assert_eq!(first.as_tensor().unwrap().to_f64_array().sum(), 4.0);
    (ops as f64 / took.as_secs_f64(), cpu_seconds(pid) - cpu)
}

#[tokio::main]
async fn main() {
    let bins = bin_dir();
    let ravsock = bins.join("ravsock");
    assert!(ravsock.exists(), "build first: cargo build --release -p ravsock ({})", bins.display());
    let (n, ops, idle) = (env_or("SWARM_PROVIDERS", 1_000), env_or("P1_OPS", 100_000), env_or("IDLE_SECS", 30));
    let dir = tempfile::tempdir().unwrap();
    let requester = token(&ravsock, dir.path(), "bench", "requester");
    let provider = token(&ravsock, dir.path(), "volunteers", "provider");
    let admin = token(&ravsock, dir.path(), "operator", "admin");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start(&ravsock, dir.path(), port);
    // A bare HTTP client (reqwest has no crypto provider of its own).
    let http = ravclient::Trust::system().reqwest().expect("an HTTP client");
    let client = loop {
        match Client::connect(&url, &requester).await {
            Ok(client) => break client,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    println!(
        "swarm benchmark: ravsock (a process) and {n} simulated providers (this process) on loopback, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let idle_rss = rss_mib(server.0.id());

    let pair = Swarm::start(&url, &provider, 2);
    until_connected(&http, &url, &admin, 2).await;
    let (with_two, cpu_two) = p1(&client, ops, server.0.id()).await;
    pair.stop().await;
    until_connected(&http, &url, &admin, 0).await;

    let swarm = Swarm::start(&url, &provider, n);
    let joined = until_connected(&http, &url, &admin, n as u64).await;
    // A moment for the joins behind the connections.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_mib(server.0.id());
    println!(
        "{n} providers connected in {:.2} s; ravsock RSS {rss:.1} MiB ({idle_rss:.1} MiB with none)",
        joined.as_secs_f64()
    );
    let before = cpu_seconds(server.0.id());
    tokio::time::sleep(Duration::from_secs(idle as u64)).await;
    let heartbeat = (cpu_seconds(server.0.id()) - before) / idle as f64;
    println!("idle with {n} connected: ravsock used {:.2}% of one core over {idle} s", heartbeat * 100.0);

    let (with_many, cpu_many) = p1(&client, ops, server.0.id()).await;
    println!(
        "P1 {ops} independent ops: {with_two:.0} ops/s with 2 providers, {with_many:.0} ops/s with {n}: {:.2}x \
         (ravsock CPU {cpu_two:.2} s and {cpu_many:.2} s)",
        with_many / with_two
    );

    // A graph in flight, then SIGKILL and a new process on the same port.
    let graph = Graph::new("across the restart");
    let mut x = graph.scalar(0.0);
    for _ in 0..2_000 {
        x = &x + 1.0;
    }
    x.persist("end");
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    drop(server);
    let killed = Instant::now();
    server = start(&ravsock, dir.path(), port);
    let back = until_connected(&http, &url, &admin, n as u64).await;
    let back = back.max(killed.elapsed());
    client.wait(id, |_| {}).await.expect("the graph submitted before the kill completes");
    let end = client.fetch(id, "end").await.unwrap().as_tensor().unwrap().to_f64_array().sum();
    assert_eq!(end, 2_000.0, "the graph computed across the restart");
    println!(
        "after SIGKILL and a restart: all {n} providers connected again {:.2} s after the kill; the graph in flight completed",
        back.as_secs_f64()
    );
    println!("ravsock RSS {:.1} MiB after the runs", rss_mib(server.0.id()));
    let subgraphs = swarm.stop().await;
    println!("the {n} providers computed {subgraphs} subgraphs in all");
}
