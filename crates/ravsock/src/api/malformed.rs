//! Malformed socket.io events: each is answered with a typed refusal (an [`ErrorBody`] with
//! [`ErrorCode::BadRequest`]) instead of being dropped in silence, counted per connection and in
//! all, logged at a bounded rate (the first of a connection, then every [`WARN_EVERY`]th), and
//! a connection that sends [`MAX_MALFORMED`] of them is closed. A buggy client learns what it
//! got wrong; a hostile one cannot fill the log or keep the server decoding garbage.

use ravproto::messages::{ErrorBody, ErrorCode};
use socketioxide::extract::SocketRef;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Malformed events one connection may send; the one that reaches this closes it.
pub const MAX_MALFORMED: u32 = 100;

/// A connection's malformed events are logged for the first one, then once every this many.
pub const WARN_EVERY: u32 = 20;

/// The malformed events of one connection (kept in its extensions).
#[derive(Clone)]
pub(crate) struct Malformed(Arc<AtomicU32>);

/// Malformed events of every connection since ravsock started.
#[derive(Clone, Default)]
pub struct MalformedTotal(Arc<AtomicU64>);

impl MalformedTotal {
    /// How many there were.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Answers the malformed `event` on `socket` with `answer` (the namespace's refusal event),
/// counts it, logs it when due, and closes the connection at [`MAX_MALFORMED`].
pub(crate) fn refuse(
    socket: &SocketRef,
    total: &MalformedTotal,
    answer: &str,
    event: &str,
    why: &dyn std::fmt::Display,
) {
    total.0.fetch_add(1, Ordering::Relaxed);
    let count = match socket.extensions.get::<Malformed>() {
        Some(Malformed(count)) => count.fetch_add(1, Ordering::Relaxed) + 1,
        None => {
            socket.extensions.insert(Malformed(Arc::new(AtomicU32::new(1))));
            1
        }
    };
    let message = format!("malformed `{event}` event, dropped: {why}");
    if count == 1 || count % WARN_EVERY == 0 {
        tracing::warn!(socket = %socket.id, ns = socket.ns(), count, %message, "malformed socket.io event");
    }
    let body = ErrorBody { code: ErrorCode::BadRequest, message, op: None };
    if let Err(error) = socket.emit(answer, &body) {
        tracing::debug!(cause = %error, "cannot answer a malformed event");
    }
    if count >= MAX_MALFORMED {
        tracing::warn!(socket = %socket.id, ns = socket.ns(), count, "closing a connection that keeps sending malformed events");
        if let Err(error) = socket.clone().disconnect() {
            tracing::debug!(cause = %error, "cannot close a connection");
        }
    }
}
