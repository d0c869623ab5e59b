//! Splitting a graph into subgraphs (port of the original's §3.6.1 subgraph creation).
//!
//! Pending ops are cut, in dependency (id) order, into contiguous windows of at most
//! `window` ops, and a window always ends right after a `start_backward_marker`, which closes a
//! training step; a window never ends inside a training step (it grows until the marker). Each subgraph records the ops it needs from outside (its external inputs)
//! and which of its ops must be kept after it runs (consumed elsewhere, or persisted).

use ravproto::{OpId, OpKind};
use std::collections::{BTreeMap, BTreeSet};

/// What the scheduler knows of one op.
#[derive(Clone, Debug, PartialEq)]
pub struct OpInfo {
    /// The op.
    pub id: OpId,
    /// Its operator.
    pub kind: OpKind,
    /// Its inputs (and param references), all with smaller ids.
    pub inputs: Vec<OpId>,
    /// Already computed: an input value, or a result restored after a restart.
    pub computed: bool,
    /// Kept after the graph finishes (fetched by name).
    pub persisted: bool,
}

/// A contiguous window of a graph's pending ops, scheduled as one unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Subgraph {
    /// Ops in dependency order.
    pub ops: Vec<OpId>,
    /// Ops outside this subgraph whose values it reads.
    pub external_inputs: BTreeSet<OpId>,
    /// Its ops whose values must be kept (read by other subgraphs, or persisted).
    pub outputs: Vec<OpId>,
    /// Whether it has training ops ([`OpKind::trains`]): it reads and changes the graph's
    /// training state, so it runs alone and where the state is.
    pub trains: bool,
}

/// Cuts the pending ops of `ops` into subgraphs of at most `window` ops.
pub fn partition(ops: &[OpInfo], window: usize) -> Vec<Subgraph> {
    let window = window.max(1);
    let mut groups: Vec<Vec<&OpInfo>> = Vec::new();
    let mut current: Vec<&OpInfo> = Vec::new();
    // A training step (training ops up to their `start_backward_marker`) is never cut: the
    // state checkpointed after a subgraph is then always between steps.
    let mut step_open = false;
    for op in ops.iter().filter(|op| !op.computed) {
        current.push(op);
        step_open |= op.kind.trains();
        if op.kind == OpKind::StartBackwardMarker {
            step_open = false;
            groups.push(std::mem::take(&mut current));
        } else if current.len() >= window && !step_open {
            groups.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    // Which group each pending op landed in, to find values that cross groups.
    let group_of: BTreeMap<OpId, usize> =
        groups.iter().enumerate().flat_map(|(g, ops)| ops.iter().map(move |op| (op.id, g))).collect();
    let mut read_elsewhere: BTreeSet<OpId> = BTreeSet::new();
    for (g, group) in groups.iter().enumerate() {
        for op in group {
            for input in &op.inputs {
                if group_of.get(input) != Some(&g) {
                    read_elsewhere.insert(*input);
                }
            }
        }
    }
    groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            let external_inputs = group
                .iter()
                .flat_map(|op| op.inputs.iter())
                .filter(|id| group_of.get(id) != Some(&g))
                .copied()
                .collect();
            let outputs =
                group.iter().filter(|op| op.persisted || read_elsewhere.contains(&op.id)).map(|op| op.id).collect();
            let trains = group.iter().any(|op| op.kind.trains());
            Subgraph { ops: group.iter().map(|op| op.id).collect(), external_inputs, outputs, trains }
        })
        .collect()
}
