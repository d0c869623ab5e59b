//! CART decision trees and random forests (scikit-learn's algorithm: binary splits at
//! midpoints between sorted feature values, chosen by the largest impurity decrease).
//!
//! Written here rather than taken from linfa: linfa-trees builds classification trees only
//! and has no forests, and its fitted trees do not convert to the node arrays a model value
//! carries ([`ravproto::model::Tree`]).

use ndarray::{Array1, ArrayView1, ArrayView2};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use ravproto::ops::Criterion;
use rayon::prelude::*;

/// What a tree learns from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Targets<'a> {
    /// Class indices in `0..classes`.
    Classes {
        /// One per sample.
        y: &'a [usize],
        /// How many classes.
        classes: usize,
    },
    /// Numbers.
    Values(&'a [f64]),
}

impl Targets<'_> {
    fn outputs(&self) -> usize {
        match self {
            Targets::Classes { classes, .. } => *classes,
            Targets::Values(_) => 1,
        }
    }
}

/// Growth limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Growth {
    /// Impurity measure.
    pub(crate) criterion: Criterion,
    /// Depth limit.
    pub(crate) max_depth: Option<usize>,
    /// Fewest samples a node needs to be split.
    pub(crate) min_samples_split: usize,
    /// Features tried at each node (all when it is the feature count).
    pub(crate) max_features: usize,
}

/// A grown tree, node 0 the root.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Nodes {
    /// Feature tested, `-1` at a leaf.
    pub(crate) feature: Vec<i64>,
    /// Threshold (`<=` goes left).
    pub(crate) threshold: Vec<f64>,
    /// Children, `-1` at a leaf.
    pub(crate) children: Vec<[i64; 2]>,
    /// Prediction: class probabilities or the mean (flattened, `outputs` per node).
    pub(crate) value: Vec<f64>,
}

/// Statistics of a set of samples, enough for impurity and prediction.
#[derive(Clone, Debug)]
enum Stats {
    Counts(Vec<f64>),
    Moments { n: f64, sum: f64, squares: f64 },
}

impl Stats {
    fn empty(targets: &Targets<'_>) -> Stats {
        match targets {
            Targets::Classes { classes, .. } => Stats::Counts(vec![0.0; *classes]),
            Targets::Values(_) => Stats::Moments { n: 0.0, sum: 0.0, squares: 0.0 },
        }
    }

    fn add(&mut self, targets: &Targets<'_>, sample: usize, sign: f64) {
        match (self, targets) {
            (Stats::Counts(counts), Targets::Classes { y, .. }) => counts[y[sample]] += sign,
            (Stats::Moments { n, sum, squares }, Targets::Values(y)) => {
                *n += sign;
                *sum += sign * y[sample];
                *squares += sign * y[sample] * y[sample];
            }
            _ => unreachable!("statistics match their targets"),
        }
    }

    fn count(&self) -> f64 {
        match self {
            Stats::Counts(counts) => counts.iter().sum(),
            Stats::Moments { n, .. } => *n,
        }
    }

    fn impurity(&self, criterion: Criterion) -> f64 {
        match self {
            Stats::Counts(counts) => {
                let n = self.count();
                if n <= 0.0 {
                    return 0.0;
                }
                let p = counts.iter().map(|c| c / n);
                match criterion {
                    Criterion::Entropy => -p.filter(|p| *p > 0.0).map(|p| p * p.log2()).sum::<f64>(),
                    _ => 1.0 - p.map(|p| p * p).sum::<f64>(),
                }
            }
            Stats::Moments { n, sum, squares } => {
                if *n <= 0.0 {
                    0.0
                } else {
                    (squares / n - (sum / n).powi(2)).max(0.0)
                }
            }
        }
    }

    fn prediction(&self) -> Vec<f64> {
        match self {
            Stats::Counts(counts) => {
                let n = self.count().max(1.0);
                counts.iter().map(|c| c / n).collect()
            }
            Stats::Moments { n, sum, .. } => vec![sum / n.max(1.0)],
        }
    }
}

fn stats_of(targets: &Targets<'_>, samples: &[usize]) -> Stats {
    let mut stats = Stats::empty(targets);
    for &s in samples {
        stats.add(targets, s, 1.0);
    }
    stats
}

/// `k` distinct features out of `n`, by a partial Fisher–Yates shuffle (all, in order, when
/// `k >= n`).
fn pick_features(n: usize, k: usize, rng: &mut Xoshiro256Plus) -> Vec<usize> {
    let mut features: Vec<usize> = (0..n).collect();
    if k >= n {
        return features;
    }
    for i in 0..k {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        features.swap(i, j);
    }
    features.truncate(k);
    features
}

