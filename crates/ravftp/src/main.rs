//! `ravftp`: the bulk-data server alone (ravsock embeds the same server).
//!
//! `ravftp add-user --users users.json --name alice` adds a user and prints its password once
//! (the file keeps a salted hash); `ravftp serve --root DIR --users users.json` serves every
//! user of the file, each confined to `DIR/<name>`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ravftp::Users;
use ravftp::server::{ServerConfig, serve};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "ravftp", about = "Raven bulk-data FTP server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the users of a users file.
    Serve {
        /// Directory holding one home per user.
        #[arg(long, env = "RAVFTP_ROOT", default_value = "ravftp-data")]
        root: PathBuf,
        /// The users file (see `add-user`).
        #[arg(long, env = "RAVFTP_USERS", default_value = "ravftp-users.json")]
        users: PathBuf,
        /// Address of the control connection.
        #[arg(long, env = "RAVFTP_BIND", default_value = "127.0.0.1:2121")]
        bind: String,
        /// First passive data port.
        #[arg(long, default_value_t = 49152)]
        passive_from: u16,
        /// Last passive data port.
        #[arg(long, default_value_t = 65535)]
        passive_to: u16,
        /// The most bytes one home may hold (an upload past it is refused with 552).
        #[arg(long, default_value_t = ravftp::DEFAULT_HOME_QUOTA)]
        home_quota: u64,
        /// A PEM certificate chain: with `--tls-key`, every session must use explicit FTPS.
        #[arg(long, env = "RAVFTP_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, env = "RAVFTP_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
    },
    /// Add a user (or give it a new password); prints the password once.
    AddUser {
        /// The users file.
        #[arg(long, env = "RAVFTP_USERS", default_value = "ravftp-users.json")]
        users: PathBuf,
        /// User name.
        #[arg(long)]
        name: String,
    },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HashedUser {
    salt: String,
    sha256: String,
}

fn read_users(path: &Path) -> anyhow::Result<BTreeMap<String, HashedUser>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading users file {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(error) => Err(error).with_context(|| format!("reading users file {}", path.display())),
    }
}

fn decode<const N: usize>(hex_text: &str) -> anyhow::Result<[u8; N]> {
    let bytes = hex::decode(hex_text).context("users file: bad hex")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("users file: wrong hash length"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        // A log line that cannot be written (a full disk, a closed terminal) is dropped:
        // by default tracing-subscriber reports it with `eprintln!`, which panics when stderr
        // is unwritable too, and logging must never take the process down.
        .log_internal_errors(false)
        // Colours only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match Cli::parse().command {
        Command::AddUser { users, name } => {
            let mut all = read_users(&users)?;
            let password = ravftp::users::new_password()?;
            let (salt, sha256) = ravftp::users::hash_password(&password)?;
            all.insert(name.clone(), HashedUser { salt, sha256 });
            std::fs::write(&users, serde_json::to_vec_pretty(&all)?)
                .with_context(|| format!("writing {}", users.display()))?;
            writeln!(std::io::stdout(), "user {name}: password {password} (shown once)")?;
        }
        Command::Serve { root, users, bind, passive_from, passive_to, home_quota, tls_cert, tls_key } => {
            let store = Arc::new(Users::new(&root).with_context(|| format!("ftp root {}", root.display()))?);
            for (name, hashed) in read_users(&users)? {
                store.insert_hashed(&name, decode(&hashed.salt)?, decode(&hashed.sha256)?)?;
            }
            let listener = tokio::net::TcpListener::bind(&bind).await.with_context(|| format!("binding {bind}"))?;
            tracing::info!(addr = %listener.local_addr()?, root = %root.display(), "ravftp listening");
            let tls = tls_cert.zip(tls_key).map(|(cert, key)| ravftp::server::FtpsFiles { cert, key });
            let config =
                ServerConfig { passive_ports: passive_from..=passive_to, idle_timeout_s: 600, home_quota, tls };
            serve(listener, store, config, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        }
    }
    Ok(())
}
