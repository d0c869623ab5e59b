//! Gradients of every deep-learning layer and loss against central finite differences (in
//! `f64`), plus shape and parameter errors.
//!
//! A layer is checked through the scalar `L = sum(y * r)` for a fixed random `r`: its gradient
//! with respect to the output is `r`, so the layer's backward given `r` must match the
//! numerical derivative of `L` with respect to every input and weight element.

use ndarray::{Array1, Array2, Array4, ArrayD, IxDyn};
use ravexec::nn::conv::{Conv2d, Window};
use ravexec::nn::{activation, dense, loss, pool};
use ravproto::ops::Activation;

/// A small deterministic generator (xorshift), so the tests need no random crate.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + (hi - lo) * ((self.0 >> 11) as f64 / (1u64 << 53) as f64)
    }

    fn array(&mut self, shape: &[usize], lo: f64, hi: f64) -> ArrayD<f64> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || self.uniform(lo, hi))
    }
}

const H: f64 = 1e-6;

/// `d f / d x` by central differences.
fn numeric(x: &ArrayD<f64>, f: &dyn Fn(&ArrayD<f64>) -> f64) -> ArrayD<f64> {
    let mut grad = ArrayD::zeros(x.raw_dim());
    let mut probe = x.clone();
    for (i, g) in grad.iter_mut().enumerate() {
        let original = probe.as_slice().unwrap()[i];
        probe.as_slice_mut().unwrap()[i] = original + H;
        let up = f(&probe);
        probe.as_slice_mut().unwrap()[i] = original - H;
        let down = f(&probe);
        probe.as_slice_mut().unwrap()[i] = original;
        *g = (up - down) / (2.0 * H);
    }
    grad
}

fn assert_close(what: &str, analytic: &ArrayD<f64>, numeric: &ArrayD<f64>) {
    assert_eq!(analytic.shape(), numeric.shape(), "{what}: shapes");
    for (i, (a, n)) in analytic.iter().zip(numeric.iter()).enumerate() {
        let tolerance = 1e-6 + 1e-5 * n.abs().max(a.abs());
        assert!((a - n).abs() <= tolerance, "{what}: element {i}: analytic {a} vs numeric {n}");
    }
}

fn project(y: &ArrayD<f64>, r: &ArrayD<f64>) -> f64 {
    y.iter().zip(r.iter()).map(|(a, b)| a * b).sum()
}

/// Inputs that stay clear of every activation's kinks (0, +-0.5, the thresholds below), where
/// a finite difference straddling the kink would not measure the derivative.
fn away_from_kinks(rng: &mut Rng, shape: &[usize]) -> ArrayD<f64> {
    let kinks = [0.0, 0.5, -0.5, 1.0, -1.0, 0.3, -2.0, 2.0];
    rng.array(shape, -3.0, 3.0).mapv(|v| if kinks.iter().any(|k| (v - k).abs() < 1e-3) { v + 0.01 } else { v })
}

fn all_activations() -> Vec<Activation> {
    use Activation as A;
    vec![
        A::Relu,
        A::Sigmoid,
        A::Tanh,
        A::Softmax { dim: None },
        A::Softmax { dim: Some(0) },
        A::LeakyRelu { negative_slope: Some(0.2) },
        A::Elu { alpha: None },
        A::Selu,
        A::Softplus,
        A::Softsign,
        A::Tanhshrink,
        A::Softmin { dim: Some(-1) },
        A::Softshrink { lambd: None },
        A::Logsigmoid,
        A::Hardshrink { lambd: Some(1.0) },
        A::Hardtanh { min_val: Some(-2.0), max_val: Some(2.0) },
        A::Threshold { threshold: 0.3, value: -1.0 },
    ]
}

#[test]
fn every_activation_gradient_matches_finite_differences() {
    let mut rng = Rng(7);
    for act in all_activations() {
        let x = away_from_kinks(&mut rng, &[3, 4]);
        let r = rng.array(&[3, 4], -1.0, 1.0);
        let y = activation::forward(&x.view(), &act).unwrap();
        let analytic = activation::backward(&x.view(), &y.view(), &r.view(), &act).unwrap();
        let numerical = numeric(&x, &|x| project(&activation::forward(&x.view(), &act).unwrap(), &r));
        assert_close(&format!("{act:?}"), &analytic, &numerical);
    }
}

