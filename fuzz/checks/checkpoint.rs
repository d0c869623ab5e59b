//! Training checkpoints and fitted models: blobs a provider sends back and the next provider
//! (or the requester) reads. What decodes encodes back to bytes that decode the same.
//!
//! Shared by the fuzz target and the corpus replay test (`crates/ravtest/tests/corpus`).

use ravproto::checkpoint::Checkpoint;
use ravproto::model::FittedModel;

/// Panics where the property above does not hold for `data`.
pub(crate) fn check(data: &[u8]) {
    if let Ok(checkpoint) = Checkpoint::decode(data) {
        let encoded = checkpoint.encode();
        let again = Checkpoint::decode(&encoded).expect("an encoded checkpoint decodes");
        assert_eq!(again.encode(), encoded);
    }
    if let Ok(model) = FittedModel::decode(data) {
        let encoded = model.encode();
        let again = FittedModel::decode(&encoded).expect("an encoded model decodes");
        assert_eq!(again.encode(), encoded);
    }
}
