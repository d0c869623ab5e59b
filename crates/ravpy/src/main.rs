//! The `ravpy` binary: `ravpy participate --server URL --token T [--graph ID]` (with a live
//! status line on the terminal), `ravpy list-graphs`, `ravpy federated --graph ID --file
//! data.csv` (contribute a CSV file's statistics; the file never leaves this machine),
//! `ravpy list-jobs`, `ravpy benchmark`, and `ravpy run --config worker.toml` (a worker node: many entries,
//! each supervised, from one file; `--check` validates it) with `ravpy status --config
//! worker.toml` (its state as JSON).
//! Settings come from flags, the environment (`RAVSOCK_URL`, `RAVSOCK_TOKEN`,
//! `RAVSOCK_FTP_HOST`) or a `.env` file (the working directory's or a parent's); the original
//! RDF's names (`RAVENVERSE_URL`, `TOKEN`, `RAVENVERSE_FTP_URL`, `RAVENVERSE_FTP_HOST`) are
//! read too, and today's names win where both are set (see the `ravenv` crate).
//! An `https://` server is checked against the system's CAs or `--ca-cert`'s
//! (`RAVSOCK_CA_CERT`); plain `http://` to another machine needs `--insecure`.

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
use ravproto::GraphId;
use ravpy::{ParticipateConfig, participate};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ravpy", version, about = "Raven provider: compute subgraphs for a ravsock server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Whom to trust: shared by every command that talks to ravsock.
#[derive(clap::Args)]
struct TrustArgs {
    /// A PEM file with the CA that signed ravsock's certificate (a private CA); without it
    /// the system's CAs are trusted.
    #[arg(long, env = "RAVSOCK_CA_CERT")]
    ca_cert: Option<std::path::PathBuf>,
    /// Allow plain http:// to a machine other than this one: the token then crosses the
    /// network in clear text. In the environment: 1/true/yes/on or 0/false/no/off.
    #[arg(
        long,
        env = "RAVSOCK_INSECURE",
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    insecure: bool,
}

