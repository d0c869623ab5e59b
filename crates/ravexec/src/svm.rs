//! Support vector machines: libsvm's SMO solver (second-order working-set selection, Fan, Chen
//! and Lin 2005) for C-SVC and epsilon-SVR, the algorithm behind scikit-learn's `SVC` and `SVR`.
//!
//! Written here because linfa-svm keeps its fitted machine private (a model value must carry
//! the support vectors, coefficients and offset). The solver holds the whole kernel matrix, so
//! fitting is refused above [`MAX_SAMPLES`] samples with a typed error instead of exhausting
//! memory; libsvm's shrinking and kernel cache are not reproduced (they change speed, not the
//! solution).

use crate::error::{ErrorKind, KResult};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use ravproto::model::SvmKernelModel;
use ravproto::ops::SvmKernel;

/// Most samples an SVM is fitted on: the kernel matrix of 5,000 samples is 200 MB of `f64`.
pub(crate) const MAX_SAMPLES: usize = 5_000;

/// scikit-learn's defaults: `C = 1`, `epsilon = 0.1` (SVR), `tol = 1e-3`.
const C: f64 = 1.0;
const EPSILON: f64 = 0.1;
const TOLERANCE: f64 = 1e-3;
/// libsvm's floor for a non-positive curvature.
const TAU: f64 = 1e-12;

/// The kernel of `kind` with scikit-learn's defaults resolved on the training set `x`
/// (`gamma = "scale"`, `degree = 3`, `coef0 = 0`).
pub(crate) fn kernel_for(kind: SvmKernel, x: &Array2<f64>) -> SvmKernelModel {
    let variance = x.var(0.0);
    let gamma = if variance > 0.0 { 1.0 / (x.ncols() as f64 * variance) } else { 1.0 };
    SvmKernelModel { kind, gamma, degree: 3, coef0: 0.0 }
}

/// The kernel matrix of the rows of `a` against the rows of `b`.
pub(crate) fn gram(k: &SvmKernelModel, a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
    let products = a.dot(&b.t());
    match k.kind {
        SvmKernel::Linear => products,
        SvmKernel::Poly => products.mapv(|p| (k.gamma * p + k.coef0).powi(k.degree)),
        SvmKernel::Rbf => {
            let norms = |m: ArrayView2<'_, f64>| m.map_axis(Axis(1), |r| r.dot(&r));
            let (na, nb) = (norms(a), norms(b));
            let mut out = products;
            for ((i, j), v) in out.indexed_iter_mut() {
                // |a - b|² = |a|² + |b|² - 2 a·b, clamped against rounding below zero.
                *v = (-k.gamma * (na[i] + nb[j] - 2.0 * *v).max(0.0)).exp();
            }
            out
        }
    }
}

/// libsvm's dual problem: minimise `½ αᵀQα + pᵀα` subject to `yᵀα = 0`, `0 ≤ α ≤ C`, where
/// `Q_st = y_s y_t K[sample_s, sample_t]`.
struct Dual<'a> {
    k: &'a Array2<f64>,
    sample: Vec<usize>,
    y: Vec<f64>,
    p: Vec<f64>,
}

