//! The training session: gradients through a whole network against finite differences of its
//! loss, weight sharing through `previous_forward_pass`, and a small training run.

use ndarray::{ArrayD, IxDyn};
use ravexec::train::Session;
use ravexec::{Tensor, TensorValue};
use ravproto::checkpoint::Checkpoint;
use ravproto::{OpId, Operation, TensorData};
use serde_json::json;

fn op(operator: &str, params: serde_json::Value) -> Operation {
    serde_json::from_value(json!({"operator": operator, "params": params})).expect("valid op")
}

fn wire(a: &ArrayD<f64>) -> serde_json::Value {
    serde_json::to_value(TensorData::from_f64(a.shape().to_vec(), &a.iter().copied().collect::<Vec<_>>()).unwrap())
        .unwrap()
}

fn tensor(a: &ArrayD<f64>) -> TensorValue {
    TensorValue::Tensor(Tensor::F64(a.clone()))
}

fn value(v: &TensorValue) -> ArrayD<f64> {
    v.as_tensor().unwrap().to_f64_array()
}

fn grid(shape: &[usize], scale: f64, offset: usize) -> ArrayD<f64> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(
        IxDyn(shape),
        (0..n).map(|i| (((i + offset) * 7919 % 97) as f64 / 97.0 - 0.5) * scale).collect(),
    )
    .unwrap()
}

/// A conv → batch norm → relu → maxpool → flatten → dense → cross entropy network with the
/// given weights; returns the loss and the session after `start_backward_marker(step=false)`.
fn network(weights: &[ArrayD<f64>; 5], x: &ArrayD<f64>, labels: &ArrayD<f64>) -> (f64, Session) {
    let [conv_w, conv_b, gamma, dense_w, dense_b] = weights;
    let mut session = Session::new();
    let ops = [
        (
            2,
            op(
                "forward_pass_conv2d",
                json!({"in_channels": 2, "out_channels": 3, "kernel_size": [3, 3], "padding": [1, 1],
            "initial_w": wire(conv_w), "initial_w0": wire(conv_b)}),
            ),
            vec![0],
        ),
        (3, op("forward_pass_batchnorm2d", json!({"initial_gamma": wire(gamma)})), vec![2]),
        (4, op("forward_pass_activation", json!({"act_data": {"name": "tanh"}})), vec![3]),
        (5, op("forward_pass_maxpool2d", json!({"kernel_size": [2, 2]})), vec![4]),
        (6, op("forward_pass_flatten", json!({})), vec![5]),
        (
            7,
            op("forward_pass_dense", json!({"n_units": 3, "initial_w": wire(dense_w), "initial_w0": wire(dense_b)})),
            vec![6],
        ),
        (8, op("cross_entropy_loss", json!({})), vec![1, 7]),
        (9, op("start_backward_marker", json!({"step": false})), vec![8]),
    ];
    let mut values = std::collections::BTreeMap::from([(OpId(0), tensor(x)), (OpId(1), tensor(labels))]);
    for (id, operation, inputs) in ops {
        let ids: Vec<OpId> = inputs.into_iter().map(OpId).collect();
        let args: Vec<TensorValue> = ids.iter().map(|i| values[i].clone()).collect();
        let out = session.run(OpId(id), &operation, &ids, &args).expect("op runs");
        values.insert(OpId(id), out);
    }
    (value(&values[&OpId(8)]).sum(), session)
}

