//! `kill -9` of the real ravsock process in the middle of a graph: the restarted server resumes
//! it from the database, the provider reconnects, the requester's wait rides out the gap, and
//! the results equal the local ones. Through a relay that kills it after a request has gone
//! through: ravftp transfers, and op chunks whose answers were lost, are sent again.

use ravop::{Client, Graph, LocalExecutor};
use ravproto::messages::Benchmark;
use ravproto::status::GraphStatus;
use ravsock::auth::Role;
use ravsock::db::Db;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A ravsock process, killed with SIGKILL when dropped.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `ravsock` binary serving `database_url` on 127.0.0.1:`port` (ravftp on any port), with
/// `RUST_LOG` at `log`, to be given its output and started.
pub(crate) fn ravsock(data_dir: &Path, database_url: &str, port: u16, log: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ravsock"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--database-url", database_url])
        .args(["--bind", &format!("127.0.0.1:{port}"), "--ftp-bind", "127.0.0.1:0"])
        .env("RUST_LOG", log);
    command
}

fn start(data_dir: &Path, database_url: &str, port: u16) -> Server {
    let child = ravsock(data_dir, database_url, port, "warn")
        .args(["--window", "2"])
        .stdout(Stdio::null())
        .spawn()
        .expect("ravsock starts");
    Server(child)
}

/// An in-process provider of 1 GiB and one core; it leaves when the sender is used or dropped.
pub(crate) fn spawn_provider(
    server: String,
    token: String,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<ravpy::Summary, ravpy::Error>>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let provider = tokio::spawn(ravpy::participate(
        ravpy::ParticipateConfig {
            server,
            token,
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
        },
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, provider)
}

/// What a test of the ravsock binary starts from: a temp dir holding a scratch database
/// (PostgreSQL when `RAVEN_TEST_POSTGRES_URL` is set) with a requester and a provider, and a
/// free port for the server ([`restart_port`]).
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) database_url: String,
    pub(crate) requester: String,
    pub(crate) provider: String,
    pub(crate) port: u16,
}

pub(crate) async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let database_url = ravsock::db::scratch_database_url(dir.path()).await.unwrap();
    let db = Db::connect(&database_url).await.unwrap();
    let requester = db.create_account("alice", Role::Requester).await.unwrap();
    let provider = db.create_account("worker", Role::Provider).await.unwrap();
    db.close().await;
    Fixture { dir, database_url, requester, provider, port: restart_port() }
}