impl TrustArgs {
    fn trust(&self) -> Result<ravclient::Trust> {
        Ok(ravclient::Trust::from_options(self.ca_cert.as_deref(), self.insecure)?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Connect, benchmark, join a graph (or any) and compute until Ctrl-C.
    Participate {
        /// ravsock's URL [also read from RAVENVERSE_URL, the original's name].
        #[arg(long, env = "RAVSOCK_URL", default_value = "http://127.0.0.1:9999")]
        server: String,
        /// Provider token (from `ravsock token create --role provider`) [also read from TOKEN].
        /// Prefer the environment or `.env` to this flag: `ps` shows a process's flags.
        #[arg(long, env = "RAVSOCK_TOKEN", hide_env_values = true)]
        token: String,
        /// Host of ravsock's ravftp when it is not the server URL's host [also read from
        /// RAVENVERSE_FTP_URL and RAVENVERSE_FTP_HOST].
        #[arg(long, env = "RAVSOCK_FTP_HOST")]
        ftp_host: Option<String>,
        /// Work only on this graph.
        #[arg(long)]
        graph: Option<u64>,
        /// Serve this provider's metrics at `http://{this}/metrics` (e.g. `127.0.0.1:9464`).
        #[arg(long, env = "RAVPY_METRICS_BIND")]
        metrics_bind: Option<std::net::SocketAddr>,
        /// Leave after computing this many subgraphs (the work in hand is finished first).
        #[arg(long)]
        max_subgraphs: Option<u64>,
        /// The most memory one op may take here: bytes, or with a unit (`512M`, `8G`, `1T`;
        /// powers of 1024). An op that could take more is refused before it allocates and
        /// goes to a provider with more. Default: half of this machine's RAM.
        #[arg(long, value_parser = ravpy::parse_size)]
        max_memory: Option<u64>,
        /// Join a compute group, `key:secret` (repeat for several, or a comma-separated list
        /// in the environment): its jobs come here too. Prefer the environment: `ps` shows flags.
        #[arg(long = "group", env = "RAVPY_GROUPS", hide_env_values = true, value_delimiter = ',', value_parser = ravproto::jobs::ComputeGroup::parse)]
        groups: Vec<ravproto::jobs::ComputeGroup>,
        /// The most CPU (fuel units) one job slice may use here.
        #[arg(long, default_value_t = ravproto::work::Limits::default().fuel)]
        slice_fuel: u64,
        /// The WebAssembly engine for jobs' slices: `wasmi` (an interpreter, always built) or
        /// `wasmtime` (compiled, about 3x faster on heavy slices; built with `--features
        /// wasmtime`). Default: the fastest this build has.
        #[arg(long, env = "RAVPY_ENGINE")]
        engine: Option<ravwasm::EngineKind>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// List the jobs running now, with their public name, requirements, groups (those this
    /// provider joins marked) and offer per slice.
    ListJobs {
        /// ravsock's URL [also read from RAVENVERSE_URL].
        #[arg(long, env = "RAVSOCK_URL", default_value = "http://127.0.0.1:9999")]
        server: String,
        /// Provider token [also read from TOKEN].
        #[arg(long, env = "RAVSOCK_TOKEN", hide_env_values = true)]
        token: String,
        /// The groups this provider joins (`key:secret`; only the keys are used here).
        #[arg(long = "group", env = "RAVPY_GROUPS", hide_env_values = true, value_delimiter = ',', value_parser = ravproto::jobs::ComputeGroup::parse)]
        groups: Vec<ravproto::jobs::ComputeGroup>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// List the graphs open to providers, with their requirements.
    ListGraphs {
        /// ravsock's URL [also read from RAVENVERSE_URL].
        #[arg(long, env = "RAVSOCK_URL", default_value = "http://127.0.0.1:9999")]
        server: String,
        /// Provider token [also read from TOKEN].
        #[arg(long, env = "RAVSOCK_TOKEN", hide_env_values = true)]
        token: String,
        /// Only `distributed` or only `federated` graphs.
        #[arg(long)]
        approach: Option<String>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Show this account's balances and what its work was paid, movement by movement.
    Earnings {
        /// ravsock's URL [also read from RAVENVERSE_URL].
        #[arg(long, env = "RAVSOCK_URL", default_value = "http://127.0.0.1:9999")]
        server: String,
        /// Provider token [also read from TOKEN].
        #[arg(long, env = "RAVSOCK_TOKEN", hide_env_values = true)]
        token: String,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Contribute the statistics of a CSV file to a federated graph (the file never leaves this
    /// machine; in encrypted mode the statistics leave it only encrypted).
    Federated {
        /// ravsock's URL [also read from RAVENVERSE_URL].
        #[arg(long, env = "RAVSOCK_URL", default_value = "http://127.0.0.1:9999")]
        server: String,
        /// Provider token [also read from TOKEN].
        #[arg(long, env = "RAVSOCK_TOKEN", hide_env_values = true)]
        token: String,
        /// The federated graph (see `list-graphs --approach federated`).
        #[arg(long)]
        graph: u64,
        /// The CSV file: a header row naming the columns, then numbers.
        #[arg(long)]
        file: std::path::PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Print this machine's benchmark.
    Benchmark,
    /// Run a worker node from a file (TOML, or JSON ending in .json): every entry is its own
    /// supervised loop, retried with backoff, shown in a live table and in `ravpy status`.
    Run {
        /// The worker file (see examples/worker.toml).
        #[arg(long)]
        config: std::path::PathBuf,
        /// Only check the file and print the effective configuration (secrets redacted).
        #[arg(long)]
        check: bool,
    },
    /// Print the state of the worker node run with this file, as JSON. Exit status: 0 while it
    /// runs with no entry failed, 1 when an entry is failed, 3 when it is not running.
    Status {
        /// The worker file the node runs with.
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

fn main() -> Result<()> {
    // `.env` and the original's names become flags, so clap's order (flag, environment,
    // default) stays in one place.
    let env = ravenv::Env::load()?;
    let cli = Cli::parse_from(ravenv::args_with_env(std::env::args().collect(), &Cli::command(), &env));
    if let Command::Run { config, check } = &cli.command {
        return run_node(config, *check);
    }
    if let Command::Status { config } = &cli.command {
        return node_status(config);
    }
    init_logging(false, None);
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Participate {
            server,
            token,
            ftp_host,
            graph,
            metrics_bind,
            max_subgraphs,
            max_memory,
            groups,
            slice_fuel,
            engine,
            trust,
        } => {
            let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
            let (shown, view) = tokio::sync::mpsc::unbounded_channel();
            let metrics = ravpy::metrics::Metrics::default();
            if let Some(address) = metrics_bind {
                runtime
                    .block_on(metrics.spawn_server(address))
                    .map_err(|e| anyhow::anyhow!("cannot serve metrics on {address}: {e}"))?;
            }
            // Each event is counted, then shown.
            runtime.spawn(async move {
                while let Some(event) = seen.recv().await {
                    metrics.observe("participate", &event);
                    let _ = shown.send(event);
                }
            });
            let config = ParticipateConfig {
                server,
                token,
                trust: trust.trust()?,
                ftp_host,
                graph: graph.map(GraphId),
                benchmark: None,
                events: Some(events),
                max_subgraphs,
                groups,
                slice_cap: ravproto::work::Limits { fuel: slice_fuel, ..ravproto::work::Limits::default() },
                engine,
                max_memory,
            };
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("Ctrl-C: finishing the work in hand, then leaving");
            };
            let view = runtime.spawn(ravpy::view::live(view));
            let summary = runtime.block_on(participate(config, shutdown));
            // The events sender is gone with `participate`; the view finishes its line.
            let _ = runtime.block_on(view);
            match summary {
                Ok(summary) => tracing::info!(subgraphs = summary.subgraphs, ops = summary.ops, "done"),
                // The chosen graph ended: that is the end of this command's work, not a failure.
                Err(ravpy::Error::Rejected { code: ravproto::provider::RejectionCode::Finished, reason }) => {
                    tracing::info!("the graph ended: {reason}");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Command::ListGraphs { server, token, approach, trust } => {
            let approach = approach
                .map(|name| serde_json::from_value(serde_json::Value::String(name.clone())))
                .transpose()
                .map_err(|_| anyhow::anyhow!("--approach is `distributed` or `federated`"))?;
            let graphs = runtime.block_on(ravpy::list_graphs(&server, &token, &trust.trust()?, approach))?;
            #[allow(clippy::print_stdout)] // The table is this command's output.
            {
                print!("{}", ravpy::view::table(&graphs));
            }
        }
        Command::ListJobs { server, token, groups, trust } => {
            let jobs = runtime.block_on(ravpy::list_jobs(&server, &token, &trust.trust()?))?;
            let mine: Vec<String> = groups.into_iter().map(|g| g.key).collect();
            #[allow(clippy::print_stdout)] // The table is this command's output.
            {
                print!("{}", ravpy::view::jobs_table(&jobs, &mine));
            }
        }
        Command::Earnings { server, token, trust } => {
            let (balance, entries) = runtime.block_on(ravpy::earnings(&server, &token, &trust.trust()?))?;
            #[allow(clippy::print_stdout)] // The statement is this command's output.
            {
                print!("{}", ravpy::view::earnings(&balance, &entries));
            }
        }
        Command::Federated { server, token, graph, file, trust } => {
            let trust = trust.trust()?;
            let config = ravpy::federated::FederatedConfig { server, token, trust, graph: GraphId(graph), file };
            let spec =
                runtime.block_on(ravpy::federated::spec(&config.server, &config.token, &config.trust, config.graph))?;
            tracing::info!("{} \"{}\": {}", spec.graph_id, spec.name, ravpy::view::describe_rules(&spec.rules));
            let contribution = runtime.block_on(ravpy::federated::contribute(&config))?;
            let privacy = match contribution.spec.rules.privacy {
                ravproto::federated::Privacy::Encrypted => "encrypted under the requester's public key",
                ravproto::federated::Privacy::Plain => "in plain text",
            };
            tracing::info!(
                "sent the statistics of {} of {} rows ({} columns), {privacy}; {} of {} providers needed have reported",
                contribution.kept_rows,
                contribution.rows,
                contribution.summaries.len(),
                contribution.spec.contributors,
                contribution.spec.rules.min_clients
            );
            for (request, summary) in contribution.spec.columns.iter().zip(&contribution.summaries) {
                // The provider's own view of its data; min and max were not sent.
                let range = match (summary.min, summary.max) {
                    (Some(min), Some(max)) => format!("from {min} to {max} (not sent)"),
                    _ => "no values in this file".into(),
                };
                tracing::info!("  {}: {} values {range}", request.column, summary.sums.count);
            }
        }
        Command::Run { .. } | Command::Status { .. } => unreachable!("handled above"),
        Command::Benchmark => {
            let benchmark = ravpy::bench::measure();
            #[allow(clippy::print_stdout)] // The benchmark is this command's output.
            {
                println!("{}", serde_json::to_string_pretty(&benchmark)?);
            }
        }
    }
    Ok(())
}

/// Logs to stdout (colours only for a terminal) and, for a worker node with a `log_dir`, to
/// its files as well.
fn init_logging(debug: bool, file: Option<tracing_appender::non_blocking::NonBlocking>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = if debug { "ravpy=debug" } else { "ravpy=info" };
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let terminal = tracing_subscriber::fmt::layer()
        // A log line that cannot be written (a full disk, a closed terminal) is dropped:
        // by default tracing-subscriber reports it with `eprintln!`, which panics when stderr
        // is unwritable too, and logging must never take the process down.
        .log_internal_errors(false)
        // Colours only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_filter(filter());
    let file = file.map(|writer| {
        tracing_subscriber::fmt::layer()
            .log_internal_errors(false)
            .with_ansi(false)
            .with_writer(writer)
            .with_filter(filter())
    });
    tracing_subscriber::registry().with(terminal).with(file).init();
}

/// `ravpy run --config FILE [--check]`.
fn run_node(path: &std::path::Path, check: bool) -> Result<()> {
    let loaded = match ravpy::node::config::load(path, |name| std::env::var(name).ok()) {
        Ok(loaded) => loaded,
        Err(error) => anyhow::bail!("{error}"),
    };
    if check {
        #[allow(clippy::print_stdout)] // The effective configuration is this command's output.
        {
            print!("{}", ravpy::node::describe(&loaded));
        }
        return Ok(());
    }
    let log = ravpy::node::file_log(&loaded.config).map_err(anyhow::Error::msg)?;
    let (writer, _flush_on_exit) = log.unzip();
    init_logging(loaded.config.debug, writer);
    tracing::info!(
        config = %path.display(),
        server = %loaded.config.server.0,
        entries = loaded.entries().len(),
        status = %loaded.status_file().display(),
        "worker node starting"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match runtime.block_on(ravpy::node::run(loaded, shutdown)) {
        Ok(()) => {
            tracing::info!("worker node stopped");
            Ok(())
        }
        Err(reason) => {
            tracing::error!(%reason, "worker node stopped");
            anyhow::bail!("the worker node stopped: {reason}")
        }
    }
}

/// `ravpy status --config FILE`.
fn node_status(path: &std::path::Path) -> Result<()> {
    let (config, _) = ravpy::node::config::read(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = ravpy::node::config::status_file_of(&config, path);
    let (status, running) = ravpy::node::status::read(&file).map_err(anyhow::Error::msg)?;
    let failed = status.entries.iter().any(|e| e.state == ravpy::node::status::EntryState::Failed);
    let mut json = serde_json::to_value(&status)?;
    json["running"] = serde_json::Value::Bool(running);
    #[allow(clippy::print_stdout)] // The status is this command's output.
    {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    match (running, failed) {
        (false, _) => std::process::exit(3),
        (true, true) => std::process::exit(1),
        (true, false) => Ok(()),
    }
}