#[test]
fn activations_keep_extreme_inputs_finite() {
    let x = ArrayD::from_shape_vec(IxDyn(&[4]), vec![-1000.0f64, -50.0, 50.0, 1000.0]).unwrap();
    for act in [Activation::Sigmoid, Activation::Softplus, Activation::Logsigmoid, Activation::Softmax { dim: None }] {
        let y = activation::forward(&x.view(), &act).unwrap();
        assert!(y.iter().all(|v| v.is_finite()), "{act:?} gave {y}");
    }
    let softmax = activation::forward(&x.view(), &Activation::Softmax { dim: None }).unwrap();
    assert!((softmax.sum() - 1.0).abs() < 1e-12);
    assert!(activation::forward(&x.view(), &Activation::Softmax { dim: Some(3) }).is_err());
    assert!(activation::forward(&x.view(), &Activation::Hardtanh { min_val: Some(1.0), max_val: Some(0.0) }).is_err());
}

fn dense_case(x_shape: &[usize], units: usize, seed: u64) {
    let mut rng = Rng(seed);
    let inputs = *x_shape.last().unwrap();
    let x = rng.array(x_shape, -1.0, 1.0);
    let w = rng.array(&[inputs, units], -1.0, 1.0).into_dimensionality::<ndarray::Ix2>().unwrap();
    let b = Array1::from_shape_simple_fn(units, || rng.uniform(-1.0, 1.0));
    let mut out_shape = x_shape.to_vec();
    *out_shape.last_mut().unwrap() = units;
    let r = rng.array(&out_shape, -1.0, 1.0);
    let out = |x: &ArrayD<f64>, w: &Array2<f64>, b: &Array1<f64>| {
        project(&dense::forward(&x.view(), &w.view(), Some(&b.view())).unwrap(), &r)
    };
    let grads = dense::backward(&x.view(), &w.view(), true, &r.view()).unwrap();
    let what = format!("dense {x_shape:?} -> {units}");
    assert_close(&format!("{what} input"), &grads.input, &numeric(&x, &|x| out(x, &w, &b)));
    let w_dyn = w.clone().into_dyn();
    let numeric_w = numeric(&w_dyn, &|w| out(&x, &w.clone().into_dimensionality().unwrap(), &b));
    assert_close(&format!("{what} weight"), &grads.weight.into_dyn(), &numeric_w);
    let numeric_b = numeric(&b.clone().into_dyn(), &|b| out(&x, &w, &b.clone().into_dimensionality().unwrap()));
    assert_close(&format!("{what} bias"), &grads.bias.unwrap().into_dyn(), &numeric_b);
}

#[test]
fn dense_gradients_match_finite_differences() {
    // Leading batch axes (2, 3) are flattened into rows.
    dense_case(&[2, 3, 4], 5, 11);
    // One unit: `dot` answers in column-major order, which a reshape must not trip over.
    dense_case(&[2, 2], 1, 12);
    dense_case(&[1, 3], 1, 13);
    // A weight for 3 inputs does not fit rows of 4.
    let x = Rng(14).array(&[2, 4], -1.0, 1.0);
    let narrow = Array2::<f64>::zeros((3, 5));
    assert!(dense::forward(&x.view(), &narrow.view(), None).is_err());
}

