//! Classic ML (group F) through `ravexec::execute`, against scikit-learn's scores on the same
//! data (`fixtures/classic_reference.json`, made by `scripts/gen_classic_reference.py`): fit
//! ops return a model value, `predict` and `score` use it.

use ndarray::{ArrayD, IxDyn};
use ravexec::{Tensor, TensorValue, execute};
use ravproto::Operation;
use ravproto::model::FittedModel;
use serde_json::{Value, json};

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/classic_reference.json")).expect("valid fixture")
}

fn array(v: &Value) -> ArrayD<f64> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone()).unwrap();
    let data: Vec<f64> = serde_json::from_value(v["data"].clone()).unwrap();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn tensor(v: &Value) -> TensorValue {
    TensorValue::Tensor(Tensor::F64(array(v)))
}

fn op(operator: &str, params: Value) -> Operation {
    serde_json::from_value(json!({"operator": operator, "params": params})).expect("valid op")
}

fn run(operation: &Operation, inputs: &[TensorValue]) -> TensorValue {
    execute(operation, inputs).unwrap_or_else(|e| panic!("{}: {e}", operation.kind()))
}

fn scalar(v: &TensorValue) -> f64 {
    v.as_tensor().expect("a tensor").to_f64_array().sum()
}

/// Fits on the train split and scores on the test split, through the ops.
fn fit_and_score(operator: &str, params: Value, data: &Value) -> (TensorValue, f64) {
    let model = run(&op(operator, params), &[tensor(&data["x_train"]), tensor(&data["y_train"])]);
    let score = run(&op("score", json!({})), &[model.clone(), tensor(&data["x_test"]), tensor(&data["y_test"])]);
    (model, scalar(&score))
}

fn model(value: &TensorValue) -> FittedModel {
    FittedModel::from_value(&value.to_wire()).expect("a fit op returns a model value")
}

#[test]
fn classifiers_score_like_scikit_learn() {
    let fixture = fixture();
    let (data, sklearn) = (&fixture["classification"], &fixture["sklearn"]);
    let (_, knn) = fit_and_score("knn_classifier", json!({"k": 5}), data);
    let want = sklearn["knn_classifier"]["accuracy"].as_f64().unwrap();
    assert!((knn - want).abs() <= 0.02, "k-NN accuracy {knn} vs scikit-learn {want}");
    let (nb_model, nb) = fit_and_score("naive_bayes", json!({}), data);
    let want = sklearn["naive_bayes"]["accuracy"].as_f64().unwrap();
    assert!((nb - want).abs() <= 0.02, "naive Bayes accuracy {nb} vs scikit-learn {want}");
    // Naive Bayes is deterministic: its tables equal scikit-learn's.
    let FittedModel::GaussianNb { theta, var, .. } = model(&nb_model) else { panic!("a Gaussian NB model") };
    for (name, ours) in [("theta", theta), ("var", var)] {
        let ours = Tensor::from_data(&ours).to_f64_array();
        let theirs = array(&sklearn["naive_bayes"][name]);
        assert!(ours.iter().zip(&theirs).all(|(a, b)| (a - b).abs() <= 1e-9 * (1.0 + b.abs())), "{name}");
    }
    // Predictions are class labels of the training set.
    let labels = run(&op("predict", json!({})), &[nb_model, tensor(&data["x_test"])]);
    assert!(labels.as_tensor().unwrap().to_f64_array().iter().all(|l| [0.0, 1.0, 2.0].contains(l)));
}

#[test]
fn regressors_score_like_scikit_learn() {
    let fixture = fixture();
    let (data, sklearn) = (&fixture["regression"], &fixture["sklearn"]);
    let (linear, r2) = fit_and_score("linear_regression", json!({}), data);
    let reference = &sklearn["linear_regression"];
    assert!((r2 - reference["r2"].as_f64().unwrap()).abs() <= 1e-9, "R² {r2} vs {}", reference["r2"]);
    let FittedModel::LinearRegression { coef, intercept } = model(&linear) else { panic!("a linear model") };
    let coef = Tensor::from_data(&coef).to_f64_array();
    for (a, b) in coef.iter().zip(&array(&reference["coef"])) {
        assert!((a - b).abs() <= 1e-9, "coefficient {a} vs scikit-learn {b}");
    }
    assert!((intercept - reference["intercept"].as_f64().unwrap()).abs() <= 1e-9);
    let (_, r2) = fit_and_score("knn_regressor", json!({"k": 4}), data);
    let want = sklearn["knn_regressor"]["r2"].as_f64().unwrap();
    assert!((r2 - want).abs() <= 0.01, "k-NN regressor R² {r2} vs scikit-learn {want}");
}

