//! Jobs' big slices and results in the blob store: a slice over the inline limit is uploaded by its
//! requester to its ravftp home, named by its SHA-256 ([`files::slice_upload`]), then named in
//! the request that adds it.
//!
//! The request's handler checks each upload (its length and digest, read on a blocking thread,
//! never in the dispatch task) and links it into a staging directory of its own
//! (`blobs/jobs/new-<random>/`), so nothing the requester does to its home afterwards changes
//! what was checked. Once the slices have numbers, the staged files are renamed to
//! `blobs/jobs/<job>/in-<idx>.bin` (before the rows that name them commit), and lent to a
//! provider's home by hard link when a bundle holds them; they are removed when the job ends.
//! Staging directories left by a killed process are removed at the next start.
//!
//! A result over the inline limit comes the other way: the provider uploads it to its home
//! ([`files::bundle_result`]), the dispatch task checks its length and renames it to
//! `blobs/jobs/<job>/out-<idx>.bin`, and it is lent to the requester's home when asked for.

use super::Bulk;
use crate::error::{Error, Result};
use ravproto::files;
use ravproto::jobs::{BigSlice, JobId};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The directory of the blob store holding jobs' slices.
pub(super) const JOBS_DIR: &str = "jobs";
/// The start of a staging directory's name.
const STAGING: &str = "new-";
/// The start of a big slice's file name in its job's directory.
const INPUT: &str = "in-";
/// The start of a big result's file name in its job's directory.
const OUTPUT: &str = "out-";

/// Big slices checked and held apart until they have numbers; the staging directory goes when
/// this is dropped (with any file not placed).
#[derive(Debug)]
pub struct StagedSlices {
    dir: PathBuf,
    /// Each slice's place in its request.
    places: Vec<u64>,
    /// The uploads they came from, removed once the slices are stored.
    uploads: Vec<PathBuf>,
}

impl StagedSlices {
    /// How many slices are staged.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    fn staged(&self, at: u64) -> PathBuf {
        self.dir.join(format!("{at}.{}", files::RAW_EXTENSION))
    }
}

impl Drop for StagedSlices {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), cause = %error, "cannot remove a staging directory");
        }
    }
}

/// Removes the staging directories under `jobs` (none can be in use while the server starts);
/// `jobs` itself is made by the first big slice or result.
pub(super) fn clear_staging(jobs: &Path) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(jobs) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(STAGING) {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// The SHA-256 of a file, as lowercase hex, and its length.
fn digest(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 1 << 20];
    let mut len = 0;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok((hex::encode(hasher.finalize()), len));
        }
        hasher.update(&buffer[..read]);
        len += read as u64;
    }
}

impl Bulk {
    fn jobs_dir(&self) -> PathBuf {
        self.blobs.join(JOBS_DIR)
    }

    /// Where the bytes of slice `idx` of `job` are kept.
    pub fn slice_blob(&self, job: JobId, idx: u64) -> PathBuf {
        self.jobs_dir().join(job.0.to_string()).join(format!("{INPUT}{idx}.{}", files::RAW_EXTENSION))
    }