fn conv_case(conv: Conv2d, x_shape: [usize; 4], out_channels: usize, seed: u64) {
    let mut rng = Rng(seed);
    let [_, c, _, _] = x_shape;
    let [kh, kw] = conv.window.kernel;
    let x = rng.array(&x_shape, -1.0, 1.0);
    let w = rng.array(&[out_channels, c / conv.groups, kh, kw], -1.0, 1.0);
    let b = rng.array(&[out_channels], -1.0, 1.0);
    let as4 = |a: &ArrayD<f64>| a.clone().into_dimensionality::<ndarray::Ix4>().unwrap();
    let as1 = |a: &ArrayD<f64>| a.clone().into_dimensionality::<ndarray::Ix1>().unwrap();
    let y = conv.forward(&as4(&x).view(), &as4(&w).view(), Some(&as1(&b).view())).unwrap();
    let r = rng.array(y.shape(), -1.0, 1.0);
    let out = |x: &ArrayD<f64>, w: &ArrayD<f64>, b: &ArrayD<f64>| {
        project(&conv.forward(&as4(x).view(), &as4(w).view(), Some(&as1(b).view())).unwrap().into_dyn(), &r)
    };
    let grads = conv.backward(&as4(&x).view(), &as4(&w).view(), true, &as4(&r).view()).unwrap();
    let what = format!("{conv:?}");
    assert_close(&format!("{what} input"), &grads.input.into_dyn(), &numeric(&x, &|x| out(x, &w, &b)));
    assert_close(&format!("{what} weight"), &grads.weight.into_dyn(), &numeric(&w, &|w| out(&x, w, &b)));
    assert_close(&format!("{what} bias"), &grads.bias.unwrap().into_dyn(), &numeric(&b, &|b| out(&x, &w, b)));
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let plain = Window { kernel: [3, 3], stride: [1, 1], padding: [0, 0], dilation: [1, 1] };
    conv_case(Conv2d { window: plain, groups: 1 }, [2, 2, 5, 5], 3, 1);
    let strided = Window { kernel: [3, 2], stride: [2, 1], padding: [1, 1], dilation: [1, 1] };
    conv_case(Conv2d { window: strided, groups: 1 }, [2, 3, 6, 5], 2, 2);
    let dilated = Window { kernel: [2, 2], stride: [1, 2], padding: [1, 0], dilation: [2, 2] };
    conv_case(Conv2d { window: dilated, groups: 2 }, [1, 4, 6, 7], 4, 3);
    // One output channel and one output pixel (column-major products inside).
    let whole = Window { kernel: [3, 3], stride: [1, 1], padding: [0, 0], dilation: [1, 1] };
    conv_case(Conv2d { window: whole, groups: 1 }, [2, 2, 3, 3], 1, 4);
    // Padding wider than the kernel's reach: whole output rows and columns see only zeros.
    let padded = Window { kernel: [2, 2], stride: [1, 1], padding: [3, 3], dilation: [1, 1] };
    conv_case(Conv2d { window: padded, groups: 1 }, [1, 2, 3, 3], 2, 5);
    let sparse = Window { kernel: [2, 3], stride: [3, 2], padding: [2, 2], dilation: [1, 2] };
    conv_case(Conv2d { window: sparse, groups: 1 }, [2, 2, 5, 6], 3, 6);
}

#[test]
fn conv2d_reads_inputs_of_any_memory_layout() {
    let mut rng = Rng(7);
    let window = Window { kernel: [3, 3], stride: [1, 2], padding: [1, 1], dilation: [1, 1] };
    let conv = Conv2d { window, groups: 1 };
    let x = rng.array(&[3, 2, 5, 4], -1.0, 1.0).into_dimensionality::<ndarray::Ix4>().unwrap();
    let w = rng.array(&[2, 2, 3, 3], -1.0, 1.0).into_dimensionality::<ndarray::Ix4>().unwrap();
    // The same numbers, stored with the width and height axes swapped.
    let swapped = x.clone().permuted_axes([0, 1, 3, 2]).as_standard_layout().into_owned();
    let strided = swapped.view().permuted_axes([0, 1, 3, 2]);
    assert!(!strided.is_standard_layout());
    let y = conv.forward(&x.view(), &w.view(), None).unwrap();
    assert_eq!(conv.forward(&strided, &w.view(), None).unwrap(), y);
    let g = conv.backward(&x.view(), &w.view(), false, &y.view()).unwrap();
    assert_eq!(conv.backward(&strided, &w.view(), false, &y.view()).unwrap(), g);
}

