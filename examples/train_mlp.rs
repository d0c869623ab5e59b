//! Tutorial: train a small neural network (a multi-layer perceptron) on the grid.
//!
//! What you will learn: building a training loop as ops (`forward_pass_dense`, activations, a
//! loss and `start_backward_marker`), sharing a layer's weights across batches with
//! `previous_forward_pass`, choosing an optimizer, and reading the loss of every step. The
//! weights stay in the memory of the provider that computes the first step; ravsock sends it
//! every later step of the graph. Training runs in `f64`.
//!
//! What to start: ravsock and one or more providers, as in `hello_graph` (or
//! `bash scripts/demo.sh`). Without `RAVSOCK_TOKEN` the example trains in-process with the
//! `LocalExecutor` instead, which gives exactly the same numbers.
//!
//! Run: `RAVSOCK_TOKEN=<requester token> cargo run -p examples --example train_mlp`
//!
//! Expected output (the loss falls epoch after epoch):
//! ```text
//! epoch 1: mean loss 0.6442
//! ...
//! epoch 10: mean loss 0.1621
//! ```

#![allow(clippy::print_stdout)] // A tutorial prints its results.

use anyhow::{Context, Result};
use ndarray::{Array1, Array2};
use ravop::ops::{Activation, ActivationParams, DenseParams, OptimizerSpec};
use ravop::{BlockingClient, Graph, LocalExecutor, Op};

const EPOCHS: usize = 10;
const BATCHES: usize = 4;
const BATCH_ROWS: usize = 32;

/// A dense layer of `units` trained by Adam, reusing `previous`'s weights when given.
fn dense(x: &Op, units: usize, previous: Option<&Op>) -> Op {
    x.forward_pass_dense(DenseParams {
        n_units: units,
        initial_w: None,
        initial_w0: None,
        optimizer: Some(OptimizerSpec::Adam {
            lr: 0.02,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }),
        previous_forward_pass: previous.map(Op::id),
        training: true,
    })
}

/// Points in the plane, labelled by the quadrant pair they fall in (an XOR-like problem).
fn batch(index: usize) -> (Array2<f64>, Array1<f64>) {
    let x = Array2::from_shape_fn((BATCH_ROWS, 2), |(i, j)| {
        let k = (index * BATCH_ROWS + i) as f64;
        (k * 0.618 + j as f64 * 2.1).sin() * 2.0
    });
    let y = x.rows().into_iter().map(|r| if r[0] * r[1] > 0.0 { 1.0 } else { 0.0 }).collect();
    (x, y)
}

fn main() -> Result<()> {
    let graph = Graph::new("train-mlp");
    let (mut hidden_layer, mut output_layer): (Option<Op>, Option<Op>) = (None, None);
    for epoch in 0..EPOCHS {
        for index in 0..BATCHES {
            let (x, y) = batch(index);
            let (x, y) = (graph.t(x.into_dyn()), graph.t(y.into_dyn()));
            // Forward: dense(16) -> tanh -> dense(2) logits, then the cross-entropy loss.
            let hidden = dense(&x, 16, hidden_layer.as_ref());
            let activated = hidden.forward_pass_activation(ActivationParams {
                act_data: Some(Activation::Tanh),
                optimizer: None,
                previous_forward_pass: None,
                training: true,
            });
            let logits = dense(&activated, 2, output_layer.as_ref());
            let loss = y.cross_entropy_loss(&logits, Default::default());
            loss.persist(format!("loss-{epoch}-{index}"));
            // Backward through the layers, then one optimizer step.
            loss.start_backward_marker(Default::default());
            hidden_layer = Some(hidden);
            output_layer = Some(logits);
        }
    }

    // Every step's loss, in order.
    let names: Vec<String> =
        (0..EPOCHS).flat_map(|epoch| (0..BATCHES).map(move |index| format!("loss-{epoch}-{index}"))).collect();
    // On the grid when a token is set (RAVSOCK_TOKEN or the original's TOKEN, in the
    // environment or a .env file), in process otherwise.
    let losses: Vec<f64> = match BlockingClient::from_env() {
        Ok(client) => {
            let id = client.run(&graph, |_| {})?;
            println!("trained {id} on the grid");
            let fetch = |name: &String| -> Result<f64> {
                Ok(client.fetch(id, name)?.as_tensor().context("a loss is a tensor")?.to_f64_array().sum())
            };
            names.iter().map(fetch).collect::<Result<_>>()?
        }
        Err(ravop::Error::NoToken) => {
            let results = LocalExecutor::default().run(&graph)?;
            println!("trained in-process (set RAVSOCK_TOKEN to use the grid)");
            names.iter().map(|name| Ok(results.array::<f64>(name)?.sum())).collect::<Result<_>>()?
        }
        Err(error) => return Err(error.into()),
    };
    for (epoch, steps) in losses.chunks(BATCHES).enumerate() {
        println!("epoch {}: mean loss {:.4}", epoch + 1, steps.iter().sum::<f64>() / BATCHES as f64);
    }
    Ok(())
}
