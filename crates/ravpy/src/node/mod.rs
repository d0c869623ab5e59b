//! `ravpy run --config worker.toml`: a worker node that never dies silently.
//!
//! One file names the server, the token and a list of entries; each entry is an independent
//! loop under a [`supervise`](supervise::supervise)r, with its own retry policy, so one
//! failing entry never stops the others. The node's state is kept on a [`Board`] that the
//! terminal table and the status file (`ravpy status`) show. Only a refused token, a refused
//! protocol version, a certificate not trusted or a mistake in the file end the node, with a
//! clear message and a non-zero exit.
//!
//! - [`config`]: the file, checked with errors naming the line and the key;
//! - [`supervise`]: attempts, backoff with jitter, panics caught and counted;
//! - [`status`]: the rows, the status file and the live table;
//! - [`entries`]: what one attempt of each kind of entry does;
//! - `tables`: the entries' tables in the file;
//! - [`topics`]: a topic worker, answering rounds from a model server.

pub mod config;
mod entries;
pub mod status;
pub mod supervise;
mod tables;
#[cfg(test)]
mod tests;
pub mod topics;

use config::{Entry, Loaded};
use status::{Board, EntryStatus, Table};
use std::future::Future;
use tokio::sync::watch;

/// Runs every entry of a loaded file until each is done or `shutdown` resolves; the error is
/// the fatal reason that stopped the node.
pub async fn run(loaded: Loaded, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let trust = ravclient::Trust::from_options(loaded.config.ca_cert.as_deref(), loaded.config.insecure)
        .map_err(|e| format!("ca_cert: {e}"))?;
    let entries = loaded.entries();
    let rows = entries.iter().map(|e| EntryStatus::new(e.name(), e.kind())).collect();
    let board = Board::new(&loaded.path, &loaded.config.server.0, rows);
    let context = entries::Context {
        server: loaded.config.server.0.clone(),
        token: loaded.token.0.clone(),
        trust,
        ftp_host: loaded.config.ftp_host.clone(),
        board: board.clone(),
        metrics: crate::metrics::Metrics::default(),
    };
    if let Some(address) = loaded.config.metrics_bind {
        let bound = context
            .metrics
            .spawn_server(address)
            .await
            .map_err(|e| format!("metrics_bind: cannot listen on {address}: {e}"))?;
        board.serving_metrics(format!("http://{bound}/metrics"));
    }
    let (stop, stopping) = watch::channel(false);
    let mut supervisors = tokio::task::JoinSet::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let policy = entry.retry();
        let attempt = entries::attempts(index, entry, context.clone(), stopping.clone());
        supervisors.spawn(supervise::supervise(index, board.clone(), policy, stopping.clone(), attempt));
    }
    let (written, mut writer_done) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let board = board.clone();
        let file = loaded.status_file();
        let table = Table::new(board.snapshot().entries.len());
        tokio::spawn(async move {
            board
                .write_until(file, table, async {
                    let _ = (&mut writer_done).await;
                })
                .await
        })
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut fatal = None;
    let mut asked_to_stop = false;
    loop {
        tokio::select! {
            () = &mut shutdown, if !asked_to_stop => {
                tracing::info!("stopping: each entry finishes the work in hand");
                asked_to_stop = true;
                let _ = stop.send(true);
            }
            joined = supervisors.join_next() => match joined {
                None => break,
                Some(Ok(Some(reason))) => {
                    fatal.get_or_insert(reason);
                    let _ = stop.send(true);
                }
                Some(Ok(None)) => {}
                Some(Err(error)) => {
                    // A supervisor itself never panics on an entry's panic; this is a bug.
                    fatal.get_or_insert(format!("a supervisor failed: {error}"));
                    let _ = stop.send(true);
                }
            }
        }
    }
    let why = match (&fatal, asked_to_stop) {
        (Some(reason), _) => reason.clone(),
        (None, true) => "stopped on request".to_string(),
        (None, false) => "every entry is done".to_string(),
    };
    board.stopped(&why);
    let _ = written.send(());
    let _ = writer.await;
    fatal.map_or(Ok(()), Err)
}

/// A node's log file writer when the file names a `log_dir`: a file a day (the last 14
/// kept), written off the node's threads; the guard flushes it when dropped.
pub fn file_log(
    config: &config::WorkerConfig,
) -> Result<Option<(tracing_appender::non_blocking::NonBlocking, tracing_appender::non_blocking::WorkerGuard)>, String>
{
    let Some(dir) = &config.log_dir else { return Ok(None) };
    let appender = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("ravpy")
        .filename_suffix("log")
        .max_log_files(14)
        .build(dir)
        .map_err(|e| format!("log_dir: cannot write logs in {}: {e}", dir.display()))?;
    Ok(Some(tracing_appender::non_blocking(appender)))
}

/// Entries as loaded, for `--check`.
pub fn describe(loaded: &Loaded) -> String {
    let mut out = loaded.effective();
    out.push_str("\n# entries as they will run\n");
    for entry in loaded.entries() {
        let what = match &entry {
            Entry::Participate { entry, .. } => match (entry.graphs.as_slice(), entry.then_any) {
                ([], _) => "any graph".to_string(),
                (graphs, then_any) => format!(
                    "graphs {}{}",
                    graphs.iter().map(u64::to_string).collect::<Vec<_>>().join(", then "),
                    if then_any { ", then any graph" } else { ", then stop" }
                ),
            },
            Entry::Federated { entry, .. } => format!("graph {} with {}", entry.graph, entry.file.display()),
            Entry::Topics { entry, .. } => format!(
                "topic {} from {} ({} fetches a round, {} each)",
                entry.topic,
                entry.inference_url.0,
                entry.fetch_retries,
                humantime::format_duration(entry.fetch_timeout.0)
            ),
        };
        let retry = entry.retry();
        out.push_str(&format!(
            "# {} ({}): {what}; retry after {} doubling to {}, failed after {} in a row\n",
            entry.name(),
            entry.kind(),
            humantime::format_duration(retry.first_delay.0),
            humantime::format_duration(retry.max_delay.0),
            retry.failed_after
        ));
    }
    out
}
