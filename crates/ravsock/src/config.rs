//! ravsock's settings: one typed struct, defaults in one place, every field a flag and an
//! environment variable.

use crate::scheduler::SchedulerConfig;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Default HTTP + socket.io address.
pub const DEFAULT_BIND: &str = "127.0.0.1:9999";
/// Default address of the embedded ravftp server.
pub const DEFAULT_FTP_BIND: &str = "127.0.0.1:2121";
/// Default inline limit: encoded values longer than this travel through ravftp.
pub const DEFAULT_INLINE_LIMIT: u64 = 1 << 20;

/// Server settings.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address for HTTP and socket.io.
    #[arg(long, env = "RAVSOCK_BIND", default_value = DEFAULT_BIND)]
    pub bind: SocketAddr,
    /// Directory for the SQLite database, the blob store and the FTP homes (created if missing).
    #[arg(long, env = "RAVSOCK_DATA_DIR", default_value = "ravsock-data")]
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH`, or `postgres://USER:PASSWORD@HOST:PORT/DB` for PostgreSQL
    /// (the database must exist; ravsock creates its tables). Default `sqlite://<data-dir>/ravsock.db`.
    /// [Also read from the original's RAVENVERSE_DATABASE_URI or RDF_DATABASE_URI, in
    /// SQLAlchemy's form: `sqlite:///relative.db`, `sqlite:////absolute.db`,
    /// `postgresql+psycopg2://…`.]
    #[arg(long, env = "RAVSOCK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Most ops per subgraph.
    #[arg(long, env = "RAVSOCK_WINDOW", default_value_t = 100)]
    pub window: usize,
    /// Providers (distinct accounts) whose attempts at a subgraph may fail before its graph
    /// fails; one account's failures count once, and hand-outs stop at three times this.
    #[arg(long, env = "RAVSOCK_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
    /// Assignments a provider account may abandon in a row (disconnecting while holding them,
    /// missing their deadline) before it is quarantined.
    #[arg(long, env = "RAVSOCK_QUARANTINE_AFTER", default_value_t = 3)]
    pub quarantine_after: u32,
    /// How long a quarantined account's providers are refused, in seconds.
    #[arg(long, env = "RAVSOCK_QUARANTINE_SECS", default_value_t = 600)]
    pub quarantine_secs: u64,
    /// Fixed part of a subgraph's deadline, in milliseconds.
    #[arg(long, env = "RAVSOCK_DEADLINE_BASE_MS", default_value_t = 30_000)]
    pub deadline_base_ms: u64,
    /// Deadline added per op, in milliseconds.
    #[arg(long, env = "RAVSOCK_DEADLINE_PER_OP_MS", default_value_t = 100)]
    pub deadline_per_op_ms: u64,
    /// Subgraphs one provider may hold at once.
    #[arg(long, env = "RAVSOCK_SLOTS_PER_PROVIDER", default_value_t = 2)]
    pub slots_per_provider: usize,
    /// Address of the embedded ravftp server (bulk values).
    #[arg(long, env = "RAVSOCK_FTP_BIND", default_value = DEFAULT_FTP_BIND)]
    pub ftp_bind: SocketAddr,
    /// First port for passive FTP data connections.
    #[arg(long, env = "RAVSOCK_FTP_PASSIVE_FROM", default_value_t = 49152)]
    pub ftp_passive_from: u16,
    /// Last port for passive FTP data connections.
    #[arg(long, env = "RAVSOCK_FTP_PASSIVE_TO", default_value_t = 65535)]
    pub ftp_passive_to: u16,
    /// Encoded values longer than this many bytes travel through ravftp instead of messages.
    #[arg(long, env = "RAVSOCK_INLINE_LIMIT", default_value_t = DEFAULT_INLINE_LIMIT)]
    pub inline_limit: u64,
    /// The most bytes one ravftp home (a requester's, a provider connection's) may hold; an
    /// upload past it is refused (FTP 552) and removed.
    #[arg(long, env = "RAVSOCK_FTP_HOME_QUOTA", default_value_t = ravftp::DEFAULT_HOME_QUOTA)]
    pub ftp_home_quota: u64,
    /// The most memory (result and working memory) one op may need, in bytes, where its upload
    /// alone decides it (`random` of a shape, `zeros` of an inline shape…): a bigger one is
    /// refused at upload, naming the op and its size. Providers bound every op by their own
    /// budget as well.
    #[arg(long, env = "RAVSOCK_MAX_OP_BYTES", default_value_t = crate::validate::DEFAULT_MAX_OP_BYTES)]
    pub max_op_bytes: u64,
    /// Seconds an ended graph's values (results, inputs, checkpoint) are kept; a fetch after
    /// that is answered 410 `expired`. 0 keeps them until deleted by hand.
    #[arg(long, env = "RAVSOCK_RESULT_RETENTION_SECS", default_value_t = DEFAULT_RESULT_RETENTION_SECS)]
    pub result_retention_secs: u64,
    /// Seconds a file in an ftp home (a result placed for download, an upload no op named) is
    /// kept after its last change. 0 keeps them.
    #[arg(long, env = "RAVSOCK_FTP_FILE_RETENTION_SECS", default_value_t = DEFAULT_FTP_FILE_RETENTION_SECS)]
    pub ftp_file_retention_secs: u64,
    /// Milliseconds between heartbeats (engine.io pings) on every socket.io connection.
    #[arg(long, env = "RAVSOCK_HEARTBEAT_INTERVAL_MS", default_value_t = DEFAULT_HEARTBEAT_INTERVAL_MS)]
    pub heartbeat_interval_ms: u64,
    /// Milliseconds a heartbeat may go unanswered before the connection is closed: a provider
    /// that stopped without closing its socket then loses its work to others.
    #[arg(long, env = "RAVSOCK_HEARTBEAT_TIMEOUT_MS", default_value_t = DEFAULT_HEARTBEAT_TIMEOUT_MS)]
    pub heartbeat_timeout_ms: u64,
    /// `on`: work is paid through the ledger: executing a graph moves its cost to escrow and
    /// each subgraph pays its provider from it, and a topic's ground truth pays its workers'
    /// rewards (402 when the requester's available balance is short); `off`: nothing is paid,
    /// for private clusters. Balances, entries and credits work either way.
    #[arg(long, env = "RAVSOCK_ACCOUNTING", value_enum, default_value_t = Accounting::Off)]
    pub accounting: Accounting,
    /// A PEM certificate chain: with `--tls-key`, HTTP and socket.io are served over TLS
    /// (https://, wss://) and ravftp requires explicit FTPS with the same certificate.
    #[arg(long, env = "RAVSOCK_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "RAVSOCK_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Whether work is paid through the ledger (`--accounting`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Accounting {
    /// Nothing is paid: a private cluster's behaviour.
    #[default]
    Off,
    /// Work is paid: a topic's truth pays its rewards from the requester's balance.
    On,
}

