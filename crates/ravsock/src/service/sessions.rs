//! The dashboard's sessions: a browser logs in with a token once and then holds a random
//! session id in a cookie. The server keeps the token in memory beside the id (never on disk,
//! never logged), and checks it again on every request through the one token check
//! (`Db::authenticate`), so a revoked or expired token ends its sessions at once. Sessions
//! end after [`SESSION_LIFETIME`], at logout, and with the process (a restart asks for the
//! token again).

use crate::error::{Error, Result};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a session lasts after its login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3_600);
/// Sessions kept at most; a login past it ends the oldest session.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    token: String,
    started: Instant,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    /// Ids in login order, for ending the oldest.
    order: VecDeque<String>,
}

/// The live sessions; cloning shares them.
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<Inner>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session for `token` (already checked): its id, 32 random bytes in hex.
    pub fn start(&self, token: &str) -> Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness for a session: {e}")))?;
        let id = hex::encode(bytes);
        let mut inner = self.lock();
        while inner.sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = inner.order.pop_front() else { break };
            inner.sessions.remove(&oldest);
        }
        inner.sessions.insert(id.clone(), Session { token: token.to_string(), started: Instant::now() });
        inner.order.push_back(id.clone());
        Ok(id)
    }

    /// The token behind session `id`, or 401 for an unknown or ended session.
    pub fn token(&self, id: &str) -> Result<String> {
        let mut inner = self.lock();
        match inner.sessions.get(id) {
            Some(session) if session.started.elapsed() < SESSION_LIFETIME => Ok(session.token.clone()),
            Some(_) => {
                inner.sessions.remove(id);
                inner.order.retain(|kept| kept != id);
                Err(Error::Unauthorized("the dashboard session has ended; log in again".into()))
            }
            None => Err(Error::Unauthorized("no dashboard session; log in at /dash/login".into())),
        }
    }

    /// Ends session `id` (nothing happens for an unknown one).
    pub fn end(&self, id: &str) {
        let mut inner = self.lock();
        if inner.sessions.remove(id).is_some() {
            inner.order.retain(|kept| kept != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_hold_their_token_until_they_end() {
        let sessions = Sessions::default();
        let id = sessions.start("rav_secret").unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.token(&id).unwrap(), "rav_secret");
        assert!(matches!(sessions.token("nope"), Err(Error::Unauthorized(_))));
        let other = sessions.start("rav_secret").unwrap();
        assert_ne!(id, other, "each login is a new session");
        sessions.end(&id);
        assert!(matches!(sessions.token(&id), Err(Error::Unauthorized(_))));
        assert_eq!(sessions.token(&other).unwrap(), "rav_secret");
    }
}
