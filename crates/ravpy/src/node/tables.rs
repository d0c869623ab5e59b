//! The tables of a worker file's entries: `[[participate]]`, `[[federated]]` and
//! `[[topics]]`, and the sizes they take.

use super::config::{RetryOverrides, ServerUrl, Span};
use ravproto::jobs::ComputeGroup;
use ravwasm::EngineKind;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[[participate]]`: compute subgraphs, and jobs' slices.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipateEntry {
    /// Shown in the table and `ravpy status` (default `participate-N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The graphs to work on, in order: a graph that is not executing yet is waited for, and
    /// when it ends the entry moves to the next. Empty: any graph.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub graphs: Vec<u64>,
    /// After the last of `graphs`, work on any graph instead of stopping.
    #[serde(default)]
    pub then_any: bool,
    /// The most memory one op may take here (`512M`, `8G`); default half of the RAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<Size>,
    /// Stop after this many subgraphs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subgraphs: Option<u64>,
    /// Compute groups to join, `key:secret` each: their jobs come here too. The secrets are
    /// shown redacted; prefer `groups_env`, as this file may be read by others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSecret>,
    /// An environment variable holding more groups, `key:secret` comma-separated (read when
    /// the file is loaded, like `token_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_env: Option<String>,
    /// The WebAssembly engine for jobs' slices (`wasmi`, or `wasmtime` in a build with it);
    /// default the fastest built in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    /// The most CPU (fuel units) one job slice may use here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice_fuel: Option<u64>,
    #[serde(default)]
    pub retry: RetryOverrides,
}

/// A compute group and its secret, written `key:secret`; serialised with the secret redacted.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct GroupSecret(pub ComputeGroup);

impl TryFrom<String> for GroupSecret {
    type Error = String;

    fn try_from(text: String) -> Result<GroupSecret, String> {
        if !text.contains(':') {
            // ComputeGroup's own message quotes the text, which may be a secret.
            return Err("a group is written `key:secret`".into());
        }
        ComputeGroup::parse(&text).map(GroupSecret)
    }
}

impl Serialize for GroupSecret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}:<redacted>", self.0.key))
    }
}

/// A WebAssembly engine this build has, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Engine(pub EngineKind);

impl TryFrom<String> for Engine {
    type Error = String;

    fn try_from(text: String) -> Result<Engine, String> {
        let kind: EngineKind = text.parse().map_err(|e: ravwasm::EngineError| e.to_string())?;
        if !EngineKind::built().contains(&kind) {
            return Err(ravwasm::EngineError::NotBuilt(kind).to_string());
        }
        Ok(Engine(kind))
    }
}

impl From<Engine> for String {
    fn from(engine: Engine) -> String {
        engine.0.name().to_string()
    }
}

/// `[[federated]]`: contribute a CSV file's statistics.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedEntry {
    /// Shown in the table and `ravpy status` (default `federated-N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The federated graph.
    pub graph: u64,
    /// The CSV file (it never leaves this machine).
    pub file: PathBuf,
    #[serde(default)]
    pub retry: RetryOverrides,
}

/// A size in bytes: a number, or a string with a unit (`512M`, `8G`; powers of 1024).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "SizeText", into = "u64")]
pub struct Size(pub u64);

/// What a size is written as.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeText {
    Bytes(u64),
    Text(String),
}

impl TryFrom<SizeText> for Size {
    type Error = String;

    fn try_from(text: SizeText) -> Result<Size, String> {
        match text {
            SizeText::Bytes(bytes) => Ok(Size(bytes)),
            SizeText::Text(text) => crate::parse_size(&text).map(Size),
        }
    }
}

impl From<Size> for u64 {
    fn from(size: Size) -> u64 {
        size.0
    }
}

/// `[[topics]]`: answer a topic's rounds with values from a model server (Allora's topic
/// entries; `inference_url` as there, `fetch_retries` for `inference_fetch_retries`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsEntry {
    /// Shown in the table and `ravpy status` (default `topic-N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The topic's id.
    pub topic: u64,
    /// The model server's URL: a GET answers a JSON number, or an object with a number under
    /// `value`.
    pub inference_url: ServerUrl,
    /// GETs per round before the round is given up (while it is open).
    #[serde(default = "default_fetch_retries")]
    pub fetch_retries: u32,
    /// How long one GET may take.
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout: Span,
    /// Pauses between GETs within a round, and between attempts of the entry.
    #[serde(default)]
    pub retry: RetryOverrides,
}

fn default_fetch_retries() -> u32 {
    super::topics::DEFAULT_FETCH_TRIES
}

fn default_fetch_timeout() -> Span {
    Span(super::topics::DEFAULT_FETCH_TIMEOUT)
}
