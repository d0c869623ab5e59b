//! ravftp: bulk data for Raven over FTP.
//!
//! Tensors above a size threshold do not travel inside socket.io or HTTP messages; they go
//! through this server as files holding Raven's binary value encoding. ravsock embeds the
//! server ([`server::serve`], feature `server`) and issues credentials ([`Users::issue`]); ravpy
//! and the ravop client use [`FtpClient`]. The `ravftp` binary runs the server alone with a
//! users file.

pub mod client;
#[cfg(feature = "server")]
pub mod server;
pub mod users;

pub use client::{FtpClient, FtpError, host_of_url};
pub use users::{IssuedUser, UserError, Users};

/// The most bytes one home may hold unless configured otherwise (the server's
/// `ServerConfig::home_quota`): 4 GiB.
pub const DEFAULT_HOME_QUOTA: u64 = 4 << 30;

#[cfg(all(test, feature = "server"))]
mod tests;
