//! The seven optimizers of the original's `optimizer_dict`, with PyTorch's update rules
//! (`torch.optim`, single-tensor implementation) and PyTorch's names for their state.
//!
//! One [`OptimizerState`] belongs to one parameter tensor. Its buffers are named like
//! PyTorch's `state_dict` entries (`exp_avg`, `square_avg`, ...) so that a checkpoint is a
//! plain map of named tensors plus the step count, and can be resumed anywhere.

use super::{NnError, NnFloat, NnResult};
use ndarray::{ArrayD, ArrayViewD, Zip};
use ravproto::ops::OptimizerSpec;
use std::collections::BTreeMap;

/// An optimizer's state for one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState<F> {
    /// Hyper-parameters.
    pub spec: OptimizerSpec,
    /// Steps taken (PyTorch's `step`).
    pub step: u64,
    /// Named buffers, shaped like the parameter.
    pub buffers: BTreeMap<String, ArrayD<F>>,
}

fn check_spec(spec: &OptimizerSpec) -> NnResult<()> {
    use OptimizerSpec as O;
    let (lr, eps) = match spec {
        O::Sgd { lr, momentum, dampening: _, weight_decay: _, nesterov } => {
            if *nesterov && *momentum <= 0.0 {
                return Err(NnError::Param("sgd: nesterov momentum needs momentum > 0".into()));
            }
            (*lr, 0.0)
        }
        O::Adagrad { lr, lr_decay, eps, .. } => {
            if *lr_decay < 0.0 {
                return Err(NnError::Param(format!("adagrad: lr_decay must be >= 0, got {lr_decay}")));
            }
            (*lr, *eps)
        }
        O::Adadelta { lr, rho, eps, .. } => {
            if !(0.0..=1.0).contains(rho) {
                return Err(NnError::Param(format!("adadelta: rho must be in [0, 1], got {rho}")));
            }
            (*lr, *eps)
        }
        O::Adam { lr, betas, eps, .. } | O::Adamw { lr, betas, eps, .. } | O::Adamax { lr, betas, eps, .. } => {
            if betas.iter().any(|b| !(0.0..1.0).contains(b)) {
                return Err(NnError::Param(format!("betas must be in [0, 1), got {betas:?}")));
            }
            (*lr, *eps)
        }
        O::Rmsprop { lr, alpha, eps, .. } => {
            if !(0.0..=1.0).contains(alpha) {
                return Err(NnError::Param(format!("rmsprop: alpha must be in [0, 1], got {alpha}")));
            }
            (*lr, *eps)
        }
    };
    if !(lr >= 0.0 && lr.is_finite()) {
        return Err(NnError::Param(format!("learning rate must be a finite number >= 0, got {lr}")));
    }
    if !(eps >= 0.0 && eps.is_finite()) {
        return Err(NnError::Param(format!("eps must be a finite number >= 0, got {eps}")));
    }
    Ok(())
}

/// Applies `f` to every element of the parameter, its gradient and up to three buffers;
/// in parallel for big tensors (element-wise, so the result does not depend on the split).
macro_rules! each {
    ($param:expr, $grad:expr, [$($buf:expr),*], |$p:ident, $g:ident $(, $b:ident)*| $body:block) => {{
        let big = $param.len() >= PAR_MIN;
        let zip = Zip::from(&mut *$param).and($grad)$(.and($buf))*;
        if big {
            zip.par_for_each(|$p, &$g $(, $b)*| $body);
        } else {
            zip.for_each(|$p, &$g $(, $b)*| $body);
        }
    }};
}

/// Parameters smaller than this are updated on the calling thread.
const PAR_MIN: usize = 1 << 15;

impl<F: NnFloat> OptimizerState<F> {
    /// Fresh state (no step taken), after checking the hyper-parameters.
    pub fn new(spec: OptimizerSpec) -> NnResult<OptimizerState<F>> {
        check_spec(&spec)?;
        Ok(OptimizerState { spec, step: 0, buffers: BTreeMap::new() })
    }