    /// Checks each big slice's upload in `user`'s home against its length and digest and
    /// links it into a new staging directory. Reads every byte: call it on a blocking thread.
    pub fn stage_slices(&self, user: &str, big: &[BigSlice]) -> Result<StagedSlices> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| Error::Internal(format!("no randomness for a staging name: {e}")))?;
        let dir = self.jobs_dir().join(format!("{STAGING}{}", hex::encode(nonce)));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Storage(format!("cannot make {} for big slices: {e}", dir.display())))?;
        let mut staged = StagedSlices { dir, places: Vec::with_capacity(big.len()), uploads: Vec::new() };
        // The first staged copy of each digest: the same bytes named again are linked from
        // it, checked already, so naming one upload many times costs one read.
        let mut checked: std::collections::HashMap<(&str, u64), PathBuf> = std::collections::HashMap::new();
        for slice in big {
            let target = staged.staged(slice.at);
            if let Some(first) = checked.get(&(slice.sha256.as_str(), slice.len)) {
                std::fs::hard_link(first, &target)
                    .or_else(|_| std::fs::copy(first, &target).map(|_| ()))
                    .map_err(|e| Error::Storage(format!("cannot stage slice {}: {e}", slice.at)))?;
                staged.places.push(slice.at);
                continue;
            }
            let name = files::slice_upload(&slice.sha256);
            let missing = || {
                Error::BadRequest(format!(
                    "slice {}: no file {name} in your ravftp home (upload a big slice before naming it)",
                    slice.at
                ))
            };
            // No home yet: this requester never asked for ravftp credentials.
            let upload = self.home_file(user, &name).map_err(|_| missing())?;
            // Linked first and checked after: the link is the file that is kept, whatever
            // happens to the upload's name meanwhile.
            if let Err(error) = std::fs::hard_link(&upload, &target)
                && (error.kind() == std::io::ErrorKind::NotFound || std::fs::copy(&upload, &target).is_err())
            {
                return Err(missing());
            }
            let (sha256, len) = digest(&target)
                .map_err(|e| Error::Storage(format!("cannot read the staged slice {}: {e}", slice.at)))?;
            if len != slice.len || sha256 != slice.sha256 {
                return Err(Error::BadRequest(format!(
                    "slice {}: {name} holds {len} bytes with another digest than the {} bytes named",
                    slice.at, slice.len
                )));
            }
            staged.places.push(slice.at);
            staged.uploads.push(upload);
            checked.insert((slice.sha256.as_str(), slice.len), target);
        }
        Ok(staged)
    }

    /// Moves staged slices into `job` as slices `first + place`.
    pub fn place_slices(&self, staged: &StagedSlices, job: JobId, first: u64) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let dir = self.jobs_dir().join(job.0.to_string());
        let fail = |e: std::io::Error| Error::Storage(format!("cannot place big slices of {job}: {e}"));
        std::fs::create_dir_all(&dir).map_err(fail)?;
        for &at in &staged.places {
            std::fs::rename(staged.staged(at), self.slice_blob(job, first + at)).map_err(fail)?;
        }
        Ok(())
    }

    /// Removes the uploads staged slices came from (once the slices are stored; before, a
    /// request tried again still finds them).
    pub fn forget_uploads(&self, staged: &StagedSlices) {
        for upload in &staged.uploads {
            let _ = std::fs::remove_file(upload);
        }
    }

    /// Places slice `idx` of `job` in `user`'s home as `name`; returns its length.
    pub fn lend_slice(&self, job: JobId, idx: u64, user: &str, name: &str) -> Result<u64> {
        self.lend_file(&self.slice_blob(job, idx), user, name)
    }

    /// Removes the big slices of an ended job (its big results stay, for the requester to
    /// read).
    pub fn remove_job_slices(&self, job: JobId) {
        let dir = self.jobs_dir().join(job.0.to_string());
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(INPUT)
                && let Err(error) = std::fs::remove_file(entry.path())
            {
                tracing::warn!(%job, cause = %error, "cannot remove an ended job's big slice");
            }
        }
    }

    /// Where the result of slice `idx` of `job` is kept, when it is big.
    pub fn result_blob(&self, job: JobId, idx: u64) -> PathBuf {
        self.jobs_dir().join(job.0.to_string()).join(format!("{OUTPUT}{idx}.{}", files::RAW_EXTENSION))
    }

    /// Moves a big result from `user`'s home (`name`) into the blob store as the result of
    /// slice `idx` of `job`, after checking it holds `len` bytes.
    pub fn adopt_result(&self, user: &str, name: &str, job: JobId, idx: u64, len: u64) -> Result<()> {
        let upload = self.home_file(user, name)?;
        let found = std::fs::metadata(&upload)
            .map_err(|e| Error::BadRequest(format!("no result file {name} in the home of {user}: {e}")))?
            .len();
        if found != len {
            return Err(Error::BadRequest(format!("result file {name} holds {found} bytes, not the {len} named")));
        }
        let target = self.result_blob(job, idx);
        let fail = |e: std::io::Error| Error::Storage(format!("cannot keep a big result of {job}: {e}"));
        std::fs::create_dir_all(target.parent().unwrap_or(&self.blobs)).map_err(fail)?;
        std::fs::rename(&upload, &target).map_err(fail)
    }

    /// Places the big result of slice `idx` of `job` in `user`'s home; answers its name and
    /// length.
    pub fn lend_result(&self, job: JobId, idx: u64, user: &str) -> Result<(String, u64)> {
        let name = files::job_result(job.0, idx);
        let len = self.lend_file(&self.result_blob(job, idx), user, &name)?;
        Ok((name, len))
    }
}
