//! The `accounts` table: who may call, with which role; tokens only as their hashes, with an
//! optional expiry, a revocation and the time of their last use.
//!
//! A request authenticates from memory ([`Tokens`]) so it does not wait on the database. What
//! would make a remembered account stale is handled where it happens: an expiry is checked at
//! every use; a revocation by this process forgets the account at once; a revocation written by
//! another process (`ravsock token revoke`) is seen by the server's token watcher
//! (`api::tokens`), which compares [`Db::revoked_count`] twice a second and then forgets every
//! remembered account. Last uses are kept in memory and written in one batch by that watcher.

use super::rows::AccountRow;
use super::{Db, Statement, now_secs};
use crate::auth::{self, Role};
use crate::error::{Error, Result};
use ravproto::accounts::TokenInfo;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};

/// An authenticated account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When its token stops working (unix seconds), if ever.
    pub expires_at: Option<i64>,
}

impl Account {
    /// Whether its token has expired at `now` (unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What this process remembers of tokens: accounts by token hash (revoked ones too, so a
/// revoked token sent again and again does not cost a query each time), the last uses not yet
/// written, and a signal for the token watcher.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    by_hash: RwLock<HashMap<String, Remembered>>,
    last_used: Mutex<HashMap<i64, i64>>,
    revoked_here: tokio::sync::Notify,
}

#[derive(Clone, Debug)]
struct Remembered {
    account: Account,
    revoked: bool,
}

/// The account of a remembered token if the token works at `now`; otherwise a 401 that says
/// why where that tells the caller what to do.
fn working(row: Option<Remembered>, now: i64) -> Result<Account> {
    let ask = "ask an admin for a new one";
    match row {
        None => Err(Error::Unauthorized("missing or invalid token".into())),
        Some(row) if row.revoked => {
            Err(Error::Unauthorized(format!("the token of `{}` was revoked: {ask}", row.account.name)))
        }
        Some(Remembered { account, .. }) => match account.expires_at {
            Some(at) if at <= now => {
                Err(Error::Unauthorized(format!("the token of `{}` expired at {}: {ask}", account.name, auth::utc(at))))
            }
            _ => Ok(account),
        },
    }
}

