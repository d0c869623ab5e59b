//! Raven requester SDK: build graphs of tensor ops and run them.
//!
//! ```
//! use ravop::{Graph, LocalExecutor};
//!
//! let graph = Graph::new("hello");
//! let a = graph.t(vec![1.0, 2.0, 3.0]);
//! let b = graph.t(vec![5.0, 22.0, 7.0]);
//! (&a + &b).persist("c");
//! let results = LocalExecutor::default().run(&graph)?;
//! assert_eq!(results.array::<f64>("c")?.into_raw_vec_and_offset().0, vec![6.0, 24.0, 10.0]);
//! # Ok::<(), ravop::Error>(())
//! ```
//!
//! A [`Graph`] records ops lazily; nothing is computed while building. Every catalogue op is a
//! method on [`Op`] (or on [`Graph`] for ops without inputs), and `+ - * /` and unary `-` are
//! overloaded. Mistakes that operator overloading cannot return as a `Result` (mixing ops of
//! two graphs, a malformed index string, a duplicate persist name) are recorded and reported by
//! [`Graph::validate`] and by every executor before anything runs. [`LocalExecutor`] runs a
//! graph in-process on the `ravexec` kernels; the distributed client runs the same graph on
//! providers and must return the same persisted values. [`federated`] asks providers for
//! statistics of their private CSV files (encrypted with the `he` feature). A topic
//! ([`Client::open_topic`]) asks workers a question in rounds, on a cadence.

mod account;
mod client;
mod error;
mod events;
mod executor;
pub mod federated;
mod graph;
pub mod jobs;
mod methods;
pub mod ml;
pub mod nn;
mod original;
mod topics;
mod values;

pub use client::{BlockingClient, CHUNK_OPS, CHUNK_VALUE_BYTES, Client, DEFAULT_URL, RECONNECT_FOR, progress_bar};
pub use error::{Error, Result};
pub use events::{GraphEvent, Subscription};
pub use executor::{LocalExecutor, Results};
pub use federated::{FederatedQuery, Rules, federated_progress_bar};
pub use graph::{Graph, Node, Op};
pub use original::Kwargs;
pub use ravexec::{Elem, Tensor, TensorValue};
pub use ravproto::federated::{FederatedSpec, Privacy};
pub use ravproto::messages::GraphProgress;
pub use ravproto::messages::{Approach, ColumnRule, FederatedRules, GraphMeta, Requirements};
pub use ravproto::model::FittedModel;
pub use ravproto::ops;
pub use ravproto::requester::OpFailedNotice;
pub use ravproto::status::{GraphStatus, OpStatus};
pub use ravproto::topics::{Aggregation, Round, RoundStatus, Score, Topic, TopicId, TopicSpec};
pub use ravproto::{DType, GraphId, IndexExpr, IndexItem, OpId, OpKind, Operation, Scalar};
pub use topics::RoundFollower;
pub use values::IntoTensor;

#[cfg(test)]
mod tests;

/// `docs/porting.md` (the original RDF's calls beside ravop's), included so that
/// `cargo test --doc` compiles and runs its Rust blocks.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/porting.md")]
pub struct PortingGuide;
