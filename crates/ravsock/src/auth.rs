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

/// The longest a token may be made to last (`--expires-in`, `expires_in_secs`): 100 years.
pub const MAX_EXPIRES_IN_SECS: u64 = 100 * 366 * 24 * 3600;

/// Checks a new token's lifetime.
pub fn check_expires_in(secs: Option<u64>) -> Result<()> {
    match secs {
        Some(secs) if secs > MAX_EXPIRES_IN_SECS => Err(Error::BadRequest(format!(
            "a token may last at most 100 years ({MAX_EXPIRES_IN_SECS} s); leave the expiry out for one that lasts until revoked"
        ))),
        _ => Ok(()),
    }
}

/// A unix time as people read it: RFC 3339 in UTC, to the second (the number itself past the
/// year 9999, which RFC 3339 cannot write).
pub fn utc(unix_secs: i64) -> String {
    const YEAR_10000: i64 = 253_402_300_800;
    match u64::try_from(unix_secs) {
        Ok(secs) if unix_secs < YEAR_10000 => {
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
        }
        _ => format!("unix time {unix_secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_for_people_and_never_panic() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(utc(i64::MAX), format!("unix time {}", i64::MAX));
        assert_eq!(utc(-5), "unix time -5");
        assert!(check_expires_in(Some(MAX_EXPIRES_IN_SECS)).is_ok() && check_expires_in(None).is_ok());
        assert!(matches!(check_expires_in(Some(u64::MAX)), Err(Error::BadRequest(_))));
    }
}
