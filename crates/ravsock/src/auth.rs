//! Accounts' roles and API tokens.
//!
//! A token is 32 random bytes as hex with a `rav_` prefix, shown once at creation. The database
//! keeps only its SHA-256 (tokens are high-entropy, so a slow password hash adds nothing), and
//! no token is ever logged. A token may expire and may be revoked (see [`crate::db::accounts`]).

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};

pub use ravproto::accounts::Role;

/// The role of a stored or command-line name.
pub fn role(name: &str) -> Result<Role> {
    Role::from_name(name)
        .ok_or_else(|| Error::BadRequest(format!("unknown role `{name}` (requester, provider or admin)")))
}

/// The longest account name.
pub const MAX_ACCOUNT_NAME: usize = 64;

/// Checks a new account's name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`, so it can stand
/// in a route's path (`/v1/admin/tokens/{name}/revoke`) and a terminal's table as it is.
pub fn check_account_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || name.len() > MAX_ACCOUNT_NAME || !name.chars().all(allowed) {
        return Err(Error::BadRequest(format!(
            "an account name is 1 to {MAX_ACCOUNT_NAME} letters, digits, `.`, `_`, `-` or `@`; `{}` is not",
            name.escape_debug()
        )));
    }
    Ok(())
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

/// A unix time as people read it: RFC 3339 in UTC, to the second.
pub fn utc(unix_secs: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix_secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}
