//! The Raven wire contract: everything that crosses a process boundary.
//!
//! This crate holds the ids, the status enums, the op catalogue (all 145 operators of the
//! original RDF registry with short names, wire names, arity and typed params), the tensor
//! encoding, the message bodies (with the accounts' roles and tokens in [`accounts`]), the HTTP routes, the topics' rounds ([`topics`]), the work-function ABI of jobs ([`work`]), jobs and their slices ([`jobs`]) and the names of bulk-data files. It does no I/O: servers and clients meet here and nowhere
//! else, so a type that travels lives in this crate.

pub mod accounts;
pub mod blob;
pub mod checkpoint;
pub mod dash;
pub mod federated;
pub mod files;
pub mod frame;
pub mod ids;
pub mod index;
pub mod jobs;
pub mod ledger;
pub mod messages;
pub mod model;
pub mod ops;
pub mod original;
pub mod provider;
pub mod requester;
pub mod routes;
pub mod status;
pub mod tensor;
pub mod topics;
pub mod verify;
pub mod work;

pub use ids::{GraphId, OpId, ProviderId};
pub use index::{IndexExpr, IndexItem, IndexParseError};
pub use ops::{Arity, Group, OpKind, Operation, OperationError};
pub use tensor::{DType, Scalar, TensorData, TensorError, TensorReceiver, Value};

/// Version of the wire protocol; peers with a different major version refuse each other.
pub const PROTOCOL_VERSION: u32 = 5;

#[cfg(test)]
mod tests;