/// Default heartbeat interval. Chosen, not socketioxide's 25 s: a provider that stops
/// answering without closing its socket (a stopped process, a machine gone to sleep, a cut
/// cable) is dropped, and its work handed to others, within interval + timeout = 20 s instead
/// of 45 s; 1,000 idle providers cost ravsock about 1% of a core at this rate (the swarm
/// benchmark).
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 10_000;
/// Default heartbeat timeout.
pub const DEFAULT_HEARTBEAT_TIMEOUT_MS: u64 = 10_000;

/// The engine.io heartbeat of every socket.io connection: the server pings each one every
/// `interval`, and closes one whose answer is `timeout` late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
}

/// Default result retention: a week.
pub const DEFAULT_RESULT_RETENTION_SECS: u64 = 7 * 24 * 3600;
/// Default retention of ftp home files: a day.
pub const DEFAULT_FTP_FILE_RETENTION_SECS: u64 = 24 * 3600;

impl Config {
    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("ravsock.db").display()))
    }

    /// The scheduling policy.
    pub fn scheduler(&self) -> SchedulerConfig {
        SchedulerConfig {
            window: self.window,
            max_attempts: self.max_attempts,
            deadline_base_ms: self.deadline_base_ms,
            deadline_per_op_ms: self.deadline_per_op_ms,
            slots_per_provider: self.slots_per_provider,
            quarantine_after: self.quarantine_after,
            quarantine_ms: self.quarantine_secs.saturating_mul(1000),
        }
    }

    /// The socket.io heartbeat.
    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            interval: std::time::Duration::from_millis(self.heartbeat_interval_ms.max(1)),
            timeout: std::time::Duration::from_millis(self.heartbeat_timeout_ms.max(1)),
        }
    }

    /// What is kept on disk, and for how long.
    pub fn retention(&self) -> crate::db::retention::Retention {
        crate::db::retention::Retention {
            results_secs: self.result_retention_secs,
            ftp_files_secs: self.ftp_file_retention_secs,
        }
    }

    /// The certificate and key files of TLS, when both are given; only one is a mistake.
    pub fn tls(&self) -> Result<Option<ravftp::server::FtpsFiles>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(ravftp::server::FtpsFiles { cert: cert.clone(), key: key.clone() })),
            (None, None) => Ok(None),
            _ => Err("--tls-cert and --tls-key go together: give both, or neither for plain HTTP".into()),
        }
    }

    /// The database URL with its user, password and query parameters (which may hold a
    /// password too) replaced, for logs.
    pub fn redacted_database_url(&self) -> String {
        let mut url = self.database_url();
        if let Some(query) = url.find('?') {
            url.replace_range(query.., "?***");
        }
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => format!("{}://***{}", &url[..scheme], &url[at..]),
            _ => url,
        }
    }
}

