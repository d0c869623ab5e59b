//! The FTP server: libunftp on the local filesystem, authenticated against [`Users`], each
//! session confined to its user's home.
//!
//! Confinement is libunftp's filesystem backend's: it opens the home as a capability
//! directory (cap-std), so `..`, absolute paths and symlinks cannot reach outside it. The
//! accept loop is ours (one libunftp session per control connection), so the listener can be
//! bound by the caller, port 0 in tests.
//!
//! Transfers themselves ([`HomeFs`]) do not use that backend: it moves file data through
//! 4 KiB buffers, each a trip to tokio's blocking pool, which held uploads of big tensors to
//! about 30 MB/s. Ours opens files through the same kind of capability directory and moves
//! data in 1 MiB buffers; everything else (listing, deleting, renaming) is delegated.

use crate::DEFAULT_HOME_QUOTA;
use crate::users::Users;
use async_trait::async_trait;
use std::future::Future;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use unftp_core::auth::{
    AuthenticationError, Authenticator, Credentials, Principal, UserDetail, UserDetailError, UserDetailProvider,
};
use unftp_core::storage::{Fileinfo, StorageBackend};
use unftp_sbe_fs::Filesystem;

/// Buffer size of file transfers.
const TRANSFER_BUFFER: usize = 1 << 20;

/// The storage of one session: its user's home, with big-buffer transfers.
#[derive(Debug)]
struct HomeFs {
    inner: Filesystem,
    root: PathBuf,
    home: Arc<cap_std::fs::Dir>,
    /// The most bytes the home may hold.
    quota: u64,
}

impl HomeFs {
    fn new(root: &Path, quota: u64) -> std::io::Result<HomeFs> {
        let home = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(HomeFs { inner: Filesystem::new(root)?, root: root.to_path_buf(), home: Arc::new(home), quota })
    }

    /// A client path, relative to the home (`/x` and `x` are the same file).
    fn relative<P: AsRef<Path>>(path: P) -> PathBuf {
        let path = path.as_ref();
        let stripped = path.strip_prefix("/").unwrap_or(path);
        if stripped.as_os_str().is_empty() { PathBuf::from(".") } else { stripped.to_path_buf() }
    }

    /// A buffered reader of a file from its start (restarts at an offset are refused).
    async fn reader<P: AsRef<Path>>(
        &self,
        path: P,
        start_pos: u64,
    ) -> unftp_core::storage::Result<tokio::io::BufReader<tokio::fs::File>> {
        if start_pos > 0 {
            return Err(unftp_core::storage::ErrorKind::CommandNotImplemented.into());
        }
        let mut options = cap_std::fs::OpenOptions::new();
        options.read(true);
        let file = self.open(Self::relative(path), options).await.map_err(storage_error)?;
        Ok(tokio::io::BufReader::with_capacity(TRANSFER_BUFFER, file))
    }

    async fn open(&self, path: PathBuf, options: cap_std::fs::OpenOptions) -> std::io::Result<tokio::fs::File> {
        Ok(tokio::fs::File::from_std(self.open_std(path, options).await?))
    }

    async fn open_std(&self, path: PathBuf, options: cap_std::fs::OpenOptions) -> std::io::Result<std::fs::File> {
        let home = self.home.clone();
        let file = tokio::task::spawn_blocking(move || home.open_with(path, &options))
            .await
            .map_err(std::io::Error::other)??;
        Ok(file.into_std())
    }
}

/// Buffers in flight between a transfer's socket and its file (one being filled, one being
/// drained, one spare).
const TRANSFER_BUFFERS: usize = 3;

