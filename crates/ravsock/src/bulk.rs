//! Bulk values: the embedded ravftp server and the blob store behind it.
//!
//! Values whose encoding is longer than the inline limit never travel inside a socket.io or
//! HTTP message. They live as files in `<data-dir>/blobs/<op>.ravv` (the database records
//! their length). The server never decodes them; it moves them by rename and lends them by
//! hard link:
//!
//! - a provider uploads a big output to its home; ravsock checks the file's header against
//!   its length and renames it into the blob store;
//! - a big input of an assignment is linked into the provider's home for it to download, and
//!   small ones past the assignment's inline budget are written there;
//! - a requester uploads a big `lin` value to its home before naming it in the op; a big result
//!   is linked into the requester's home when asked for.
//!
//! A link shares the stored bytes, so nothing may write into a lent file: ravftp stores every
//! upload as a new file (unlinking the old name first) and refuses appends and restarts at an
//! offset, which are the only ways FTP writes into an existing file. Where linking fails (the
//! homes on another file system) the value is copied.
//!
//! Jobs' big slices live in `<data-dir>/blobs/jobs/<job>/` ([`slices`]).
//!
//! Provider users (`provider-<id>`) exist for one connection; requester users (`requester-<account>`)
//! get a new password each time they ask for one.

mod slices;

pub use slices::StagedSlices;

use crate::error::{Error, Result};
use ravftp::Users;
use ravproto::files::{self, valid_file_name};
use ravproto::messages::FtpCredentials;
use ravproto::tensor::MAX_BINARY_HEADER;
use ravproto::{OpId, ProviderId, TensorData, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The ravftp user of a provider connection.
pub fn provider_user(provider: ProviderId) -> String {
    format!("provider-{}", provider.0)
}

/// The ravftp user of a requester account.
pub fn requester_user(account: i64) -> String {
    format!("requester-{account}")
}

/// The bulk-data side of ravsock.
#[derive(Clone, Debug)]
pub struct Bulk {
    users: Arc<Users>,
    blobs: PathBuf,
    ftp_root: PathBuf,
    port: u16,
    inline_limit: u64,
}

/// What a value file holds, read from its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    /// Its length in bytes.
    pub len: u64,
    /// Dtype and shape when it holds a single tensor.
    pub tensor: Option<(ravproto::DType, Vec<usize>)>,
}

impl Bulk {
    /// Bulk storage under `data_dir` (`ftp/` for the homes, `blobs/` for stored values), served
    /// by ravftp on `port`.
    pub fn new(data_dir: &Path, port: u16, inline_limit: u64) -> Result<Bulk> {
        let io = |e: std::io::Error| Error::Internal(format!("bulk storage in {}: {e}", data_dir.display()));
        let ftp_root = data_dir.join("ftp");
        let users = Arc::new(Users::new(&ftp_root).map_err(io)?);
        let blobs = data_dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(io)?;
        slices::clear_staging(&blobs.join(slices::JOBS_DIR)).map_err(io)?;
        let (blobs, ftp_root) = (blobs.canonicalize().map_err(io)?, ftp_root.canonicalize().map_err(io)?);
        Ok(Bulk { users, blobs, ftp_root, port, inline_limit })
    }

    /// The FTP user store (for the server task).
    pub fn users(&self) -> Arc<Users> {
        self.users.clone()
    }

    /// Encoded values longer than this travel as files.
    pub fn inline_limit(&self) -> u64 {
        self.inline_limit
    }

    /// Issues fresh credentials for `user`.
    pub fn issue(&self, user: &str) -> Result<FtpCredentials> {
        let issued = self.users.issue(user).map_err(|e| match e {
            ravftp::UserError::Home { .. } => Error::Storage(e.to_string()),
            other => Error::Internal(other.to_string()),
        })?;
        Ok(FtpCredentials {
            port: self.port,
            user: issued.user,
            password: issued.password,
            inline_limit: self.inline_limit,
        })
    }

    /// Removes `user` and its home.
    pub fn revoke(&self, user: &str) {
        self.users.revoke(user);
    }

    /// Where the stored value of `op` lives.
    pub fn blob_path(&self, op: OpId) -> PathBuf {
        self.blobs.join(files::blob(op))
    }

