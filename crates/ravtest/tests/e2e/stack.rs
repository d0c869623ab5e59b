//! A test stack: ravsock, providers and tokens, all in-process on loopback.

use ravproto::messages::Benchmark;
use ravpy::{ParticipateConfig, Summary};
use ravsock::auth::Role;
use ravsock::config::Config;
use ravsock::db::Db;
use std::path::{Path, PathBuf};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) struct Stack {
    pub(crate) url: String,
    /// What the stack's clients trust: the system's CAs on plain HTTP, the stack's own CA
    /// over TLS.
    pub(crate) trust: ravclient::Trust,
    /// The certificate and key ravsock serves over TLS, if it does.
    tls: Option<ravftp::server::FtpsFiles>,
    pub(crate) requester: String,
    pub(crate) other_requester: String,
    pub(crate) provider_token: String,
    pub(crate) database_url: String,
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<ravsock::Result<()>>>,
    /// The server's data directory (in `_dir`, or where a test put it).
    data: PathBuf,
    /// Whether graphs pay (`--accounting`).
    accounting: ravsock::config::Accounting,
    _dir: tempfile::TempDir,
}

pub(crate) struct Provider {
    stop: Option<oneshot::Sender<()>>,
    pub(crate) events: tokio::sync::mpsc::UnboundedReceiver<ravpy::ProviderEvent>,
    pub(crate) task: JoinHandle<Result<Summary, ravpy::Error>>,
}

impl Provider {
    /// Waits until the provider has joined.
    pub(crate) async fn joined(&mut self) {
        while let Some(event) = self.events.recv().await {
            if event == ravpy::ProviderEvent::Joined {
                return;
            }
        }
        panic!("provider stopped before joining");
    }

    /// Asks the provider to finish its work in hand and leave.
    pub(crate) async fn stop(mut self) -> Result<Summary, ravpy::Error> {
        self.stop_in_place().await
    }

    /// Stops the provider and keeps what it reported, to be read from `events`.
    pub(crate) async fn stop_in_place(&mut self) -> Result<Summary, ravpy::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("provider task")
    }
}

/// Encoded values above this go through ravftp in the test stack (small, so tests exercise it).
pub(crate) const INLINE_LIMIT: u64 = 64 << 10;

/// What one ravftp home may hold in the test stack (below the default; ravftp's own tests go
/// past a quota).
pub(crate) const HOME_QUOTA: u64 = 256 << 20;

pub(crate) fn config(data_dir: &Path, database_url: &str, deadline_base_ms: u64) -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        database_url: Some(database_url.to_string()),
        window: 16,
        max_attempts: 3,
        quarantine_after: 3,
        quarantine_secs: 600,
        deadline_base_ms,
        deadline_per_op_ms: 10,
        slots_per_provider: 2,
        ftp_bind: "127.0.0.1:0".parse().unwrap(),
        ftp_passive_from: 49152,
        ftp_passive_to: 65535,
        inline_limit: INLINE_LIMIT,
        ftp_home_quota: HOME_QUOTA,
        max_op_bytes: ravsock::validate::DEFAULT_MAX_OP_BYTES,
        result_retention_secs: ravsock::config::DEFAULT_RESULT_RETENTION_SECS,
        ftp_file_retention_secs: ravsock::config::DEFAULT_FTP_FILE_RETENTION_SECS,
        tls_cert: None,
        tls_key: None,
        accounting: ravsock::config::Accounting::Off,
        heartbeat_interval_ms: ravsock::config::DEFAULT_HEARTBEAT_INTERVAL_MS,
        heartbeat_timeout_ms: ravsock::config::DEFAULT_HEARTBEAT_TIMEOUT_MS,
    }
}

pub(crate) async fn serve(config: Config) -> (String, oneshot::Sender<()>, JoinHandle<ravsock::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if config.tls_cert.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(ravsock::run(config, listener, async move {
        let _ = stopped.await;
    }));
    (url, stop, server)
}

/// A bare HTTP client for the tests' own requests (reqwest has no crypto provider of its own).
pub(crate) fn http() -> reqwest::Client {
    ravclient::Trust::system().reqwest().expect("an HTTP client")
}

/// `config` served over TLS with `tls`'s files, if given.
fn tls_config(config: Config, tls: &Option<ravftp::server::FtpsFiles>) -> Config {
    Config {
        tls_cert: tls.as_ref().map(|files| files.cert.clone()),
        tls_key: tls.as_ref().map(|files| files.key.clone()),
        ..config
    }
}