/// A free port for a server that the test kills and starts again on it, taken below the
/// kernel's ephemeral range: while the server is down, no outgoing connection (of this test
/// or of another running beside it) can be given the port as its own address, and a client
/// reconnecting to it cannot connect to itself. A port from `bind(0)` is in that range, and
/// CI once saw a restart refused with "address already in use".
pub(crate) fn restart_port() -> u16 {
    const FIRST: u32 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral.saturating_sub(FIRST);
    // Tests run as processes side by side: each starts probing somewhere else.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let seed = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
    (0..span)
        .filter_map(|i| u16::try_from(FIRST + seed.wrapping_add(i) % span).ok())
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .unwrap_or_else(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
}

pub(crate) async fn connect(url: &str, token: &str) -> Client {
    // The process needs a moment to bind; connecting is the readiness check.
    for _ in 0..400 {
        if let Ok(client) = Client::connect(url, token).await {
            return client;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("ravsock did not come up at {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_resumes_the_graph_and_loses_nothing() {
    let Fixture { dir, database_url, requester, provider: provider_token, port } = fixture().await;
    let url = format!("http://127.0.0.1:{port}");
    let server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;

    let (stop, provider) = spawn_provider(url.clone(), provider_token);

    // A chain of 1,200 ops in windows of 2: 600 round trips, long enough to kill in between.
    let graph = Graph::new("chain");
    let mut x = graph.t(vec![0.5, -0.25]);
    for i in 0..1_200 {
        x = if i % 2 == 0 { &x * 1.001 + 0.01 } else { (&x - 0.005).abs() };
    }
    x.persist("end");
    let id = client.submit(&graph).await.unwrap();
    client.execute(id).await.unwrap();
    // SIGKILL (no shutdown path runs) as soon as a tenth is computed, and a new process on the
    // same address: the requester's wait rides out the gap and follows the resumed graph.
    let mut server = Some(server);
    let mut at_kill = None;
    let mut after_restart = Vec::new();
    let waited = client
        .wait(id, |progress| match at_kill {
            None if progress.percent >= 10.0 => {
                at_kill = Some(progress.percent);
                drop(server.take());
                server = Some(start(dir.path(), &database_url, port));
            }
            None => {}
            Some(_) => after_restart.push((progress.status, progress.percent)),
        })
        .await
        .expect("the wait outlives the killed server and the resumed graph completes");
    assert_eq!(waited.status, GraphStatus::Computed);
    let at_kill = at_kill.expect("killed mid-graph");
    assert!(
        after_restart.first().is_some_and(|&(status, percent)| status == GraphStatus::Computing && percent >= at_kill),
        "resumed from the {at_kill}% computed before the kill, not restarted: {after_restart:?}"
    );
    let end = client.fetch(id, "end").await.unwrap();
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&end, local.get("end").unwrap(), "same value as computed locally");

    // A request whose connection is refused never arrived, so even a submission is sent again
    // until the server is back.
    drop(server.take());
    // The client may still hold a kept-alive connection to the killed process; a submission
    // sent on it is cut off after it may have arrived, and rightly not sent again. Reads with
    // no window drop such connections until one finds the port closed.
    for _ in 0..8 {
        match client.clone().reconnect_for(std::time::Duration::ZERO).progress(id).await {
            Err(ravop::Error::Transport(message)) if message.contains("refused") => break,
            _ => {}
        }
    }
    let small = Graph::new("after the restart");
    (small.t(vec![1.0, 2.0]) * 3.0).persist("y");
    let submitting = tokio::spawn({
        let (client, small) = (client.clone(), small.clone());
        async move { client.submit(&small).await }
    });
    let _server = start(dir.path(), &database_url, port);
    let submitted = submitting.await.unwrap().expect("submitted once the server is back");
    client.execute(submitted).await.unwrap();
    client.wait(submitted, |_| {}).await.unwrap();
    let y = client.fetch(submitted, "y").await.unwrap();
    assert_eq!(y.as_tensor().unwrap().to_f64_array().iter().copied().collect::<Vec<_>>(), vec![3.0, 6.0]);
    assert_eq!(client.list_graphs().await.unwrap().len(), 2, "the retried submission created one graph");

    // A server that stays away fails the request once the window has passed, saying so.
    drop(_server);
    let gone = client.clone().reconnect_for(std::time::Duration::from_millis(300)).progress(id).await;
    assert!(matches!(&gone, Err(ravop::Error::Transport(message)) if message.contains("no answer for")), "{gone:?}");
    let _ = stop.send(());
    provider.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_started_before_the_server_waits_for_it_and_computes() {
    let Fixture { dir, database_url, requester, provider: provider_token, port } = fixture().await;
    let url = format!("http://127.0.0.1:{port}");
    // The provider's first try meets a listener that hangs up at once (a server going away);
    // later ones are refused until ravsock listens.
    let early = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (stop, mut provider) = spawn_provider(url.clone(), provider_token);
    drop(early.accept().await.unwrap());
    drop(early);
    let _server = start(dir.path(), &database_url, port);
    let client = connect(&url, &requester).await;
    let graph = Graph::new("after the provider");
    (graph.t(vec![1.0, 2.0]) * 3.0).persist("y");
    let id = tokio::select! {
        id = client.run(&graph, |_| {}) => id.expect("the waiting provider computes the graph"),
        ended = &mut provider => panic!("the provider gave up before the server was up: {ended:?}"),
    };
    let y = client.fetch(id, "y").await.unwrap();
    assert_eq!(y.as_tensor().unwrap().to_f64_array().iter().copied().collect::<Vec<_>>(), vec![3.0, 6.0]);
    let _ = stop.send(());
    assert_eq!(provider.await.unwrap().unwrap().subgraphs, 1);
}

/// The ravsock process of a test, which a [`Relay`] may replace.
type Shared = std::sync::Arc<std::sync::Mutex<Option<Server>>>;

/// A TCP relay in front of ravsock's HTTP port. Once a request containing the next of its
/// triggers has gone through, it kills ravsock (SIGKILL) and starts a new one on the same port
/// before it passes the answer on: the requester acts on an answer from a server that is gone,
/// with a ravftp session or port that died with it.
struct Relay {
    port: u16,
    fired: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    async fn start(upstream: u16, triggers: Vec<&'static str>, restart: impl Fn() + Send + Sync + 'static) -> Relay {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let fired = Arc::new(AtomicUsize::new(0));
        let triggers = Arc::new(Mutex::new(std::collections::VecDeque::from(triggers)));
        let restart = Arc::new(restart);
        let counter = fired.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // With the server down, the connection closes at once: the client sees the
                // request cut off, as a read must be ready for.
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let (mut client_in, mut client_out) = client.into_split();
                let (mut server_in, mut server_out) = server.into_split();
                let armed = Arc::new(AtomicBool::new(false));
                let (triggers, armed_up) = (triggers.clone(), armed.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 << 10];
                    while let Ok(n @ 1..) = client_in.read(&mut buffer).await {
                        let request = String::from_utf8_lossy(&buffer[..n]);
                        {
                            let mut triggers = triggers.lock().unwrap();
                            if triggers.front().is_some_and(|trigger| request.contains(trigger)) {
                                triggers.pop_front();
                                armed_up.store(true, Ordering::SeqCst);
                            }
                        }
                        if server_out.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                let (restart, counter) = (restart.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 << 10];
                    while let Ok(n @ 1..) = server_in.read(&mut buffer).await {
                        if armed.swap(false, Ordering::SeqCst) {
                            restart();
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        if client_out.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Relay { port, fired }
    }

    fn fired(&self) -> usize {
        self.fired.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// ravsock started on `port`, behind a [`Relay`] that replaces it with a new process after
/// each of `triggers`; the relay, and the process of the moment (killed when dropped).
async fn restarting_relay(
    data_dir: &Path,
    database_url: &str,
    port: u16,
    triggers: Vec<&'static str>,
) -> (Relay, Shared) {
    let server: Shared = std::sync::Arc::new(std::sync::Mutex::new(Some(start(data_dir, database_url, port))));
    let relay = Relay::start(port, triggers, {
        let (server, data_dir, database_url) = (server.clone(), data_dir.to_path_buf(), database_url.to_string());
        move || {
            let mut server = server.lock().unwrap();
            drop(server.take());
            *server = Some(start(&data_dir, &database_url, port));
        }
    })
    .await;
    (relay, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ravftp_transfers_are_tried_again_when_the_server_dies_under_them() {
    let Fixture { dir, database_url, requester, provider: provider_token, port } = fixture().await;
    // First the upload's credentials (the ravftp port they name dies before the client logs
    // in), then the download's file (the logged-in session dies before the file is read).
    let (relay, _server) =
        restarting_relay(dir.path(), &database_url, port, vec!["/v1/ftp/credentials", "/file HTTP"]).await;
    let client = connect(&format!("http://127.0.0.1:{}", relay.port), &requester).await;
    let (stop, provider) = spawn_provider(format!("http://127.0.0.1:{port}"), provider_token);

    // 2 MiB in and out: past the 1 MiB inline limit both ways.
    let graph = Graph::new("big through ravftp");
    let big = graph.t((0..1 << 18).map(|i| f64::from(i) * 0.5).collect::<Vec<_>>());
    (&big * 2.0 + 1.0).persist("y");
    let id = client.run(&graph, |_| {}).await.expect("the upload rides out the killed server");
    assert_eq!(relay.fired(), 1, "the server was killed during the upload");
    let y = client.fetch(id, "y").await.expect("the download rides out the killed server");
    assert_eq!(relay.fired(), 2, "the server was killed during the download");
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&y, local.get("y").unwrap(), "same value as computed locally");
    let _ = stop.send(());
    provider.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_whose_answers_die_with_the_server_is_sent_again_and_runs() {
    let Fixture { dir, database_url, requester, provider: provider_token, port } = fixture().await;
    // The first chunk is stored and the server killed before its answer leaves; then the same
    // for the last chunk, which also starts the graph.
    let (relay, _server) =
        restarting_relay(dir.path(), &database_url, port, vec!["/ops HTTP", "/ops?execute=true"]).await;
    let client = connect(&format!("http://127.0.0.1:{}", relay.port), &requester).await;
    let (stop, provider) = spawn_provider(format!("http://127.0.0.1:{port}"), provider_token);

    // Past one chunk (ravop::CHUNK_OPS): two upload requests.
    let graph = Graph::new("two chunks");
    let mut x = graph.t(vec![0.5, -0.25]);
    for _ in 0..ravop::CHUNK_OPS {
        x = &x * 1.001 + 0.01;
    }
    x.persist("end");
    let id = client.run(&graph, |_| {}).await.expect("the upload rides out both killed servers");
    assert_eq!(relay.fired(), 2, "the server was killed after each chunk");
    let end = client.fetch(id, "end").await.unwrap();
    let local = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(&end, local.get("end").unwrap(), "same value as computed locally");
    assert_eq!(client.list_graphs().await.unwrap().len(), 1, "the chunks sent again made no second graph");
    let _ = stop.send(());
    provider.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_finishes_a_job_after_its_restart_with_every_result_once() {
    use ravop::jobs::{JobEvent, WorkFunction};
    let Fixture { dir, database_url, requester, provider: provider_token, port } = fixture().await;
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Some(start(dir.path(), &database_url, port));
    let client = connect(&url, &requester).await;
    let (stop, provider) = spawn_provider(url.clone(), provider_token);
    // `count` spins n rounds: about a millisecond a slice on wasmtime, 5 on wasmi.
    let module = wat::parse_str(include_str!("../../../../examples/work/square.wat")).unwrap();
    let slices: Vec<Vec<u8>> = (0..300u64).map(|i| (1_000_000 + i).to_le_bytes().to_vec()).collect();
    let handle =
        client.compute_for(slices.clone(), WorkFunction::wasm(module.clone(), "count")).exec().await.expect("accepted");
    // SIGKILL once some results are in, and a new process on the same address: the events'
    // long poll rides out the gap, and each slice is heard of once.
    // The same events pushed over /requester, read beside the long poll: the connection
    // reconnects to the new process and follows the job again from where it had read.
    let mut pushed = handle.subscribe().await.expect("subscribed");
    let pushed = tokio::spawn(async move {
        let mut heard = std::collections::BTreeMap::<u64, u32>::new();
        while let Some(event) = pushed.next().await.expect("pushed events outlive the killed server") {
            if let JobEvent::Result { slice, .. } | JobEvent::Error { slice, .. } = event {
                *heard.entry(slice).or_default() += 1;
            }
        }
        heard
    });
    let mut events = handle.events();
    let mut heard = std::collections::BTreeMap::<u64, u32>::new();
    let mut killed_at = None;
    while let Some(event) = events.next().await.expect("events outlive the killed server") {
        if let JobEvent::Result { slice, .. } | JobEvent::Error { slice, .. } = event {
            *heard.entry(slice).or_default() += 1;
            if killed_at.is_none() && heard.len() >= 30 {
                killed_at = Some(heard.len());
                drop(server.take());
                server = Some(start(dir.path(), &database_url, port));
            }
        }
    }
    let killed_at = killed_at.expect("killed mid-job");
    assert!(killed_at < 300, "the kill came before the end");
    assert_eq!(heard.len(), 300, "every slice heard of");
    assert!(heard.values().all(|&n| n == 1), "once each");
    assert_eq!(pushed.await.unwrap(), heard, "pushed too: every slice once");
    let grid = handle.wait().await.unwrap();
    let local = ravop::jobs::JobBuilder::local(slices, WorkFunction::wasm(module, "count")).local_exec().results;
    assert_eq!(grid, local, "the same outcomes as in process");
    let _ = stop.send(());
    provider.await.unwrap().unwrap();
    drop(server);
}
