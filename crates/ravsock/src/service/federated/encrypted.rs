//! The tfhe side of federated queries, built with the cargo feature `he`: the public key read
//! from the requester's evaluation keys, the shape check of a ciphertext submission, and the
//! sum of the submissions under the evaluation key. Without the feature each refuses.

use crate::db::Db;
use crate::error::{Error, Result};
use base64::Engine;
use ravproto::federated::{FederatedPayload, FederatedSpec};

/// Whether this build can add encrypted submissions.
pub const ENCRYPTION_BUILT: bool = cfg!(feature = "he");

/// The refusal of encrypted work by a build without the `he` feature.
#[cfg(not(feature = "he"))]
fn not_built() -> Error {
    Error::Conflict("this ravsock was built without homomorphic encryption (cargo feature `he`)".into())
}

fn decode(ciphertext: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(ciphertext)
        .map_err(|e| Error::BadRequest(format!("ciphertext is not base64: {e}")))
}

/// The compact public key inside the requester's evaluation keys.
#[cfg(feature = "he")]
pub(super) async fn public_key_of(keys: bytes::Bytes) -> Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || ravfed::he::public_key_of(&keys))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::BadRequest(format!("evaluation keys: {e}")))
}

#[cfg(not(feature = "he"))]
pub(super) async fn public_key_of(_keys: bytes::Bytes) -> Result<Vec<u8>> {
    Err(not_built())
}

/// Checks that a submission is a ciphertext list of the right shape for this graph.
#[cfg(feature = "he")]
pub(super) async fn check_ciphertext(db: &Db, spec: &FederatedSpec, ciphertext: &str) -> Result<()> {
    let bytes = decode(ciphertext)?;
    let public = db
        .federated_public_key(spec.graph_id)
        .await?
        .ok_or_else(|| Error::Conflict(format!("{} has no keys", spec.graph_id)))?;
    let columns = spec.columns.clone();
    // Checking needs only the public key's parameters, not the 60 MB server key.
    tokio::task::spawn_blocking(move || ravfed::he::check_submission(&public, &columns, &bytes))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::BadRequest(format!("submission: {e}")))
}

#[cfg(not(feature = "he"))]
pub(super) async fn check_ciphertext(_db: &Db, _spec: &FederatedSpec, ciphertext: &str) -> Result<()> {
    decode(ciphertext)?;
    Err(not_built())
}

/// The encrypted sum of the submissions, under the requester's evaluation key.
#[cfg(feature = "he")]
pub(super) async fn aggregate(db: &Db, spec: &FederatedSpec, submissions: Vec<String>) -> Result<FederatedPayload> {
    let keys = db
        .federated_evaluation_keys(spec.graph_id)
        .await?
        .ok_or_else(|| Error::Conflict(format!("{} has no keys", spec.graph_id)))?;
    let mut ciphertexts = Vec::with_capacity(submissions.len());
    for submission in &submissions {
        match serde_json::from_str(submission).map_err(|e| Error::Internal(e.to_string()))? {
            FederatedPayload::Encrypted(text) => ciphertexts.push(decode(&text)?),
            FederatedPayload::Plain(_) => {
                return Err(Error::Internal(format!("{}: a plain submission in an encrypted query", spec.graph_id)));
            }
        }
    }
    let columns = spec.columns.clone();
    let sum = tokio::task::spawn_blocking(move || {
        let mut aggregator = ravfed::he::Aggregator::new(&keys, &columns)?;
        for ciphertext in &ciphertexts {
            aggregator.add(ciphertext)?;
        }
        aggregator.finish()
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| Error::Internal(format!("adding the encrypted submissions: {e}")))?;
    Ok(FederatedPayload::Encrypted(base64::engine::general_purpose::STANDARD.encode(sum)))
}

#[cfg(not(feature = "he"))]
pub(super) async fn aggregate(_db: &Db, _spec: &FederatedSpec, _submissions: Vec<String>) -> Result<FederatedPayload> {
    Err(not_built())
}
