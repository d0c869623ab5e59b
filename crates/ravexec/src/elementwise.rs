//! Element-wise kernels (groups B and D): arithmetic, unary math, comparison and logic,
//! all broadcasting with NumPy 2 dtype rules.

use crate::error::{ErrorKind, KResult};
use crate::tensor::{Elem, Tensor, float_result, map, promote, zip_map};
use ndarray::ArrayD;
use ravproto::{DType, OpKind};

fn bool_refused(op: &str, hint: &str) -> ErrorKind {
    ErrorKind::DType(format!("numpy boolean {op} is not supported{hint}"))
}

/// Two-input arithmetic: `add`, `sub`, `mul`/`multiply`, `div`, `pow`.
pub(crate) fn arithmetic(kind: OpKind, a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    let mut dtype = promote(a.dtype(), b.dtype());
    if kind == OpKind::Div && !dtype.is_float() {
        dtype = DType::F64;
    }
    if kind == OpKind::Pow && dtype == DType::Bool {
        // NumPy computes bool ** bool in int8; the nearest dtype we carry is i64.
        dtype = DType::I64;
    }
    let a = a.cast_cow(dtype);
    let b = b.cast_cow(dtype);
    Ok(match (&*a, &*b) {
        (Tensor::F32(x), Tensor::F32(y)) => Tensor::F32(float_arith(kind, x, y)?),
        (Tensor::F64(x), Tensor::F64(y)) => Tensor::F64(float_arith(kind, x, y)?),
        (Tensor::I64(x), Tensor::I64(y)) => Tensor::I64(match kind {
            OpKind::Add => zip_map(x, y, i64::wrapping_add)?,
            OpKind::Sub => zip_map(x, y, i64::wrapping_sub)?,
            OpKind::Mul | OpKind::Multiply => zip_map(x, y, i64::wrapping_mul)?,
            OpKind::Pow => {
                // NumPy refuses a negative exponent where one is used: never in an empty result.
                let used = crate::tensor::broadcast_shapes(x.shape(), y.shape()).is_ok_and(|s| !s.contains(&0));
                if used && y.iter().any(|&e| e < 0) {
                    return Err(ErrorKind::Value("integers to negative integer powers are not allowed".into()));
                }
                zip_map(x, y, |base, exp| base.wrapping_pow(exp.min(i64::from(u32::MAX)) as u32))?
            }
            _ => unreachable!("division always runs in floats"),
        }),
        (Tensor::U8(x), Tensor::U8(y)) => Tensor::U8(match kind {
            OpKind::Add => zip_map(x, y, u8::wrapping_add)?,
            OpKind::Sub => zip_map(x, y, u8::wrapping_sub)?,
            OpKind::Mul | OpKind::Multiply => zip_map(x, y, u8::wrapping_mul)?,
            OpKind::Pow => zip_map(x, y, |base, exp| base.wrapping_pow(u32::from(exp)))?,
            _ => unreachable!("division always runs in floats"),
        }),
        (Tensor::Bool(x), Tensor::Bool(y)) => Tensor::Bool(match kind {
            OpKind::Add => zip_map(x, y, |p, q| p || q)?,
            OpKind::Mul | OpKind::Multiply => zip_map(x, y, |p, q| p && q)?,
            OpKind::Sub => return Err(bool_refused("subtract", ", use logical_xor instead")),
            _ => unreachable!("div and pow were promoted"),
        }),
        _ => unreachable!("both inputs were cast to one dtype"),
    })
}

fn float_arith<T>(kind: OpKind, x: &ArrayD<T>, y: &ArrayD<T>) -> KResult<ArrayD<T>>
where
    T: Elem + num_float::Float,
{
    match kind {
        OpKind::Add => zip_map(x, y, |p, q| p + q),
        OpKind::Sub => zip_map(x, y, |p, q| p - q),
        OpKind::Mul | OpKind::Multiply => zip_map(x, y, |p, q| p * q),
        OpKind::Div => zip_map(x, y, |p, q| p / q),
        OpKind::Pow => zip_map(x, y, T::powf),
        _ => unreachable!("only arithmetic kinds reach here"),
    }
}