/// Scores of the estimators whose fit has no closed form (iterative or randomised) against
/// scikit-learn's, with their margins: a single tree depends on how ties between equally good
/// splits are broken, so it gets the widest.
#[test]
fn iterative_and_randomised_estimators_score_like_scikit_learn() {
    let fixture = fixture();
    let sklearn = &fixture["sklearn"];
    let cases = [
        ("logistic_regression", json!({}), "classification", "accuracy", 0.02),
        ("decision_tree_classifier", json!({}), "classification", "accuracy", 0.07),
        ("random_forest_classifier", json!({"random_state": 3}), "classification", "accuracy", 0.04),
        ("decision_tree_regressor", json!({}), "regression", "r2", 0.1),
        ("random_forest_regressor", json!({"random_state": 3}), "regression", "r2", 0.04),
    ];
    for (operator, params, data, metric, margin) in cases {
        let (fitted, ours) = fit_and_score(operator, params.clone(), &fixture[data]);
        let want = sklearn[operator][metric].as_f64().unwrap();
        assert!((ours - want).abs() <= margin, "{operator}: {metric} {ours} vs scikit-learn {want} (margin {margin})");
        // Same seed, same model; the model survives its byte form.
        let again = run(&op(operator, params), &[tensor(&fixture[data]["x_train"]), tensor(&fixture[data]["y_train"])]);
        assert_eq!(model(&again), model(&model_value_round_trip(&again)));
        assert_eq!(again, model_value_round_trip(&fitted), "{operator} is deterministic");
    }
}

fn model_value_round_trip(value: &TensorValue) -> TensorValue {
    let bytes = model(value).encode();
    TensorValue::from_wire(&FittedModel::decode(&bytes).unwrap().to_value())
}

/// `sum_i coef_i K(support_i, x) - rho` for each row of `x`, written out independently of
/// ravexec's kernel code.
fn svm_decisions(
    kernel: &ravproto::model::SvmKernelModel,
    m: &ravproto::model::SvmMachine,
    x: &ArrayD<f64>,
) -> Vec<f64> {
    let support = Tensor::from_data(&m.support).to_f64_array();
    let coef = Tensor::from_data(&m.coef).to_f64_array();
    let k = |a: &[f64], b: &[f64]| {
        let dot: f64 = a.iter().zip(b).map(|(a, b)| a * b).sum();
        let distance: f64 = a.iter().zip(b).map(|(a, b)| (a - b) * (a - b)).sum();
        match kernel.kind {
            ravproto::ops::SvmKernel::Linear => dot,
            ravproto::ops::SvmKernel::Rbf => (-kernel.gamma * distance).exp(),
            ravproto::ops::SvmKernel::Poly => (kernel.gamma * dot + kernel.coef0).powi(kernel.degree),
        }
    };
    let features = x.shape()[1];
    let rows = |a: &ArrayD<f64>| a.as_slice().unwrap().chunks(features).map(<[f64]>::to_vec).collect::<Vec<_>>();
    let (support, x) = (rows(&support), rows(x));
    x.iter().map(|row| support.iter().zip(coef.iter()).map(|(s, c)| c * k(s, row)).sum::<f64>() - m.rho).collect()
}

/// The SVMs run libsvm's algorithm with scikit-learn's defaults, so beyond the scores their
/// solutions match: the pairwise decisions, the SVR predictions, the support-vector counts.
#[test]
fn svms_find_the_solutions_scikit_learn_finds() {
    let fixture = fixture();
    let close = |ours: &[f64], theirs: &ArrayD<f64>, what: &str| {
        let scale = theirs.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (a, b) in ours.iter().zip(theirs.iter()) {
            assert!((a - b).abs() <= 0.01 * scale, "{what}: {a} vs scikit-learn {b}");
        }
        assert_eq!(ours.len(), theirs.len(), "{what}");
    };
    for kernel in ["linear", "rbf", "poly"] {
        let (data, reference) = (&fixture["classification"], &fixture["sklearn"]["svm_svc"][kernel]);
        let (fitted, accuracy) = fit_and_score("svm_svc", json!({"kernel": kernel}), data);
        let want = reference["accuracy"].as_f64().unwrap();
        assert!((accuracy - want).abs() <= 0.02, "svc {kernel}: accuracy {accuracy} vs scikit-learn {want}");
        let FittedModel::SvmSvc { classes, kernel: k, machines } = model(&fitted) else { panic!("an SVC model") };
        assert_eq!((classes, machines.len()), (vec![0.0, 1.0, 2.0], 3));
        let x_test = array(&data["x_test"]);
        let per_machine: Vec<Vec<f64>> = machines.iter().map(|m| svm_decisions(&k, m, &x_test)).collect();
        // scikit-learn's ovo decision_function: one column per pair, row by row.
        let ours: Vec<f64> = (0..x_test.shape()[0]).flat_map(|r| per_machine.iter().map(move |d| d[r])).collect();
        close(&ours, &array(&reference["decision"]), &format!("svc {kernel} decisions"));
        let mut vectors: Vec<Vec<u64>> = machines
            .iter()
            .flat_map(|m| {
                let s = Tensor::from_data(&m.support).to_f64_array();
                s.rows().into_iter().map(|r| r.iter().map(|v| v.to_bits()).collect()).collect::<Vec<_>>()
            })
            .collect();
        vectors.sort();
        vectors.dedup();
        let want = reference["n_support"].as_u64().unwrap() as usize;
        assert!(vectors.len().abs_diff(want) <= 2, "svc {kernel}: {} support vectors vs {want}", vectors.len());

        let (data, reference) = (&fixture["regression"], &fixture["sklearn"]["svm_svr"][kernel]);
        let (fitted, r2) = fit_and_score("svm_svr", json!({"kernel": kernel}), data);
        let want = reference["r2"].as_f64().unwrap();
        assert!((r2 - want).abs() <= 0.01, "svr {kernel}: R² {r2} vs scikit-learn {want}");
        let predicted = run(&op("predict", json!({})), &[fitted.clone(), tensor(&data["x_test"])]);
        let predicted: Vec<f64> = predicted.as_tensor().unwrap().to_f64_array().iter().copied().collect();
        close(&predicted, &array(&reference["prediction"]), &format!("svr {kernel} predictions"));
        let FittedModel::SvmSvr { machine, .. } = model(&fitted) else { panic!("an SVR model") };
        let want = reference["n_support"].as_u64().unwrap() as usize;
        let count = Tensor::from_data(&machine.coef).to_f64_array().len();
        assert!(count.abs_diff(want) <= 2, "svr {kernel}: {count} support vectors vs {want}");
    }
}

