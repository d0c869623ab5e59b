//! Encryption of federated statistics with tfhe (feature `he`; build it in release: a debug
//! tfhe takes minutes per key).
//!
//! Each column asked about becomes two or three ciphertexts, in [`ColumnRequest`] order:
//! its count (64-bit), its fixed-point sum (64-bit, two's complement, so negative sums add
//! correctly modulo 2^64), and, when asked for, its sum of squares (128-bit). Providers
//! encrypt them as one compact list under the requester's compact public key (a few KB on the
//! wire). ravsock expands each list (no key needed: the lists are unpacked) and adds them
//! with tfhe's `smart_add`, which adds without propagating carries until a block's carry
//! space is full; the final sum is left with its carries, which the client key's decryption
//! resolves. So the server's work is a few carry propagations per group of providers instead
//! of one per addition (see the crate docs for the threat model).
//!
//! Keys on the wire: the requester sends [`KeySet::evaluation_keys`], its compact public key
//! (33 KB) and its *compressed* server key (60 MB instead of 180 MB); both are public.

use crate::{FedError, Result};
use ravproto::federated::{ColumnRequest, ColumnSums};
use rayon::prelude::*;
use tfhe::conformance::ListSizeConstraint;
use tfhe::integer::parameters::CompactCiphertextListConformanceParams;
use tfhe::prelude::*;
use tfhe::safe_serialization::{safe_deserialize, safe_deserialize_conformant, safe_serialize};
use tfhe::{
    ClientKey, CompactCiphertextList, CompactPublicKey, CompressedServerKey, ConfigBuilder, FheUint64, FheUint128,
};

/// Largest serialized key or ciphertext accepted (a compressed server key is about 60 MB).
const SIZE_LIMIT: u64 = 256 << 20;

fn crypto(what: &str) -> impl Fn(String) -> FedError + '_ {
    move |reason| FedError::Crypto(format!("{what}: {reason}"))
}

fn to_bytes<T: serde::Serialize + tfhe::Versionize + tfhe::named::Named>(value: &T, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    safe_serialize(value, &mut out, SIZE_LIMIT).map_err(|e| crypto(what)(e.to_string()))?;
    Ok(out)
}

/// Length-prefixed parts (little-endian u64 lengths): how several tfhe objects share one blob.
fn frame(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn unframe<'a>(mut bytes: &'a [u8], what: &str) -> Result<Vec<&'a [u8]>> {
    let mut parts = Vec::new();
    while !bytes.is_empty() {
        let malformed = || FedError::Crypto(format!("{what}: truncated"));
        let len: [u8; 8] = bytes.get(..8).ok_or_else(malformed)?.try_into().map_err(|_| malformed())?;
        let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| malformed())?;
        let part = bytes.get(8..8usize.checked_add(len).ok_or_else(malformed)?).ok_or_else(malformed)?;
        parts.push(part);
        bytes = &bytes[8 + len..];
    }
    Ok(parts)
}

/// Ciphertexts per column request.
fn values_per(column: &ColumnRequest) -> usize {
    if column.squares { 3 } else { 2 }
}

fn expected_values(columns: &[ColumnRequest]) -> usize {
    columns.iter().map(values_per).sum()
}

/// The requester's keys. Only the client key decrypts; keep it (or [`KeySet::client_key_bytes`])
/// private.
pub struct KeySet {
    client: ClientKey,
    public: CompactPublicKey,
}

impl KeySet {
    /// New keys with tfhe's default parameters (about 4 s in release on 2 cores, most of it in
    /// [`KeySet::evaluation_keys`]).
    pub fn generate() -> KeySet {
        let client = ClientKey::generate(ConfigBuilder::default().build());
        let public = CompactPublicKey::new(&client);
        KeySet { client, public }
    }

    /// The keys ravsock needs: the compact public key (handed to providers) and a compressed
    /// server key (additions only). Neither can decrypt.
    pub fn evaluation_keys(&self) -> Result<Vec<u8>> {
        let server = CompressedServerKey::new(&self.client);
        Ok(frame(&[to_bytes(&self.public, "public key")?, to_bytes(&server, "server key")?]))
    }

