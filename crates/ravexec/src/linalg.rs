//! Linear algebra: `matmul` (NumPy `matmul`, batched and broadcasting), `dot` (NumPy `dot`
//! rules) and `inv` (LU with partial pivoting, like LAPACK's `getrf`/`getri`).
//!
//! Float products use ndarray's `general_mat_mul` (matrixmultiply, threaded), which measured
//! at OpenBLAS speed on this machine class (see ../shared/design/DEPS.md).

use crate::elementwise::arithmetic;
use crate::error::{ErrorKind, KResult};
use crate::tensor::{Elem, Tensor, broadcast_shapes, promote};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayD, ArrayView2, Axis, Ix2, IxDyn};
use ravproto::{DType, OpKind};

trait MatElem: Elem {
    fn matmul(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>) -> Array2<Self>;
}

macro_rules! float_matmul {
    ($t:ty) => {
        impl MatElem for $t {
            fn matmul(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>) -> Array2<Self> {
                let mut c = Array2::<$t>::zeros((a.nrows(), b.ncols()));
                general_mat_mul(1.0, &a, &b, 0.0, &mut c);
                c
            }
        }
    };
}

float_matmul!(f32);
float_matmul!(f64);

macro_rules! int_matmul {
    ($t:ty) => {
        impl MatElem for $t {
            fn matmul(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>) -> Array2<Self> {
                let (n, k, m) = (a.nrows(), a.ncols(), b.ncols());
                let mut c = Array2::<$t>::zeros((n, m));
                for i in 0..n {
                    for p in 0..k {
                        let x = a[(i, p)];
                        for j in 0..m {
                            c[(i, j)] = c[(i, j)].wrapping_add(x.wrapping_mul(b[(p, j)]));
                        }
                    }
                }
                c
            }
        }
    };
}

int_matmul!(i64);
int_matmul!(u8);

fn batched<T: MatElem>(a: &ArrayD<T>, b: &ArrayD<T>) -> KResult<ArrayD<T>> {
    if a.ndim() == 2 && b.ndim() == 2 && a.shape()[1] == b.shape()[0] {
        // The common case goes straight to the GEMM, without batch bookkeeping or copies.
        crate::tensor::checked_len(&[a.shape()[0], b.shape()[1]])?;
        let x = a.view().into_dimensionality::<Ix2>().expect("2-D");
        let y = b.view().into_dimensionality::<Ix2>().expect("2-D");
        return Ok(T::matmul(x, y).into_dyn());
    }
    let (a_vec, b_vec) = (a.ndim() == 1, b.ndim() == 1);
    let a3 = if a_vec { a.view().insert_axis(Axis(0)) } else { a.view() };
    let b3 = if b_vec { b.view().insert_axis(Axis(1)) } else { b.view() };
    let (an, ak) = (a3.shape()[a3.ndim() - 2], a3.shape()[a3.ndim() - 1]);
    let (bk, bm) = (b3.shape()[b3.ndim() - 2], b3.shape()[b3.ndim() - 1]);
    if ak != bk {
        return Err(ErrorKind::Shape(format!(
            "matmul: input operand 1 has a mismatch in its core dimension 0 (size {bk} is different from {ak})"
        )));
    }
    let batch = broadcast_shapes(&a3.shape()[..a3.ndim() - 2], &b3.shape()[..b3.ndim() - 2])?;
    let count: usize = batch.iter().product();
    crate::tensor::checked_len(&[count, an, bm])?;
    let mut a_shape = batch.clone();
    a_shape.extend([an, ak]);
    let mut b_shape = batch.clone();
    b_shape.extend([bk, bm]);
    let a_b = a3.broadcast(IxDyn(&a_shape)).expect("batch dims broadcast");
    let b_b = b3.broadcast(IxDyn(&b_shape)).expect("batch dims broadcast");
    let a_flat = a_b.to_shape(IxDyn(&[count, an, ak])).expect("same element count");
    let b_flat = b_b.to_shape(IxDyn(&[count, bk, bm])).expect("same element count");
    let mut out = Vec::with_capacity(count * an * bm);
    for i in 0..count {
        let x = a_flat.index_axis(Axis(0), i).into_dimensionality::<Ix2>().expect("2-D");
        let y = b_flat.index_axis(Axis(0), i).into_dimensionality::<Ix2>().expect("2-D");
        let c = T::matmul(x, y);
        out.extend(c.iter().copied());
    }
    let mut shape = batch;
    if !a_vec {
        shape.push(an);
    }
    if !b_vec {
        shape.push(bm);
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out).expect("batch times rows times columns"))
}

/// NumPy `matmul`.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(ErrorKind::Shape("matmul: input operand does not have enough dimensions (0-d)".into()));
    }
    let dtype = promote(a.dtype(), b.dtype());
    let work = if dtype == DType::Bool { DType::I64 } else { dtype };
    let x = a.cast_cow(work);
    let y = b.cast_cow(work);
    let out = match (&*x, &*y) {
        (Tensor::F32(p), Tensor::F32(q)) => Tensor::F32(batched(p, q)?),
        (Tensor::F64(p), Tensor::F64(q)) => Tensor::F64(batched(p, q)?),
        (Tensor::I64(p), Tensor::I64(q)) => Tensor::I64(batched(p, q)?),
        (Tensor::U8(p), Tensor::U8(q)) => Tensor::U8(batched(p, q)?),
        _ => unreachable!("cast to one numeric dtype"),
    };
    Ok(if dtype == DType::Bool { out.cast(DType::Bool) } else { out })
}