/// The best split of `samples`: (feature, threshold, decrease of weighted impurity).
fn best_split(
    x: ArrayView2<'_, f64>,
    targets: &Targets<'_>,
    samples: &[usize],
    parent: &Stats,
    features: &[usize],
    criterion: Criterion,
) -> Option<(usize, f64, f64)> {
    let n = samples.len() as f64;
    let parent_impurity = parent.impurity(criterion) * n;
    let mut best: Option<(usize, f64, f64)> = None;
    let mut order = samples.to_vec();
    for &f in features {
        order.sort_by(|a, b| x[[*a, f]].total_cmp(&x[[*b, f]]));
        let mut left = Stats::empty(targets);
        let mut right = parent.clone();
        for i in 1..order.len() {
            left.add(targets, order[i - 1], 1.0);
            right.add(targets, order[i - 1], -1.0);
            let (lo, hi) = (x[[order[i - 1], f]], x[[order[i], f]]);
            if lo == hi {
                continue;
            }
            let children = left.impurity(criterion) * i as f64 + right.impurity(criterion) * (n - i as f64);
            let decrease = parent_impurity - children;
            if decrease > 1e-12 * n && best.is_none_or(|b| decrease > b.2) {
                let mut threshold = lo + (hi - lo) / 2.0;
                // The midpoint of two adjacent floats can round up to the larger one.
                if threshold >= hi {
                    threshold = lo;
                }
                best = Some((f, threshold, decrease));
            }
        }
    }
    best
}

/// Grows a tree on `samples` (indices into `x`'s rows, repeats allowed).
pub(crate) fn grow(
    x: ArrayView2<'_, f64>,
    targets: &Targets<'_>,
    samples: Vec<usize>,
    growth: &Growth,
    rng: &mut Xoshiro256Plus,
) -> Nodes {
    let mut nodes = Nodes::default();
    let outputs = targets.outputs();
    // (node index, its samples, its depth)
    let mut pending = vec![(0usize, samples, 0usize)];
    nodes.feature.push(-1);
    nodes.threshold.push(0.0);
    nodes.children.push([-1, -1]);
    nodes.value.extend(std::iter::repeat_n(0.0, outputs));
    while let Some((node, samples, depth)) = pending.pop() {
        let stats = stats_of(targets, &samples);
        nodes.value[node * outputs..(node + 1) * outputs].copy_from_slice(&stats.prediction());
        let splittable = samples.len() >= growth.min_samples_split.max(2)
            && growth.max_depth.is_none_or(|max| depth < max)
            && stats.impurity(growth.criterion) > 0.0;
        if !splittable {
            continue;
        }
        let features = pick_features(x.ncols(), growth.max_features.max(1), rng);
        let Some((feature, threshold, _)) = best_split(x, targets, &samples, &stats, &features, growth.criterion)
        else {
            continue;
        };
        let (left, right): (Vec<usize>, Vec<usize>) = samples.iter().partition(|&&s| x[[s, feature]] <= threshold);
        let mut child = || {
            let index = nodes.feature.len();
            nodes.feature.push(-1);
            nodes.threshold.push(0.0);
            nodes.children.push([-1, -1]);
            nodes.value.extend(std::iter::repeat_n(0.0, outputs));
            index
        };
        let (l, r) = (child(), child());
        nodes.feature[node] = feature as i64;
        nodes.threshold[node] = threshold;
        nodes.children[node] = [l as i64, r as i64];
        pending.push((r, right, depth + 1));
        pending.push((l, left, depth + 1));
    }
    nodes
}

/// Grows `count` trees on bootstrap samples, in parallel; tree `t` draws from a generator
/// seeded by `(seed, t)`, so the forest does not depend on the thread count.
pub(crate) fn forest(
    x: ArrayView2<'_, f64>,
    targets: &Targets<'_>,
    count: usize,
    growth: &Growth,
    seed: u64,
) -> Vec<Nodes> {
    let n = x.nrows();
    (0..count)
        .into_par_iter()
        .map(|t| {
            let mut rng = Xoshiro256Plus::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t as u64);
            let samples = (0..n).map(|_| (rng.next_u64() % n as u64) as usize).collect();
            grow(x, targets, samples, growth, &mut rng)
        })
        .collect()
}

/// The value of the leaf `row` falls into.
pub(crate) fn leaf_value<'a>(
    feature: &[i64],
    threshold: &[f64],
    children: &[i64],
    value: &'a [f64],
    outputs: usize,
    row: ArrayView1<'_, f64>,
) -> Option<&'a [f64]> {
    let mut node = 0usize;
    for _ in 0..feature.len() {
        let f = *feature.get(node)?;
        if f < 0 {
            return value.get(node * outputs..(node + 1) * outputs);
        }
        let go = if *row.get(f as usize)? <= *threshold.get(node)? { 0 } else { 1 };
        node = usize::try_from(*children.get(node * 2 + go)?).ok()?;
    }
    // More steps than nodes: the arrays contain a cycle.
    None
}

/// A class index per row from averaged probabilities (ties: the smallest class).
pub(crate) fn argmax_rows(probabilities: &[Array1<f64>]) -> Vec<usize> {
    probabilities
        .iter()
        .map(|p| {
            p.iter().enumerate().fold((0, f64::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
        })
        .collect()
}
