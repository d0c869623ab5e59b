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
}

impl HomeFs {
    fn new(root: &Path) -> std::io::Result<HomeFs> {
        let home = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority())?;
        Ok(HomeFs { inner: Filesystem::new(root)?, root: root.to_path_buf(), home: Arc::new(home) })
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
        let home = self.home.clone();
        let file = tokio::task::spawn_blocking(move || home.open_with(path, &options))
            .await
            .map_err(std::io::Error::other)??;
        Ok(tokio::fs::File::from_std(file.into_std()))
    }
}

fn storage_error(error: std::io::Error) -> unftp_core::storage::Error {
    let kind = match error.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            unftp_core::storage::ErrorKind::PermanentFileNotAvailable
        }
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
        let mut reader = self.reader(path, start_pos).await?;
        tokio::io::copy_buf(&mut reader, output).await.map_err(storage_error)
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
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let file = self.open(path, options).await.map_err(storage_error)?;
        let mut reader = tokio::io::BufReader::with_capacity(TRANSFER_BUFFER, input);
        let mut writer = tokio::io::BufWriter::with_capacity(TRANSFER_BUFFER, file);
        let copied = tokio::io::copy_buf(&mut reader, &mut writer).await.map_err(storage_error)?;
        writer.flush().await.map_err(storage_error)?;
        Ok(copied)
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { passive_ports: 49152..=65535, idle_timeout_s: 600 }
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
        let root = users.root().to_path_buf();
        let builder = libunftp::ServerBuilder::<HomeFs, HomeUser>::with_user_detail_provider(
            Box::new(move || HomeFs::new(&root).expect("the ftp root exists: Users::new created it")),
            Arc::new(Homes(users.clone())),
        )
        .authenticator(Arc::new(PasswordAuthenticator(users.clone())))
        .greeting("ravftp ready")
        .passive_ports(config.passive_ports.clone())
        .idle_session_timeout(config.idle_timeout_s);
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
