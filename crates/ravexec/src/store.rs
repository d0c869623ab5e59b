//! The values of a graph while it runs, by op: what the provider's assignments and the local
//! executor keep between ops.
//!
//! An op borrows its inputs out of the store and gives them back, so a value exists once
//! however many ops read it (a clone of a big array is a copy of all of it); a value is
//! dropped after its last read, so memory follows the live values rather than the graph.

use crate::TensorValue;
use ravproto::OpId;
use std::collections::BTreeMap;

/// What an op reads, in order: its inputs, then the values its params name (an ONNX model).
pub fn reads(inputs: &[OpId], operation: &ravproto::Operation) -> Vec<OpId> {
    inputs.iter().copied().chain(operation.value_refs()).collect()
}

/// Values by op, each with the number of reads it still has to serve.
#[derive(Debug, Default)]
pub struct ValueStore {
    values: BTreeMap<OpId, TensorValue>,
    reads_left: BTreeMap<OpId, usize>,
}

impl ValueStore {
    /// A store for a run in which the ops of `reads` are read, once per occurrence (every op's
    /// inputs, and once more for each value the caller takes at the end).
    pub fn new(reads: impl IntoIterator<Item = OpId>) -> ValueStore {
        let mut reads_left: BTreeMap<OpId, usize> = BTreeMap::new();
        for id in reads {
            *reads_left.entry(id).or_default() += 1;
        }
        ValueStore { values: BTreeMap::new(), reads_left }
    }

    /// Keeps the value of `id`, unless nothing will read it.
    pub fn insert(&mut self, id: OpId, value: TensorValue) {
        if self.reads_left.get(&id).is_some_and(|&n| n > 0) {
            self.values.insert(id, value);
        }
    }

    /// Lends the values of `ids` to one op, in order; `None` if one is missing. An id that
    /// appears twice (`x * x`) is lent once and copied for the repeat. Give them back with
    /// [`ValueStore::give_back`], whether the op worked or not.
    pub fn lend(&mut self, ids: &[OpId]) -> Option<Vec<TensorValue>> {
        let mut lent: Vec<TensorValue> = Vec::with_capacity(ids.len());
        for (at, id) in ids.iter().enumerate() {
            let value = match ids[..at].iter().position(|earlier| earlier == id) {
                Some(first) => lent[first].clone(),
                None => match self.values.remove(id) {
                    Some(value) => value,
                    None => {
                        // Put back what was taken: the store stays as it was.
                        self.give_back(&ids[..at], lent, false);
                        return None;
                    }
                },
            };
            lent.push(value);
        }
        Some(lent)
    }

    /// Returns values lent by [`ValueStore::lend`] for `ids`; with `read`, the op has read them
    /// (a value nothing else reads is dropped here).
    pub fn give_back(&mut self, ids: &[OpId], lent: Vec<TensorValue>, read: bool) {
        if read {
            for id in ids {
                self.reads_left.entry(*id).and_modify(|n| *n = n.saturating_sub(1));
            }
        }
        for (at, (id, value)) in ids.iter().zip(lent).enumerate() {
            if !ids[..at].contains(id) {
                self.insert(*id, value);
            }
        }
    }

    /// Reads the value of `id` for the caller (a result leaving the run): moved out on its
    /// last read, a copy before.
    pub fn take(&mut self, id: OpId) -> Option<TensorValue> {
        self.reads_left.entry(id).and_modify(|n| *n = n.saturating_sub(1));
        if self.reads_left.get(&id).is_some_and(|&n| n > 0) {
            self.values.get(&id).cloned()
        } else {
            self.values.remove(&id)
        }
    }

    /// Whether the value of `id` is held.
    pub fn contains(&self, id: OpId) -> bool {
        self.values.contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tensor;

    fn value(x: f64) -> TensorValue {
        TensorValue::Tensor(Tensor::F64(ndarray::arr0(x).into_dyn()))
    }

    #[test]
    fn values_are_lent_not_copied_and_dropped_after_their_last_read() {
        let (a, b, c) = (OpId(1), OpId(2), OpId(3));
        // b reads a; c reads a and b twice; the caller takes c.
        let mut store = ValueStore::new([a, a, b, b, c]);
        store.insert(a, value(1.0));
        let lent = store.lend(&[a]).unwrap();
        assert!(!store.contains(a), "lent, not copied");
        store.give_back(&[a], lent, true);
        assert!(store.contains(a), "a has one more read");
        store.insert(b, value(2.0));
        let lent = store.lend(&[a, b, b]).unwrap();
        assert_eq!(lent, vec![value(1.0), value(2.0), value(2.0)]);
        store.give_back(&[a, b, b], lent, true);
        assert!(!store.contains(a) && !store.contains(b), "both read for the last time");
        store.insert(c, value(3.0));
        assert_eq!(store.take(c), Some(value(3.0)));
        assert!(!store.contains(c));
        // Nothing reads d: it is not kept.
        store.insert(OpId(4), value(4.0));
        assert!(!store.contains(OpId(4)));
    }

    #[test]
    fn a_missing_input_leaves_the_store_as_it_was() {
        let (a, b) = (OpId(1), OpId(2));
        let mut store = ValueStore::new([a, b]);
        store.insert(a, value(1.0));
        assert_eq!(store.lend(&[a, b]), None);
        assert!(store.contains(a));
        // An op that failed gives its inputs back unread: they keep their reads.
        let lent = store.lend(&[a]).unwrap();
        store.give_back(&[a], lent, false);
        assert_eq!(store.take(a), Some(value(1.0)));
    }
}