    /// Removes the stored values of `ops` from the blob store (their rows are gone); returns how
    /// many files went. One that cannot be removed stays, and is only disk.
    pub fn remove_blobs(&self, ops: &[OpId]) -> usize {
        let mut removed = 0;
        for op in ops {
            match std::fs::remove_file(self.blob_path(*op)) {
                Ok(()) => removed += 1,
                Err(error) => tracing::debug!(%op, cause = %error, "cannot remove a blob"),
            }
        }
        removed
    }

    /// The dtype and shape of the stored value of `op`, when it is one readable tensor.
    pub fn blob_tensor(&self, op: OpId) -> Option<(ravproto::DType, Vec<usize>)> {
        check_file(&self.blob_path(op)).ok()?.tensor
    }

    fn home_file(&self, user: &str, name: &str) -> Result<PathBuf> {
        if !valid_file_name(name) {
            return Err(Error::BadRequest(format!("invalid file name {name:?}: use [A-Za-z0-9._-], no leading dot")));
        }
        let Some(home) = self.users.home(user) else {
            // A provider's home is made by the server when it connects: if it is missing, the
            // server failed to make it (its storage), not the provider.
            return Err(match user.starts_with("provider-") {
                true => Error::Storage(format!("{user} has no ftp home: it could not be made when it connected")),
                false => Error::BadRequest(format!("{user} has no ftp home")),
            });
        };
        Ok(home.join(name))
    }

    /// Checks that `name` in `user`'s home holds one encoded value, reading the header only
    /// for a tensor (a list is decoded whole).
    pub fn check(&self, user: &str, name: &str) -> Result<FileCheck> {
        let path = self.home_file(user, name)?;
        check_file(&path).map_err(|reason| Error::BadRequest(format!("file {name}: {reason}")))
    }

    /// Moves `name` from `user`'s home into the blob store as the value of `op`.
    pub fn adopt(&self, user: &str, name: &str, op: OpId) -> Result<()> {
        let path = self.home_file(user, name)?;
        std::fs::rename(&path, self.blob_path(op))
            .map_err(|e| Error::Storage(format!("cannot move {} into the blob store: {e}", path.display())))
    }

    /// Reads the value in `name` of `user`'s home (checked first with [`Bulk::check`]) and
    /// removes the file: a verified graph's answer, compared in memory before one is stored.
    pub fn take_value(&self, user: &str, name: &str) -> Result<Value> {
        let path = self.home_file(user, name)?;
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::Storage(format!("cannot read {} from the ftp home of {user}: {e}", path.display())))?;
        let _ = std::fs::remove_file(&path);
        Value::decode_binary_owned(bytes).map_err(|e| Error::BadRequest(format!("file {name}: not a Raven value: {e}")))
    }

    /// Writes `value` into the blob store as the value of `op` (a verified graph's agreed
    /// value past the inline limit, which was compared in memory); returns its length. Written
    /// beside and renamed into place, so a reader never sees half of it.
    pub fn keep_blob(&self, op: OpId, value: &Value) -> Result<u64> {
        let target = self.blob_path(op);
        let partial = target.with_extension("partial");
        let bytes = value.encode_binary();
        std::fs::write(&partial, &bytes)
            .and_then(|()| std::fs::rename(&partial, &target))
            .map_err(|e| Error::Storage(format!("cannot write the value of {op} into the blob store: {e}")))?;
        Ok(bytes.len() as u64)
    }

    /// Checks that the blob store and the ftp homes take writes: a file is created, written,
    /// synced and removed in each (for `GET /readyz`, and to tell a provider's failed upload
    /// from the server's failing disk).
    pub fn probe(&self) -> Result<()> {
        for dir in [self.blobs.as_path(), self.ftp_root.as_path()] {
            let path = dir.join(format!(".probe-{}", std::process::id()));
            let written = std::fs::File::create(&path).and_then(|mut file| {
                std::io::Write::write_all(&mut file, b"probe")?;
                file.sync_all()
            });
            let removed = std::fs::remove_file(&path);
            written.and(removed).map_err(|e| Error::Storage(format!("{} does not take writes: {e}", dir.display())))?;
        }
        Ok(())
    }

    /// Places the stored value of `op` in `user`'s home as `name` (replacing a file of that
    /// name); returns its length.
    ///
    /// A hard link, not a copy (the blobs and the homes share the data directory): ravftp
    /// writes an upload to a new file, never into an existing one, so the blob cannot change
    /// through the link. A copy where linking fails (another file system).
    pub fn lend(&self, op: OpId, user: &str, name: &str) -> Result<u64> {
        self.lend_file(&self.blob_path(op), user, name)
    }

    /// [`Bulk::lend`] of any file of the blob store.
    fn lend_file(&self, blob: &Path, user: &str, name: &str) -> Result<u64> {
        let target = self.home_file(user, name)?;
        let _ = std::fs::remove_file(&target);
        let fail = |e: std::io::Error| {
            Error::Storage(format!("cannot place {} in the ftp home of {user}: {e}", blob.display()))
        };
        match std::fs::hard_link(blob, &target) {
            Ok(()) => Ok(std::fs::metadata(&target).map_err(fail)?.len()),
            Err(_) => std::fs::copy(blob, &target).map_err(fail),
        }
    }

    /// Writes `value` (one kept in the database or in memory) into `user`'s home as `name`,
    /// replacing a file of that name; returns its length. For an assignment's inputs past the
    /// frame's inline budget, and a small result fetched as a file.
    pub fn place(&self, value: &Value, user: &str, name: &str) -> Result<u64> {
        let target = self.home_file(user, name)?;
        let _ = std::fs::remove_file(&target);
        let bytes = value.encode_binary();
        std::fs::write(&target, &bytes)
            .map_err(|e| Error::Storage(format!("cannot write {name} in the ftp home of {user}: {e}")))?;
        Ok(bytes.len() as u64)
    }
}

