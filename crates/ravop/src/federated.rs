//! Federated queries from the requester's side: statistics over CSV files that stay on the
//! providers' machines.
//!
//! Build a graph with [`Graph::with_meta`] (approach `federated`, the rules) and its
//! `federated_*` ops, then [`Client::federated`]. In encrypted mode (the default; needs this
//! crate's `he` feature) the client makes tfhe keys, keeps the client key, and sends ravsock
//! only the evaluation keys, which cannot decrypt; [`FederatedQuery::fetch`] waits until
//! `min_clients` providers reported, closes the query, decrypts the sum and answers each op.
//! See the `ravfed` crate for the threat model.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::graph::Graph;
use ravexec::TensorValue;
use ravproto::federated::{ColumnSums, FederatedAggregate, FederatedPayload, FederatedRules, FederatedSpec, Privacy};
use ravproto::messages::{Approach, ColumnRule};
use ravproto::{GraphId, routes};
use std::collections::BTreeMap;

/// A federated query submitted to ravsock.
pub struct FederatedQuery {
    client: Client,
    graph: GraphId,
    rules: FederatedRules,
    /// Persist name → the op.
    ops: BTreeMap<String, ravproto::Operation>,
    #[cfg(feature = "he")]
    keys: Option<ravfed::he::KeySet>,
    /// The decrypted sums, once closed.
    sums: Option<(FederatedAggregate, Vec<ColumnSums>)>,
}

impl std::fmt::Debug for FederatedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never prints keys.
        f.debug_struct("FederatedQuery").field("graph", &self.graph).field("rules", &self.rules).finish_non_exhaustive()
    }
}

/// Rules for a federated graph, built column by column.
#[derive(Clone, Debug)]
pub struct Rules(FederatedRules);

impl Rules {
    /// Rules needing at least `min_clients` providers, encrypted.
    pub fn new(min_clients: u32) -> Rules {
        Rules(FederatedRules { min_clients, ..FederatedRules::default() })
    }

    /// A required column kept within `[min, max]` (either may be `None`).
    pub fn column(mut self, name: &str, min: Option<f64>, max: Option<f64>) -> Rules {
        self.0.columns.insert(name.into(), ColumnRule { min, max, optional: false });
        self
    }

    /// A column some files may lack.
    pub fn optional_column(mut self, name: &str) -> Rules {
        self.0.columns.insert(name.into(), ColumnRule { min: None, max: None, optional: true });
        self
    }

    /// At most this many providers.
    pub fn max_clients(mut self, max: u32) -> Rules {
        self.0.max_clients = Some(max);
        self
    }

    /// Encrypted (default) or plain.
    pub fn privacy(mut self, privacy: Privacy) -> Rules {
        self.0.privacy = privacy;
        self
    }

    /// A graph named `name` with these rules, ready for `federated_*` ops.
    pub fn graph(self, name: &str) -> Graph {
        Graph::with_meta(ravproto::messages::GraphMeta {
            name: name.into(),
            approach: Approach::Federated,
            rules: Some(self.0),
            ..Default::default()
        })
    }
}

impl Client {
    /// Submits a federated graph and opens it to providers. In encrypted mode this first makes
    /// the keys (a few seconds) and uploads the evaluation keys (about 60 MB).
    pub async fn federated(&self, graph: &Graph) -> Result<FederatedQuery> {
        let meta = graph.meta();
        let rules = match (meta.approach, meta.rules) {
            (Approach::Federated, Some(rules)) => rules,
            _ => return Err(Error::Federated("the graph is not federated (see `federated::Rules::graph`)".into())),
        };
        let nodes = graph.nodes();
        let ops: BTreeMap<String, ravproto::Operation> = graph
            .persisted()
            .into_iter()
            .filter_map(|(name, id)| nodes.iter().find(|n| n.id == id).map(|n| (name, n.operation.clone())))
            .collect();
        #[cfg(not(feature = "he"))]
        if rules.privacy == Privacy::Encrypted {
            return Err(Error::Federated(
                "encrypted federated queries need ravop's `he` feature (or choose Privacy::Plain)".into(),
            ));
        }
        let id = self.upload(graph, false).await?;
        #[cfg(feature = "he")]
        let keys = match rules.privacy {
            Privacy::Encrypted => {
                // Seconds of work (the compressed server key): off the async threads.
                let (keys, evaluation) = tokio::task::spawn_blocking(|| {
                    let keys = ravfed::he::KeySet::generate();
                    let evaluation = keys.evaluation_keys();
                    (keys, evaluation)
                })
                .await
                .map_err(|e| Error::Federated(format!("key generation stopped: {e}")))?;
                self.put_bytes(&routes::federated_keys(id), evaluation.map_err(fed)?).await?;
                Some(keys)
            }
            Privacy::Plain => None,
        };
        self.execute(id).await?;
        Ok(FederatedQuery {
            client: self.clone(),
            graph: id,
            rules,
            ops,
            #[cfg(feature = "he")]
            keys,
            sums: None,
        })
    }
}

