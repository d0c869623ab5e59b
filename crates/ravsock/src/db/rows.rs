//! Rows as the queries read them, by column name (sqlx's `FromRow`, so a column is found by
//! its name, not by its place in the SELECT), and what each becomes.

use super::{Account, StoredGraph, StoredOp, StoredValue, from_json, parse_status};
use crate::error::{Error, Result};
use ravproto::{GraphId, OpId, Value};

/// The columns of [`GraphRow`], for `concat!("SELECT ", graph_columns!(), " FROM graphs …")`.
macro_rules! graph_columns {
    () => {
        "id, owner, meta, status, failure, expired_at"
    };
}

/// A `graphs` row.
#[derive(sqlx::FromRow)]
pub(super) struct GraphRow {
    id: i64,
    owner: i64,
    meta: String,
    status: String,
    failure: Option<String>,
    expired_at: Option<i64>,
}

impl GraphRow {
    pub(super) fn into_graph(self) -> Result<StoredGraph> {
        Ok(StoredGraph {
            id: GraphId(self.id as u64),
            owner: self.owner,
            meta: from_json(&self.meta)?,
            status: parse_status(&self.status)?,
            failure: self.failure,
            expired_at: self.expired_at,
        })
    }
}

/// An `accounts` row without its token hash.
#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    id: i64,
    name: String,
    role: String,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl AccountRow {
    /// The account, and whether its token was revoked.
    pub(super) fn into_account(self) -> Result<(Account, bool)> {
        let account =
            Account { id: self.id, name: self.name, role: crate::auth::role(&self.role)?, expires_at: self.expires_at };
        Ok((account, self.revoked_at.is_some()))
    }
}

/// An `ops` row.
#[derive(sqlx::FromRow)]
pub(super) struct OpRow {
    id: i64,
    local_id: i64,
    operation: String,
    inputs: String,
    persist: Option<String>,
    status: String,
}

impl OpRow {
    pub(super) fn into_op(self) -> Result<StoredOp> {
        let inputs: Vec<u64> = from_json(&self.inputs)?;
        Ok(StoredOp {
            id: OpId(self.id as u64),
            local_id: self.local_id as u64,
            operation: from_json(&self.operation)?,
            inputs: inputs.into_iter().map(OpId).collect(),
            persist: self.persist,
            status: parse_status(&self.status)?,
        })
    }
}

/// An op's stored value: inline in `op_values`, or the length of its file in `op_files`.
#[derive(sqlx::FromRow)]
pub(super) struct ValueRow {
    pub(super) op_id: i64,
    value: Option<Vec<u8>>,
    len: Option<i64>,
}

impl ValueRow {
    /// The value, `None` while the op has none. An op has one or the other; should it have
    /// both, the inline value is used.
    pub(super) fn into_value(self) -> Result<Option<StoredValue>> {
        let op = OpId(self.op_id as u64);
        Ok(match (self.value, self.len) {
            (Some(bytes), _) => Some(StoredValue::Inline(
                Value::decode_binary_owned(bytes).map_err(|e| Error::Internal(format!("stored value of {op}: {e}")))?,
            )),
            (None, Some(len)) => Some(StoredValue::File { len: len as u64 }),
            (None, None) => None,
        })
    }
}

/// A persisted op's name and its [`ValueRow`].
#[derive(sqlx::FromRow)]
pub(super) struct PersistedRow {
    pub(super) persist: String,
    #[sqlx(flatten)]
    pub(super) value: ValueRow,
}
