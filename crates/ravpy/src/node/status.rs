//! What a worker node is doing, entry by entry: kept in memory, written to the status file
//! (JSON, replaced atomically) for `ravpy status`, and drawn as a live table on the terminal.
//!
//! Entries change their row through a [`Board`]; one writer task wakes on each change and
//! writes the file and the table, at most every 200 ms, so a provider computing thousands of
//! subgraphs a second does not write thousands of files.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Not tried yet.
    Starting,
    /// Connecting, or asking ravsock.
    Connecting,
    /// Connected and working (or waiting for work).
    Running,
    /// Waiting for its graph or query to open: not a failure.
    Waiting,
    /// Failed; tried again after a pause.
    Retrying,
    /// Failed `failed_after` times in a row; still tried, at the longest pause.
    Failed,
    /// Finished what it was asked to do, or stopped.
    Done,
}

impl EntryState {
    fn word(self) -> &'static str {
        match self {
            EntryState::Starting => "starting",
            EntryState::Connecting => "connecting",
            EntryState::Running => "running",
            EntryState::Waiting => "waiting",
            EntryState::Retrying => "retrying",
            EntryState::Failed => "FAILED",
            EntryState::Done => "done",
        }
    }
}

/// One entry's row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryStatus {
    /// The entry's name.
    pub name: String,
    /// `participate`, `federated` or `topics`.
    pub kind: String,
    pub state: EntryState,
    /// What it is doing, or why it failed or waits.
    pub detail: String,
    /// When it last did something useful (joined, computed, contributed), unix seconds.
    pub last_success: Option<u64>,
    /// Attempts started (the first, and each retry).
    pub attempts: u64,
    /// Attempts that failed (panics included).
    pub failures: u64,
    /// Failures since the last success.
    pub failures_in_a_row: u32,
    /// Attempts that panicked.
    pub panics: u64,
    /// When the next attempt starts, unix milliseconds, while it waits for one.
    pub next_attempt_at: Option<u64>,
    /// Subgraphs computed and ops in them (participate).
    pub subgraphs: u64,
    pub ops: u64,
    /// Why ravsock last closed this entry's connection, if it did.
    pub last_drop: Option<String>,
    /// Rounds answered and missed, and failed fetches from the model server (topics).
    #[serde(default)]
    pub rounds_answered: u64,
    #[serde(default)]
    pub rounds_missed: u64,
    #[serde(default)]
    pub fetch_retries: u64,
}

impl EntryStatus {
    /// A row for an entry not started yet.
    pub fn new(name: &str, kind: &str) -> EntryStatus {
        EntryStatus {
            name: name.to_string(),
            kind: kind.to_string(),
            state: EntryState::Starting,
            detail: String::new(),
            last_success: None,
            attempts: 0,
            failures: 0,
            failures_in_a_row: 0,
            panics: 0,
            next_attempt_at: None,
            subgraphs: 0,
            ops: 0,
            last_drop: None,
            rounds_answered: 0,
            rounds_missed: 0,
            fetch_retries: 0,
        }
    }

    /// It did something useful: the failures in a row end.
    pub fn succeeded(&mut self, detail: impl Into<String>) {
        self.state = EntryState::Running;
        self.detail = detail.into();
        self.last_success = Some(unix_seconds());
        self.failures_in_a_row = 0;
    }
}

/// The whole node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's process.
    pub pid: u32,
    /// The worker file.
    pub config: PathBuf,
    /// ravsock's URL.
    pub server: String,
    /// When the node started and when this was written, unix seconds.
    pub started_at: u64,
    pub updated_at: u64,
    /// Why the node stopped, once it has.
    pub stopped: Option<String>,
    /// Where the node serves its metrics (`metrics_bind`), as a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    pub entries: Vec<EntryStatus>,
}

/// The node's status, shared by its entries and the writer.
#[derive(Clone)]
pub struct Board {
    status: Arc<Mutex<NodeStatus>>,
    changed: Arc<tokio::sync::Notify>,
}

impl Board {
    /// A board for these entries.
    pub fn new(config: &Path, server: &str, entries: Vec<EntryStatus>) -> Board {
        let now = unix_seconds();
        let status = NodeStatus {
            pid: std::process::id(),
            config: config.to_path_buf(),
            server: server.to_string(),
            started_at: now,
            updated_at: now,
            stopped: None,
            metrics: None,
            entries,
        };
        Board { status: Arc::new(Mutex::new(status)), changed: Arc::default() }
    }