#[cfg(feature = "he")]
fn fed(error: ravfed::FedError) -> Error {
    Error::Federated(error.to_string())
}

impl FederatedQuery {
    /// The graph's id.
    pub fn graph_id(&self) -> GraphId {
        self.graph
    }

    /// The rules as submitted.
    pub fn rules(&self) -> &FederatedRules {
        &self.rules
    }

    /// The query's status and contributors now.
    pub async fn spec(&self) -> Result<FederatedSpec> {
        self.client.get(&routes::federated(self.graph)).await
    }

    /// Waits until at least `min_clients` providers reported (or the query closed), calling
    /// `on_progress` on every change.
    pub async fn wait(&self, mut on_progress: impl FnMut(&FederatedSpec)) -> Result<FederatedSpec> {
        let mut seen = 0;
        loop {
            let spec: FederatedSpec = self
                .client
                .get(&format!("{}?contributors_above={seen}&timeout_ms=10000", routes::federated_wait(self.graph)))
                .await?;
            on_progress(&spec);
            seen = spec.contributors;
            match spec.status {
                ravproto::status::GraphStatus::Computing if spec.contributors < self.rules.min_clients => {}
                ravproto::status::GraphStatus::Cancelled => return Err(Error::Cancelled(self.graph)),
                _ => return Ok(spec),
            }
        }
    }

    /// Closes the query (no provider can report after this) and decrypts the sum. Fails with
    /// a conflict while fewer than `min_clients` providers reported.
    pub async fn close(&mut self) -> Result<&FederatedAggregate> {
        if self.sums.is_none() {
            let aggregate: FederatedAggregate = self.client.post(&routes::federated_close(self.graph), &()).await?;
            let sums = match &aggregate.payload {
                FederatedPayload::Plain(sums) => sums.clone(),
                FederatedPayload::Encrypted(text) => self.decrypt(&aggregate, text)?,
            };
            self.sums = Some((aggregate, sums));
        }
        Ok(self.sums.as_ref().map(|(a, _)| a).expect("set above"))
    }

    #[cfg(feature = "he")]
    fn decrypt(&self, aggregate: &FederatedAggregate, text: &str) -> Result<Vec<ColumnSums>> {
        use base64::Engine;
        let keys = self.keys.as_ref().ok_or_else(|| Error::Federated("no client key for this query".into()))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| Error::Transport(format!("aggregate is not base64: {e}")))?;
        keys.decrypt(&aggregate.columns, &bytes).map_err(fed)
    }

    #[cfg(not(feature = "he"))]
    fn decrypt(&self, _aggregate: &FederatedAggregate, _text: &str) -> Result<Vec<ColumnSums>> {
        Err(Error::Federated("decrypting needs ravop's `he` feature".into()))
    }

    /// The value of the op persisted as `name`: waits (with `on_progress`) for `min_clients`
    /// providers, closes the query, and answers from the sum. A scalar for an op on one column,
    /// else one value per rule column, sorted by name.
    pub async fn fetch(&mut self, name: &str, on_progress: impl FnMut(&FederatedSpec)) -> Result<TensorValue> {
        let operation = self.ops.get(name).cloned().ok_or_else(|| Error::UnknownResult(name.into()))?;
        if self.sums.is_none() {
            self.wait(on_progress).await?;
            self.close().await?;
        }
        let (aggregate, sums) = self.sums.as_ref().expect("closed above");
        let values = ravfed::query::answer(&operation, &self.rules, &aggregate.columns, sums)
            .map_err(|e| Error::Federated(e.to_string()))?;
        let one_column = ravfed::query::federated_op(&operation).is_some_and(|(_, p)| p.column.is_some());
        let array = if one_column {
            ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), values[0])
        } else {
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[values.len()]), values)
                .map_err(|e| Error::Federated(e.to_string()))?
        };
        Ok(TensorValue::Tensor(ravexec::Tensor::F64(array)))
    }

    /// Providers summed in the closed aggregate.
    pub fn contributors(&self) -> Option<u32> {
        self.sums.as_ref().map(|(a, _)| a.contributors)
    }
}

/// A terminal progress bar for [`FederatedQuery::wait`]: providers reported out of
/// `min_clients`.
pub fn federated_progress_bar() -> impl FnMut(&FederatedSpec) {
    let bar = crate::client::styled_bar("{spinner} [{bar:40}] {pos}/{len} providers reported ({elapsed}) {msg}");
    move |spec: &FederatedSpec| {
        bar.set_length(u64::from(spec.rules.min_clients));
        bar.set_position(u64::from(spec.contributors));
        if spec.contributors >= spec.rules.min_clients {
            bar.finish_with_message("enough to aggregate");
        }
    }
}