/// Minimal float abstraction so f32 and f64 kernels share one body.
pub(crate) mod num_float {
    use std::ops::{Add, Div, Mul, Neg, Sub};

    /// The float operations the kernels need.
    pub(crate) trait Float:
        Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> + Neg<Output = Self>
    {
        fn powf(self, e: Self) -> Self;
        fn exp(self) -> Self;
        fn ln(self) -> Self;
        fn sqrt(self) -> Self;
        fn cbrt(self) -> Self;
        fn sign(self) -> Self;
    }

    macro_rules! impl_float {
        ($t:ty) => {
            impl Float for $t {
                fn powf(self, e: Self) -> Self {
                    <$t>::powf(self, e)
                }
                fn exp(self) -> Self {
                    <$t>::exp(self)
                }
                fn ln(self) -> Self {
                    <$t>::ln(self)
                }
                fn sqrt(self) -> Self {
                    <$t>::sqrt(self)
                }
                fn cbrt(self) -> Self {
                    <$t>::cbrt(self)
                }
                fn sign(self) -> Self {
                    if self.is_nan() || self == 0.0 { self } else { <$t>::signum(self) }
                }
            }
        };
    }

    impl_float!(f32);
    impl_float!(f64);
}

use num_float::Float;

fn float_unary<T: Elem + Float>(kind: OpKind, a: &ArrayD<T>) -> ArrayD<T> {
    match kind {
        OpKind::Exp => map(a, T::exp),
        OpKind::Natlog => map(a, T::ln),
        OpKind::SquareRoot => map(a, T::sqrt),
        OpKind::CubeRoot => map(a, T::cbrt),
        _ => unreachable!("only float ufuncs reach here"),
    }
}

/// One-input math: `pos`, `neg`, `exp`, `natlog`, `square`, `cube`, `square_root`,
/// `cube_root`, `abs`, `sign`.
pub(crate) fn unary(kind: OpKind, a: &Tensor) -> KResult<Tensor> {
    match kind {
        OpKind::Exp | OpKind::Natlog | OpKind::SquareRoot | OpKind::CubeRoot => {
            let a = a.cast_cow(float_result(a.dtype()));
            Ok(match &*a {
                Tensor::F32(x) => Tensor::F32(float_unary(kind, x)),
                Tensor::F64(x) => Tensor::F64(float_unary(kind, x)),
                _ => unreachable!("cast to a float dtype"),
            })
        }
        OpKind::Pos => match a {
            Tensor::Bool(_) => Err(bool_refused("positive", "")),
            other => Ok(other.clone()),
        },
        OpKind::Neg => Ok(match a {
            Tensor::Bool(_) => return Err(bool_refused("negative", ", use logical_not instead")),
            Tensor::F32(x) => Tensor::F32(map(x, |v| -v)),
            Tensor::F64(x) => Tensor::F64(map(x, |v| -v)),
            Tensor::I64(x) => Tensor::I64(map(x, i64::wrapping_neg)),
            Tensor::U8(x) => Tensor::U8(map(x, u8::wrapping_neg)),
        }),
        OpKind::Square | OpKind::Cube => {
            let cube = kind == OpKind::Cube;
            // NumPy squares bools in int8 and cubes them in int64; both become i64 here.
            let a = if a.dtype() == DType::Bool { a.cast_cow(DType::I64) } else { std::borrow::Cow::Borrowed(a) };
            Ok(match &*a {
                Tensor::F32(x) => Tensor::F32(map(x, |v| if cube { v * v * v } else { v * v })),
                Tensor::F64(x) => Tensor::F64(map(x, |v| if cube { v * v * v } else { v * v })),
                Tensor::I64(x) => Tensor::I64(map(x, |v| v.wrapping_pow(if cube { 3 } else { 2 }))),
                Tensor::U8(x) => Tensor::U8(map(x, |v| v.wrapping_pow(if cube { 3 } else { 2 }))),
                Tensor::Bool(_) => unreachable!("bools were cast to i64"),
            })
        }
        OpKind::Abs => Ok(match a {
            Tensor::F32(x) => Tensor::F32(map(x, f32::abs)),
            Tensor::F64(x) => Tensor::F64(map(x, f64::abs)),
            Tensor::I64(x) => Tensor::I64(map(x, i64::wrapping_abs)),
            Tensor::U8(_) | Tensor::Bool(_) => a.clone(),
        }),
        OpKind::Sign => Ok(match a {
            Tensor::F32(x) => Tensor::F32(map(x, Float::sign)),
            Tensor::F64(x) => Tensor::F64(map(x, Float::sign)),
            Tensor::I64(x) => Tensor::I64(map(x, i64::signum)),
            Tensor::U8(x) => Tensor::U8(map(x, |v| u8::from(v > 0))),
            Tensor::Bool(_) => return Err(ErrorKind::DType("sign is not defined for bool".into())),
        }),
        _ => unreachable!("dispatch sends only unary math here"),
    }
}

