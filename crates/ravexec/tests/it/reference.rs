//! A reference for the element-wise and reduction kernels, written apart from ravexec so that
//! the two can disagree: plain row-major `Vec`s, broadcasting by index arithmetic (every output
//! position unravelled and mapped back into each input), reductions by bucketing every input
//! element into its output position, and NumPy 2's rules for dtypes, wrapping integers, NaN
//! and empty reductions spelled out case by case (checked against NumPy 2.4 when written).
//! `conformance.rs` runs random cases through both.

/// The dtypes the reference models: enough for NumPy's promotion ladder bool < int64 < float64.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    Bool(Vec<bool>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// An n-dimensional array: a shape and its elements in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Array {
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Data,
}

/// What the reference expects: a value, or an error (NumPy raises; ravexec must refuse).
pub(crate) type Expected = Result<Array, &'static str>;

impl Data {
    fn len(&self) -> usize {
        match self {
            Data::Bool(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::F64(v) => v.len(),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Data::Bool(_) => 0,
            Data::I64(_) => 1,
            Data::F64(_) => 2,
        }
    }

    fn as_i64(&self) -> Vec<i64> {
        match self {
            Data::Bool(v) => v.iter().map(|&b| i64::from(b)).collect(),
            Data::I64(v) => v.clone(),
            Data::F64(_) => unreachable!("floats are never narrowed"),
        }
    }

    fn as_f64(&self) -> Vec<f64> {
        match self {
            Data::Bool(v) => v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
        }
    }
}

fn count(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The position of flat index `flat` in an array of `shape` (row-major).
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut position = vec![0; shape.len()];
    for axis in (0..shape.len()).rev() {
        position[axis] = flat % shape[axis];
        flat /= shape[axis];
    }
    position
}

/// The flat index of `position` in an array of `shape` (row-major).
fn ravel(position: &[usize], shape: &[usize]) -> usize {
    position.iter().zip(shape).fold(0, |flat, (&i, &d)| flat * d + i)
}

/// NumPy's broadcast shape: align on the right; each pair of lengths equal, or one of them 1.
pub(crate) fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| if i + s.len() >= n { s[i + s.len() - n] } else { 1 };
    (0..n)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// For every output position, the flat index it reads in an input of shape `input`.
fn sources(out: &[usize], input: &[usize]) -> Vec<usize> {
    let skip = out.len() - input.len();
    (0..count(out))
        .map(|flat| {
            let position = unravel(flat, out);
            let own: Vec<usize> =
                input.iter().enumerate().map(|(axis, &d)| if d == 1 { 0 } else { position[skip + axis] }).collect();
            ravel(&own, input)
        })
        .collect()
}

fn pairs<T: Copy>(a: &[T], b: &[T], sa: &[usize], sb: &[usize]) -> Vec<(T, T)> {
    sa.iter().zip(sb).map(|(&i, &j)| (a[i], b[j])).collect()
}

/// Both inputs broadcast against each other, in the promoted dtype.
enum Promoted {
    Bool(Vec<(bool, bool)>),
    I64(Vec<(i64, i64)>),
    F64(Vec<(f64, f64)>),
}

fn promote(a: &Array, b: &Array) -> Result<(Vec<usize>, Promoted), &'static str> {
    let shape = broadcast(&a.shape, &b.shape).ok_or("shapes cannot be broadcast")?;
    let (sa, sb) = (sources(&shape, &a.shape), sources(&shape, &b.shape));
    let pairs = match a.data.rank().max(b.data.rank()) {
        0 => match (&a.data, &b.data) {
            (Data::Bool(x), Data::Bool(y)) => Promoted::Bool(pairs(x, y, &sa, &sb)),
            _ => unreachable!("rank 0 is bool"),
        },
        1 => Promoted::I64(pairs(&a.data.as_i64(), &b.data.as_i64(), &sa, &sb)),
        _ => Promoted::F64(pairs(&a.data.as_f64(), &b.data.as_f64(), &sa, &sb)),
    };
    Ok((shape, pairs))
}