impl Stack {
    pub(crate) async fn start(deadline_base_ms: u64) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        Stack::start_in(dir, data, deadline_base_ms).await
    }

    /// A stack whose server keeps its data (and its SQLite file) in `data`.
    pub(crate) async fn start_at(data: PathBuf, deadline_base_ms: u64) -> Stack {
        Stack::start_in(tempfile::tempdir().unwrap(), data, deadline_base_ms).await
    }

    /// A stack served over TLS with a certificate for 127.0.0.1 from a throwaway CA, which
    /// its clients trust (`ca` holds the CA's PEM).
    pub(crate) async fn start_tls(deadline_base_ms: u64, ca: &str, tls: ravftp::server::FtpsFiles) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let trust = ravclient::Trust::ca_pem(ca.as_bytes()).expect("the test CA");
        Stack::start_with(dir, data, deadline_base_ms, Some(tls), trust).await
    }

    async fn start_in(dir: tempfile::TempDir, data: PathBuf, deadline_base_ms: u64) -> Stack {
        Stack::start_with(dir, data, deadline_base_ms, None, ravclient::Trust::system()).await
    }

    /// A stack whose graphs pay their providers (`--accounting on`).
    pub(crate) async fn start_paid(deadline_base_ms: u64) -> Stack {
        let mut stack = Stack::start(deadline_base_ms).await;
        stack.accounting = ravsock::config::Accounting::On;
        stack.restart(deadline_base_ms).await;
        stack
    }

    /// The server's settings: the tests' defaults, this stack's TLS files and accounting.
    fn server_config(&self, deadline_base_ms: u64) -> Config {
        let config = Config { accounting: self.accounting, ..config(&self.data, &self.database_url, deadline_base_ms) };
        tls_config(config, &self.tls)
    }

    async fn start_with(
        dir: tempfile::TempDir,
        data: PathBuf,
        deadline_base_ms: u64,
        tls: Option<ravftp::server::FtpsFiles>,
        trust: ravclient::Trust,
    ) -> Stack {
        let database_url = ravsock::db::scratch_database_url(&data).await.unwrap();
        let db = Db::connect(&database_url).await.unwrap();
        let requester = db.create_account("alice", Role::Requester).await.unwrap();
        let other_requester = db.create_account("bob", Role::Requester).await.unwrap();
        let provider_token = db.create_account("worker", Role::Provider).await.unwrap();
        let mut stack = Stack {
            data,
            url: String::new(),
            trust,
            tls,
            requester,
            other_requester,
            provider_token,
            database_url,
            stop_server: None,
            server: None,
            accounting: ravsock::config::Accounting::Off,
            _dir: dir,
        };
        let (url, stop, server) = serve(stack.server_config(deadline_base_ms)).await;
        (stack.url, stack.stop_server, stack.server) = (url, Some(stop), Some(server));
        stack
    }

    /// Stops ravsock (as a crash would: nothing is flushed beyond committed transactions) and
    /// starts a new one on the same database and a new port.
    pub(crate) async fn restart(&mut self, deadline_base_ms: u64) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        let (url, stop, server) = serve(self.server_config(deadline_base_ms)).await;
        self.url = url;
        self.stop_server = Some(stop);
        self.server = Some(server);
    }

    /// The server's data directory (blob store, ftp homes).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    pub(crate) fn provider_with(&self, token: &str, speed: f64) -> Provider {
        self.provider_config(token, speed, None)
    }

    /// A provider that leaves after computing `subgraphs` subgraphs.
    pub(crate) fn provider_leaving_after(&self, speed: f64, subgraphs: u64) -> Provider {
        self.provider_config(&self.provider_token, speed, Some(subgraphs))
    }

    fn provider_config(&self, token: &str, speed: f64, max_subgraphs: Option<u64>) -> Provider {
        // As ravpy reports itself: ONNX models run when it is built with them.
        spawn_provider(self.participate_config(
            token,
            speed,
            max_subgraphs,
            cfg!(feature = "onnx"),
            None,
            self.trust.clone(),
        ))
    }

    /// A provider that trusts only `trust` (not the stack's CA, say).
    pub(crate) fn provider_trusting(&self, trust: ravclient::Trust) -> Provider {
        spawn_provider(self.participate_config(&self.provider_token, 1.0, None, cfg!(feature = "onnx"), None, trust))
    }

    /// A provider whose ops may take at most `max_memory` bytes each (`--max-memory`).
    pub(crate) fn provider_with_memory(&self, speed: f64, max_memory: u64) -> Provider {
        spawn_provider(self.participate_config(
            &self.provider_token,
            speed,
            None,
            cfg!(feature = "onnx"),
            Some(max_memory),
            self.trust.clone(),
        ))
    }

    /// A provider that says it cannot run ONNX models, whatever it was built with.
    #[cfg(feature = "onnx")]
    pub(crate) fn provider_without_onnx(&self, speed: f64) -> Provider {
        spawn_provider(self.participate_config(&self.provider_token, speed, None, false, None, self.trust.clone()))
    }

    /// What a provider of the account `token` is started with.
    fn participate_config(
        &self,
        token: &str,
        speed: f64,
        max_subgraphs: Option<u64>,
        onnx: bool,
        max_memory: Option<u64>,
        trust: ravclient::Trust,
    ) -> ParticipateConfig {
        ParticipateConfig {
            server: self.url.clone(),
            token: token.to_string(),
            trust,
            ftp_host: None,
            graph: None,
            benchmark: Some(Benchmark {
                ram_bytes: 8 << 30,
                cores: 2,
                gpu: false,
                speed_score: speed,
                onnx,
                memory_budget_bytes: None,
            }),
            events: None,
            max_subgraphs,
            groups: Vec::new(),
            slice_cap: ravproto::work::Limits::default(),
            engine: None,
            max_memory,
        }
    }

    /// A provider of the account `token` that chose `graph` alone.
    pub(crate) fn provider_choosing(&self, token: &str, graph: ravproto::GraphId) -> Provider {
        let onnx = cfg!(feature = "onnx");
        let config = ParticipateConfig {
            graph: Some(graph),
            ..self.participate_config(token, 1.0, None, onnx, None, self.trust.clone())
        };
        spawn_provider(config)
    }

    /// A provider that joins these compute groups.
    pub(crate) fn provider_in_groups(&self, groups: Vec<ravproto::jobs::ComputeGroup>) -> Provider {
        let config = ParticipateConfig {
            groups,
            ..self.participate_config(&self.provider_token, 1.0, None, false, None, self.trust.clone())
        };
        spawn_provider(config)
    }

    pub(crate) fn provider(&self, speed: f64) -> Provider {
        self.provider_with(&self.provider_token, speed)
    }

    pub(crate) async fn client(&self) -> ravop::Client {
        ravop::Client::connect_trusting(&self.url, &self.requester, &self.trust).await.expect("requester connects")
    }
}

