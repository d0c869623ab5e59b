//! The user store of ravftp: who may log in, with which password, and where their home is.
//!
//! ravsock issues credentials (one user per provider connection, one per requester account);
//! the password is random, shown once to its owner, and kept here only as a salted SHA-256.
//! Random 192-bit passwords do not need a slow hash: there is nothing to guess from a hash of
//! one. Every user has a home directory under the server root, which the FTP backend confines
//! their session to.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// Why a user could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name has characters other than `[A-Za-z0-9_-]` or is too long.
    #[error("invalid ftp user name {0:?}: use 1-64 characters of [A-Za-z0-9_-]")]
    InvalidName(String),
    /// The home directory could not be made.
    #[error("cannot create the home directory of {user}: {source}")]
    Home {
        user: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The system's random source failed.
    #[error("no randomness for a password: {0}")]
    Random(String),
}

struct Entry {
    salt: [u8; 16],
    hash: [u8; 32],
    home: PathBuf,
}

/// A user just issued: the only place its password appears in the clear.
#[derive(Clone)]
pub struct IssuedUser {
    /// User name.
    pub user: String,
    pub password: String,
    /// Home directory (absolute).
    pub home: PathBuf,
}

impl std::fmt::Debug for IssuedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedUser").field("user", &self.user).field("home", &self.home).finish_non_exhaustive()
    }
}

/// The users of one ravftp server.
pub struct Users {
    root: PathBuf,
    entries: RwLock<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").field("root", &self.root).finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], UserError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| UserError::Random(e.to_string()))?;
    Ok(bytes)
}

fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

/// Compares without an early exit, so timing says nothing about how much matched.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Users {
    /// A store whose homes live under `root` (created if missing, made absolute).
    pub fn new(root: &Path) -> std::io::Result<Users> {
        std::fs::create_dir_all(root)?;
        Ok(Users { root: root.canonicalize()?, entries: RwLock::new(HashMap::new()) })
    }

    /// The server root (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Issues (or re-issues, with a new password) `user`, creating its home directory.
    pub fn issue(&self, user: &str) -> Result<IssuedUser, UserError> {
        let valid =
            (1..=64).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(UserError::InvalidName(user.to_string()));
        }
        let home = self.root.join(user);
        std::fs::create_dir_all(&home).map_err(|source| UserError::Home { user: user.to_string(), source })?;
        let password = hex::encode(random::<24>()?);
        let salt = random::<16>()?;
        let entry = Entry { salt, hash: digest(&salt, &password), home: home.clone() };
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(user.to_string(), entry);
        Ok(IssuedUser { user: user.to_string(), password, home })
    }

    /// Adds a user whose salted hash is already known (the standalone server's users file).
    pub fn insert_hashed(&self, user: &str, salt: [u8; 16], hash: [u8; 32]) -> Result<PathBuf, UserError> {
        let home = self.root.join(user);
        std::fs::create_dir_all(&home).map_err(|source| UserError::Home { user: user.to_string(), source })?;
        let entry = Entry { salt, hash, home: home.clone() };
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(user.to_string(), entry);
        Ok(home)
    }

    /// Removes `user` and deletes its home directory with everything in it.
    pub fn revoke(&self, user: &str) {
        let removed = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(user);
        if let Some(entry) = removed
            && let Err(error) = std::fs::remove_dir_all(&entry.home)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(user, cause = %error, "cannot remove ftp home");
        }
    }

    /// The home of `user`, if it exists.
    pub fn home(&self, user: &str) -> Option<PathBuf> {
        self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(user).map(|e| e.home.clone())
    }

    /// Whether `password` is `user`'s.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(user).is_some_and(|entry| same(&digest(&entry.salt, password), &entry.hash))
    }
}

/// A salted hash of `password` for a users file: `(salt, hash)` in hex.
pub fn hash_password(password: &str) -> Result<(String, String), UserError> {
    let salt = random::<16>()?;
    Ok((hex::encode(salt), hex::encode(digest(&salt, password))))
}

/// A fresh random password (48 hex characters).
pub fn new_password() -> Result<String, UserError> {
    Ok(hex::encode(random::<24>()?))
}
