//! `ravexec::nn` against `fixtures/nn_reference.json` (made by `scripts/gen_nn_reference.py`
//! with NumPy): forward values of every activation, dense, conv2d and maxpool2d, and five
//! steps of every optimizer configuration.

use ndarray::{ArrayD, IxDyn};
use ravexec::nn::conv::{Conv2d, Window};
use ravexec::nn::optim::OptimizerState;
use ravexec::nn::{activation, dense, pool};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/nn_reference.json")).expect("valid fixture")
}

fn array(v: &Value) -> ArrayD<f64> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
    let data: Vec<f64> = serde_json::from_value(v["data"].clone()).unwrap();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn pair(v: &Value) -> [usize; 2] {
    serde_json::from_value(v.clone()).unwrap()
}

fn assert_close(what: &str, got: &ArrayD<f64>, want: &ArrayD<f64>) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (i, (g, w)) in got.iter().zip(want.iter()).enumerate() {
        assert!((g - w).abs() <= 1e-12 + 1e-9 * w.abs(), "{what}: element {i}: {g} vs reference {w}");
    }
}

#[test]
fn activations_match_the_reference() {
    for case in fixture()["activations"].as_array().unwrap() {
        let act = serde_json::from_value(case["activation"].clone()).unwrap();
        let y = activation::forward(&array(&case["x"]).view(), &act).unwrap();
        assert_close(&format!("{act:?}"), &y, &array(&case["y"]));
    }
}

#[test]
fn dense_conv_and_pool_match_the_reference() {
    let reference = fixture();
    for case in reference["dense"].as_array().unwrap() {
        let w = array(&case["w"]).into_dimensionality().unwrap();
        let b = array(&case["b"]).into_dimensionality().unwrap();
        let y = dense::forward(&array(&case["x"]).view(), &w.view(), Some(&b.view())).unwrap();
        assert_close("dense", &y, &array(&case["y"]));
    }
    for case in reference["conv2d"].as_array().unwrap() {
        let w = array(&case["w"]).into_dimensionality::<ndarray::Ix4>().unwrap();
        let b = array(&case["b"]).into_dimensionality().unwrap();
        let kernel = [w.shape()[2], w.shape()[3]];
        let window = Window {
            kernel,
            stride: pair(&case["stride"]),
            padding: pair(&case["padding"]),
            dilation: pair(&case["dilation"]),
        };
        let conv = Conv2d { window, groups: case["groups"].as_u64().unwrap() as usize };
        let x = array(&case["x"]).into_dimensionality().unwrap();
        let y = conv.forward(&x.view(), &w.view(), Some(&b.view())).unwrap();
        assert_close(&format!("{conv:?}"), &y.into_dyn(), &array(&case["y"]));
    }
    for case in reference["maxpool2d"].as_array().unwrap() {
        let window = Window {
            kernel: pair(&case["kernel"]),
            stride: pair(&case["stride"]),
            padding: pair(&case["padding"]),
            dilation: pair(&case["dilation"]),
        };
        let x = array(&case["x"]).into_dimensionality().unwrap();
        let pooled = pool::forward(&x.view(), window, case["ceil_mode"].as_bool().unwrap()).unwrap();
        assert_close(&format!("maxpool {window:?}"), &pooled.output.into_dyn(), &array(&case["y"]));
    }
}

#[test]
fn optimizers_follow_the_reference_for_five_steps() {
    for case in fixture()["optimizers"].as_array().unwrap() {
        let spec = serde_json::from_value(case["spec"].clone()).unwrap();
        let mut state = OptimizerState::<f64>::new(spec).unwrap();
        let mut param = array(&case["param"]);
        for (step, (grad, after)) in
            case["grads"].as_array().unwrap().iter().zip(case["after"].as_array().unwrap()).enumerate()
        {
            state.step(&mut param, &array(grad).view()).unwrap();
            assert_close(&format!("{} step {}", case["spec"], step + 1), &param, &array(after));
        }
        assert_eq!(state.step, 5);
    }
}

#[test]
fn optimizers_refuse_bad_settings_and_shapes() {
    let bad: Vec<ravproto::ops::OptimizerSpec> = serde_json::from_str(
        r#"[{"name": "sgd", "lr": -1.0}, {"name": "sgd", "lr": 0.1, "nesterov": true},
            {"name": "adam", "lr": 0.1, "eps": 1e-8, "betas": [1.0, 0.9]},
            {"name": "rmsprop", "lr": 0.1, "alpha": 2.0, "eps": 1e-8}]"#,
    )
    .unwrap();
    for spec in bad {
        assert!(OptimizerState::<f64>::new(spec.clone()).is_err(), "{spec:?} was accepted");
    }
    let spec = serde_json::from_str(r#"{"name": "adam", "lr": 0.1, "eps": 1e-8}"#).unwrap();
    let mut state = OptimizerState::<f32>::new(spec).unwrap();
    let mut param = ArrayD::<f32>::zeros(IxDyn(&[2, 2]));
    let error = state.step(&mut param, &ArrayD::zeros(IxDyn(&[4])).view()).unwrap_err();
    assert!(error.to_string().contains("gradient of shape [4]"), "{error}");
}