impl Bulk {
    /// Removes every file in the ftp homes whose last change is at or before `changed_by` (unix
    /// seconds), and returns how many went and the earliest change among the files kept (when
    /// the next sweep has work).
    ///
    /// The change time (ctime), not the modification time: lending a result hard-links the
    /// blob, which keeps the blob's old mtime but sets the inode's ctime to now, so a result
    /// placed a minute ago is not taken for one written days ago. An upload in progress changes
    /// its file all the time. Homes are swept whoever they belong to: a provider's home is
    /// removed when it disconnects, but not when ravsock was killed before it could.
    pub fn sweep_homes(&self, changed_by: i64) -> std::io::Result<HomeSweep> {
        let mut sweep = HomeSweep::default();
        sweep_dir(&self.ftp_root, changed_by, 0, &mut sweep)?;
        Ok(sweep)
    }
}

/// What [`Bulk::sweep_homes`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HomeSweep {
    /// Files removed.
    pub removed: usize,
    /// Bytes they held.
    pub bytes: u64,
    /// The earliest change (unix seconds) among the files kept.
    pub oldest_kept: Option<i64>,
}

/// Homes are one level below the ftp root; ravftp lets a session make directories in its home,
/// bounded here so a deep tree cannot make the sweep recurse without end.
const MAX_SWEEP_DEPTH: usize = 8;

fn sweep_dir(dir: &Path, changed_by: i64, depth: usize, sweep: &mut HomeSweep) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // `symlink_metadata`: a link is looked at, never followed out of the homes.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
        if meta.is_dir() {
            if depth < MAX_SWEEP_DEPTH {
                sweep_dir(&entry.path(), changed_by, depth + 1, sweep)?;
            }
        } else if depth > 0 && meta.ctime() <= changed_by {
            // Files at the root itself are not a home's (the readiness probe's, for one).
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    sweep.removed += 1;
                    sweep.bytes += meta.len();
                }
                Err(error) => tracing::debug!(file = %entry.path().display(), cause = %error, "cannot remove"),
            }
        } else if depth > 0 {
            sweep.oldest_kept = Some(sweep.oldest_kept.map_or(meta.ctime(), |oldest| oldest.min(meta.ctime())));
        }
    }
    Ok(())
}

fn check_file(path: &Path) -> std::result::Result<FileCheck, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut prefix = Vec::with_capacity(1 + MAX_BINARY_HEADER);
    (&mut file).take(1 + MAX_BINARY_HEADER as u64).read_to_end(&mut prefix).map_err(|e| e.to_string())?;
    match Value::tensor_binary_len(&prefix) {
        Some(Ok(expected)) if expected == len => {
            let (dtype, shape, _) = TensorData::decode_header(&prefix[1..]).map_err(|e| e.to_string())?;
            Ok(FileCheck { len, tensor: Some((dtype, shape)) })
        }
        Some(Ok(expected)) => Err(format!("holds {len} bytes but its header announces {expected}")),
        Some(Err(error)) => Err(format!("not a Raven value: {error}")),
        None => {
            let mut bytes = prefix;
            file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
            Value::decode_binary(&bytes).map_err(|e| format!("not a Raven value: {e}"))?;
            Ok(FileCheck { len, tensor: None })
        }
    }
}