    fn buffer(&mut self, name: &str, like: &ArrayD<F>, init: F) -> ArrayD<F> {
        self.buffers.remove(name).unwrap_or_else(|| ArrayD::from_elem(like.raw_dim(), init))
    }

    /// One update of `param` with `grad`.
    pub fn step(&mut self, param: &mut ArrayD<F>, grad: &ArrayViewD<'_, F>) -> NnResult<()> {
        use OptimizerSpec as O;
        if param.shape() != grad.shape() {
            return Err(NnError::Shape(format!(
                "gradient of shape {:?} for a parameter of shape {:?}",
                grad.shape(),
                param.shape()
            )));
        }
        if let Some((name, buffer)) = self.buffers.iter().find(|(_, b)| b.shape() != param.shape()) {
            return Err(NnError::Shape(format!(
                "optimizer buffer {name} of shape {:?} for a parameter of shape {:?}",
                buffer.shape(),
                param.shape()
            )));
        }
        self.step += 1;
        let t = self.step as f64;
        let zero = F::zero();
        match self.spec.clone() {
            O::Sgd { lr, momentum, dampening, weight_decay, nesterov } => {
                let (lr, wd, mu, damp) = (F::of(lr), F::of(weight_decay), F::of(momentum), F::of(dampening));
                if momentum == 0.0 {
                    each!(param, grad, [], |p, g| {
                        let g = g + wd * *p;
                        *p -= lr * g;
                    });
                } else {
                    // PyTorch starts the momentum buffer at the first gradient, undampened.
                    let first = !self.buffers.contains_key("momentum_buffer");
                    let mut buf = self.buffer("momentum_buffer", param, zero);
                    each!(param, grad, [&mut buf], |p, g, b| {
                        let g = g + wd * *p;
                        *b = if first { g } else { mu * *b + (F::one() - damp) * g };
                        let d = if nesterov { g + mu * *b } else { *b };
                        *p -= lr * d;
                    });
                    self.buffers.insert("momentum_buffer".into(), buf);
                }
            }
            O::Adagrad { lr, lr_decay, weight_decay, initial_accumulator_value, eps } => {
                let clr = F::of(lr / (1.0 + (t - 1.0) * lr_decay));
                let (wd, eps) = (F::of(weight_decay), F::of(eps));
                let mut sum = self.buffer("sum", param, F::of(initial_accumulator_value));
                each!(param, grad, [&mut sum], |p, g, s| {
                    let g = g + wd * *p;
                    *s += g * g;
                    *p -= clr * g / (s.sqrt() + eps);
                });
                self.buffers.insert("sum".into(), sum);
            }
            O::Adadelta { lr, rho, eps, weight_decay } => {
                let (lr, rho, eps, wd) = (F::of(lr), F::of(rho), F::of(eps), F::of(weight_decay));
                let one = F::one();
                let mut sq = self.buffer("square_avg", param, zero);
                let mut acc = self.buffer("acc_delta", param, zero);
                each!(param, grad, [&mut sq, &mut acc], |p, g, s, a| {
                    let g = g + wd * *p;
                    *s = rho * *s + (one - rho) * g * g;
                    let delta = (*a + eps).sqrt() / (*s + eps).sqrt() * g;
                    *a = rho * *a + (one - rho) * delta * delta;
                    *p -= lr * delta;
                });
                self.buffers.insert("square_avg".into(), sq);
                self.buffers.insert("acc_delta".into(), acc);
            }
            O::Adam { lr, betas, eps, weight_decay, amsgrad } => {
                self.adam(param, grad, lr, betas, eps, weight_decay, 0.0, amsgrad);
            }
            O::Adamw { lr, betas, eps, weight_decay, amsgrad } => {
                self.adam(param, grad, lr, betas, eps, 0.0, weight_decay, amsgrad);
            }
            O::Adamax { lr, betas, eps, weight_decay } => {
                let (b1, b2, eps, wd) = (F::of(betas[0]), F::of(betas[1]), F::of(eps), F::of(weight_decay));
                let clr = F::of(lr / (1.0 - betas[0].powf(t)));
                let one = F::one();
                let mut m = self.buffer("exp_avg", param, zero);
                let mut u = self.buffer("exp_inf", param, zero);
                each!(param, grad, [&mut m, &mut u], |p, g, m, u| {
                    let g = g + wd * *p;
                    *m = b1 * *m + (one - b1) * g;
                    let candidate = g.abs() + eps;
                    let decayed = b2 * *u;
                    *u = if decayed > candidate { decayed } else { candidate };
                    *p -= clr * *m / *u;
                });
                self.buffers.insert("exp_avg".into(), m);
                self.buffers.insert("exp_inf".into(), u);
            }
            O::Rmsprop { lr, alpha, eps, weight_decay, momentum, centered } => {
                let (lr, alpha, eps, wd, mu) =
                    (F::of(lr), F::of(alpha), F::of(eps), F::of(weight_decay), F::of(momentum));
                let one = F::one();
                let mut sq = self.buffer("square_avg", param, zero);
                let mut avg_g = self.buffer("grad_avg", param, zero);
                let mut buf = self.buffer("momentum_buffer", param, zero);
                each!(param, grad, [&mut sq, &mut avg_g, &mut buf], |p, g, s, ga, b| {
                    let g = g + wd * *p;
                    *s = alpha * *s + (one - alpha) * g * g;
                    let avg = if centered {
                        *ga = alpha * *ga + (one - alpha) * g;
                        (*s - *ga * *ga).sqrt() + eps
                    } else {
                        s.sqrt() + eps
                    };
                    if momentum > 0.0 {
                        *b = mu * *b + g / avg;
                        *p -= lr * *b;
                    } else {
                        *p -= lr * g / avg;
                    }
                });
                self.buffers.insert("square_avg".into(), sq);
                if centered {
                    self.buffers.insert("grad_avg".into(), avg_g);
                }
                if momentum > 0.0 {
                    self.buffers.insert("momentum_buffer".into(), buf);
                }
            }
        }
        Ok(())
    }