/// Copies `input` into `file`: this task reads the socket into a buffer while a blocking
/// thread writes the previous one (std I/O, no extra copy into tokio's file buffer), so
/// the network and the disk work at the same time.
/// More than `limit` bytes is an error of kind [`std::io::ErrorKind::QuotaExceeded`], raised as
/// soon as the socket brings the byte past it.
async fn socket_to_file<R: tokio::io::AsyncRead + Unpin>(
    mut input: R,
    file: std::fs::File,
    limit: u64,
) -> std::io::Result<u64> {
    use std::io::Write;
    use tokio::io::AsyncReadExt;
    let (full_tx, mut full_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let (empty_tx, mut empty_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(TRANSFER_BUFFERS);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut file = file;
        let mut written = 0;
        while let Some(buffer) = full_rx.blocking_recv() {
            file.write_all(&buffer)?;
            written += buffer.len() as u64;
            let _ = empty_tx.try_send(buffer);
        }
        Ok(written)
    });
    let mut allocated = 0;
    let mut received = 0u64;
    let mut reading: std::io::Result<()> = Ok(());
    'socket: loop {
        let mut buffer = match empty_rx.try_recv() {
            Ok(buffer) => buffer,
            Err(_) if allocated < TRANSFER_BUFFERS => {
                allocated += 1;
                Vec::with_capacity(TRANSFER_BUFFER)
            }
            Err(_) => match empty_rx.recv().await {
                Some(buffer) => buffer,
                None => break,
            },
        };
        buffer.clear();
        let mut end = false;
        while buffer.len() < TRANSFER_BUFFER {
            match input.read_buf(&mut buffer).await {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(_) => {}
                Err(error) => {
                    reading = Err(error);
                    break 'socket;
                }
            }
        }
        received += buffer.len() as u64;
        if received > limit {
            reading = Err(std::io::Error::new(
                std::io::ErrorKind::QuotaExceeded,
                format!("the upload would take the home past its quota of {limit} bytes"),
            ));
            break;
        }
        // A closed channel means the writer stopped on an error, which it returns below.
        if (!buffer.is_empty() && full_tx.send(buffer).await.is_err()) || end {
            break;
        }
    }
    drop(full_tx);
    let written = writer.await.map_err(std::io::Error::other)??;
    reading.map(|()| written)
}

/// Reads `file` into `buffer` until it is full or the file ends; returns the bytes read.
fn fill(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Copies `file` to `output`: a blocking thread reads the file into buffers while this task
/// writes the previous one to the socket.
async fn file_to_socket<W: tokio::io::AsyncWrite + Unpin + ?Sized>(
    file: std::fs::File,
    output: &mut W,
) -> std::io::Result<u64> {
    let (full_tx, mut full_rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(1);
    let (empty_tx, mut empty_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(TRANSFER_BUFFERS);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        let mut allocated = 0;
        loop {
            let mut buffer = match empty_rx.try_recv() {
                Ok(buffer) => buffer,
                Err(_) if allocated < TRANSFER_BUFFERS => {
                    allocated += 1;
                    vec![0; TRANSFER_BUFFER]
                }
                Err(_) => match empty_rx.blocking_recv() {
                    Some(buffer) => buffer,
                    None => return,
                },
            };
            buffer.resize(TRANSFER_BUFFER, 0);
            let filled = match fill(&mut file, &mut buffer) {
                Ok(filled) => filled,
                Err(error) => {
                    let _ = full_tx.blocking_send(Err(error));
                    return;
                }
            };
            buffer.truncate(filled);
            // An empty buffer is the end of the file.
            if full_tx.blocking_send(Ok(buffer)).is_err() || filled == 0 {
                return;
            }
        }
    });
    let mut copied = 0;
    while let Some(buffer) = full_rx.recv().await {
        let buffer = buffer?;
        if buffer.is_empty() {
            break;
        }
        output.write_all(&buffer).await?;
        copied += buffer.len() as u64;
        let _ = empty_tx.try_send(buffer);
    }
    output.flush().await?;
    Ok(copied)
}

/// The bytes of every file under `dir` (a home holds a few files, and subdirectories only
/// if a client made them).
fn bytes_in(dir: &cap_std::fs::Dir) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in dir.entries()? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += bytes_in(&entry.open_dir()?)?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

fn storage_error(error: std::io::Error) -> unftp_core::storage::Error {
    let kind = match error.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            unftp_core::storage::ErrorKind::PermanentFileNotAvailable
        }
        std::io::ErrorKind::QuotaExceeded => unftp_core::storage::ErrorKind::ExceededStorageAllocationError,
        std::io::ErrorKind::StorageFull => unftp_core::storage::ErrorKind::InsufficientStorageSpaceError,
        _ => unftp_core::storage::ErrorKind::LocalError,
    };
    unftp_core::storage::Error::new(kind, error)
}

