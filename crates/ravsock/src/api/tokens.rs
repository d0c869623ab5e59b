//! The token watcher: closes the open sockets (providers', requesters' and dashboards') of tokens that were
//! revoked or have expired, and writes the tokens' last uses.
//!
//! A revocation made by this server (the admin route) wakes it at once. One written by another
//! process (`ravsock token revoke`, on SQLite or PostgreSQL) cannot wake it, since SQLite has no
//! way to tell another process; so it also checks every [`CHECK_EVERY`]: a count of revoked
//! accounts (one indexed query, answered from the revoked rows only) and the expiry of each open
//! socket's token, which it holds in memory. That check is the one timer here and it does not
//! drive the scheduler; it bounds how long a revoked or expired token keeps a socket (half a
//! second, so within the second `ravsock token revoke` promises) and how stale a token's last
//! use may be.

use crate::db::{Account, Db};
use ravproto::{provider, requester};
use socketioxide::SocketIo;
use std::collections::HashSet;
use std::time::Duration;

/// How often the watcher looks for revocations made elsewhere and for expired tokens.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);

/// Starts the watcher; it runs until aborted.
pub fn spawn(db: Db, io: SocketIo, metrics: crate::metrics::Metrics) -> tokio::task::JoinHandle<()> {
    crate::dispatch::supervised::spawn("tokens", metrics, move || watch(db.clone(), io.clone()))
}

async fn watch(db: Db, io: SocketIo) {
    let mut watcher = Watcher { db, io, revoked: None };
    loop {
        watcher.check().await;
        tokio::select! {
            () = watcher.db.token_revoked_here() => {}
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

struct Watcher {
    db: Db,
    io: SocketIo,
    /// The revoked accounts' count at the last check (none before the first).
    revoked: Option<i64>,
}

impl Watcher {
    async fn check(&mut self) {
        if let Err(error) = self.db.flush_last_use().await {
            tracing::warn!(cause = %error, "cannot record the tokens' last uses");
        }
        let revoked = self.newly_revoked().await;
        let now = crate::dispatch::retention::unix_now();
        for namespace in
            [provider::NAMESPACE, requester::NAMESPACE, ravproto::topics::NAMESPACE, ravproto::dash::NAMESPACE]
        {
            for socket in self.io.of(namespace).map(|sockets| sockets.sockets()).unwrap_or_default() {
                let Some(account) = socket.extensions.get::<Account>() else { continue };
                let why = match (revoked.contains(&account.id), account.expired(now)) {
                    (true, _) => "revoked",
                    (false, true) => "expired",
                    (false, false) => continue,
                };
                tracing::info!(account = %account.name, namespace, why, "closing the socket of a token that no longer works");
                if let Err(error) = socket.disconnect() {
                    tracing::debug!(cause = %error, "socket already closed");
                }
            }
        }
    }

    /// The revoked accounts if any was revoked since the last check (then no remembered token
    /// is trusted any more), or none.
    async fn newly_revoked(&mut self) -> HashSet<i64> {
        let count = match self.db.revoked_count().await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(cause = %error, "cannot check for revoked tokens");
                return HashSet::new();
            }
        };
        if self.revoked.replace(count) == Some(count) {
            return HashSet::new();
        }
        self.db.forget_tokens();
        self.db.revoked_accounts().await.unwrap_or_else(|error| {
            // Forgotten tokens are checked again at their next use; the sockets at the next
            // revocation or restart.
            tracing::warn!(cause = %error, "cannot read the revoked tokens");
            self.revoked = None;
            HashSet::new()
        })
    }
}