/// Integer power by repeated multiplication, wrapping like NumPy's int64.
fn int_pow(base: i64, exponent: i64) -> i64 {
    (0..exponent).fold(1i64, |acc, _| acc.wrapping_mul(base))
}

/// `add`, `sub`, `mul`, `div`, `pow` with NumPy's dtype rules.
pub(crate) fn arithmetic(op: &str, a: &Array, b: &Array) -> Expected {
    let (shape, pairs) = promote(a, b)?;
    let floats = |pairs: Vec<(f64, f64)>| -> Data {
        Data::F64(
            pairs
                .into_iter()
                .map(|(x, y)| match op {
                    "add" => x + y,
                    "sub" => x - y,
                    "mul" => x * y,
                    "div" => x / y,
                    "pow" => x.powf(y),
                    _ => unreachable!("{op}"),
                })
                .collect(),
        )
    };
    let data = match pairs {
        // True division always gives floats.
        Promoted::I64(p) if op == "div" => floats(p.into_iter().map(|(x, y)| (x as f64, y as f64)).collect()),
        Promoted::Bool(p) if op == "div" => floats(p.into_iter().map(|(x, y)| (f64::from(x), f64::from(y))).collect()),
        Promoted::F64(p) => floats(p),
        Promoted::I64(p) => {
            if op == "pow" && p.iter().any(|&(_, e)| e < 0) {
                return Err("integers to negative integer powers are not allowed");
            }
            Data::I64(
                p.into_iter()
                    .map(|(x, y)| match op {
                        "add" => x.wrapping_add(y),
                        "sub" => x.wrapping_sub(y),
                        "mul" => x.wrapping_mul(y),
                        "pow" => int_pow(x, y),
                        _ => unreachable!("{op}"),
                    })
                    .collect(),
            )
        }
        Promoted::Bool(p) => match op {
            // NumPy: bool + bool is `or`, bool * bool is `and`, bool - bool raises, and
            // bool ** bool is computed in integers (int8 there, int64 here).
            "add" => Data::Bool(p.into_iter().map(|(x, y)| x || y).collect()),
            "mul" => Data::Bool(p.into_iter().map(|(x, y)| x && y).collect()),
            "sub" => return Err("numpy boolean subtract is not supported"),
            "pow" => Data::I64(p.into_iter().map(|(x, y)| int_pow(i64::from(x), i64::from(y))).collect()),
            _ => unreachable!("{op}"),
        },
    };
    Ok(Array { shape, data })
}

/// The six comparisons; mixed dtypes compare in the promoted dtype, NaN compares unequal.
pub(crate) fn compare(op: &str, a: &Array, b: &Array) -> Expected {
    fn apply<T: PartialOrd>(op: &str, pairs: Vec<(T, T)>) -> Vec<bool> {
        pairs
            .into_iter()
            .map(|(x, y)| match op {
                "less" => x < y,
                "less_equal" => x <= y,
                "greater" => x > y,
                "greater_equal" => x >= y,
                "equal" => x == y,
                "not_equal" => x != y,
                _ => unreachable!("{op}"),
            })
            .collect()
    }
    let (shape, pairs) = promote(a, b)?;
    let data = match pairs {
        Promoted::Bool(p) => apply(op, p),
        Promoted::I64(p) => apply(op, p),
        Promoted::F64(p) => apply(op, p),
    };
    Ok(Array { shape, data: Data::Bool(data) })
}