/// The original's names for the database URL, in the order they are looked up.
pub const ORIGINAL_DATABASE_NAMES: &[&str] = &["RAVENVERSE_DATABASE_URI", "RDF_DATABASE_URI"];

/// The original's database URI (SQLAlchemy's form) as ravsock's: `sqlite:///rel.db` is a
/// relative path and `sqlite:////abs.db` an absolute one (SQLAlchemy counts the third slash
/// as the separator), a `+driver` after `postgresql` is dropped, and SQLite's query options
/// (`check_same_thread`, which only Python's driver reads) are left out.
pub fn database_url_from_original(uri: &str) -> Result<String, String> {
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| format!("`{uri}` is not a database URI"))?;
    let backend = scheme.split('+').next().unwrap_or(scheme);
    match backend {
        "sqlite" => {
            let path = rest.strip_prefix('/').unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err("an in-memory SQLite database (`sqlite://`) would lose every graph at a restart".into());
            }
            Ok(format!("sqlite://{path}"))
        }
        "postgresql" | "postgres" => Ok(format!("postgresql://{rest}")),
        other => Err(format!("ravsock stores its data in SQLite or PostgreSQL, not `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn redacted(url: &str) -> String {
        Cli::parse_from(["ravsock", "--database-url", url]).config.redacted_database_url()
    }

    #[test]
    fn logged_database_urls_hold_no_credentials() {
        assert_eq!(redacted("postgres://raven:s3cret@db:5432/raven"), "postgres://***@db:5432/raven");
        assert_eq!(redacted("postgres://db/raven?user=raven&password=s3cret"), "postgres://db/raven?***");
        assert_eq!(redacted("sqlite://data/ravsock.db"), "sqlite://data/ravsock.db");
    }

    #[test]
    fn the_originals_sqlalchemy_uris_are_translated() {
        let ok = |uri: &str| database_url_from_original(uri).unwrap();
        assert_eq!(ok("sqlite:///rdf.db?check_same_thread=False"), "sqlite://rdf.db");
        assert_eq!(ok("sqlite:////home/rdf/rdf.db"), "sqlite:///home/rdf/rdf.db");
        assert_eq!(ok("postgresql+psycopg2://raven:pw@127.0.0.1:5432/rdf"), "postgresql://raven:pw@127.0.0.1:5432/rdf");
        assert_eq!(ok("postgres://127.0.0.1/rdf"), "postgresql://127.0.0.1/rdf");
        assert!(database_url_from_original("mysql://127.0.0.1/rdf").unwrap_err().contains("SQLite or PostgreSQL"));
        assert!(database_url_from_original("sqlite://").is_err());
        assert!(database_url_from_original("rdf.db").is_err());
    }
}