#[async_trait]
impl StorageBackend<HomeUser> for HomeFs {
    type Metadata = <Filesystem as StorageBackend<HomeUser>>::Metadata;

    fn enter(&mut self, user: &HomeUser) -> std::io::Result<()> {
        self.inner.enter(user)?;
        let relative =
            user.home.strip_prefix(&self.root).map_err(|_| std::io::Error::other("home outside the root"))?;
        self.home = Arc::new(self.home.open_dir(relative)?);
        Ok(())
    }

    fn supported_features(&self) -> u32 {
        0
    }

    async fn metadata<P: AsRef<Path> + Send + std::fmt::Debug>(
        &self,
        user: &HomeUser,
        path: P,
    ) -> unftp_core::storage::Result<Self::Metadata> {
        self.inner.metadata(user, path).await
    }

    async fn list<P: AsRef<Path> + Send + std::fmt::Debug>(
        &self,
        user: &HomeUser,
        path: P,
    ) -> unftp_core::storage::Result<Vec<Fileinfo<PathBuf, Self::Metadata>>> {
        self.inner.list(user, path).await
    }

    async fn get<P: AsRef<Path> + Send + std::fmt::Debug>(
        &self,
        _user: &HomeUser,
        path: P,
        start_pos: u64,
    ) -> unftp_core::storage::Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        Ok(Box::new(self.reader(path, start_pos).await?))
    }

    async fn get_into<'a, P, W: ?Sized>(
        &self,
        _user: &HomeUser,
        path: P,
        start_pos: u64,
        output: &'a mut W,
    ) -> unftp_core::storage::Result<u64>
    where
        W: tokio::io::AsyncWrite + Unpin + Sync + Send,
        P: AsRef<Path> + Send + std::fmt::Debug,
    {
        // The default copies through an 8 KiB buffer (one socket write per 8 KiB, which held
        // downloads to about 250 MB/s); this writes whole buffers of the file.
        if start_pos > 0 {
            return Err(unftp_core::storage::ErrorKind::CommandNotImplemented.into());
        }
        let mut options = cap_std::fs::OpenOptions::new();
        options.read(true);
        let file = self.open_std(Self::relative(path), options).await.map_err(storage_error)?;
        file_to_socket(file, output).await.map_err(storage_error)
    }

    async fn put<P: AsRef<Path> + Send + std::fmt::Debug, R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static>(
        &self,
        _user: &HomeUser,
        input: R,
        path: P,
        start_pos: u64,
    ) -> unftp_core::storage::Result<u64> {
        if start_pos > 0 {
            return Err(unftp_core::storage::ErrorKind::CommandNotImplemented.into());
        }
        let path = Self::relative(path);
        // A new file, never the old one truncated: the embedding server may have lent that one
        // as a hard link to a stored value, which must not change.
        let home = self.home.clone();
        let unlink = path.clone();
        tokio::task::spawn_blocking(move || match home.remove_file(&unlink) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|removed| removed)
        .map_err(storage_error)?;
        // What the home holds (the file replaced no longer counts) leaves this much room.
        let home = self.home.clone();
        let used = tokio::task::spawn_blocking(move || bytes_in(&home))
            .await
            .map_err(std::io::Error::other)
            .and_then(|used| used)
            .map_err(storage_error)?;
        let room = self.quota.saturating_sub(used);
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let file = self.open_std(path.clone(), options).await.map_err(storage_error)?;
        let written = socket_to_file(input, file, room).await;
        if let Err(error) = &written {
            // No partial file left to count against the home (or to be taken for a whole one).
            tracing::info!(cause = %error, "ftp upload refused or cut");
            let _ = self.home.remove_file(&path);
        }
        written.map_err(storage_error)
    }

    async fn del<P: AsRef<Path> + Send + std::fmt::Debug>(
        &self,
        user: &HomeUser,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.del(user, path).await
    }

    async fn mkd<P: AsRef<Path> + Send + std::fmt::Debug>(
        &self,
        user: &HomeUser,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.mkd(user, path).await
    }

    async fn rename<P: AsRef<Path> + Send + std::fmt::Debug>(
        &self,
        user: &HomeUser,
        from: P,
        to: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.rename(user, from, to).await
    }

    async fn rmd<P: AsRef<Path> + Send + std::fmt::Debug>(
        &self,
        user: &HomeUser,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.rmd(user, path).await
    }

    async fn cwd<P: AsRef<Path> + Send + std::fmt::Debug>(
        &self,
        user: &HomeUser,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.inner.cwd(user, path).await
    }
}

