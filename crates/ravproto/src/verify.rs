//! Verification of untrusted providers' results (BOINC's answer: redundancy with a quorum).
//!
//! A graph asks for it in [`crate::messages::Requirements::verify`]:
//! - [`Verify::None`]: one provider's answer is stored (today's behaviour, the default).
//! - [`Verify::Replicas`]`(n)`: every subgraph goes to `n` providers of distinct accounts, and
//!   its values are stored once `n` answers [`agree`]. A disagreement sends one more replica;
//!   the first group of `n` agreeing answers wins, and an account in the minority is slashed
//!   (when the graph asks a stake) and loses its clean record. A subgraph gets at most
//!   [`max_answers`] answers: past that the graph fails, naming the op and the accounts.
//! - [`Verify::SpotCheck`]`(f)`: adaptive replication. An answer of an account with a clean
//!   record of at least [`TRUSTED_AFTER`] agreeing answers in a row is checked by a second
//!   provider for a fraction `f` of subgraphs (chosen by a hash of the graph and subgraph, so
//!   a provider cannot tell); any other account's answer (new, or recently wrong) is always
//!   checked. A checked answer needs a quorum of 2.
//!
//! Records live in the server's memory: after a restart every account is new, and so checked.
//! A graph that pays escrows [`Verify::cost_factor`] times its price, and each answer in the
//! winning group is paid the subgraph's price.

use crate::tensor::{DType, TensorData, Value};
use serde::{Deserialize, Serialize};

/// How a graph's results are verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// One answer per subgraph.
    #[default]
    None,
    /// Every subgraph computed by this many accounts (2 to [`MAX_REPLICAS`]), stored once they
    /// agree.
    Replicas(u32),
    /// Trusted accounts' answers checked for this fraction of subgraphs (0 < f ≤ 1), others'
    /// always.
    SpotCheck(f64),
}

/// Most replicas a graph may ask for.
pub const MAX_REPLICAS: u32 = 5;

/// Agreeing answers in a row after which an account's answers are only spot-checked.
pub const TRUSTED_AFTER: u32 = 10;

/// Relative and absolute tolerance for `f32` values: BLAS on different machines sums in a
/// different order, which moves the last bits.
pub const F32_TOLERANCE: (f64, f64) = (1e-4, 1e-5);

/// Relative and absolute tolerance for `f64` values.
pub const F64_TOLERANCE: (f64, f64) = (1e-9, 1e-12);

impl Verify {
    /// Whether results are checked at all.
    pub fn is_none(&self) -> bool {
        *self == Verify::None
    }

    /// Why the setting is not acceptable, if it is not.
    pub fn problem(&self) -> Option<String> {
        match *self {
            Verify::None => None,
            Verify::Replicas(n) if !(2..=MAX_REPLICAS).contains(&n) => {
                Some(format!("verify replicas({n}): a graph may ask for 2 to {MAX_REPLICAS} replicas"))
            }
            Verify::Replicas(_) => None,
            Verify::SpotCheck(f) if !(f > 0.0 && f <= 1.0) => {
                Some(format!("verify spot_check({f}): the fraction must be above 0 and at most 1"))
            }
            Verify::SpotCheck(_) => None,
        }
    }

    /// Agreeing answers that settle a subgraph whose first answer came from an account that
    /// is `trusted`, when `sampled` says whether this subgraph is one a spot check picks
    /// ([`Verify::samples`]).
    pub fn quorum(&self, trusted: bool, sampled: bool) -> u32 {
        match *self {
            Verify::None => 1,
            Verify::Replicas(n) => n,
            Verify::SpotCheck(_) if trusted && !sampled => 1,
            Verify::SpotCheck(_) => 2,
        }
    }

    /// Answers handed out for a subgraph from the start.
    pub fn first_handouts(&self) -> u32 {
        match *self {
            Verify::Replicas(n) => n,
            Verify::None | Verify::SpotCheck(_) => 1,
        }
    }

    /// Whether a spot check picks subgraph `index` of graph `graph`: a hash of both, compared
    /// with the fraction (the same answer every time, and no clue to a provider).
    pub fn samples(&self, graph: u64, index: u64) -> bool {
        let Verify::SpotCheck(fraction) = *self else { return true };
        // splitmix64: a well-mixed 64-bit hash of the pair.
        let mut z = graph.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_add(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z as f64 / u64::MAX as f64) < fraction
    }

    /// How many times its price a graph escrows: the most answers per subgraph it pays.
    pub fn cost_factor(&self) -> u64 {
        match *self {
            Verify::None => 1,
            Verify::Replicas(n) => u64::from(n),
            Verify::SpotCheck(_) => 2,
        }
    }
}

/// As a requester writes it: `none`, `replicas(2)`, `spot_check(0.1)`.
impl std::fmt::Display for Verify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verify::None => write!(f, "none"),
            Verify::Replicas(n) => write!(f, "replicas({n})"),
            Verify::SpotCheck(fraction) => write!(f, "spot_check({fraction})"),
        }
    }
}

/// Most answers a subgraph needing `quorum` agreeing ones may get before its graph fails.
pub fn max_answers(quorum: u32) -> u32 {
    quorum.saturating_mul(2)
}

/// Whether two answers for one output agree: the same structure, dtype and shape; integers,
/// booleans and bytes bit for bit; floats within the tolerance of their dtype
/// (`|a − b| ≤ atol + rtol · max(|a|, |b|)`, NaN agreeing only with NaN, infinities only with
/// themselves).
pub fn agree(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Tensor(a), Value::Tensor(b)) => tensors_agree(a, b),
        (Value::List(a), Value::List(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| agree(a, b)),
        _ => false,
    }
}

fn tensors_agree(a: &TensorData, b: &TensorData) -> bool {
    if a.dtype() != b.dtype() || a.shape() != b.shape() {
        return false;
    }
    // The elements in place (native order, as `bytes` holds them): no copy of a big value.
    let (x, y) = (a.bytes(), b.bytes());
    match a.dtype() {
        DType::F32 => x.chunks_exact(4).zip(y.chunks_exact(4)).all(|(x, y)| {
            let x = f32::from_ne_bytes(x.try_into().expect("4 bytes"));
            let y = f32::from_ne_bytes(y.try_into().expect("4 bytes"));
            close(f64::from(x), f64::from(y), F32_TOLERANCE)
        }),
        DType::F64 => x.chunks_exact(8).zip(y.chunks_exact(8)).all(|(x, y)| {
            let x = f64::from_ne_bytes(x.try_into().expect("8 bytes"));
            let y = f64::from_ne_bytes(y.try_into().expect("8 bytes"));
            close(x, y, F64_TOLERANCE)
        }),
        DType::I64 | DType::Bool | DType::U8 => x == y,
    }
}

fn close(a: f64, b: f64, (rtol, atol): (f64, f64)) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= atol + rtol * a.abs().max(b.abs())
}