#[test]
fn network_gradients_match_finite_differences() {
    let x = grid(&[4, 2, 4, 4], 2.0, 0);
    let labels = ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.0, 2.0, 1.0, 2.0]).unwrap();
    let weights = [
        grid(&[3, 2, 3, 3], 1.0, 1),
        grid(&[3], 0.5, 2),
        grid(&[3], 0.5, 3) + 1.0,
        grid(&[12, 3], 1.0, 4),
        grid(&[3], 0.5, 5),
    ];
    let (_, session) = network(&weights, &x, &labels);
    let grads = |layer: u64, name: &str| {
        session.layers()[&OpId(layer)].params[name].grad.clone().expect("a gradient after the backward marker")
    };
    let analytic = [grads(2, "w"), grads(2, "b"), grads(3, "gamma"), grads(7, "w"), grads(7, "b")];
    for (k, analytic) in analytic.iter().enumerate() {
        let mut probe = weights.clone();
        for i in 0..probe[k].len() {
            let original = probe[k].as_slice().unwrap()[i];
            let h = 1e-6;
            probe[k].as_slice_mut().unwrap()[i] = original + h;
            let up = network(&probe, &x, &labels).0;
            probe[k].as_slice_mut().unwrap()[i] = original - h;
            let down = network(&probe, &x, &labels).0;
            probe[k].as_slice_mut().unwrap()[i] = original;
            let numeric = (up - down) / (2.0 * h);
            let a = analytic.as_slice().unwrap()[i];
            assert!((a - numeric).abs() <= 1e-6 + 1e-5 * numeric.abs(), "weight {k} element {i}: {a} vs {numeric}");
        }
    }
}

/// Two-layer MLP on a separable 2-class problem; batches share weights through
/// `previous_forward_pass`; the loss per epoch. With `resume`, every step continues in a new
/// session restored from the previous one's encoded checkpoint, as a provider taking over a
/// graph does.
fn train_mlp_with(epochs: usize, optimizer: serde_json::Value, resume: bool) -> Vec<f64> {
    let n = 64;
    let x = grid(&[n, 2], 4.0, 0);
    let labels: Vec<f64> = x.rows().into_iter().map(|r| if r[0] + r[1] > 0.0 { 1.0 } else { 0.0 }).collect();
    let mut session = Session::new();
    let mut next = 1000u64;
    let mut fresh = || {
        next += 1;
        OpId(next)
    };
    let (mut first, mut second): (Option<OpId>, Option<OpId>) = (None, None);
    let mut losses = Vec::new();
    for _ in 0..epochs {
        let mut epoch_loss = 0.0;
        for batch in 0..4 {
            let rows = batch * 16..(batch + 1) * 16;
            let xb = x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(rows.clone())).to_owned();
            let yb = ArrayD::from_shape_vec(IxDyn(&[16]), labels[rows].to_vec()).unwrap();
            let (xi, yi) = (fresh(), fresh());
            let mut run = |id: OpId, operation: Operation, inputs: &[(OpId, TensorValue)]| {
                let ids: Vec<OpId> = inputs.iter().map(|(i, _)| *i).collect();
                let vals: Vec<TensorValue> = inputs.iter().map(|(_, v)| v.clone()).collect();
                session.run(id, &operation, &ids, &vals).unwrap()
            };
            let d1 = fresh();
            let h = run(
                d1,
                op("forward_pass_dense", json!({"n_units": 8, "optimizer": optimizer, "previous_forward_pass": first})),
                &[(xi, tensor(&xb))],
            );
            first = Some(d1);
            let a1 = fresh();
            let h = run(a1, op("forward_pass_activation", json!({"act_data": {"name": "relu"}})), &[(d1, h)]);
            let d2 = fresh();
            let logits = run(
                d2,
                op(
                    "forward_pass_dense",
                    json!({"n_units": 2, "optimizer": optimizer, "previous_forward_pass": second}),
                ),
                &[(a1, h)],
            );
            second = Some(d2);
            let l = fresh();
            let loss = run(l, op("cross_entropy_loss", json!({})), &[(yi, tensor(&yb)), (d2, logits)]);
            epoch_loss += value(&loss).sum() / 4.0;
            run(fresh(), op("start_backward_marker", json!({})), &[(l, loss)]);
            if resume {
                session.version += 1;
                let bytes = session.checkpoint().encode();
                session = Session::from_checkpoint(&Checkpoint::decode(&bytes).unwrap()).unwrap();
            }
        }
        losses.push(epoch_loss);
    }
    losses
}

fn train_mlp(epochs: usize, optimizer: serde_json::Value) -> Vec<f64> {
    train_mlp_with(epochs, optimizer, false)
}