#[test]
fn a_malformed_tree_is_refused_not_followed() {
    let fixture = fixture();
    let data = &fixture["classification"];
    let fitted = run(
        &op("decision_tree_classifier", json!({"max_depth": 2})),
        &[tensor(&data["x_train"]), tensor(&data["y_train"])],
    );
    let FittedModel::DecisionTreeClassifier { classes, mut tree } = model(&fitted) else { panic!("a tree") };
    // A cycle: the root's left child is the root.
    let mut children = tree.children.to_i64().unwrap();
    children[0] = 0;
    tree.children = ravproto::TensorData::from_i64(tree.children.shape().to_vec(), &children).unwrap();
    let broken = TensorValue::from_wire(&FittedModel::DecisionTreeClassifier { classes, tree }.to_value());
    let error = execute(&op("predict", json!({})), &[broken, tensor(&data["x_test"])]).unwrap_err();
    assert!(error.to_string().contains("malformed"), "{error}");
}

#[test]
fn kmeans_finds_clusters_as_good_as_scikit_learn() {
    let fixture = fixture();
    let x = tensor(&fixture["clusters"]);
    let fitted = run(&op("kmeans", json!({"n_clusters": 4, "random_state": 7})), std::slice::from_ref(&x));
    let score = scalar(&run(&op("score", json!({})), &[fitted.clone(), x.clone(), x.clone()]));
    let want = fixture["sklearn"]["kmeans"]["inertia"].as_f64().unwrap();
    assert!(-score <= want * 1.01, "inertia {} vs scikit-learn {want}", -score);
    let FittedModel::Kmeans { inertia, .. } = model(&fitted) else { panic!("a k-means model") };
    assert!((inertia + score).abs() <= 1e-9 * inertia, "the model's inertia is its training score");
    let clusters = run(&op("predict", json!({})), &[fitted.clone(), x.clone()]);
    let clusters = clusters.as_tensor().unwrap().to_f64_array();
    let mut used: Vec<f64> = clusters.iter().copied().collect();
    used.sort_by(f64::total_cmp);
    used.dedup();
    assert_eq!(used, vec![0.0, 1.0, 2.0, 3.0], "every cluster has members");
    // Seeded: the same seed gives the same model.
    let again = run(&op("kmeans", json!({"n_clusters": 4, "random_state": 7})), &[x]);
    assert_eq!(model(&again), model(&fitted));
}

#[test]
fn bad_inputs_get_typed_errors() {
    let x = TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[4, 2]))));
    let y3 = TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[3]))));
    let error = execute(&op("linear_regression", json!({})), &[x.clone(), y3]).unwrap_err();
    assert!(error.to_string().contains("one value per sample"), "{error}");
    let y = TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[4]))));
    let error = execute(&op("knn_classifier", json!({"k": 9})), &[x.clone(), y.clone()]).unwrap_err();
    assert!(error.to_string().contains("k = 9"), "{error}");
    // A plain tensor is not a model.
    let error = execute(&op("predict", json!({})), &[x.clone(), x.clone()]).unwrap_err();
    assert!(error.to_string().contains("not a fitted model"), "{error}");
    // A model fitted on 2 features refuses 3.
    let model = run(&op("knn_regressor", json!({"k": 1})), &[x, y]);
    let wide = TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[1, 3]))));
    let error = execute(&op("predict", json!({})), &[model, wide]).unwrap_err();
    assert!(error.to_string().contains("2 features"), "{error}");
    let error = execute(
        &op("svm_svc", json!({})),
        &[
            TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[2, 2])))),
            TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[2])))),
        ],
    )
    .unwrap_err();
    assert!(error.to_string().contains("at least two classes"), "{error}");
    let error = execute(
        &op("decision_tree_regressor", json!({"criterion": "gini"})),
        &[
            TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[2, 2])))),
            TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[2])))),
        ],
    )
    .unwrap_err();
    assert!(error.to_string().contains("does not fit"), "{error}");
}
