//! Deep-learning kernels (groups G and I): layers with their backward passes, losses and
//! optimizers, as plain functions on ndarray.
//!
//! Everything here is stateless math: a layer's forward returns its output and whatever its
//! backward needs (an [`activation`] its output, [`pool`] the argmax positions, [`norm`] the
//! normalised input), and the backward returns the gradients of the input and of the weights.
//! [`dense`], [`conv`] (im2col), [`pool`], [`norm`] (batch and layer norm), [`dropout`]
//! (dropout and embedding), [`loss`] and [`optim`] (the seven optimizers) cover groups G and I. Holding weights and optimizer state between ops, batches and subgraphs is the job
//! of the caller (the training session), which keeps these functions easy to test: every
//! backward is checked against finite differences in `tests/it/nn.rs`.
//!
//! The functions are generic over [`NnFloat`] (`f32` and `f64`): training runs in the dtype of
//! its inputs, and the gradient checks run in `f64`. Semantics follow PyTorch (its defaults,
//! its formulas for the optimizers, mean reductions in the losses). Parallel loops split over
//! independent rows or samples and always combine partial results in a fixed order, so a
//! training run gives the same numbers on every provider and in the local executor.

pub mod activation;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod pool;

use ndarray::{LinalgScalar, ScalarOperand};

/// `a` in row-major order, copied only when it is not: `dot` answers in column-major order
/// when both operands are (one output unit or channel, say), and a reshape needs row-major.
pub(crate) fn standard<F: Clone, D: ndarray::Dimension>(a: ndarray::Array<F, D>) -> ndarray::Array<F, D> {
    if a.is_standard_layout() { a } else { a.as_standard_layout().into_owned() }
}

/// The element types layers compute in.
pub trait NnFloat:
    num_traits::Float
    + num_traits::FromPrimitive
    + LinalgScalar
    + ScalarOperand
    + Send
    + Sync
    + std::fmt::Debug
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + 'static
{
    /// `x` in this type (optimizer hyper-parameters arrive as `f64`).
    fn of(x: f64) -> Self {
        <Self as num_traits::FromPrimitive>::from_f64(x).unwrap_or_else(Self::nan)
    }
}

impl NnFloat for f32 {}
impl NnFloat for f64 {}

/// Why a layer refused its inputs (turned into the kernel error of the op that called it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NnError {
    /// Shapes that do not fit the layer.
    #[error("{0}")]
    Shape(String),
    /// A parameter out of its range.
    #[error("{0}")]
    Param(String),
}

/// Results of the deep-learning kernels.
pub type NnResult<T> = Result<T, NnError>;

impl From<NnError> for crate::ErrorKind {
    fn from(error: NnError) -> crate::ErrorKind {
        match error {
            NnError::Shape(message) => crate::ErrorKind::Shape(message),
            NnError::Param(message) => crate::ErrorKind::Value(message),
        }
    }
}