    /// The client key, serialized, to decrypt later from another process. Secret.
    pub fn client_key_bytes(&self) -> Result<Vec<u8>> {
        to_bytes(&self.client, "client key")
    }

    /// Keys from [`KeySet::client_key_bytes`].
    pub fn from_client_key_bytes(bytes: &[u8]) -> Result<KeySet> {
        let client: ClientKey = safe_deserialize(bytes, SIZE_LIMIT).map_err(crypto("client key"))?;
        let public = CompactPublicKey::new(&client);
        Ok(KeySet { client, public })
    }

    /// Decrypts an aggregate from [`Aggregator::finish`] into sums (in `columns` order).
    pub fn decrypt(&self, columns: &[ColumnRequest], aggregate: &[u8]) -> Result<Vec<ColumnSums>> {
        let parts = unframe(aggregate, "aggregate")?;
        if parts.len() != expected_values(columns) {
            return Err(FedError::Mismatch(format!(
                "the aggregate holds {} values, {} were expected",
                parts.len(),
                expected_values(columns)
            )));
        }
        let mut parts = parts.into_iter();
        let mut out = Vec::with_capacity(columns.len());
        for column in columns {
            // `expected_values` counted these parts.
            let mut next = || parts.next().unwrap_or_default();
            let count: FheUint64 = safe_deserialize(next(), SIZE_LIMIT).map_err(crypto("count"))?;
            let sum: FheUint64 = safe_deserialize(next(), SIZE_LIMIT).map_err(crypto("sum"))?;
            let sum_sq = if column.squares {
                let sum_sq: FheUint128 = safe_deserialize(next(), SIZE_LIMIT).map_err(crypto("sum of squares"))?;
                Some(sum_sq.decrypt(&self.client))
            } else {
                None
            };
            let sum: u64 = sum.decrypt(&self.client);
            // Two's complement: the sum of negative values wrapped modulo 2^64.
            out.push(ColumnSums { count: count.decrypt(&self.client), sum: sum as i64, sum_sq });
        }
        Ok(out)
    }
}

/// The compact public key inside evaluation keys (what providers download), after checking
/// that both keys deserialize.
pub fn public_key_of(evaluation_keys: &[u8]) -> Result<Vec<u8>> {
    let parts = unframe(evaluation_keys, "evaluation keys")?;
    let [public, server] = parts.as_slice() else {
        return Err(FedError::Crypto("evaluation keys: expected a public key and a server key".into()));
    };
    let _: CompactPublicKey = safe_deserialize(*public, SIZE_LIMIT).map_err(crypto("public key"))?;
    let _: CompressedServerKey = safe_deserialize(*server, SIZE_LIMIT).map_err(crypto("server key"))?;
    Ok(public.to_vec())
}

/// A provider's sums, encrypted under the requester's public key (what it submits).
pub fn encrypt(public_key: &[u8], columns: &[ColumnRequest], sums: &[ColumnSums]) -> Result<Vec<u8>> {
    crate::stats::check_shape(columns, sums)?;
    let public: CompactPublicKey = safe_deserialize(public_key, SIZE_LIMIT).map_err(crypto("public key"))?;
    let mut builder = CompactCiphertextList::builder(&public);
    for sums in sums {
        builder.push(sums.count).push(sums.sum as u64);
        if let Some(sum_sq) = sums.sum_sq {
            builder.push(sum_sq);
        }
    }
    to_bytes(&builder.build(), "submission")
}

/// What a submission must look like: an unpacked list of exactly the expected length.
fn conformance(public: &CompactPublicKey, columns: &[ColumnRequest]) -> CompactCiphertextListConformanceParams {
    CompactCiphertextListConformanceParams::from_parameters_and_size_constraint(
        public.parameters(),
        ListSizeConstraint::exact_size(expected_values(columns)),
    )
    .allow_unpacked()
}