fn compare_typed<T: Elem>(kind: OpKind, x: &ArrayD<T>, y: &ArrayD<T>) -> KResult<ArrayD<bool>> {
    match kind {
        OpKind::Greater => zip_map(x, y, |p, q| p > q),
        OpKind::GreaterEqual => zip_map(x, y, |p, q| p >= q),
        OpKind::Less => zip_map(x, y, |p, q| p < q),
        OpKind::LessEqual => zip_map(x, y, |p, q| p <= q),
        OpKind::Equal => zip_map(x, y, |p, q| p == q),
        OpKind::NotEqual => zip_map(x, y, |p, q| p != q),
        _ => unreachable!("only comparisons reach here"),
    }
}

/// Comparisons: `greater`, `greater_equal`, `less`, `less_equal`, `equal`, `not_equal`.
pub(crate) fn compare(kind: OpKind, a: &Tensor, b: &Tensor) -> KResult<Tensor> {
    let dtype = promote(a.dtype(), b.dtype());
    let a = a.cast_cow(dtype);
    let b = b.cast_cow(dtype);
    let out = match (&*a, &*b) {
        (Tensor::F32(x), Tensor::F32(y)) => compare_typed(kind, x, y)?,
        (Tensor::F64(x), Tensor::F64(y)) => compare_typed(kind, x, y)?,
        (Tensor::I64(x), Tensor::I64(y)) => compare_typed(kind, x, y)?,
        (Tensor::U8(x), Tensor::U8(y)) => compare_typed(kind, x, y)?,
        (Tensor::Bool(x), Tensor::Bool(y)) => compare_typed(kind, x, y)?,
        _ => unreachable!("both inputs were cast to one dtype"),
    };
    Ok(Tensor::Bool(out))
}

/// Truthiness of every element.
pub(crate) fn truth(a: &Tensor) -> ArrayD<bool> {
    match a {
        Tensor::Bool(x) => x.clone(),
        Tensor::F32(x) => map(x, Elem::truthy),
        Tensor::F64(x) => map(x, Elem::truthy),
        Tensor::I64(x) => map(x, Elem::truthy),
        Tensor::U8(x) => map(x, Elem::truthy),
    }
}

/// `logical_and`, `logical_or`, `logical_xor`, `logical_not`.
pub(crate) fn logical(kind: OpKind, a: &Tensor, b: Option<&Tensor>) -> KResult<Tensor> {
    let x = truth(a);
    let out = match (kind, b) {
        (OpKind::LogicalNot, _) => map(&x, |p: bool| !p),
        (_, Some(b)) => {
            let y = truth(b);
            match kind {
                OpKind::LogicalAnd => zip_map(&x, &y, |p, q| p && q)?,
                OpKind::LogicalOr => zip_map(&x, &y, |p, q| p || q)?,
                OpKind::LogicalXor => zip_map(&x, &y, |p, q| p != q)?,
                _ => unreachable!("only logic ops reach here"),
            }
        }
        _ => unreachable!("binary logic always has two inputs"),
    };
    Ok(Tensor::Bool(out))
}