#[test]
fn conv2d_refuses_mismatched_weights() {
    let window = Window { kernel: [3, 3], stride: [1, 1], padding: [0, 0], dilation: [1, 1] };
    let x = Array4::<f64>::zeros((1, 3, 5, 5));
    let w = Array4::<f64>::zeros((2, 2, 3, 3));
    let error = Conv2d { window, groups: 1 }.forward(&x.view(), &w.view(), None).unwrap_err();
    assert!(error.to_string().contains("does not fit 3 input channels"), "{error}");
    assert!(Conv2d { window, groups: 2 }.forward(&x.view(), &w.view(), None).is_err());
    let tiny = Array4::<f64>::zeros((1, 2, 2, 2));
    assert!(Conv2d { window, groups: 1 }.forward(&tiny.view(), &w.view(), None).is_err());
}

#[test]
fn maxpool2d_gradient_matches_finite_differences() {
    let mut rng = Rng(5);
    for (window, ceil) in [
        (Window { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1] }, false),
        (Window { kernel: [3, 3], stride: [2, 2], padding: [1, 1], dilation: [1, 1] }, true),
    ] {
        // Distinct values: no ties, so the maximum does not move under a small nudge.
        let x = rng.array(&[2, 2, 5, 5], -1.0, 1.0).into_dimensionality::<ndarray::Ix4>().unwrap();
        let pooled = pool::forward(&x.view(), window, ceil).unwrap();
        let r = rng.array(pooled.output.shape(), -1.0, 1.0);
        let r4 = r.clone().into_dimensionality::<ndarray::Ix4>().unwrap();
        let analytic = pool::backward([2, 2, 5, 5], &pooled.argmax.view(), &r4.view()).unwrap();
        let numerical = numeric(&x.clone().into_dyn(), &|x| {
            let x = x.clone().into_dimensionality::<ndarray::Ix4>().unwrap();
            project(&pool::forward(&x.view(), window, ceil).unwrap().output.into_dyn(), &r)
        });
        assert_close(&format!("maxpool {window:?}"), &analytic.into_dyn(), &numerical);
    }
}

#[test]
fn loss_gradients_match_finite_differences() {
    let mut rng = Rng(13);
    let y = rng.array(&[4, 3], -1.0, 1.0);
    let pred = rng.array(&[4, 3], -1.0, 1.0);
    let square = loss::square(&y.view(), &pred.view()).unwrap();
    assert_close("square loss", &square.grad, &numeric(&pred, &|p| loss::square(&y.view(), &p.view()).unwrap().loss));

    let labels = ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.0, 2.0, 1.0, 2.0]).unwrap();
    for ignore in [None, Some(2)] {
        let ce = loss::cross_entropy(&labels.view(), &pred.view(), ignore).unwrap();
        let numerical = numeric(&pred, &|p| loss::cross_entropy(&labels.view(), &p.view(), ignore).unwrap().loss);
        assert_close(&format!("cross entropy, ignore {ignore:?}"), &ce.grad, &numerical);
    }
    let soft = rng.array(&[4, 3], 0.1, 1.0);
    let soft = &soft / &soft.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1));
    let ce = loss::cross_entropy(&soft.view(), &pred.view(), None).unwrap();
    let numerical = numeric(&pred, &|p| loss::cross_entropy(&soft.view(), &p.view(), None).unwrap().loss);
    assert_close("cross entropy, probabilities", &ce.grad, &numerical);

    let probs = rng.array(&[4, 3], 0.05, 0.9);
    let sparse = loss::sparse_categorical(&labels.view(), &probs.view()).unwrap();
    let numerical = numeric(&probs, &|p| loss::sparse_categorical(&labels.view(), &p.view()).unwrap().loss);
    assert_close("sparse categorical", &sparse.grad, &numerical);
}