#[test]
fn training_resumed_from_checkpoints_follows_the_same_curve() {
    for optimizer in [
        json!({"name": "adam", "lr": 0.05, "eps": 1e-8}),
        json!({"name": "sgd", "lr": 0.5, "momentum": 0.9, "nesterov": true}),
        json!({"name": "adadelta", "lr": 1.0, "rho": 0.9, "eps": 1e-6}),
    ] {
        assert_eq!(train_mlp_with(5, optimizer.clone(), true), train_mlp(5, optimizer.clone()), "{optimizer}");
    }
}

#[test]
fn a_checkpoint_holds_batch_norm_statistics_and_survives_a_round_trip() {
    let labels = ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.0, 2.0, 1.0, 2.0]).unwrap();
    let weights = [
        grid(&[3, 2, 3, 3], 1.0, 1),
        grid(&[3], 0.5, 2),
        grid(&[3], 0.5, 3) + 1.0,
        grid(&[12, 3], 1.0, 4),
        grid(&[3], 0.5, 5),
    ];
    let (_, session) = network(&weights, &grid(&[4, 2, 4, 4], 2.0, 0), &labels);
    let checkpoint = session.checkpoint();
    assert!(checkpoint.layers.iter().any(|l| l.batchnorm.is_some()), "the network has a batch norm");
    let restored = Session::from_checkpoint(&Checkpoint::decode(&checkpoint.encode()).unwrap()).unwrap();
    assert_eq!(restored.checkpoint(), checkpoint);
    let stats = |s: &Session| s.layers()[&OpId(3)].batchnorm.clone().expect("batch norm statistics");
    assert_eq!(stats(&restored), stats(&session));
    // A checkpoint naming a layer it does not hold is refused.
    let mut broken = checkpoint.clone();
    broken.layer_of.push((OpId(77), OpId(78)));
    assert!(Session::from_checkpoint(&broken).is_err());
}

#[test]
fn an_mlp_learns_with_every_optimizer_and_is_deterministic() {
    for optimizer in [
        json!({"name": "sgd", "lr": 0.5, "momentum": 0.9}),
        json!({"name": "adam", "lr": 0.05, "eps": 1e-8}),
        json!({"name": "rmsprop", "lr": 0.01, "alpha": 0.99, "eps": 1e-8}),
        json!({"name": "adagrad", "lr": 0.3, "eps": 1e-10}),
    ] {
        let losses = train_mlp(20, optimizer.clone());
        assert!(losses[19] < 0.5 * losses[0], "{optimizer}: loss went from {} to {}", losses[0], losses[19]);
        assert_eq!(losses, train_mlp(20, optimizer.clone()), "{optimizer}: same inputs, same curve");
    }
}

#[test]
fn training_errors_are_typed() {
    let mut session = Session::new();
    let x = TensorValue::Tensor(Tensor::F64(ArrayD::zeros(IxDyn(&[2, 3]))));
    let unknown = op("forward_pass_dense", json!({"n_units": 2, "previous_forward_pass": 77}));
    let error = session.run(OpId(1), &unknown, &[OpId(0)], std::slice::from_ref(&x)).unwrap_err();
    assert!(error.to_string().contains("previous_forward_pass op#77"), "{error}");
    let marker = op("start_backward_marker", json!({}));
    let error = session.run(OpId(2), &marker, &[OpId(0)], std::slice::from_ref(&x)).unwrap_err();
    assert!(error.to_string().contains("needs a loss op"), "{error}");
    let bad_init = op("forward_pass_dense", json!({"n_units": 2, "initial_w": wire(&ArrayD::zeros(IxDyn(&[2, 2])))}));
    assert!(session.run(OpId(3), &bad_init, &[OpId(0)], &[x]).unwrap_err().to_string().contains("initial_w"));
}

