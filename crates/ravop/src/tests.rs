//! Graph-building snapshots and local execution.

use crate::ops::{JoinParams, ReduceParams, StatParams};
use crate::{Error, Graph, LocalExecutor, Op};
use expect_test::expect;
use ndarray::array;

#[test]
fn hello_graph_dump_and_result() {
    let graph = Graph::new("hello");
    let a = graph.t(vec![1.0, 2.0, 3.0]);
    let b = graph.t(vec![5.0, 22.0, 7.0]);
    (&a + &b).persist("c");
    expect![[r#"
        op#0 = lin() f64[3]
        op#1 = lin() f64[3]
        op#2 = add(op#0, op#1) {"key":null} persist=c
    "#]]
    .assert_eq(&graph.dump());
    let results = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.array::<f64>("c").unwrap(), array![6.0, 24.0, 10.0].into_dyn());
}

#[test]
fn operators_scalars_and_methods_compose() {
    let graph = Graph::new("mixed");
    let x = graph.t(array![[1.0, 2.0], [3.0, 4.0]]);
    let y = (&x * 2.0 - 1.0) / &x;
    let centred = &x - x.mean(ReduceParams::axis(0).keepdims());
    let total = y.sum(ReduceParams::all()).persist("total");
    centred.std(StatParams { axis: Some(0.into()), ..StatParams::default() }).persist("std");
    (-&total).persist("negated");
    let stacked = graph.stack(&[&x, &x.transpose(Default::default())], JoinParams { axis: 0 });
    stacked.index("[1, :, ::-1]").persist("picked");
    x.greater(&graph.scalar(2.0)).persist("mask");
    expect![[r#"
        op#0 = lin() f64[2, 2]
        op#1 = lin() f64[]
        op#2 = mul(op#0, op#1)
        op#3 = lin() f64[]
        op#4 = sub(op#2, op#3)
        op#5 = div(op#4, op#0)
        op#6 = mean(op#0) {"axis":0,"keepdims":true}
        op#7 = sub(op#0, op#6)
        op#8 = sum(op#5) {"axis":null,"keepdims":false} persist=total
        op#9 = std(op#7) {"axis":0,"keepdims":false,"ddof":0.0} persist=std
        op#10 = neg(op#8) persist=negated
        op#11 = transpose(op#0) {"axes":null}
        op#12 = stack(op#0, op#11) {"axis":0}
        op#13 = index(op#12) {"indices":[{"int":1},{"slice":{"start":null,"stop":null,"step":null}},{"slice":{"start":null,"stop":null,"step":-1}}]} persist=picked
        op#14 = lin() f64[]
        op#15 = greater(op#0, op#14) persist=mask
    "#]]
    .assert_eq(&graph.dump());
    let results = LocalExecutor::default().run(&graph).unwrap();
    // (2x - 1) / x for 1..4 is 1, 1.5, 5/3, 1.75.
    let total = results.array::<f64>("total").unwrap()[[]];
    assert!((total - (1.0 + 1.5 + 5.0 / 3.0 + 1.75)).abs() < 1e-12);
    assert_eq!(results.array::<f64>("negated").unwrap()[[]], -total);
    assert_eq!(results.array::<f64>("std").unwrap(), array![1.0, 1.0].into_dyn());
    assert_eq!(results.array::<f64>("picked").unwrap(), array![[3.0, 1.0], [4.0, 2.0]].into_dyn());
    assert_eq!(results.array::<bool>("mask").unwrap(), array![[false, false], [true, true]].into_dyn());
    assert_eq!(results.names().collect::<Vec<_>>(), vec!["mask", "negated", "picked", "std", "total"]);
}

#[test]
fn build_mistakes_are_reported_before_running() {
    let graph = Graph::new("bad index");
    let a = graph.t(vec![1.0, 2.0]);
    a.index("[__import__('os')]").persist("x");
    let err = LocalExecutor::default().run(&graph).unwrap_err();
    expect![[r#"op#1 (`index`): cannot parse index "[__import__('os')]" at byte 1: unknown name (only None, newaxis, True, False, Ellipsis)"#]]
        .assert_eq(&err.to_string());

    let first = Graph::new("first");
    let second = Graph::new("second");
    let a = first.t(vec![1.0]);
    let b = second.t(vec![2.0]);
    let _ = &a + &b;
    assert_eq!(first.validate().unwrap_err().to_string(), "op#1 (`add`): input op#0 belongs to another graph");

    let graph = Graph::new("names");
    let a = graph.t(vec![1.0]);
    a.persist("x");
    a.neg().persist("x");
    assert!(matches!(graph.validate(), Err(Error::Build { .. })));
}

#[test]
fn kernel_errors_name_the_op() {
    let graph = Graph::new("singular");
    graph.t(array![[1.0, 2.0], [2.0, 4.0]]).inv().persist("inverse");
    let err = LocalExecutor::default().run(&graph).unwrap_err();
    assert_eq!(err.to_string(), "op#1 failed: op `inv`: singular matrix");

    let graph = Graph::new("shapes");
    let a = graph.t(vec![1.0, 2.0, 3.0]);
    let b = graph.t(vec![1.0, 2.0]);
    (a + b).persist("sum");
    let err = LocalExecutor::default().run(&graph).unwrap_err();
    assert_eq!(err.to_string(), "op#2 failed: op `add`: shapes [3] and [2] cannot be broadcast together");
}

#[test]
fn missing_results_are_errors() {
    let graph = Graph::new("split");
    graph
        .t(vec![1, 2, 3, 4])
        .split(crate::ops::SplitParams { num_or_size_splits: crate::ops::SplitSpec::Sections(2), axis: 0 })
        .persist("parts");
    let results = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.tensor("parts").unwrap_err(), Error::NotATensor("parts".into()));
    assert_eq!(results.get("nope").unwrap_err(), Error::UnknownResult("nope".into()));
}

#[test]
fn records_carry_local_ids_values_and_persist_names() {
    let graph = Graph::new("records");
    let a = graph.scalar(2i64);
    a.square().persist("sq");
    let json = serde_json::to_string(&graph.to_records()).unwrap();
    expect![[r#"[{"local_id":0,"operation":{"operator":"lin","params":{"dtype":"i64","shape":[]}},"inputs":[],"persist":null,"value":{"tensor":{"dtype":"i64","shape":[],"data":[2]}}},{"local_id":1,"operation":{"operator":"square","params":{}},"inputs":[{"local":0}],"persist":"sq","value":null}]"#]]
        .assert_eq(&json);
}

#[test]
fn integer_literals_work_as_scalars_and_tensors() {
    let graph = Graph::new("ints");
    let a = graph.t(vec![1, 2, 3]);
    (&a + 2).persist("plus");
    (a * graph.scalar(3)).persist("times");
    let results = LocalExecutor::default().run(&graph).unwrap();
    assert_eq!(results.tensor("plus").unwrap().dtype(), crate::DType::I64);
    assert_eq!(results.array::<i64>("plus").unwrap(), array![3, 4, 5].into_dyn());
    assert_eq!(results.array::<i64>("times").unwrap(), array![3, 6, 9].into_dyn());
}

#[test]
fn sequential_emits_the_hand_written_training_loop_and_learns() {
    use crate::nn::{Dense, Layer, Loss, Sequential};
    use ravproto::ops::{Activation, ActivationParams, DenseParams, OptimizerSpec};
    let adam = OptimizerSpec::Adam { lr: 0.05, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.0, amsgrad: false };
    let batches: Vec<(ndarray::ArrayD<f64>, ndarray::ArrayD<f64>)> = (0..3)
        .map(|b| {
            let x =
                ndarray::Array2::from_shape_fn((8, 2), |(i, j)| (((b * 8 + i) as f64) * 0.7 + j as f64 * 1.9).sin());
            let y = ndarray::Array1::from_iter(x.rows().into_iter().map(|r| f64::from(r[0] + r[1] > 0.0)));
            (x.into_dyn(), y.into_dyn())
        })
        .collect();

    let built = Graph::new("mlp");
    let mut model = Sequential::new(vec![Dense::new(4), Layer::activation(Activation::Tanh), Dense::new(2)])
        .optimizer(adam.clone())
        .loss(Loss::CrossEntropy);
    let losses = model.fit(&built, &batches, 6);

    // The same loop written op by op.
    let manual = Graph::new("mlp");
    let inputs: Vec<(Op, Op)> = batches.iter().map(|(x, y)| (manual.t(x.clone()), manual.t(y.clone()))).collect();
    let mut latest: [Option<Op>; 3] = [None, None, None];
    for _ in 0..6 {
        for (x, y) in &inputs {
            let dense = |input: &Op, units: usize, previous: &Option<Op>| {
                input.forward_pass_dense(DenseParams {
                    n_units: units,
                    initial_w: None,
                    initial_w0: None,
                    optimizer: Some(adam.clone()),
                    previous_forward_pass: previous.as_ref().map(Op::id),
                    training: true,
                })
            };
            let hidden = dense(x, 4, &latest[0]);
            let activated = hidden.forward_pass_activation(ActivationParams {
                act_data: Some(Activation::Tanh),
                optimizer: Some(adam.clone()),
                previous_forward_pass: latest[1].as_ref().map(Op::id),
                training: true,
            });
            let logits = dense(&activated, 2, &latest[2]);
            let loss = y.cross_entropy_loss(&logits, Default::default());
            loss.start_backward_marker(Default::default());
            latest = [Some(hidden), Some(activated), Some(logits)];
        }
    }
    assert_eq!(built.dump(), manual.dump(), "Sequential emits exactly the hand-written ops");

    for (e, epoch) in losses.iter().enumerate() {
        for (b, loss) in epoch.iter().enumerate() {
            loss.persist(format!("loss-{e}-{b}"));
        }
    }
    let results = LocalExecutor::default().run(&built).unwrap();
    let epoch_loss =
        |e: usize| (0..3).map(|b| results.array::<f64>(&format!("loss-{e}-{b}")).unwrap().sum()).sum::<f64>();
    assert!(epoch_loss(5) < epoch_loss(0), "the loss falls: {} -> {}", epoch_loss(0), epoch_loss(5));
}

#[test]
fn estimators_record_fit_ops_and_use_their_models() {
    use crate::ml::{KMeans, Knn, LinearRegression, Svm, Trees};
    let graph = Graph::new("estimators");
    let x = graph.t(ndarray::array![[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0], [4.0, 5.0], [5.0, 3.0]].into_dyn());
    let y = graph.t(ndarray::array![1.0, 2.0, 4.5, 5.5, 9.0, 9.5].into_dyn());
    let labels = graph.t(ndarray::array![0.0, 0.0, 0.0, 1.0, 1.0, 1.0].into_dyn());
    let line = LinearRegression::fit(&x, &y);
    line.predict(&x).persist("line");
    line.score(&x, &y).persist("r2");
    Trees::tree().classifier(&x, &labels).score(&x, &labels).persist("tree_accuracy");
    Trees::forest(10).seed(1).classifier(&x, &labels).score(&x, &labels).persist("forest_accuracy");
    Knn::new(1).classifier(&x, &labels).predict(&x).persist("knn");
    Svm::new(crate::ops::SvmKernel::Linear).classifier(&x, &labels).score(&x, &labels).persist("svm_accuracy");
    KMeans::new(2).seed(3).fit(&x).model().persist("kmeans");
    let results = LocalExecutor::default().run(&graph).unwrap();
    assert!(results.array::<f64>("r2").unwrap().sum() > 0.95);
    assert_eq!(results.array::<f64>("tree_accuracy").unwrap().sum(), 1.0, "a grown tree fits separable training data");
    // Each tree of a forest sees a bootstrap sample, which on six points often misses a
    // class boundary point, so the vote may get one training point wrong.
    let forest_accuracy = results.array::<f64>("forest_accuracy").unwrap().sum();
    assert!(forest_accuracy >= 5.0 / 6.0 - 1e-12, "forest accuracy {forest_accuracy}");
    assert_eq!(
        results.array::<f64>("knn").unwrap().iter().copied().collect::<Vec<_>>(),
        vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        "1-NN predicts its own training labels"
    );
    assert_eq!(results.array::<f64>("svm_accuracy").unwrap().sum(), 1.0, "a linear SVM separates x0 < 2.5");
    let model = crate::FittedModel::from_value(&results.get("kmeans").unwrap().to_wire()).unwrap();
    assert_eq!(model.name(), "kmeans");
}

#[test]
fn models_must_be_model_nodes_of_the_same_graph() {
    let graph = Graph::new("infer");
    let x = graph.t(array![[1.0, 2.0]]);
    let not_a_model = graph.t(vec![1u8, 2, 3]);
    x.infer(&not_a_model).persist("y");
    assert_eq!(
        graph.validate().unwrap_err().to_string(),
        "op#2 (`forward_pass`): `model` op#1 is not a model node (Graph::model)"
    );
    let other = Graph::new("other");
    let model = other.model(vec![0u8; 4]);
    let graph = Graph::new("foreign");
    let x = graph.t(array![[1.0, 2.0]]);
    graph.model(vec![1u8]);
    x.infer(&model);
    assert!(graph.validate().unwrap_err().to_string().contains("belongs to another graph"));
}

/// Without the `onnx` feature the local executor says how to get it; with it, the model runs.
#[test]
fn the_local_executor_runs_onnx_models_with_the_feature() {
    let graph = Graph::new("tiny mlp");
    let model = graph.model(include_bytes!("../../../examples/data/tiny_mlp.onnx").to_vec());
    graph.t(array![[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).infer(&model).persist("p");
    let ran = LocalExecutor::default().run(&graph);
    if cfg!(feature = "onnx") {
        let p = ran.unwrap().array::<f64>("p").unwrap();
        assert_eq!(p.shape(), &[2, 3]);
        assert!(p.rows().into_iter().all(|row| (row.sum() - 1.0).abs() < 1e-6), "softmax rows: {p}");
    } else {
        let error = ran.unwrap_err().to_string();
        assert!(error.contains("features onnx") || error.contains("`onnx` feature"), "{error}");
    }
}

#[tokio::test]
async fn connecting_to_nothing_fails_at_once_with_the_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let refused = crate::Client::connect(&format!("http://127.0.0.1:{port}"), "rav_token").await;
    match refused {
        Err(Error::Transport(message)) => {
            assert!(message.to_lowercase().contains("refused"), "the cause is named: {message}");
            assert!(!message.contains("no answer for"), "connect does not wait: {message}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(started.elapsed() < crate::RECONNECT_FOR / 2, "connect does not wait for a server");
}

/// Scripts ported from the Python ravop keep their calls: `R.where(a, b, condition=mask)`,
/// `R.average(a, axis=1, weights=[...])`, `keepdims="True"`, and get the typed ops' answers.
#[test]
fn original_call_forms_record_the_typed_ops() {
    use crate::Kwargs;
    let graph = Graph::new("ported");
    let a = graph.t(array![[1.0, -2.0], [3.0, -4.0]]);
    let b = graph.t(array![[0.0, 0.0], [0.0, 0.0]]);
    let mask = a.greater(&graph.scalar(0.0));
    graph.call("where", &[&a, &b], Kwargs::new().op("condition", &mask)).unwrap().persist("where op");
    graph
        .call("where", &[&a, &b], Kwargs::new().set("condition", serde_json::json!([[true, false], [false, true]])))
        .unwrap()
        .persist("where constant");
    graph
        .call("average", &[&a], Kwargs::new().set("axis", 1).set("weights", serde_json::json!([1.0, 3.0])))
        .unwrap()
        .persist("average");
    graph.call("matrix_sum", &[&a], Kwargs::new().set("axis", 0).set("keepdims", "True")).unwrap().persist("sum");
    a.where_(&b, &mask).persist("typed where");

    let results = LocalExecutor::default().run(&graph).unwrap();
    let get = |name: &str| results.array::<f64>(name).unwrap();
    assert_eq!(get("where op"), array![[1.0, 0.0], [3.0, 0.0]].into_dyn());
    assert_eq!(get("where op"), get("typed where"));
    assert_eq!(get("where constant"), array![[1.0, 0.0], [0.0, -4.0]].into_dyn());
    assert_eq!(get("average"), array![-1.25, -2.25].into_dyn());
    assert_eq!(get("sum"), array![[4.0, -6.0]].into_dyn());

    // What cannot be translated is refused at the call, saying why.
    let err = graph.call("no_such_op", &[&a], Kwargs::new()).unwrap_err();
    assert_eq!(err.to_string(), "`no_such_op`: no op of the catalogue has this name");
    let err = graph.call("where", &[&a], Kwargs::new().op("condition", &mask)).unwrap_err();
    assert!(err.to_string().contains("input 2 of (x, y, condition)"), "{err}");
    let err = graph.call("sum", &[&a], Kwargs::new().set("axes", 0)).unwrap_err();
    assert!(matches!(err, Error::Call { .. }) && err.to_string().contains("unknown field `axes`"), "{err}");
}
