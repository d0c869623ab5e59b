//! Kernel errors: every bad input becomes a typed error naming the op and the reason.

use ravproto::{Arity, OpKind};

/// Why a kernel refused its inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    /// Wrong number of inputs.
    #[error("expected {expected} inputs, got {got}")]
    Arity {
        /// What the catalogue says.
        expected: Arity,
        /// What was given.
        got: usize,
    },
    /// Shapes that do not broadcast.
    #[error("shapes {a:?} and {b:?} cannot be broadcast together")]
    Broadcast {
        /// First shape.
        a: Vec<usize>,
        /// Second shape.
        b: Vec<usize>,
    },
    /// Any other shape problem.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A dtype the op does not accept.
    #[error("unsupported dtype: {0}")]
    DType(String),
    /// An axis outside the array.
    #[error("axis {axis} is out of bounds for array of dimension {ndim}")]
    Axis {
        /// The axis given.
        axis: i64,
        /// The array's dimensions.
        ndim: usize,
    },
    /// `inv` of a singular matrix.
    #[error("singular matrix")]
    Singular,
    /// A bad subscript.
    #[error("index error: {0}")]
    Index(String),
    /// A bad value (negative count, empty reduction, ...).
    #[error("invalid value: {0}")]
    Value(String),
    /// An input is a list where a tensor is needed.
    #[error("input {0} must be a tensor, got a list")]
    NotTensor(usize),
    /// A whole model (ONNX) that cannot be read or run.
    #[error("model error: {0}")]
    Model(String),
    /// The op exists in the catalogue but this executor does not run it.
    #[error("not yet supported: {0}")]
    Unsupported(String),
}

/// A kernel error, naming the op.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("op `{op}`: {kind}")]
pub struct ExecError {
    /// The op that failed.
    pub op: OpKind,
    /// Why.
    pub kind: ErrorKind,
}

pub(crate) type KResult<T> = Result<T, ErrorKind>;