#[test]
fn losses_refuse_bad_targets() {
    let pred = ArrayD::<f64>::zeros(IxDyn(&[2, 3]));
    let out_of_range = ArrayD::from_shape_vec(IxDyn(&[2]), vec![0.0, 3.0]).unwrap();
    assert!(
        loss::cross_entropy(&out_of_range.view(), &pred.view(), None).unwrap_err().to_string().contains("out of range")
    );
    let fractional = ArrayD::from_shape_vec(IxDyn(&[2]), vec![0.5, 1.0]).unwrap();
    assert!(loss::cross_entropy(&fractional.view(), &pred.view(), None).is_err());
    let all_ignored = ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, 1.0]).unwrap();
    assert!(loss::cross_entropy(&all_ignored.view(), &pred.view(), Some(1)).is_err());
    assert!(loss::square(&pred.view(), &ArrayD::zeros(IxDyn(&[3, 2])).view()).is_err());
    let acc = loss::accuracy(
        &ArrayD::from_shape_vec(IxDyn(&[2]), vec![1.0, 0.0]).unwrap().view(),
        &{ ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0.1, 0.8, 0.1, 0.2, 0.3, 0.5]).unwrap() }.view(),
    );
    assert_eq!(acc.unwrap(), 0.5);
}

#[test]
fn batchnorm_gradients_match_finite_differences() {
    use ravexec::nn::norm::{BatchNorm, batchnorm_backward};
    let mut rng = Rng(17);
    for (shape, training) in [(vec![5, 3], true), (vec![2, 3, 2, 2], true), (vec![4, 3], false)] {
        let x = rng.array(&shape, -2.0, 2.0);
        let gamma = Array1::from_shape_simple_fn(3, || rng.uniform(0.5, 1.5));
        let beta = Array1::from_shape_simple_fn(3, || rng.uniform(-1.0, 1.0));
        let mut stats = BatchNorm::<f64>::new(3, 0.1, 1e-5).unwrap();
        stats.running_mean = Array1::from_vec(vec![0.1, -0.2, 0.3]);
        stats.running_var = Array1::from_vec(vec![1.5, 0.5, 2.0]);
        let fresh = stats.clone();
        let r = rng.array(&shape, -1.0, 1.0);
        let out = |x: &ArrayD<f64>, g: &Array1<f64>, b: &Array1<f64>| {
            let (y, _) = fresh.clone().forward(&x.view(), Some(&g.view()), Some(&b.view()), training).unwrap();
            project(&y, &r)
        };
        let (_, cache) = stats.forward(&x.view(), Some(&gamma.view()), Some(&beta.view()), training).unwrap();
        let grads = batchnorm_backward(&cache, Some(&gamma.view()), &r.view()).unwrap();
        let what = format!("batchnorm {shape:?} training {training}");
        assert_close(&what, &grads.input, &numeric(&x, &|x| out(x, &gamma, &beta)));
        let as1 = |a: &ArrayD<f64>| a.clone().into_dimensionality::<ndarray::Ix1>().unwrap();
        let numeric_gamma = numeric(&gamma.clone().into_dyn(), &|g| out(&x, &as1(g), &beta));
        assert_close(&format!("{what} gamma"), grads.gamma.as_ref().unwrap(), &numeric_gamma);
        let numeric_beta = numeric(&beta.clone().into_dyn(), &|b| out(&x, &gamma, &as1(b)));
        assert_close(&format!("{what} beta"), grads.beta.as_ref().unwrap(), &numeric_beta);
        if training {
            // PyTorch's update: running = 0.9 * running + 0.1 * batch (unbiased variance).
            let x0: Vec<f64> = x.index_axis(ndarray::Axis(1), 0).iter().copied().collect();
            let mean = x0.iter().sum::<f64>() / x0.len() as f64;
            let var = x0.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (x0.len() - 1) as f64;
            assert!((stats.running_mean[0] - (0.9 * 0.1 + 0.1 * mean)).abs() < 1e-12);
            assert!((stats.running_var[0] - (0.9 * 1.5 + 0.1 * var)).abs() < 1e-12);
        } else {
            assert_eq!(stats, fresh, "evaluation leaves the running statistics alone");
        }
    }
    let mut stats = BatchNorm::<f64>::new(3, 0.1, 1e-5).unwrap();
    assert!(stats.forward(&ArrayD::zeros(IxDyn(&[1, 3])).view(), None, None, true).is_err(), "one sample per channel");
    assert!(stats.forward(&ArrayD::zeros(IxDyn(&[4, 2])).view(), None, None, true).is_err(), "wrong channels");
}