/// Starts a provider with `config`, its events reported to the returned handle.
fn spawn_provider(config: ParticipateConfig) -> Provider {
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let config = ParticipateConfig { events: Some(events_tx), ..config };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(ravpy::participate(config, async move {
        let _ = stopped.await;
    }));
    Provider { stop: Some(stop), events, task }
}

/// A provider of the account `token` that joins and never answers; reports each assignment
/// it swallows.
pub(crate) async fn silent_provider(
    stack: &Stack,
    token: &str,
) -> (rust_socketio::asynchronous::Client, tokio::sync::mpsc::UnboundedReceiver<()>) {
    silent_on(stack, token, ravproto::provider::EVENT_ASSIGN).await
}

/// A provider of the account `token` that joins and never answers; reports each `event`
/// (assignments, or bundles of job slices) it swallows.
pub(crate) async fn silent_on(
    stack: &Stack,
    token: &str,
    event: &'static str,
) -> (rust_socketio::asynchronous::Client, tokio::sync::mpsc::UnboundedReceiver<()>) {
    use futures_util::FutureExt;
    use ravproto::provider::{EVENT_JOIN, JoinRequest, NAMESPACE, ProviderAuth};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (open_tx, mut open_rx) = tokio::sync::mpsc::unbounded_channel();
    let auth = ProviderAuth { token: token.to_string(), protocol_version: ravproto::PROTOCOL_VERSION };
    let client = rust_socketio::asynchronous::ClientBuilder::new(stack.url.clone())
        .namespace(NAMESPACE)
        .transport_type(rust_socketio::TransportType::Websocket)
        .auth(serde_json::to_value(auth).unwrap())
        .on("open", move |_, _| {
            let open_tx = open_tx.clone();
            async move {
                let _ = open_tx.send(());
            }
            .boxed()
        })
        .on(event, move |_, _| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(());
            }
            .boxed()
        })
        .connect()
        .await
        .unwrap();
    open_rx.recv().await.expect("namespace connected");
    let join = JoinRequest {
        benchmark: Benchmark {
            ram_bytes: 1 << 30,
            cores: 1,
            gpu: false,
            speed_score: 1e6,
            onnx: false,
            memory_budget_bytes: None,
        },
        graph: None,
        groups: vec![],
    };
    client.emit(EVENT_JOIN, serde_json::to_value(join).unwrap()).await.unwrap();
    (client, rx)
}

/// Runs small graphs until `provider` has computed one: then the server knows it (a join is
/// not acknowledged, so `joined` says only that it was sent). Returns how many it computed.
pub(crate) async fn known_to_the_server(client: &ravop::Client, provider: &mut Provider) -> u64 {
    let rounds = async {
        for round in 0.. {
            let graph = ravop::Graph::new(format!("warm-up {round}"));
            (&graph.t(vec![1.0]) + 1.0).persist("x");
            client.compute(&graph).await.expect("a warm-up runs");
            let mut computed = 0;
            while let Ok(event) = provider.events.try_recv() {
                computed += u64::from(matches!(event, ravpy::ProviderEvent::Computed { .. }));
            }
            if computed > 0 {
                return computed;
            }
        }
        unreachable!("the rounds go on until the provider computes one")
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), rounds).await.expect("the provider never got work")
}