impl Db {
    /// Creates an account and returns its token and when that expires (unix seconds); only the
    /// token's hash is stored. The token stops working `expires_in_secs` from now, if given.
    pub async fn create_account_until(
        &self,
        name: &str,
        role: Role,
        expires_in_secs: Option<u64>,
    ) -> Result<(String, Option<i64>)> {
        auth::check_account_name(name)?;
        auth::check_expires_in(expires_in_secs)?;
        let token = auth::new_token()?;
        let now = now_secs();
        let expires_at = expires_in_secs.map(|secs| now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)));
        let inserted = on_backend!(self, |pool, sql, DB| sqlx::query(
            "INSERT INTO accounts (name, role, token_sha256, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(name)
        .bind(role.name())
        .bind(auth::token_hash(&token))
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|_| ()));
        match inserted {
            Ok(_) => Ok((token, expires_at)),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::Conflict(format!("an account named `{name}` already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates an account whose token works until revoked, and returns the token.
    pub async fn create_account(&self, name: &str, role: Role) -> Result<String> {
        Ok(self.create_account_until(name, role, None).await?.0)
    }

    /// The account holding `token`, if the token works now: an unknown, revoked or expired
    /// token is refused with a 401 that says which. The use is remembered (see
    /// [`Db::flush_last_use`]).
    pub async fn authenticate(&self, token: &str) -> Result<Account> {
        let hash = auth::token_hash(token);
        let remembered = self.tokens.by_hash.read().unwrap_or_else(PoisonError::into_inner).get(&hash).cloned();
        let row = match remembered {
            Some(row) => Some(row),
            None => self.load_token(hash).await?,
        };
        let now = now_secs();
        let account = working(row, now)?;
        self.tokens.last_used.lock().unwrap_or_else(PoisonError::into_inner).insert(account.id, now);
        Ok(account)
    }

    /// Reads a token's account from the database and remembers it if there is one (a token
    /// created later by another process is looked up again).
    async fn load_token(&self, hash: String) -> Result<Option<Remembered>> {
        let row: Option<AccountRow> = on_backend!(self, |pool, sql, DB| {
            sqlx::query_as("SELECT id, name, role, expires_at, revoked_at FROM accounts WHERE token_sha256 = $1")
                .bind(&hash)
                .fetch_optional(pool)
                .await
        })?;
        let Some(row) = row else { return Ok(None) };
        let (account, revoked) = row.into_account()?;
        let row = Remembered { account, revoked };
        self.tokens.by_hash.write().unwrap_or_else(PoisonError::into_inner).insert(hash, row.clone());
        Ok(Some(row))
    }

    /// Revokes the token of the account `name`; its open sockets are closed by the token
    /// watcher. Revoking a revoked token is no error (the first revocation's time stays).
    pub async fn revoke_token(&self, name: &str) -> Result<()> {
        let now = now_secs();
        let found: Option<(i64,)> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "UPDATE accounts SET revoked_at = COALESCE(revoked_at, $1) WHERE name = $2 RETURNING id"
        )
        .bind(now)
        .bind(name)
        .fetch_optional(pool)
        .await)?;
        if found.is_none() {
            return Err(Error::NotFound(format!("no account is named `{name}`")));
        }
        self.forget_tokens();
        self.tokens.revoked_here.notify_one();
        Ok(())
    }

    /// Forgets every remembered account, so the next use of each token reads the database.
    pub fn forget_tokens(&self) {
        self.tokens.by_hash.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Resolves when this process revokes a token (the token watcher's wake-up).
    pub async fn token_revoked_here(&self) {
        self.tokens.revoked_here.notified().await;
    }

    /// How many accounts have been revoked: it only grows, so a change means a revocation.
    pub async fn revoked_count(&self) -> Result<i64> {
        let (count,): (i64,) = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT COUNT(*) FROM accounts WHERE revoked_at IS NOT NULL"
        )
        .fetch_one(pool)
        .await)?;
        Ok(count)
    }

    /// The ids of the revoked accounts.
    pub async fn revoked_accounts(&self) -> Result<std::collections::HashSet<i64>> {
        let rows: Vec<(i64,)> =
            on_backend!(self, |pool, sql, DB| sqlx::query_as("SELECT id FROM accounts WHERE revoked_at IS NOT NULL")
                .fetch_all(pool)
                .await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Writes the last uses remembered since the previous call, in one transaction.
    pub async fn flush_last_use(&self) -> Result<()> {
        let used = std::mem::take(&mut *self.tokens.last_used.lock().unwrap_or_else(PoisonError::into_inner));
        if used.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for (id, at) in &used {
            tx.execute(Statement::new("UPDATE accounts SET last_used_at = ").int(*at).sql(" WHERE id = ").int(*id))
                .await?;
        }
        Ok(tx.commit().await?)
    }

    /// Every account's token, without secrets, by name.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        type Row = (String, String, i64, Option<i64>, Option<i64>, Option<i64>);
        let rows: Vec<Row> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT name, role, created_at, last_used_at, expires_at, revoked_at FROM accounts ORDER BY name"
        )
        .fetch_all(pool)
        .await)?;
        let secs = |at: i64| u64::try_from(at).unwrap_or(0);
        rows.into_iter()
            .map(|(name, role, created_at, last_used_at, expires_at, revoked_at)| {
                Ok(TokenInfo {
                    role: auth::role(&role)?,
                    name,
                    created_at: secs(created_at),
                    last_used_at: last_used_at.map(secs),
                    expires_at: expires_at.map(secs),
                    revoked_at: revoked_at.map(secs),
                })
            })
            .collect()
    }
}

impl Db {
    /// Checks that the database takes a write (for `GET /readyz`): one row rewritten.
    pub async fn probe_write(&self) -> Result<()> {
        on_backend!(self, |pool, sql, DB| sqlx::query(
            "INSERT INTO readiness (id, checked_at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checked_at = $1"
        )
        .bind(now_secs())
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}
