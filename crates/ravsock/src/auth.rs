//! Accounts' roles and API tokens.
//!
//! A token is 32 random bytes as hex with a `rav_` prefix, shown once at creation. The database
//! keeps only its SHA-256 (tokens are high-entropy, so a slow password hash adds nothing), and
//! no token is ever logged.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Submits graphs and reads its own results.
    Requester,
    /// Computes subgraphs.
    Provider,
    /// Everything, including managing accounts.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Requester => "requester",
            Role::Provider => "provider",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored or command-line name.
    pub fn from_name(name: &str) -> Result<Role> {
        match name {
            "requester" => Ok(Role::Requester),
            "provider" => Ok(Role::Provider),
            "admin" => Ok(Role::Admin),
            other => Err(Error::BadRequest(format!("unknown role `{other}` (requester, provider or admin)"))),
        }
    }
}

/// A new random token.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness for a token: {e}")))?;
    Ok(format!("rav_{}", hex::encode(bytes)))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
