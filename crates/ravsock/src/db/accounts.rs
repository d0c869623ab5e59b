//! The `accounts` table: who may call, with which role; tokens only as their hashes.

use super::rows::AccountRow;
use super::{Db, now_secs};
use crate::auth::{self, Role};
use crate::error::{Error, Result};

/// An authenticated account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Row id.
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// What it may do.
    pub role: Role,
}

impl Db {
    /// Creates an account and returns its token; only the token's hash is stored.
    pub async fn create_account(&self, name: &str, role: Role) -> Result<String> {
        let token = auth::new_token()?;
        let inserted = on_backend!(self, |pool, sql, DB| sqlx::query(
            "INSERT INTO accounts (name, role, token_sha256, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(name)
        .bind(role.name())
        .bind(auth::token_hash(&token))
        .bind(now_secs())
        .execute(pool)
        .await
        .map(|_| ()));
        match inserted {
            Ok(_) => Ok(token),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::Conflict(format!("an account named `{name}` already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account holding `token`, if any.
    pub async fn account_by_token(&self, token: &str) -> Result<Option<Account>> {
        let hash = auth::token_hash(token);
        if let Some(account) = self.accounts.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&hash) {
            return Ok(Some(account.clone()));
        }
        let row: Option<AccountRow> = on_backend!(self, |pool, sql, DB| sqlx::query_as(
            "SELECT id, name, role FROM accounts WHERE token_sha256 = $1"
        )
        .bind(&hash)
        .fetch_optional(pool)
        .await)?;
        let account = row.map(AccountRow::into_account).transpose()?;
        if let Some(account) = &account {
            // Only found accounts are kept: a token created later by another process is
            // looked up again.
            self.accounts.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(hash, account.clone());
        }
        Ok(account)
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
