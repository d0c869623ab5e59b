//! Retention: what ravsock keeps on disk after it is needed, and for how long.
//!
//! - An ended graph's values (inline rows, blob files, its training checkpoint) are removed
//!   `results` seconds after it ended; a fetch after that is answered 410 `expired`. Its
//!   intermediate blobs went when it ended ([`super::task`]); the graph row and its ops stay.
//! - Files in the ftp homes (results lent for download, uploads never named in an op, a
//!   killed server's provider homes) are removed `ftp_files` seconds after their last change.
//!
//! One task sleeps until the earliest time something falls due, computed from what it kept
//! (the oldest end, the oldest file), so nothing is polled; a graph that ends or a file that
//! arrives later falls due no sooner than a full retention from now, which the task's next
//! wake-up already covers. Times are unix seconds, passed in, so tests sweep "eight days
//! later" without waiting.

use crate::bulk::Bulk;
use crate::db::Db;
pub use crate::db::retention::Retention;
use crate::error::{Error, Result};

/// What one [`sweep`] removed, and when the next one is due.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Graphs whose values were removed.
    pub graphs: usize,
    /// Blob files removed with them.
    pub blobs: usize,
    /// Files removed from ftp homes, and their bytes.
    pub ftp_files: usize,
    pub ftp_bytes: u64,
    /// When something next falls due (unix seconds); `None` when nothing ever will (both
    /// retentions off).
    pub next_due: Option<i64>,
}

/// Removes what is past its retention at `now` (unix seconds).
pub async fn sweep(db: &Db, bulk: &Bulk, retention: Retention, now: i64) -> Result<Swept> {
    let mut swept = Swept::default();
    let mut due = Vec::new();
    if retention.results_secs > 0 {
        let keep = secs(retention.results_secs);
        loop {
            let expired = db.expire_results(now.saturating_sub(keep), now).await?;
            if expired.graphs.is_empty() {
                break;
            }
            swept.graphs += expired.graphs.len();
            swept.blobs += bulk.remove_blobs(&expired.files);
            tracing::info!(graphs = ?expired.graphs, "results past their retention removed");
        }
        due.push(db.oldest_kept_end().await?.unwrap_or(now).saturating_add(keep));
    }
    if retention.ftp_files_secs > 0 {
        let keep = secs(retention.ftp_files_secs);
        let homes = bulk.clone();
        let homes = tokio::task::spawn_blocking(move || homes.sweep_homes(now.saturating_sub(keep)))
            .await
            .map_err(|e| Error::Internal(format!("the ftp home sweep stopped: {e}")))?
            .map_err(|e| Error::Storage(format!("cannot sweep the ftp homes: {e}")))?;
        swept.ftp_files = homes.removed;
        swept.ftp_bytes = homes.bytes;
        due.push(homes.oldest_kept.unwrap_or(now).saturating_add(keep));
    }
    swept.next_due = due.into_iter().min().map(|due| due.max(now + 1));
    Ok(swept)
}

/// A retention in seconds as a signed offset (absurdly long ones are "forever" in effect).
fn secs(retention: u64) -> i64 {
    i64::try_from(retention).unwrap_or(i64::MAX / 2)
}

/// The current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// After a failed sweep (the database or disk failing), the next try.
const RETRY_AFTER_SECS: i64 = 60;

/// Runs [`sweep`] at start and whenever something falls due, until both retentions are off
/// (started again after a panic, [`super::supervised`]).
pub fn spawn(
    db: Db,
    bulk: Bulk,
    retention: Retention,
    metrics: crate::metrics::Metrics,
) -> tokio::task::JoinHandle<()> {
    super::supervised::spawn("retention", metrics, move || sweeps(db.clone(), bulk.clone(), retention))
}

async fn sweeps(db: Db, bulk: Bulk, retention: Retention) {
    loop {
        let now = unix_now();
        let next_due = match sweep(&db, &bulk, retention, now).await {
            Ok(swept) => {
                if swept.graphs + swept.ftp_files > 0 {
                    tracing::info!(
                        graphs = swept.graphs,
                        blobs = swept.blobs,
                        ftp_files = swept.ftp_files,
                        ftp_bytes = swept.ftp_bytes,
                        "retention sweep"
                    );
                }
                swept.next_due
            }
            Err(error) => {
                tracing::warn!(cause = %error, "retention sweep failed; trying again in a minute");
                Some(now + RETRY_AFTER_SECS)
            }
        };
        let Some(next_due) = next_due else { return };
        let wait = u64::try_from(next_due.saturating_sub(now)).unwrap_or(1).max(1);
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}