#[test]
fn layernorm_gradients_match_finite_differences() {
    use ravexec::nn::norm::{layernorm_backward, layernorm_forward};
    let mut rng = Rng(19);
    let x = rng.array(&[2, 3, 4], -2.0, 2.0);
    let gamma = rng.array(&[3, 4], 0.5, 1.5);
    let beta = rng.array(&[3, 4], -1.0, 1.0);
    let r = rng.array(&[2, 3, 4], -1.0, 1.0);
    let out = |x: &ArrayD<f64>, g: &ArrayD<f64>, b: &ArrayD<f64>| {
        project(&layernorm_forward(&x.view(), &[3, 4], Some(&g.view()), Some(&b.view()), 1e-5).unwrap().0, &r)
    };
    let (y, cache) = layernorm_forward(&x.view(), &[3, 4], Some(&gamma.view()), Some(&beta.view()), 1e-5).unwrap();
    let grads = layernorm_backward(&cache, Some(&gamma.view()), &r.view()).unwrap();
    assert_close("layernorm input", &grads.input, &numeric(&x, &|x| out(x, &gamma, &beta)));
    assert_close("layernorm gamma", grads.gamma.as_ref().unwrap(), &numeric(&gamma, &|g| out(&x, g, &beta)));
    assert_close("layernorm beta", grads.beta.as_ref().unwrap(), &numeric(&beta, &|b| out(&x, &gamma, b)));
    // Each sample is normalised: with gamma 1 and beta 0 its mean is 0 and its variance ~1.
    let (plain, _) = layernorm_forward(&x.view(), &[3, 4], None, None, 1e-5).unwrap();
    let first = plain.index_axis(ndarray::Axis(0), 0);
    assert!(first.sum().abs() < 1e-12 && (first.mapv(|v| v * v).mean().unwrap() - 1.0).abs() < 1e-4);
    assert_eq!(y.shape(), x.shape());
    assert!(layernorm_forward(&x.view(), &[4, 3], None, None, 1e-5).is_err());
}

#[test]
fn dropout_and_embedding_backward() {
    use ravexec::nn::dropout::{apply_mask, dropout_mask, embedding_backward, embedding_forward};
    let mask = dropout_mask::<f64>(&[100, 100], 0.3, 42).unwrap();
    assert_eq!(mask, dropout_mask::<f64>(&[100, 100], 0.3, 42).unwrap(), "same seed, same mask");
    assert_ne!(mask, dropout_mask::<f64>(&[100, 100], 0.3, 43).unwrap());
    let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / mask.len() as f64;
    assert!((dropped - 0.3).abs() < 0.02, "dropped {dropped}");
    assert!(mask.iter().all(|&m| m == 0.0 || (m - 1.0 / 0.7).abs() < 1e-12));
    let mut rng = Rng(23);
    let x = rng.array(&[100, 100], -1.0, 1.0);
    let r = rng.array(&[100, 100], -1.0, 1.0);
    // Dropout is linear in x: its gradient is the mask itself.
    let analytic = apply_mask(&r.view(), &mask.view()).unwrap();
    let y = apply_mask(&x.view(), &mask.view()).unwrap();
    assert!((project(&y, &r) - project(&x, &analytic)).abs() < 1e-9);
    assert!(dropout_mask::<f64>(&[2], 1.5, 0).is_err());

    let table = rng.array(&[5, 3], -1.0, 1.0);
    let indices = [1i64, 4, 1, 0];
    let r = rng.array(&[2, 2, 3], -1.0, 1.0);
    let as2 = |a: &ArrayD<f64>| a.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let out = |t: &ArrayD<f64>| project(&embedding_forward(&indices, &[2, 2], &as2(t).view()).unwrap(), &r);
    let analytic = embedding_backward(&indices, 5, &r.view()).unwrap();
    assert_close("embedding table", &analytic.into_dyn(), &numeric(&table, &out));
    assert!(embedding_forward(&[5], &[1], &as2(&table).view()).is_err());
}