impl Dual<'_> {
    fn q(&self, s: usize, t: usize) -> f64 {
        self.y[s] * self.y[t] * self.k[[self.sample[s], self.sample[t]]]
    }

    /// The solution `α` and the offset `rho`.
    fn solve(&self) -> (Vec<f64>, f64) {
        let l = self.y.len();
        let mut alpha = vec![0.0; l];
        let mut gradient = self.p.clone();
        let diagonal: Vec<f64> = (0..l).map(|t| self.q(t, t)).collect();
        let upper = |a: f64| a >= C;
        let lower = |a: f64| a <= 0.0;
        let max_iterations = (100 * l).max(10_000_000);
        for _ in 0..max_iterations {
            // i: the most violating variable that may move up (y = +1) or down (y = -1).
            let (mut g_max, mut i) = (f64::NEG_INFINITY, None);
            for t in 0..l {
                let movable = if self.y[t] > 0.0 { !upper(alpha[t]) } else { !lower(alpha[t]) };
                if movable && -self.y[t] * gradient[t] >= g_max {
                    g_max = -self.y[t] * gradient[t];
                    i = Some(t);
                }
            }
            let Some(i) = i else { break };
            // j: the partner that decreases the objective most (second-order selection).
            let (mut g_max2, mut j, mut best) = (f64::NEG_INFINITY, None, f64::INFINITY);
            for t in 0..l {
                let (movable, violation, curvature) = if self.y[t] > 0.0 {
                    (!lower(alpha[t]), g_max + gradient[t], diagonal[i] + diagonal[t] - 2.0 * self.y[i] * self.q(i, t))
                } else {
                    (!upper(alpha[t]), g_max - gradient[t], diagonal[i] + diagonal[t] + 2.0 * self.y[i] * self.q(i, t))
                };
                if !movable {
                    continue;
                }
                g_max2 = g_max2.max(self.y[t] * gradient[t]);
                if violation > 0.0 {
                    let decrease = -(violation * violation) / if curvature > 0.0 { curvature } else { TAU };
                    if decrease <= best {
                        best = decrease;
                        j = Some(t);
                    }
                }
            }
            let Some(j) = j else { break };
            if g_max + g_max2 < TOLERANCE {
                break;
            }
            let (old_i, old_j) = (alpha[i], alpha[j]);
            let q_ij = self.q(i, j);
            if self.y[i] != self.y[j] {
                let curvature = (diagonal[i] + diagonal[j] + 2.0 * q_ij).max(TAU);
                let delta = (-gradient[i] - gradient[j]) / curvature;
                let diff = alpha[i] - alpha[j];
                alpha[i] += delta;
                alpha[j] += delta;
                if diff > 0.0 {
                    if alpha[j] < 0.0 {
                        alpha[j] = 0.0;
                        alpha[i] = diff;
                    }
                } else if alpha[i] < 0.0 {
                    alpha[i] = 0.0;
                    alpha[j] = -diff;
                }
                if diff > 0.0 {
                    if alpha[i] > C {
                        alpha[i] = C;
                        alpha[j] = C - diff;
                    }
                } else if alpha[j] > C {
                    alpha[j] = C;
                    alpha[i] = C + diff;
                }
            } else {
                let curvature = (diagonal[i] + diagonal[j] - 2.0 * q_ij).max(TAU);
                let delta = (gradient[i] - gradient[j]) / curvature;
                let sum = alpha[i] + alpha[j];
                alpha[i] -= delta;
                alpha[j] += delta;
                if sum > C {
                    if alpha[i] > C {
                        alpha[i] = C;
                        alpha[j] = sum - C;
                    }
                } else if alpha[j] < 0.0 {
                    alpha[j] = 0.0;
                    alpha[i] = sum;
                }
                if sum > C {
                    if alpha[j] > C {
                        alpha[j] = C;
                        alpha[i] = sum - C;
                    }
                } else if alpha[i] < 0.0 {
                    alpha[i] = 0.0;
                    alpha[j] = sum;
                }
            }
            let (di, dj) = (alpha[i] - old_i, alpha[j] - old_j);
            for (t, g) in gradient.iter_mut().enumerate() {
                *g += self.q(t, i) * di + self.q(t, j) * dj;
            }
        }
        (alpha.clone(), self.rho(&alpha, &gradient))
    }

    /// The offset: the mean of `y G` over free variables, else the middle of its bounds.
    fn rho(&self, alpha: &[f64], gradient: &[f64]) -> f64 {
        let (mut ub, mut lb, mut free_sum, mut free) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
        for t in 0..alpha.len() {
            let yg = self.y[t] * gradient[t];
            let at_upper = alpha[t] >= C;
            let at_lower = alpha[t] <= 0.0;
            if at_upper || at_lower {
                // At a bound the variable only says on which side the offset lies.
                if (at_upper && self.y[t] < 0.0) || (at_lower && self.y[t] > 0.0) {
                    ub = ub.min(yg);
                } else {
                    lb = lb.max(yg);
                }
            } else {
                free += 1;
                free_sum += yg;
            }
        }
        if free > 0 { free_sum / free as f64 } else { (ub + lb) / 2.0 }
    }
}