/// NumPy `dot`.
pub(crate) fn dot(a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return arithmetic(OpKind::Mul, a, b);
    }
    if a.ndim() <= 2 && b.ndim() <= 2 || b.ndim() == 1 || a.ndim() == 1 {
        if a.ndim() == 1 && b.ndim() > 2 {
            // dot(k, (..., k, m)) sums over b's second-to-last axis: matmul gives exactly that.
            return matmul(a, b);
        }
        if a.ndim() >= 1 && b.ndim() == 1 {
            let k = a.shape()[a.ndim() - 1];
            if k != b.shape()[0] {
                return Err(ErrorKind::Shape(format!(
                    "shapes {:?} and {:?} not aligned: {} (dim {}) != {} (dim 0)",
                    a.shape(),
                    b.shape(),
                    k,
                    a.ndim() - 1,
                    b.shape()[0]
                )));
            }
        }
        return matmul(a, b).map_err(|e| match e {
            ErrorKind::Shape(_) => ErrorKind::Shape(format!("shapes {:?} and {:?} not aligned", a.shape(), b.shape())),
            other => other,
        });
    }
    // N-D · M-D: sum over a's last axis and b's second-to-last.
    let k = a.shape()[a.ndim() - 1];
    if k != b.shape()[b.ndim() - 2] {
        return Err(ErrorKind::Shape(format!("shapes {:?} and {:?} not aligned", a.shape(), b.shape())));
    }
    let rows: usize = a.shape()[..a.ndim() - 1].iter().product();
    let mut out_shape = a.shape()[..a.ndim() - 1].to_vec();
    out_shape.extend_from_slice(&b.shape()[..b.ndim() - 2]);
    out_shape.push(b.shape()[b.ndim() - 1]);
    let a2 = crate::shape::reshape_to(a, &[rows, k]);
    let mut order: Vec<usize> = vec![b.ndim() - 2];
    order.extend((0..b.ndim()).filter(|&i| i != b.ndim() - 2));
    let b_moved = crate::shape::permute(b, &order);
    let cols: usize = b.shape().iter().enumerate().filter(|&(i, _)| i != b.ndim() - 2).map(|(_, &d)| d).product();
    let b2 = crate::shape::reshape_to(&b_moved, &[k, cols]);
    let product = matmul(&a2, &b2)?;
    Ok(crate::shape::reshape_to(&product, &out_shape))
}

fn invert(matrix: &mut [f64], n: usize) -> KResult<Vec<f64>> {
    // Gauss-Jordan with partial pivoting on [A | I].
    let mut inverse = vec![0.0; n * n];
    for i in 0..n {
        inverse[i * n + i] = 1.0;
    }
    for col in 0..n {
        let pivot_row = (col..n)
            .max_by(|&r, &s| matrix[r * n + col].abs().total_cmp(&matrix[s * n + col].abs()))
            .expect("non-empty range");
        let pivot = matrix[pivot_row * n + col];
        if pivot == 0.0 || pivot.is_nan() {
            return Err(ErrorKind::Singular);
        }
        if pivot_row != col {
            for j in 0..n {
                matrix.swap(pivot_row * n + j, col * n + j);
                inverse.swap(pivot_row * n + j, col * n + j);
            }
        }
        for j in 0..n {
            matrix[col * n + j] /= pivot;
            inverse[col * n + j] /= pivot;
        }
        for row in 0..n {
            if row == col {
                continue;
            }
            let factor = matrix[row * n + col];
            if factor != 0.0 {
                for j in 0..n {
                    matrix[row * n + j] -= factor * matrix[col * n + j];
                    inverse[row * n + j] -= factor * inverse[col * n + j];
                }
            }
        }
    }
    Ok(inverse)
}

/// Matrix inverse of the last two axes (batched); integers invert in `f64`.
pub(crate) fn inv(a: &Tensor) -> KResult<Tensor> {
    if a.ndim() < 2 {
        return Err(ErrorKind::Shape(format!(
            "{}-dimensional array given; array must be at least two-dimensional",
            a.ndim()
        )));
    }
    let (n, m) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
    if n != m {
        return Err(ErrorKind::Shape("last 2 dimensions of the array must be square".into()));
    }
    let values = a.to_f64_array();
    let flat = values.as_standard_layout();
    let slice = flat.as_slice().expect("standard layout");
    let mut out = Vec::with_capacity(slice.len());
    for block in slice.chunks(n * n.max(1)).take(if n == 0 { 0 } else { slice.len() / (n * n) }) {
        let mut matrix = block.to_vec();
        out.extend(invert(&mut matrix, n)?);
    }
    let result = ArrayD::from_shape_vec(IxDyn(a.shape()), out).expect("same shape");
    Ok(if a.dtype() == DType::F32 { Tensor::F64(result).cast(DType::F32) } else { Tensor::F64(result) })
}