    /// Changes entry `index`'s row.
    pub fn update(&self, index: usize, change: impl FnOnce(&mut EntryStatus)) {
        if let Some(entry) = self.lock().entries.get_mut(index) {
            change(entry);
        }
        self.changed.notify_one();
    }

    /// Records where the node serves its metrics.
    pub fn serving_metrics(&self, url: String) {
        self.lock().metrics = Some(url);
        self.changed.notify_one();
    }

    /// Records why the node stopped.
    pub fn stopped(&self, why: &str) {
        self.lock().stopped = Some(why.to_string());
        self.changed.notify_one();
    }

    /// A copy of the status now.
    pub fn snapshot(&self) -> NodeStatus {
        let mut status = self.lock().clone();
        status.updated_at = unix_seconds();
        status
    }

    /// Entry `index`'s row now.
    pub fn entry(&self, index: usize) -> Option<EntryStatus> {
        self.lock().entries.get(index).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NodeStatus> {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the status file and redraws the table after each change, until `done` resolves;
    /// then once more.
    pub async fn write_until(&self, file: PathBuf, table: Table, done: impl std::future::Future<Output = ()>) {
        let mut done = std::pin::pin!(done);
        loop {
            self.publish(&file, &table);
            tokio::select! {
                () = &mut done => break,
                () = self.changed.notified() => {}
            }
            // Changes in the next moment are written together.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.publish(&file, &table);
        table.finish();
    }

    fn publish(&self, file: &Path, table: &Table) {
        let status = self.snapshot();
        table.draw(&status);
        if let Err(error) = write_atomically(file, &status) {
            tracing::warn!(file = %file.display(), cause = %error, "cannot write the status file");
        }
    }
}

/// Replaces `file` with the status: a reader never sees half a file.
fn write_atomically(file: &Path, status: &NodeStatus) -> std::io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = file.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    std::fs::write(&temporary, json)?;
    std::fs::rename(&temporary, file)
}

/// Reads a node's status file; `running` says whether its process is still alive.
pub fn read(file: &Path) -> Result<(NodeStatus, bool), String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!("cannot read {} ({e}): is a worker node running with this configuration?", file.display())
    })?;
    let status: NodeStatus =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a ravpy status file: {e}", file.display()))?;
    let running = status.stopped.is_none() && process_alive(status.pid);
    Ok((status, running))
}

/// Whether a process is alive (Linux: its /proc entry; elsewhere assumed).
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.exists() || proc.join(pid.to_string()).exists()
}

/// The live table on the terminal: one row per entry (hidden when stderr is not a terminal).
pub struct Table {
    rows: Vec<indicatif::ProgressBar>,
    _multi: indicatif::MultiProgress,
}

impl Table {
    /// A table of `entries` rows.
    pub fn new(entries: usize) -> Table {
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{prefix} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        let rows = (0..entries)
            .map(|_| {
                let bar = multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar
            })
            .collect();
        Table { rows, _multi: multi }
    }

    fn draw(&self, status: &NodeStatus) {
        let now = unix_seconds();
        for (row, entry) in self.rows.iter().zip(&status.entries) {
            row.set_prefix(format!("{:<20} {:<11} {:<10}", entry.name, entry.kind, entry.state.word()));
            let last = entry.last_success.map_or("never".to_string(), |at| format!("{}s ago", now.saturating_sub(at)));
            let work = match entry.kind.as_str() {
                "participate" => format!(" | {} subgraphs, {} ops", entry.subgraphs, entry.ops),
                "topics" => format!(
                    " | {} rounds answered, {} missed, {} fetches retried",
                    entry.rounds_answered, entry.rounds_missed, entry.fetch_retries
                ),
                _ => String::new(),
            };
            row.set_message(format!("last success {last} | {} retries{work} | {}", entry.failures, entry.detail));
        }
    }

    fn finish(&self) {
        for row in &self.rows {
            row.abandon();
        }
    }
}

/// Now, in unix seconds.
pub fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now, in unix milliseconds.
pub fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
