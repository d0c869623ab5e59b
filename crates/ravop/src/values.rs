//! Conversions from Rust values to tensors for `Graph::t` (the original's `R.t()`).
//!
//! Implemented per element type rather than over `T: Elem`, so that plain integer literals
//! (`vec![1, 2, 3]`, which Rust types as `i32`) work and widen to `i64`, NumPy's default.

use ndarray::{Array, ArrayD, Dimension, IxDyn};
use ravexec::{Elem, Tensor};

/// Anything that can become a constant tensor in a graph.
pub trait IntoTensor {
    /// The tensor.
    fn into_tensor(self) -> Tensor;
}

impl IntoTensor for Tensor {
    fn into_tensor(self) -> Tensor {
        self
    }
}

fn vector<T: Elem>(values: Vec<T>) -> Tensor {
    let n = values.len();
    T::wrap(ArrayD::from_shape_vec(IxDyn(&[n]), values).expect("1-D of its own length"))
}

/// Element conversion of whole arrays: none for the types we compute with (a big array
/// becomes a tensor without a copy), `i32` widens to `i64`.
trait Widen<E>: Sized {
    fn widen(array: ArrayD<Self>) -> ArrayD<E>;
}

impl<T: Elem> Widen<T> for T {
    fn widen(array: ArrayD<T>) -> ArrayD<T> {
        array
    }
}

impl Widen<i64> for i32 {
    fn widen(array: ArrayD<i32>) -> ArrayD<i64> {
        array.mapv(i64::from)
    }
}

macro_rules! into_tensor {
    ($($t:ty => $elem:ty),*) => {$(
        impl IntoTensor for $t {
            fn into_tensor(self) -> Tensor {
                <$elem as Elem>::wrap(ArrayD::from_elem(IxDyn(&[]), <$elem>::from(self)))
            }
        }
        impl IntoTensor for Vec<$t> {
            fn into_tensor(self) -> Tensor {
                vector(self.into_iter().map(<$elem>::from).collect::<Vec<$elem>>())
            }
        }
        impl IntoTensor for &[$t] {
            fn into_tensor(self) -> Tensor {
                self.to_vec().into_tensor()
            }
        }
        impl<const N: usize> IntoTensor for [$t; N] {
            fn into_tensor(self) -> Tensor {
                self.to_vec().into_tensor()
            }
        }
        impl<D: Dimension> IntoTensor for Array<$t, D> {
            fn into_tensor(self) -> Tensor {
                <$elem as Elem>::wrap(<$t as Widen<$elem>>::widen(self.into_dyn()))
            }
        }
    )*};
}

into_tensor!(f32 => f32, f64 => f64, i64 => i64, bool => bool, u8 => u8, i32 => i64);
