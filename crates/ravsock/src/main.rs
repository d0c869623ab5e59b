//! The `ravsock` binary: `ravsock` (or `ravsock serve`) runs the server with embedded defaults;
//! `ravsock token create --name NAME --role requester|provider|admin [--expires-in 30d]` prints
//! a new token once; `ravsock token list` shows every token without its secret; `ravsock token
//! revoke --name NAME` revokes one (a running server closes its sockets within a second);
//! `ravsock account credit --name N --amount X [--key K]` issues units, `ravsock account show
//! --name N` shows balances and movements, `ravsock ledger check` checks the whole ledger.
//! Settings come from flags, `RAVSOCK_*` variables or a `.env` file; the original RDF's
//! database name (`RAVENVERSE_DATABASE_URI`, SQLAlchemy's form) is read too (`ravenv`).

use anyhow::{Context, Result, bail};
use clap::{CommandFactory, Parser, Subcommand};
use ravsock::config::Config;
use ravsock::db::Db;
use std::io::Write;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "ravsock",
    version,
    about = "Raven scheduler server (HTTP + socket.io on one port, SQLite by default)"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Accounts' balances: credit one, show one.
    Account {
        #[command(subcommand)]
        action: AccountAction,
    },
    /// The ledger as a whole.
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
}

#[derive(Subcommand)]
enum AccountAction {
    /// Issue units to an account's available balance (recorded as a movement from the mint).
    Credit {
        /// Account name.
        #[arg(long)]
        name: String,
        /// Units (a whole number, at least 1).
        #[arg(long)]
        amount: u64,
        /// Idempotency key: the same command with the same key credits once however often it
        /// runs. Without one, each run is a new credit.
        #[arg(long)]
        key: Option<String>,
    },
    /// Show an account's balances and its latest movements.
    Show {
        /// Account name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum LedgerAction {
    /// Recompute every balance from the movements and check the invariants; exits non-zero,
    /// naming each problem, when one fails.
    Check,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create an account and print its token (shown once; only its hash is stored).
    Create {
        /// Account name.
        #[arg(long)]
        name: String,
        /// requester, provider or admin.
        #[arg(long)]
        role: String,
        /// The token stops working this long after its creation (`90d`, `12h`, `30min`);
        /// by default it works until revoked.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// List every account's token: name, role, creation, last use, expiry, revocation (never
    /// the secret).
    List,
    /// Revoke an account's token: its requests are refused from now on, and a running server
    /// closes its open sockets within a second.
    Revoke {
        /// Account name.
        #[arg(long)]
        name: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    // The socket.io stack (socketioxide, engineioxide, tungstenite) logs whole messages at
    // debug and trace, and those hold providers' tokens and ravftp passwords: whatever
    // RUST_LOG says, these crates log at most at info.
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("ravsock=info"));
    for quiet in ["socketioxide=info", "engineioxide=info", "tungstenite=info", "tokio_tungstenite=info"] {
        filter = filter.add_directive(quiet.parse()?);
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log line that cannot be written (a full disk, a closed terminal) is dropped:
        // by default tracing-subscriber reports it with `eprintln!`, which panics when stderr
        // is unwritable too, and logging must never take the process down.
        .log_internal_errors(false)
        // Colours only for a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let mut env = ravenv::Env::load()?;
    // The original's URI is translated only where today's name is not set (today's wins).
    if env.get("RAVSOCK_DATABASE_URL").is_none()
        && let Some((name, uri)) = env.first_set(ravsock::config::ORIGINAL_DATABASE_NAMES)
    {
        let url = ravsock::config::database_url_from_original(&uri).map_err(|why| anyhow::anyhow!("{name}: {why}"))?;
        env.derive("RAVSOCK_DATABASE_URL", url);
    }
    let cli = Cli::parse_from(ravenv::args_with_env(std::env::args().collect(), &Cli::command(), &env));
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = cli.config;
            tracing::info!(
                bind = %config.bind,
                database = %config.redacted_database_url(),
                window = config.window,
                max_attempts = config.max_attempts,
                deadline_base_ms = config.deadline_base_ms,
                deadline_per_op_ms = config.deadline_per_op_ms,
                slots_per_provider = config.slots_per_provider,
                ftp_bind = %config.ftp_bind,
                ftp_passive_ports = %format!("{}-{}", config.ftp_passive_from, config.ftp_passive_to),
                inline_limit = config.inline_limit,
                data_dir = %config.data_dir.display(),
                tls = ?config.tls_cert,
                "effective configuration"
            );
            let listener = tokio::net::TcpListener::bind(config.bind)
                .await
                .with_context(|| format!("cannot bind {}", config.bind))?;
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            ravsock::run(config, listener, shutdown).await?;
        }
        Command::Token { action } => token_command(&open_db(&cli.config).await?, action).await?,
        Command::Account { action } => account_command(&open_db(&cli.config).await?, action).await?,
        Command::Ledger { action: LedgerAction::Check } => check_command(&open_db(&cli.config).await?).await?,
    }
    Ok(())
}

/// The database of a maintenance command (the default data directory is created).
async fn open_db(config: &Config) -> Result<Db> {
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    Ok(Db::connect(&config.database_url()).await?)
}

/// `ravsock token …`: what it prints is the command's output, written with `writeln!` (a
/// closed or full stdout is an error that says so, where `println!` would panic).
async fn token_command(db: &Db, action: TokenAction) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match action {
        TokenAction::Create { name, role, expires_in } => {
            let role = ravsock::auth::role(&role)?;
            let (token, _) = db.create_account_until(&name, role, expires_in.map(|d| d.as_secs().max(1))).await?;
            writeln!(out, "{token}").context("could not write the new token to standard output (create another)")?;
        }
        TokenAction::List => {
            let when = |at: Option<u64>| at.map_or_else(|| "-".to_string(), |at| ravsock::auth::utc(at as i64));
            let mut table = format!(
                "{:<24} {:<10} {:<21} {:<21} {:<21} {}\n",
                "NAME", "ROLE", "CREATED", "LAST USED", "EXPIRES", "REVOKED"
            );
            for token in db.tokens().await? {
                table += &format!(
                    "{:<24} {:<10} {:<21} {:<21} {:<21} {}\n",
                    token.name,
                    token.role,
                    when(Some(token.created_at)),
                    when(token.last_used_at),
                    when(token.expires_at),
                    when(token.revoked_at)
                );
            }
            out.write_all(table.as_bytes()).context("could not write the list to standard output")?;
        }
        TokenAction::Revoke { name } => {
            db.revoke_token(&name).await?;
            writeln!(out, "revoked the token of `{name}`").context("could not write to standard output")?;
        }
    }
    Ok(())
}