/// Settings of the FTP server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Ports for passive data connections.
    pub passive_ports: RangeInclusive<u16>,
    /// Seconds before an idle session is closed.
    pub idle_timeout_s: u64,
    /// The most bytes one home may hold: an upload past it is refused (552) and removed.
    pub home_quota: u64,
    /// Explicit FTPS with this PEM certificate chain and key, required of every session on
    /// both the control and the data connections (a password never crosses in clear text).
    pub tls: Option<FtpsFiles>,
}

/// The PEM files of FTPS (read again for each session, so a renewed certificate is used
/// without a restart).
#[derive(Clone, Debug)]
pub struct FtpsFiles {
    /// The certificate chain.
    pub cert: std::path::PathBuf,
    /// Its private key.
    pub key: std::path::PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { passive_ports: 49152..=65535, idle_timeout_s: 600, home_quota: DEFAULT_HOME_QUOTA, tls: None }
    }
}

#[derive(Debug)]
struct PasswordAuthenticator(Arc<Users>);

#[async_trait]
impl Authenticator for PasswordAuthenticator {
    async fn authenticate(&self, username: &str, creds: &Credentials) -> Result<Principal, AuthenticationError> {
        let password = creds.password.as_deref().ok_or(AuthenticationError::BadPassword)?;
        if self.0.verify(username, password) {
            Ok(Principal { username: username.to_string() })
        } else {
            tracing::info!(user = username, "ftp login refused");
            Err(AuthenticationError::BadPassword)
        }
    }
}

/// A logged-in user and its home.
#[derive(Debug)]
struct HomeUser {
    name: String,
    home: PathBuf,
}

impl std::fmt::Display for HomeUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl UserDetail for HomeUser {
    fn home(&self) -> Option<&Path> {
        Some(&self.home)
    }
}

#[derive(Debug)]
struct Homes(Arc<Users>);

#[async_trait]
impl UserDetailProvider for Homes {
    type User = HomeUser;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<HomeUser, UserDetailError> {
        let home = self
            .0
            .home(&principal.username)
            .ok_or_else(|| UserDetailError::UserNotFound { username: principal.username.clone() })?;
        Ok(HomeUser { name: principal.username.clone(), home })
    }
}

/// Serves FTP on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    users: Arc<Users>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Running out of descriptors is transient; keep serving.
                    tracing::warn!(cause = %error, "ftp accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        // Replies are small writes in pairs (`150` then `226`): with Nagle's algorithm the
        // second waits for the client's delayed ACK of the first, 40 ms on Linux, which made
        // every transfer take at least that long.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, cause = %error, "cannot turn off Nagle's algorithm on an ftp connection");
        }
        let root = users.root().to_path_buf();
        let quota = config.home_quota;
        let builder = libunftp::ServerBuilder::<HomeFs, HomeUser>::with_user_detail_provider(
            Box::new(move || HomeFs::new(&root, quota).expect("the ftp root exists: Users::new created it")),
            Arc::new(Homes(users.clone())),
        )
        .authenticator(Arc::new(PasswordAuthenticator(users.clone())))
        .greeting("ravftp ready")
        .passive_ports(config.passive_ports.clone())
        .idle_session_timeout(config.idle_timeout_s);
        let builder = match &config.tls {
            Some(files) => builder.ftps(files.cert.clone(), files.key.clone()).ftps_required(true, true),
            None => builder,
        };
        match builder.build() {
            Ok(server) => {
                tokio::spawn(async move {
                    if let Err(error) = server.service(stream).await {
                        tracing::debug!(%peer, cause = %error, "ftp session ended with an error");
                    }
                });
            }
            Err(error) => tracing::error!(cause = %error, "cannot configure an ftp session"),
        }
    }
}