/// One-input math: `neg`, `abs`, `square`, `sign`, and the float functions `exp`, `natlog`,
/// `square_root` (integers and bools go to f64 first; bools would be f16 in NumPy and are not
/// generated for them).
pub(crate) fn unary(op: &str, a: &Array) -> Expected {
    let data = match (&a.data, op) {
        (Data::Bool(_), "neg") => return Err("numpy boolean negative is not supported"),
        (Data::Bool(_), "sign") => return Err("sign is not defined for bool"),
        (Data::Bool(v), "abs") => Data::Bool(v.clone()),
        (Data::Bool(v), "square") => Data::I64(v.iter().map(|&b| i64::from(b)).collect()),
        (Data::I64(v), _) if matches!(op, "exp" | "natlog" | "square_root") => {
            return unary(op, &Array { shape: a.shape.clone(), data: Data::F64(a.data.as_f64()) });
        }
        (Data::I64(v), _) => Data::I64(
            v.iter()
                .map(|&x| match op {
                    "neg" => 0i64.wrapping_sub(x),
                    "abs" => {
                        if x < 0 {
                            0i64.wrapping_sub(x)
                        } else {
                            x
                        }
                    }
                    "square" => x.wrapping_mul(x),
                    "sign" => (x > 0) as i64 - (x < 0) as i64,
                    _ => unreachable!("{op}"),
                })
                .collect(),
        ),
        (Data::F64(v), _) => Data::F64(
            v.iter()
                .map(|&x| match op {
                    "neg" => -x,
                    "abs" => x.abs(),
                    "square" => x * x,
                    // NumPy's sign keeps NaN and both zeros as they are.
                    "sign" if x.is_nan() || x == 0.0 => x,
                    "sign" if x > 0.0 => 1.0,
                    "sign" => -1.0,
                    "exp" => x.exp(),
                    "natlog" => x.ln(),
                    "square_root" => x.sqrt(),
                    _ => unreachable!("{op}"),
                })
                .collect(),
        ),
        (Data::Bool(_), _) => unreachable!("float functions of bools are not generated"),
    };
    Ok(Array { shape: a.shape.clone(), data })
}

/// The axes a reduction names, made non-negative; `None` names them all.
fn axes(axis: Option<&[i64]>, ndim: usize) -> Result<Vec<usize>, &'static str> {
    let Some(axis) = axis else { return Ok((0..ndim).collect()) };
    let mut out = Vec::new();
    for &a in axis {
        let fixed = if a < 0 { a + ndim as i64 } else { a };
        if fixed < 0 || fixed >= ndim as i64 {
            return Err("axis out of bounds");
        }
        if out.contains(&(fixed as usize)) {
            return Err("repeated axis");
        }
        out.push(fixed as usize);
    }
    Ok(out)
}

/// Every input element put into the bucket of the output position it reduces into, in the
/// input's row-major order.
fn buckets<T: Copy>(values: &[T], shape: &[usize], axes: &[usize], keepdims: bool) -> (Vec<usize>, Vec<Vec<T>>) {
    let out: Vec<usize> = shape.iter().enumerate().filter(|(axis, _)| !axes.contains(axis)).map(|(_, &d)| d).collect();
    let mut buckets = vec![Vec::new(); count(&out)];
    for (flat, &value) in values.iter().enumerate() {
        let position = unravel(flat, shape);
        let kept: Vec<usize> =
            position.iter().enumerate().filter(|(axis, _)| !axes.contains(axis)).map(|(_, &i)| i).collect();
        buckets[ravel(&kept, &out)].push(value);
    }
    let out = if keepdims {
        shape.iter().enumerate().map(|(axis, &d)| if axes.contains(&axis) { 1 } else { d }).collect()
    } else {
        out
    };
    (out, buckets)
}