/// A submission's ciphertexts, after checking their parameters, number and types.
fn expand(
    conformance: &CompactCiphertextListConformanceParams,
    columns: &[ColumnRequest],
    submission: &[u8],
) -> Result<Vec<tfhe::integer::RadixCiphertext>> {
    let list: CompactCiphertextList =
        safe_deserialize_conformant(submission, SIZE_LIMIT, conformance).map_err(crypto("submission"))?;
    let expander = list.expand().map_err(|e| crypto("submission")(e.to_string()))?;
    let mut out = Vec::with_capacity(expected_values(columns));
    let wrong = |index: usize| FedError::Mismatch(format!("value {index} of the submission has the wrong type"));
    for (index, wide) in widths(columns).enumerate() {
        let radix = if wide {
            let ct: FheUint128 = expander.get(index).ok().flatten().ok_or_else(|| wrong(index))?;
            ct.into_raw_parts().0
        } else {
            let ct: FheUint64 = expander.get(index).ok().flatten().ok_or_else(|| wrong(index))?;
            ct.into_raw_parts().0
        };
        out.push(radix);
    }
    Ok(out)
}

/// Whether each value of a submission is 128-bit (a sum of squares) rather than 64-bit.
fn widths(columns: &[ColumnRequest]) -> impl Iterator<Item = bool> + '_ {
    columns.iter().flat_map(|c| [false, false, true].into_iter().take(values_per(c)))
}

/// Checks a provider's submission against the requester's public key (ravsock does this
/// before storing it; cheap, no server key needed).
pub fn check_submission(public_key: &[u8], columns: &[ColumnRequest], submission: &[u8]) -> Result<()> {
    let public: CompactPublicKey = safe_deserialize(public_key, SIZE_LIMIT).map_err(crypto("public key"))?;
    expand(&conformance(&public, columns), columns, submission).map(|_| ())
}

/// Adds providers' encrypted submissions (ravsock's side; holds the server key).
pub struct Aggregator {
    server: tfhe::integer::ServerKey,
    conformance: CompactCiphertextListConformanceParams,
    columns: Vec<ColumnRequest>,
    /// Running sums, one radix ciphertext per value.
    total: Option<Vec<tfhe::integer::RadixCiphertext>>,
    added: usize,
}

impl Aggregator {
    /// An aggregator for `columns` with the evaluation keys a requester uploaded (decompressing
    /// the server key takes a few seconds).
    pub fn new(evaluation_keys: &[u8], columns: &[ColumnRequest]) -> Result<Aggregator> {
        let parts = unframe(evaluation_keys, "evaluation keys")?;
        let [public, server] = parts.as_slice() else {
            return Err(FedError::Crypto("evaluation keys: expected a public key and a server key".into()));
        };
        let public: CompactPublicKey = safe_deserialize(*public, SIZE_LIMIT).map_err(crypto("public key"))?;
        let server: CompressedServerKey = safe_deserialize(*server, SIZE_LIMIT).map_err(crypto("server key"))?;
        let (server, ..) = server.decompress().into_raw_parts();
        let conformance = conformance(&public, columns);
        Ok(Aggregator { server, conformance, columns: columns.to_vec(), total: None, added: 0 })
    }

    /// Adds one submission.
    pub fn add(&mut self, submission: &[u8]) -> Result<()> {
        let mut values = expand(&self.conformance, &self.columns, submission)?;
        match self.total.as_mut() {
            None => self.total = Some(values),
            Some(total) => {
                let server = &self.server;
                total
                    .par_iter_mut()
                    .zip(values.par_iter_mut())
                    .for_each(|(total, value)| server.smart_add_assign_parallelized(total, value));
            }
        }
        self.added += 1;
        Ok(())
    }

    /// Submissions added.
    pub fn added(&self) -> usize {
        self.added
    }

    /// The encrypted sums, for the requester's [`KeySet::decrypt`].
    pub fn finish(self) -> Result<Vec<u8>> {
        let total = self.total.ok_or_else(|| FedError::Mismatch("no submission was added".into()))?;
        let mut parts = Vec::with_capacity(total.len());
        for (radix, wide) in total.into_iter().zip(widths(&self.columns)) {
            let part = if wide {
                to_bytes(
                    &FheUint128::from_raw_parts(radix, Default::default(), Default::default(), Default::default()),
                    "aggregate",
                )?
            } else {
                to_bytes(
                    &FheUint64::from_raw_parts(radix, Default::default(), Default::default(), Default::default()),
                    "aggregate",
                )?
            };
            parts.push(part);
        }
        Ok(frame(&parts))
    }
}