    /// Adam and AdamW: `l2` is Adam's weight decay (added to the gradient), `decoupled`
    /// AdamW's (applied to the parameter before the update).
    #[allow(clippy::too_many_arguments)]
    fn adam(
        &mut self,
        param: &mut ArrayD<F>,
        grad: &ArrayViewD<'_, F>,
        lr: f64,
        betas: [f64; 2],
        eps: f64,
        l2: f64,
        decoupled: f64,
        amsgrad: bool,
    ) {
        let t = self.step as f64;
        let (b1, b2, eps, l2) = (F::of(betas[0]), F::of(betas[1]), F::of(eps), F::of(l2));
        let step_size = F::of(lr / (1.0 - betas[0].powf(t)));
        let bc2_sqrt = F::of((1.0 - betas[1].powf(t)).sqrt());
        let shrink = F::of(1.0 - lr * decoupled);
        let (zero, one) = (F::zero(), F::one());
        let mut m = self.buffer("exp_avg", param, zero);
        let mut v = self.buffer("exp_avg_sq", param, zero);
        let mut vmax = self.buffer("max_exp_avg_sq", param, zero);
        each!(param, grad, [&mut m, &mut v, &mut vmax], |p, g, m, v, vm| {
            *p *= shrink;
            let g = g + l2 * *p;
            *m = b1 * *m + (one - b1) * g;
            *v = b2 * *v + (one - b2) * g * g;
            let second = if amsgrad {
                if *v > *vm {
                    *vm = *v;
                }
                *vm
            } else {
                *v
            };
            *p -= step_size * *m / (second.sqrt() / bc2_sqrt + eps);
        });
        self.buffers.insert("exp_avg".into(), m);
        self.buffers.insert("exp_avg_sq".into(), v);
        if amsgrad {
            self.buffers.insert("max_exp_avg_sq".into(), vmax);
        }
    }
}
