//! The FTP server: libunftp on the local filesystem, authenticated against [`Users`], each
//! session confined to its user's home.
//!
//! Confinement is libunftp's filesystem backend's: it opens the home as a capability
//! directory (cap-std), so `..`, absolute paths and symlinks cannot reach outside it. The
//! accept loop is ours (one libunftp session per control connection), so the listener can be
//! bound by the caller, port 0 in tests.

use crate::users::Users;
use async_trait::async_trait;
use std::future::Future;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use unftp_core::auth::{
    AuthenticationError, Authenticator, Credentials, Principal, UserDetail, UserDetailError, UserDetailProvider,
};
use unftp_sbe_fs::Filesystem;

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
        let builder = libunftp::ServerBuilder::with_authenticator(
            Box::new(move || Filesystem::new(root.clone()).expect("the ftp root exists: Users::new created it")),
            Arc::new(PasswordAuthenticator(users.clone())),
        )
        .user_detail_provider(Arc::new(Homes(users.clone())))
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