/// `ravsock account …`.
async fn account_command(db: &Db, action: AccountAction) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match action {
        AccountAction::Credit { name, amount, key } => {
            let key = match key {
                Some(key) => key,
                None => {
                    let mut bytes = [0u8; 12];
                    getrandom::fill(&mut bytes).context("no randomness for an idempotency key")?;
                    format!("cli-{}", hex::encode(bytes))
                }
            };
            let entry = db.credit(&name, amount, &key).await?;
            let balance = db.balance(db.account_id(&name).await?, &name).await?;
            writeln!(
                out,
                "credited {} units to `{name}` (entry {}, key {key}); available now {}",
                entry.amount, entry.id, balance.available
            )
            .context("could not write to standard output")?;
        }
        AccountAction::Show { name } => {
            let id = db.account_id(&name).await?;
            let balance = db.balance(id, &name).await?;
            let mut text = format!(
                "{name}: available {}, staked {}, escrowed {}, slashed {}\\n",
                balance.available, balance.staked, balance.escrowed, balance.slashed
            );
            for entry in db.entries_of(id, 0, ravproto::ledger::MAX_ENTRIES_PER_PAGE).await?.entries {
                text += &format!(
                    "{:>8} {} {:>12} {} -> {} ({}, {})\\n",
                    entry.id,
                    ravsock::auth::utc(entry.at as i64),
                    entry.amount,
                    entry.from,
                    entry.to,
                    entry.reason.name(),
                    entry.reference
                );
            }
            out.write_all(text.as_bytes()).context("could not write to standard output")?;
        }
    }
    Ok(())
}

/// `ravsock ledger check`: a summary when the ledger is sound; otherwise every problem, and a
/// non-zero exit.
async fn check_command(db: &Db) -> Result<()> {
    let report = db.check_ledger().await?;
    let mut out = std::io::stdout().lock();
    for problem in &report.problems {
        writeln!(out, "problem: {problem}").context("could not write to standard output")?;
    }
    if !report.problems.is_empty() {
        bail!("the ledger fails {} of its checks (listed above)", report.problems.len());
    }
    writeln!(
        out,
        "ledger ok: {} entries, {} accounts, {} units issued, every balance matches its entries",
        report.entries, report.accounts, report.issued
    )
    .context("could not write to standard output")?;
    Ok(())
}