/// `sum`, `prod`, `min`, `max`, `mean` over `axis` (all axes when `None`).
pub(crate) fn reduce(op: &str, a: &Array, axis: Option<&[i64]>, keepdims: bool) -> Expected {
    let axes = axes(axis, a.shape.len())?;
    let reduced: usize = axes.iter().map(|&i| a.shape[i]).product();
    if matches!(op, "min" | "max") && reduced == 0 {
        return Err("zero-size array to reduction operation which has no identity");
    }
    let data = match (&a.data, op) {
        // Means are taken in f64 (NumPy's accumulator for integers); an empty one is NaN.
        (data, "mean") => {
            let (shape, lanes) = buckets(&data.as_f64(), &a.shape, &axes, keepdims);
            let means = lanes.iter().map(|l| l.iter().sum::<f64>() / l.len() as f64).collect();
            return Ok(Array { shape, data: Data::F64(means) });
        }
        (Data::F64(v), _) => {
            let (shape, lanes) = buckets(v, &a.shape, &axes, keepdims);
            let fold = |lane: &Vec<f64>| -> f64 {
                match op {
                    "sum" => lane.iter().sum(),
                    "prod" => lane.iter().product(),
                    _ if lane.iter().any(|x| x.is_nan()) => f64::NAN,
                    "min" => lane.iter().copied().fold(f64::INFINITY, f64::min),
                    "max" => lane.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    _ => unreachable!("{op}"),
                }
            };
            return Ok(Array { shape, data: Data::F64(lanes.iter().map(fold).collect()) });
        }
        // min and max keep the dtype (bool too); sum and prod of bools and ints are int64.
        (Data::Bool(v), "min") => {
            Data::Bool(buckets(v, &a.shape, &axes, keepdims).1.iter().map(|l| l.iter().all(|&b| b)).collect())
        }
        (Data::Bool(v), "max") => {
            Data::Bool(buckets(v, &a.shape, &axes, keepdims).1.iter().map(|l| l.iter().any(|&b| b)).collect())
        }
        (data, _) => {
            let lanes = buckets(&data.as_i64(), &a.shape, &axes, keepdims).1;
            Data::I64(
                lanes
                    .iter()
                    .map(|lane| match op {
                        "sum" => lane.iter().fold(0i64, |acc, &x| acc.wrapping_add(x)),
                        "prod" => lane.iter().fold(1i64, |acc, &x| acc.wrapping_mul(x)),
                        "min" => *lane.iter().min().expect("not empty"),
                        "max" => *lane.iter().max().expect("not empty"),
                        _ => unreachable!("{op}"),
                    })
                    .collect(),
            )
        }
    };
    let shape = buckets(&vec![(); a.data.len()], &a.shape, &axes, keepdims).0;
    Ok(Array { shape, data })
}

#[test]
fn the_reference_follows_numpy_on_hand_worked_cases() {
    let f = |shape: &[usize], v: &[f64]| Array { shape: shape.to_vec(), data: Data::F64(v.to_vec()) };
    let i = |shape: &[usize], v: &[i64]| Array { shape: shape.to_vec(), data: Data::I64(v.to_vec()) };
    // np.add(np.arange(3).reshape(3, 1), [10., 20.]) -> [[10, 20], [11, 21], [12, 22]]
    let sum = arithmetic("add", &i(&[3, 1], &[0, 1, 2]), &f(&[2], &[10.0, 20.0])).unwrap();
    assert_eq!(sum, f(&[3, 2], &[10.0, 20.0, 11.0, 21.0, 12.0, 22.0]));
    // int64 wraps: np.array([2**63 - 1]) + 1 -> [-2**63]
    assert_eq!(arithmetic("add", &i(&[1], &[i64::MAX]), &i(&[], &[1])).unwrap(), i(&[1], &[i64::MIN]));
    // np.arange(6).reshape(2, 3).sum(axis=-1, keepdims=True) -> [[3], [12]]
    assert_eq!(reduce("sum", &i(&[2, 3], &[0, 1, 2, 3, 4, 5]), Some(&[-1]), true).unwrap(), i(&[2, 1], &[3, 12]));
    // np.zeros((2, 0)).sum(axis=1) -> [0., 0.]; .mean(axis=1) -> [nan, nan]; .max(axis=0) -> []
    assert_eq!(reduce("sum", &f(&[2, 0], &[]), Some(&[1]), false).unwrap(), f(&[2], &[0.0, 0.0]));
    let mean = reduce("mean", &f(&[2, 0], &[]), Some(&[1]), false).unwrap();
    assert!(matches!(&mean.data, Data::F64(v) if v.len() == 2 && v.iter().all(|x| x.is_nan())));
    assert_eq!(reduce("max", &f(&[2, 0], &[]), Some(&[0]), false).unwrap(), f(&[0], &[]));
    assert!(reduce("max", &f(&[2, 0], &[]), Some(&[1]), false).is_err());
    assert!(broadcast(&[2, 3], &[2]).is_none());
}
