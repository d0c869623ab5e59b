//! `ravpy federated`: the provider's side of a federated query.
//!
//! The CSV file is read and filtered here, on the provider's machine, by the graph's rules;
//! only the statistics the graph asks for leave it (count, sum, and sum of squares where a
//! variance needs it, never a row, a min or a max), and in encrypted mode only as tfhe
//! ciphertexts under the requester's public key. Port of the original's
//! `federated/participate.py` (§4.6) without its failures: rows stay aligned across columns,
//! bounds are inclusive, and errors name the column and line instead of crashing.

use crate::Error;
use ravclient::Http;
use ravfed::Table;
use ravproto::federated::{ColumnSums, FederatedPayload, FederatedSpec, Privacy};
use ravproto::messages::ErrorCode;
use ravproto::{GraphId, routes};
use std::path::PathBuf;

/// What to contribute, and where.
#[derive(Clone, Debug)]
pub struct FederatedConfig {
    /// ravsock's URL.
    pub server: String,
    /// Provider token.
    pub token: String,
    /// The CAs it trusts and whether plain HTTP to another machine is allowed.
    pub trust: ravclient::Trust,
    /// The federated graph.
    pub graph: GraphId,
    /// The CSV file (never uploaded).
    pub file: PathBuf,
}

/// What was sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Contribution {
    /// The graph after the submission (contributors counts this one).
    pub spec: FederatedSpec,
    /// Data rows in the file.
    pub rows: u64,
    /// Rows within the rules' bounds.
    pub kept_rows: u64,
    /// The statistics, before encryption, with the extremes (for the provider's own record: the
    /// sums left the machine only as sent, encrypted in encrypted mode; min and max never did).
    pub summaries: Vec<ravfed::ColumnSummary>,
}

/// The graph's rules and the statistics it asks for (shown before contributing).
pub async fn spec(server: &str, token: &str, trust: &ravclient::Trust, graph: GraphId) -> Result<FederatedSpec, Error> {
    let http = Http::new(server, token, trust).map_err(|e| Error::from_http(server, e))?;
    http.get(&routes::federated(graph)).await.map_err(|e| Error::from_http(server, e))
}

/// Reads the file, computes its statistics under the graph's rules, encrypts them if the graph
/// is encrypted, and submits them (once per provider and graph). Requests are sent again
/// while ravsock cannot be reached (the submission only if it never arrived).
pub async fn contribute(config: &FederatedConfig) -> Result<Contribution, Error> {
    let failed = |error| Error::from_http(&config.server, error);
    let http = Http::new(&config.server, &config.token, &config.trust).map_err(failed)?;
    let spec: FederatedSpec = http.get(&routes::federated(config.graph)).await.map_err(failed)?;
    if spec.status != ravproto::status::GraphStatus::Computing {
        return Err(Error::Refused {
            code: ErrorCode::Conflict,
            message: format!("{} is not open to contributions", config.graph),
        });
    }
    let (file, rules, columns) = (config.file.clone(), spec.rules.clone(), spec.columns.clone());
    let (rows, kept_rows, summaries) = tokio::task::spawn_blocking(move || {
        let table = Table::open(&file, &rules)?;
        let kept = table.kept_rows(&rules).iter().filter(|k| **k).count() as u64;
        let summaries = ravfed::column_summaries(&table, &rules, &columns)?;
        Ok::<_, ravfed::FedError>((table.rows(), kept, summaries))
    })
    .await
    .map_err(|e| Error::Data(e.to_string()))?
    .map_err(|e| Error::Data(e.to_string()))?;
    let sums: Vec<ColumnSums> = summaries.iter().map(|summary| summary.sums).collect();
    let payload = match spec.rules.privacy {
        Privacy::Plain => FederatedPayload::Plain(sums.clone()),
        Privacy::Encrypted => {
            let key = http.get_bytes(&routes::federated_public_key(config.graph)).await.map_err(failed)?;
            FederatedPayload::Encrypted(encrypt(key.to_vec(), spec.columns.clone(), sums.clone()).await?)
        }
    };
    let spec = http.post(&routes::federated_submissions(config.graph), &payload).await.map_err(failed)?;
    Ok(Contribution { spec, rows, kept_rows, summaries })
}

#[cfg(feature = "he")]
async fn encrypt(
    key: Vec<u8>,
    columns: Vec<ravproto::federated::ColumnRequest>,
    sums: Vec<ColumnSums>,
) -> Result<String, Error> {
    use base64::Engine;
    let bytes = tokio::task::spawn_blocking(move || ravfed::he::encrypt(&key, &columns, &sums))
        .await
        .map_err(|e| Error::Data(e.to_string()))?
        .map_err(|e| Error::Data(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(not(feature = "he"))]
async fn encrypt(
    _key: Vec<u8>,
    _columns: Vec<ravproto::federated::ColumnRequest>,
    _sums: Vec<ColumnSums>,
) -> Result<String, Error> {
    Err(Error::Data("this graph is encrypted and this ravpy was built without encryption (cargo feature `he`)".into()))
}
