//! Identifiers allocated by the server (graphs, ops, providers).
//!
//! All ids are opaque `u64` newtypes serialized as plain JSON numbers. The original RDF let
//! clients guess the next graph id (`count()+1`); here the server allocates every id.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A graph, allocated by the server when the requester creates it.
    GraphId,
    "graph#"
);
id_type!(
    /// An op inside a graph. Client-side builders use their own local numbering.
    OpId,
    "op#"
);
id_type!(
    /// A provider (a compute node that joined the grid).
    ProviderId,
    "provider#"
);
