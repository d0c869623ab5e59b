//! Managing tokens over HTTP (admin only): create an account and its token, list every
//! token without its secret, revoke one. The same as `ravsock token create | list | revoke`.

use super::access;
use crate::db::{Account, Db};
use crate::error::Result;
use ravproto::accounts::{CreateTokenRequest, CreatedToken, TokenList};

/// Creates an account and its token (shown in the answer, and never again).
pub async fn create(db: &Db, caller: &Account, request: CreateTokenRequest) -> Result<CreatedToken> {
    access::admin(caller)?;
    let (token, expires_at) = db.create_account_until(&request.name, request.role, request.expires_in_secs).await?;
    tracing::info!(admin = %caller.name, account = %request.name, role = %request.role, "token created");
    Ok(CreatedToken { name: request.name, token, expires_at: expires_at.map(|at| u64::try_from(at).unwrap_or(0)) })
}

/// Every account's token, without secrets.
pub async fn list(db: &Db, caller: &Account) -> Result<TokenList> {
    access::admin(caller)?;
    Ok(TokenList { tokens: db.tokens().await? })
}

/// Revokes `name`'s token: its next request is refused and its open sockets are closed.
pub async fn revoke(db: &Db, caller: &Account, name: &str) -> Result<()> {
    access::admin(caller)?;
    db.revoke_token(name).await?;
    tracing::info!(admin = %caller.name, account = %name, "token revoked");
    Ok(())
}
