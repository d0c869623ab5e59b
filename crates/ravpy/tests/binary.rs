//! The `ravpy` binary as a person meets it. `ravpy run` and `ravpy status`: a broken worker
//! file is refused with a sentence naming the file, line and key, and a non-zero exit;
//! `--check` prints the effective settings with the token redacted; `status` says when no node
//! runs; a node runs from its file against a real ravsock, logs and stops on Ctrl-C. And a
//! provider process stopped with SIGSTOP loses its work at the heartbeat timeout, and gets it
//! back after SIGCONT when nobody else took it. `participate --graph N` exits 0 when graph N ends.
//! A provider process killed with SIGKILL in the middle of a job: its slices go to the next
//! provider and every slice is heard of once, with the outcomes `local_exec` gives.

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

/// A ravsock in this process on a free port.
struct Server {
    url: String,
    requester: String,
    provider: String,
    admin: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// [`Server`] with the default heartbeat.
async fn server(dir: &std::path::Path) -> (String, String, String, tokio::sync::oneshot::Sender<()>) {
    let server =
        server_with(dir, ravsock::config::DEFAULT_HEARTBEAT_INTERVAL_MS, ravsock::config::DEFAULT_HEARTBEAT_TIMEOUT_MS)
            .await;
    (server.url, server.requester, server.provider, server._stop)
}

async fn server_with(dir: &std::path::Path, heartbeat_interval_ms: u64, heartbeat_timeout_ms: u64) -> Server {
    use ravsock::auth::Role;
    let database_url = ravsock::db::scratch_database_url(dir).await.unwrap();
    let db = ravsock::db::Db::connect(&database_url).await.unwrap();
    let requester = db.create_account("node-requester", Role::Requester).await.unwrap();
    let provider = db.create_account("node-provider", Role::Provider).await.unwrap();
    let admin = db.create_account("node-admin", Role::Admin).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = ravsock::config::Config {
        bind: listener.local_addr().unwrap(),
        data_dir: dir.to_path_buf(),
        database_url: Some(database_url),
        window: 16,
        max_attempts: 3,
        quarantine_after: 3,
        quarantine_secs: 600,
        deadline_base_ms: 30_000,
        deadline_per_op_ms: 10,
        slots_per_provider: 2,
        ftp_bind: "127.0.0.1:0".parse().unwrap(),
        ftp_passive_from: 49152,
        ftp_passive_to: 65535,
        inline_limit: ravsock::config::DEFAULT_INLINE_LIMIT,
        ftp_home_quota: ravftp::DEFAULT_HOME_QUOTA,
        max_op_bytes: ravsock::validate::DEFAULT_MAX_OP_BYTES,
        result_retention_secs: ravsock::config::DEFAULT_RESULT_RETENTION_SECS,
        ftp_file_retention_secs: ravsock::config::DEFAULT_FTP_FILE_RETENTION_SECS,
        tls_cert: None,
        tls_key: None,
        accounting: ravsock::config::Accounting::Off,
        heartbeat_interval_ms,
        heartbeat_timeout_ms,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(ravsock::run(config, listener, async move {
        let _ = stopped.await;
    }));
    Server { url, requester, provider, admin, _stop: stop }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_runs_from_its_file_reports_its_state_logs_to_its_directory_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let (url, requester, provider, _stop) = server(dir.path()).await;
    let node_dir = dir.path().join("node");
    std::fs::create_dir(&node_dir).unwrap();
    std::fs::write(node_dir.join("token"), format!("{provider}\n")).unwrap();
    let file =
        format!("server = \"{url}\"\ntoken_file = \"token\"\nlog_dir = \"logs\"\n[[participate]]\nname = \"main\"\n");
    std::fs::write(node_dir.join("worker.toml"), file).unwrap();
    let mut node = Command::new(env!("CARGO_BIN_EXE_ravpy"))
        .args(["run", "--config", "worker.toml"])
        .current_dir(&node_dir)
        .env_remove("RAVSOCK_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ravpy run starts");

    // `ravpy status` (from another directory: the file's paths are its own) until it joined.
    let config = node_dir.join("worker.toml");
    let config = config.to_str().unwrap();
    let mut joined = None;
    for _ in 0..600 {
        let out = ravpy(&["status", "--config", config], dir.path());
        if out.status.success() {
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            if status["entries"][0]["state"] == "running" {
                joined = Some(status);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let joined = joined.expect("the node joined and said so");
    assert_eq!(joined["running"], true);
    assert_eq!(joined["entries"][0]["name"], "main");

    // It computes.
    let client = ravop::Client::connect(&url, &requester).await.unwrap();
    let graph = ravop::Graph::new("for the node");
    (graph.t(vec![1.0, 2.0]) * 4.0).persist("y");
    let (_, results) = client.compute(&graph).await.expect("computed by the node");
    assert_eq!(results.array::<f64>("y").unwrap().iter().copied().collect::<Vec<_>>(), vec![4.0, 8.0]);

    // Ctrl-C: it stops cleanly, and says so in its status and its log file.
    let interrupted = Command::new("kill").args(["-INT", &node.id().to_string()]).status().unwrap();
    assert!(interrupted.success());
    let exit = tokio::task::spawn_blocking(move || node.wait()).await.unwrap().unwrap();
    assert!(exit.success(), "{exit:?}");
    let out = ravpy(&["status", "--config", config], dir.path());
    assert_eq!(out.status.code(), Some(3));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["stopped"], "stopped on request");
    assert_eq!(status["entries"][0]["subgraphs"], 1);
    let logs: Vec<_> = std::fs::read_dir(node_dir.join("logs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(logs.len(), 2, "the day's log file and the status file: {logs:?}");
    let log = logs.iter().find(|p| p.extension().is_some_and(|e| e == "log")).expect("a .log file");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains("worker node starting") && text.contains("worker node stopped"), "{text}");
    assert!(!text.contains(&provider), "the token is never logged");
}

/// A sample of `GET /metrics`.
async fn metric(server: &Server, name: &str) -> f64 {
    let http = ravclient::Trust::system().reqwest().unwrap();
    let text = http
        .get(format!("{}{}", server.url, ravproto::routes::metrics()))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or(f64::NAN)
}

/// Waits (up to a minute) until a metric has a value.
async fn until_metric(server: &Server, name: &str, value: f64) {
    for _ in 0..1_200 {
        if metric(server, name).await == value {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{name} never reached {value}");
}

fn signal(pid: u32, name: &str) {
    assert!(Command::new("kill").args([name, &pid.to_string()]).status().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_provider_loses_its_work_at_the_heartbeat_and_gets_it_back_when_continued() {
    let dir = tempfile::tempdir().unwrap();
    // Heartbeats every 200 ms, 300 ms late at most: a stopped provider is dropped within half
    // a second (the default is 10 s + 10 s).
    let server = server_with(dir.path(), 200, 300).await;
    let mut provider = Command::new(env!("CARGO_BIN_EXE_ravpy"))
        .args(["participate", "--server", &server.url])
        .env("RAVSOCK_TOKEN", &server.provider)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ravpy starts");
    until_metric(&server, "ravsock_providers_connected", 1.0).await;
    let client = ravop::Client::connect(&server.url, &server.requester).await.unwrap();
    // Known to the scheduler: it computed a first graph.
    let warm = ravop::Graph::new("warm-up");
    (warm.t(vec![1.0]) + 1.0).persist("y");
    client.compute(&warm).await.expect("the provider computes");

    signal(provider.id(), "-STOP");
    let graph = ravop::Graph::new("while it is stopped");
    (graph.t(vec![1.0, 2.0]) * 4.0).persist("y");
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    // Its connection goes at the heartbeat timeout, and the subgraph it was handed with it:
    // ready again, for whoever joins.
    until_metric(&server, "ravsock_providers_connected", 0.0).await;
    until_metric(&server, "ravsock_ready_subgraphs", 1.0).await;
    assert_eq!(metric(&server, "ravsock_assigned_subgraphs").await, 0.0);

    // Continued: it connects and joins again, and nobody took its work meanwhile, so it gets
    // it back and computes it.
    signal(provider.id(), "-CONT");
    let done = client.wait(id, |_| {}).await.expect("computed after SIGCONT");
    assert_eq!(done.status, ravproto::status::GraphStatus::Computed);
    let y = client.fetch(id, "y").await.unwrap();
    assert_eq!(y.as_tensor().unwrap().to_f64_array().iter().copied().collect::<Vec<_>>(), vec![4.0, 8.0]);
    assert_eq!(metric(&server, "ravsock_providers_connected").await, 1.0);
    let _ = provider.kill();
    let _ = provider.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participate_in_one_graph_exits_cleanly_when_the_graph_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (url, requester, provider, _stop) = server(dir.path()).await;
    let client = ravop::Client::connect(&url, &requester).await.unwrap();
    let graph = ravop::Graph::new("the one graph");
    (graph.t(vec![1.0, 2.0]) + 1.0).persist("y");
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    let process = Command::new(env!("CARGO_BIN_EXE_ravpy"))
        .args(["participate", "--server", &url, "--graph", &id.0.to_string()])
        .env("RAVSOCK_TOKEN", &provider)
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ravpy starts");
    let done = client.wait(id, |_| {}).await.expect("computed by the provider");
    assert_eq!(done.status, ravproto::status::GraphStatus::Computed);
    // The graph ended, so the provider's work is done: exit status 0, and a sentence saying why.
    let out = tokio::task::spawn_blocking(move || process.wait_with_output()).await.unwrap().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{:?}: {stdout}{stderr}", out.status);
    assert!(stdout.contains("the graph ended"), "{stdout}");
}

/// A process killed with SIGKILL, and reaped, when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ravpy participate` against `url`, its output discarded.
fn provider_process(url: &str, token: &str, dir: &std::path::Path) -> Killed {
    let child = Command::new(env!("CARGO_BIN_EXE_ravpy"))
        .args(["participate", "--server", url])
        .env("RAVSOCK_TOKEN", token)
        .env_remove("RUST_LOG")
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ravpy starts");
    Killed(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_killed_mid_job_has_its_slices_reassigned_and_every_result_arrives_once() {
    use ravop::jobs::{JobBuilder, JobEvent, WorkFunction};
    let dir = tempfile::tempdir().unwrap();
    let (url, requester, provider, _stop) = server(dir.path()).await;
    let client = ravop::Client::connect(&url, &requester).await.unwrap();
    // `count` spins n rounds: a millisecond or more a slice, so bundles are still running
    // when the first outcomes are in.
    let module = wat::parse_str(include_str!("../../../examples/work/square.wat")).unwrap();
    let work = || WorkFunction::wasm(module.clone(), "count");
    let n = 200u64;
    let slices: Vec<Vec<u8>> = (0..n).map(|i| (2_000_000 + i).to_le_bytes().to_vec()).collect();
    let mut first = Some(provider_process(&url, &provider, dir.path()));
    let handle = client.compute_for(slices.clone(), work()).exec().await.expect("accepted");
    let mut events = handle.events();
    let mut heard = std::collections::BTreeMap::<u64, u32>::new();
    let mut killed_at = None;
    let mut second = None;
    while let Some(event) = events.next().await.expect("events") {
        if let JobEvent::Result { slice, .. } | JobEvent::Error { slice, .. } = event {
            *heard.entry(slice).or_default() += 1;
        }
        // At its first outcomes the provider holds more bundles: SIGKILL, and another starts.
        if killed_at.is_none() && !heard.is_empty() {
            drop(first.take());
            killed_at = Some(heard.len() as u64);
            second = Some(provider_process(&url, &provider, dir.path()));
        }
    }
    let killed_at = killed_at.expect("killed mid-job");
    assert!(killed_at < n, "the kill came before the end ({killed_at} of {n} heard)");
    assert_eq!(heard.len() as u64, n, "every slice heard of");
    assert!(heard.values().all(|&times| times == 1), "once each");
    let grid = handle.wait().await.expect("complete");
    assert_eq!(grid, JobBuilder::local(slices, work()).local_exec().results, "the outcomes local_exec gives");
    let status = handle.status().await.unwrap();
    assert_eq!((status.counts.computed, status.counts.failed), (n, 0));
    drop(second);
}