/// embedding → layer norm → dense → square loss; the loss and the session after the backward.
fn text_network(weights: &[ArrayD<f64>; 3], tokens: &ArrayD<f64>, target: &ArrayD<f64>) -> (f64, Session) {
    let [table, gamma, dense_w] = weights;
    let mut session = Session::new();
    let ops = [
        (
            2,
            op("forward_pass_embedding", json!({"vocab_size": 5, "embed_dim": 4, "initial_weights": wire(table)})),
            vec![0],
        ),
        (3, op("forward_pass_layernorm", json!({"normalized_shape": [4], "initial_w": wire(gamma)})), vec![2]),
        (4, op("forward_pass_dense", json!({"n_units": 2, "initial_w": wire(dense_w)})), vec![3]),
        (5, op("square_loss", json!({})), vec![1, 4]),
        (6, op("start_backward_marker", json!({"step": false})), vec![5]),
    ];
    let mut values = std::collections::BTreeMap::from([(OpId(0), tensor(tokens)), (OpId(1), tensor(target))]);
    for (id, operation, inputs) in ops {
        let ids: Vec<OpId> = inputs.into_iter().map(OpId).collect();
        let args: Vec<TensorValue> = ids.iter().map(|i| values[i].clone()).collect();
        let out = session.run(OpId(id), &operation, &ids, &args).expect("op runs");
        values.insert(OpId(id), out);
    }
    (value(&values[&OpId(5)]).sum(), session)
}

#[test]
fn embedding_and_layernorm_train_through_the_session() {
    let tokens = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![0.0, 3.0, 3.0, 1.0, 4.0, 0.0]).unwrap();
    let target = grid(&[2, 3, 2], 1.0, 9);
    let weights = [grid(&[5, 4], 2.0, 1), grid(&[4], 0.5, 2) + 1.0, grid(&[4, 2], 1.0, 3)];
    let (_, session) = text_network(&weights, &tokens, &target);
    let analytic = [
        session.layers()[&OpId(2)].params["w"].grad.clone().unwrap(),
        session.layers()[&OpId(3)].params["gamma"].grad.clone().unwrap(),
        session.layers()[&OpId(4)].params["w"].grad.clone().unwrap(),
    ];
    for (k, analytic) in analytic.iter().enumerate() {
        let mut probe = weights.clone();
        for i in 0..probe[k].len() {
            let original = probe[k].as_slice().unwrap()[i];
            probe[k].as_slice_mut().unwrap()[i] = original + 1e-6;
            let up = text_network(&probe, &tokens, &target).0;
            probe[k].as_slice_mut().unwrap()[i] = original - 1e-6;
            let down = text_network(&probe, &tokens, &target).0;
            probe[k].as_slice_mut().unwrap()[i] = original;
            let numeric = (up - down) / 2e-6;
            let a = analytic.as_slice().unwrap()[i];
            assert!((a - numeric).abs() <= 1e-6 + 1e-5 * numeric.abs(), "weight {k} element {i}: {a} vs {numeric}");
        }
    }
    // Row 2 of the table is never looked up: its gradient is exactly zero.
    assert!(analytic[0].index_axis(ndarray::Axis(0), 2).iter().all(|&g| g == 0.0));
}

#[test]
fn a_layer_is_only_reused_by_its_own_kind() {
    let mut session = Session::new();
    let x = TensorValue::Tensor(Tensor::F64(grid(&[4, 3], 1.0, 0)));
    let norm = op("forward_pass_batchnorm1d", json!({}));
    session.run(OpId(1), &norm, &[OpId(0)], std::slice::from_ref(&x)).unwrap();
    for (id, wrong) in [
        (2, op("forward_pass_dense", json!({"n_units": 2, "previous_forward_pass": 1}))),
        (3, op("forward_pass_layernorm", json!({"normalized_shape": [3], "previous_forward_pass": 1}))),
    ] {
        let error = session.run(OpId(id), &wrong, &[OpId(0)], std::slice::from_ref(&x)).unwrap_err();
        assert!(error.to_string().contains("is a `forward_pass_batchnorm1d` layer"), "{error}");
    }
    let again = op("forward_pass_batchnorm1d", json!({"previous_forward_pass": 1}));
    session.run(OpId(5), &again, &[OpId(0)], &[x]).unwrap();
}