/// A fitted machine: support vectors (rows of the training set), their coefficients, `rho`.
pub(crate) struct Machine {
    pub(crate) support: Array2<f64>,
    pub(crate) coef: Array1<f64>,
    pub(crate) rho: f64,
}

fn check_size(n: usize) -> KResult<()> {
    if n > MAX_SAMPLES {
        return Err(ErrorKind::Value(format!(
            "an SVM is fitted on at most {MAX_SAMPLES} samples (it holds the samples² kernel matrix), got {n}"
        )));
    }
    Ok(())
}

fn machine(x: &Array2<f64>, samples: &[usize], coef: Vec<f64>, rho: f64) -> Machine {
    let kept: Vec<usize> = (0..samples.len()).filter(|&s| coef[s] != 0.0).collect();
    Machine {
        support: x.select(Axis(0), &kept.iter().map(|&s| samples[s]).collect::<Vec<_>>()),
        coef: kept.iter().map(|&s| coef[s]).collect(),
        rho,
    }
}

/// C-SVC, one machine per pair of classes `(a, b)`, `a < b` (labels are class indices
/// `0..classes`): `+1` for `a`, `-1` for `b`.
pub(crate) fn fit_svc(k: &SvmKernelModel, x: &Array2<f64>, labels: &[usize], classes: usize) -> KResult<Vec<Machine>> {
    check_size(x.nrows())?;
    let gram = gram(k, x.view(), x.view());
    let mut machines = Vec::new();
    for a in 0..classes {
        for b in a + 1..classes {
            let samples: Vec<usize> = (0..x.nrows()).filter(|&s| labels[s] == a || labels[s] == b).collect();
            let y: Vec<f64> = samples.iter().map(|&s| if labels[s] == a { 1.0 } else { -1.0 }).collect();
            let dual = Dual { k: &gram, p: vec![-1.0; samples.len()], y: y.clone(), sample: samples.clone() };
            let (alpha, rho) = dual.solve();
            let coef = alpha.iter().zip(&y).map(|(a, y)| a * y).collect();
            machines.push(machine(x, &samples, coef, rho));
        }
    }
    Ok(machines)
}

/// Epsilon-SVR: variables `α` (pushing up) and `α*` (pushing down) per sample.
pub(crate) fn fit_svr(k: &SvmKernelModel, x: &Array2<f64>, z: &Array1<f64>) -> KResult<Machine> {
    let n = x.nrows();
    check_size(n)?;
    let gram = gram(k, x.view(), x.view());
    let dual = Dual {
        k: &gram,
        sample: (0..2 * n).map(|t| t % n).collect(),
        y: (0..2 * n).map(|t| if t < n { 1.0 } else { -1.0 }).collect(),
        p: (0..2 * n).map(|t| if t < n { EPSILON - z[t] } else { EPSILON + z[t - n] }).collect(),
    };
    let (alpha, rho) = dual.solve();
    let coef = (0..n).map(|s| alpha[s] - alpha[s + n]).collect();
    Ok(machine(x, &(0..n).collect::<Vec<_>>(), coef, rho))
}

/// Each row's decision `sum_i coef_i K(support_i, x) - rho`.
pub(crate) fn decision(
    k: &SvmKernelModel,
    support: &Array2<f64>,
    coef: &Array1<f64>,
    rho: f64,
    x: &Array2<f64>,
) -> Array1<f64> {
    if support.nrows() == 0 {
        return Array1::from_elem(x.nrows(), -rho);
    }
    gram(k, x.view(), support.view()).dot(coef) - rho
}
