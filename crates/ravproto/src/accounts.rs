//! Accounts and their tokens on the wire: the roles, and the bodies of the admin routes that
//! create, list and revoke tokens (`/v1/admin/tokens…`). A token's secret appears only in
//! [`CreatedToken`], once; a listing never holds it.

use serde::{Deserialize, Serialize};

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Submits graphs and reads its own results.
    Requester,
    /// Computes subgraphs.
    Provider,
    /// Everything, including managing accounts and tokens.
    Admin,
}

impl Role {
    /// Every role, in the order they are listed to people.
    pub const ALL: [Role; 3] = [Role::Requester, Role::Provider, Role::Admin];

    /// The stored and command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Requester => "requester",
            Role::Provider => "provider",
            Role::Admin => "admin",
        }
    }

    /// The role of a stored or command-line name.
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `POST /v1/admin/tokens`: a new account and its token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// The account's name (unique).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Seconds from now until the token stops working; none: it works until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
}

/// The answer to [`CreateTokenRequest`]: the secret, shown this once (only its hash is kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The account's name.
    pub name: String,
    /// The bearer token.
    pub token: String,
    /// When it stops working (unix seconds), if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// One account's token, without its secret (`GET /v1/admin/tokens`, `ravsock token list`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The account's name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created (unix seconds).
    pub created_at: u64,
    /// The last time it was used (unix seconds; kept to within a second or so), if ever.
    pub last_used_at: Option<u64>,
    /// When it stops working (unix seconds), if ever.
    pub expires_at: Option<u64>,
    /// When it was revoked (unix seconds), if it was.
    pub revoked_at: Option<u64>,
}

/// `GET /v1/admin/tokens`: every account's token, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    /// The tokens, ordered by name.
    pub tokens: Vec<TokenInfo>,
}
