//! The worker file of `ravpy run --config worker.toml` (JSON accepted too): the server, the
//! token, defaults for every retry policy, and the entries, each an independent supervised
//! loop.
//!
//! Every mistake is an error naming the file, the line and the key (`participate[1].graph`):
//! types, unknown keys and URL syntax while the file is read (serde, with the key path kept by
//! `serde_path_to_error`), then what needs the whole file (duplicate entries, a missing token)
//! located in the TOML text afterwards. JSON errors found after reading name the key only.
//! Relative paths in the file are relative to the file's directory, not to where ravpy runs.

pub use super::tables::{FederatedEntry, ParticipateEntry, Size, TopicsEntry};
use ravproto::jobs::ComputeGroup;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole file, as read (defaults filled in, paths resolved).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// ravsock's URL.
    #[serde(default = "default_server")]
    pub server: ServerUrl,
    /// The provider token, inline. Prefer `token_file` or `token_env`: this file may be read
    /// by others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// A file holding the token (its first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// A PEM file with the CA that signed ravsock's certificate (a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Allow plain http:// to another machine (the token then crosses the network in clear).
    #[serde(default)]
    pub insecure: bool,
    /// Host of ravsock's ravftp when it is not the server URL's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftp_host: Option<String>,
    /// Log at debug level (`RUST_LOG` still wins).
    #[serde(default)]
    pub debug: bool,
    /// Where log files go (one a day, the last 14 kept), as well as the terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<PathBuf>,
    /// Where the node's state is kept for `ravpy status` (default: `ravpy-status.json` in
    /// `log_dir`, or beside this file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_file: Option<PathBuf>,
    /// Serve the node's metrics at `http://{this}/metrics` (e.g. `127.0.0.1:9464`); none: not
    /// served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// Defaults for every entry's retry policy.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Compute subgraphs of graphs.
    #[serde(default)]
    pub participate: Vec<ParticipateEntry>,
    /// Contribute a CSV file's statistics to a federated query once it opens.
    #[serde(default)]
    pub federated: Vec<FederatedEntry>,
    /// Answer a topic's rounds with values from a model server.
    #[serde(default)]
    pub topics: Vec<TopicsEntry>,
}

fn default_server() -> ServerUrl {
    ServerUrl("http://127.0.0.1:9999".into())
}

/// A URL with an http or https scheme, checked when the file is read.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerUrl(pub String);

impl TryFrom<String> for ServerUrl {
    type Error = String;

    fn try_from(text: String) -> Result<ServerUrl, String> {
        let url = url::Url::parse(&text).map_err(|e| format!("`{text}` is not a URL ({e})"))?;
        match url.scheme() {
            "http" | "https" if url.host_str().is_some() => Ok(ServerUrl(text)),
            "http" | "https" => Err(format!("`{text}` has no host")),
            other => Err(format!("`{text}`: the scheme is `{other}`; use http or https")),
        }
    }
}

impl From<ServerUrl> for String {
    fn from(url: ServerUrl) -> String {
        url.0
    }
}

/// A secret: never printed (`--check` shows `<redacted>`).
#[derive(Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(#[serde(serialize_with = "redacted")] pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn redacted<S: serde::Serializer>(_: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("<redacted>")
}

/// A duration for people: `500ms`, `5s`, `2m`, `1h 30m` (humantime).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span(pub Duration);

impl TryFrom<String> for Span {
    type Error = String;

    fn try_from(text: String) -> Result<Span, String> {
        humantime::parse_duration(&text).map(Span).map_err(|e| format!("`{text}` is not a duration such as 5s ({e})"))
    }
}

impl From<Span> for String {
    fn from(span: Span) -> String {
        humantime::format_duration(span.0).to_string()
    }
}

/// How an entry is tried again after it fails: exponential backoff with jitter, and a state
/// of `failed` (still tried, at `max_delay`) after `failed_after` failures in a row.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// The pause after the first failure.
    pub first_delay: Span,
    /// The longest pause; each failure in a row doubles it up to this.
    pub max_delay: Span,
    /// Each pause is changed by up to this fraction at random, so many workers restarted
    /// together do not all knock at once.
    pub jitter: f64,
    /// Failures in a row after which the entry is reported as failed.
    pub failed_after: u32,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_delay: Span(Duration::from_secs(1)),
            max_delay: Span(Duration::from_secs(60)),
            jitter: 0.2,
            failed_after: 5,
        }
    }
}

/// An entry's own retry settings; what is left out comes from the top-level `[retry]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_delay: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<Span>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_after: Option<u32>,
}

impl RetryOverrides {
    /// `defaults` with these settings over them.
    pub fn over(&self, defaults: &RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            first_delay: self.first_delay.unwrap_or(defaults.first_delay),
            max_delay: self.max_delay.unwrap_or(defaults.max_delay),
            jitter: self.jitter.unwrap_or(defaults.jitter),
            failed_after: self.failed_after.unwrap_or(defaults.failed_after),
        }
    }
}

/// One mistake in a worker file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}{}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default(), key.as_ref().map(|k| format!(", `{k}`")).unwrap_or_default())]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// Its line (1-based), where known.
    pub line: Option<usize>,
    /// The key at fault (`participate[1].graph`), where there is one.
    pub key: Option<String>,
    /// What is wrong, for a person.
    pub message: String,
}

/// An entry, whichever its kind, with its name and effective retry policy.
#[derive(Clone, Debug)]
pub enum Entry {
    Participate { name: String, retry: RetryPolicy, entry: ParticipateEntry },
    Federated { name: String, retry: RetryPolicy, entry: FederatedEntry },
    Topics { name: String, retry: RetryPolicy, entry: TopicsEntry },
}

impl Entry {
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Entry::Participate { name, .. } | Entry::Federated { name, .. } | Entry::Topics { name, .. } => name,
        }
    }

    /// Its retry policy.
    pub fn retry(&self) -> RetryPolicy {
        match self {
            Entry::Participate { retry, .. } | Entry::Federated { retry, .. } | Entry::Topics { retry, .. } => *retry,
        }
    }

    /// `participate`, `federated` or `topics`.
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Participate { .. } => "participate",
            Entry::Federated { .. } => "federated",
            Entry::Topics { .. } => "topics",
        }
    }
}

/// A file read and checked.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Where it was read from.
    pub path: PathBuf,
    pub config: WorkerConfig,
    /// The token, from wherever the file said.
    pub token: Secret,
}

impl Loaded {
    /// Every entry, named, with its effective retry policy.
    pub fn entries(&self) -> Vec<Entry> {
        let defaults = &self.config.retry;
        let participate = self.config.participate.iter().enumerate().map(|(i, entry)| Entry::Participate {
            name: entry.name.clone().unwrap_or_else(|| format!("participate-{}", i + 1)),
            retry: entry.retry.over(defaults),
            entry: entry.clone(),
        });
        let federated = self.config.federated.iter().enumerate().map(|(i, entry)| Entry::Federated {
            name: entry.name.clone().unwrap_or_else(|| format!("federated-{}", i + 1)),
            retry: entry.retry.over(defaults),
            entry: entry.clone(),
        });
        let topics = self.config.topics.iter().map(|entry| Entry::Topics {
            name: entry.name.clone().unwrap_or_else(|| format!("topic-{}", entry.topic)),
            retry: entry.retry.over(defaults),
            entry: entry.clone(),
        });
        participate.chain(federated).chain(topics).collect()
    }

    /// Where the node's state is written.
    pub fn status_file(&self) -> PathBuf {
        status_file_of(&self.config, &self.path)
    }

    /// The effective configuration, secrets redacted, as TOML (for `--check`).
    pub fn effective(&self) -> String {
        toml::to_string_pretty(&self.config).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"))
    }
}

/// Where the state of the node run with `config` (read from `path`) is written.
pub fn status_file_of(config: &WorkerConfig, path: &Path) -> PathBuf {
    match (&config.status_file, &config.log_dir) {
        (Some(file), _) => file.clone(),
        (None, Some(dir)) => dir.join("ravpy-status.json"),
        (None, None) => path.with_file_name("ravpy-status.json"),
    }
}

/// Reads and checks a worker file (TOML, or JSON when it ends in `.json`); the token is read
/// from where the file says, `env` standing for the environment.
pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Loaded, ConfigError> {
    let (mut config, text) = read(path)?;
    let token = token(&config, &env).map_err(|(key, message)| located(path, &text, key, message))?;
    groups_from_env(&mut config, &env).map_err(|(key, message)| located(path, &text, key, message))?;
    Ok(Loaded { path: path.to_path_buf(), config, token })
}

/// Reads and checks a worker file without looking for its token (`ravpy status` needs only
/// where the node writes its state); also returns the text.
pub fn read(path: &Path) -> Result<(WorkerConfig, String), ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        key: None,
        message: format!("cannot read the file: {e}"),
    })?;
    let mut config = if is_json(path) { read_json(&file, &text)? } else { read_toml(&file, &text)? };
    check(&config).map_err(|(key, message)| located(path, &text, key, message))?;
    resolve_paths(&mut config, path.parent().unwrap_or(Path::new(".")));
    Ok((config, text))
}

/// [`load`] on a text already read: `file` names it in errors, `base` is the directory
/// relative paths start from.
pub fn parse_text(
    file: &str,
    text: &str,
    json: bool,
    base: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(WorkerConfig, Secret), ConfigError> {
    let name = if json { Path::new("worker.json") } else { Path::new("worker.toml") };
    let rename = |mut error: ConfigError| {
        error.file = file.to_string();
        error
    };
    let mut config = if json { read_json(file, text)? } else { read_toml(file, text)? };
    check(&config).map_err(|(key, message)| rename(located(name, text, key, message)))?;
    resolve_paths(&mut config, base);
    let token = token(&config, &env).map_err(|(key, message)| rename(located(name, text, key, message)))?;
    groups_from_env(&mut config, &env).map_err(|(key, message)| rename(located(name, text, key, message)))?;
    Ok((config, token))
}

fn is_json(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
}

/// An error about `key`, with its line when the file is TOML.
fn located(path: &Path, text: &str, key: String, message: String) -> ConfigError {
    let line = if is_json(path) { None } else { line_of_key(text, &key) };
    ConfigError { file: path.display().to_string(), line, key: Some(key), message }
}

fn read_toml(file: &str, text: &str) -> Result<WorkerConfig, ConfigError> {
    let failed = |line: Option<usize>, key: Option<String>, message: String| ConfigError {
        file: file.to_string(),
        line,
        key,
        message,
    };
    let deserializer =
        toml::de::Deserializer::parse(text).map_err(|e| failed(line_at(text, e.span()), None, e.message().into()))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let key = key_of(e.path());
        let line = line_at(text, e.inner().span()).or_else(|| key.as_deref().and_then(|k| line_of_key(text, k)));
        failed(line, key, e.inner().message().to_string())
    })
}

fn read_json(file: &str, text: &str) -> Result<WorkerConfig, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let inner = e.inner();
        // serde_json appends " at line L column C" to its messages; the line is said once.
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        ConfigError { file: file.to_string(), line: Some(inner.line()), key: key_of(e.path()), message }
    })
}

/// The key path as written in the file (`participate[1].graph`), or `None` at the top.
fn key_of(path: &serde_path_to_error::Path) -> Option<String> {
    let key = path.to_string();
    (key != ".").then_some(key)
}

/// The 1-based line of a byte offset.
fn line_at(text: &str, span: Option<std::ops::Range<usize>>) -> Option<usize> {
    let start = span?.start.min(text.len());
    Some(text[..start].bytes().filter(|b| *b == b'\n').count() + 1)
}

/// The line where a key path (`participate[1].name`) is written in a TOML text: the key
/// itself, or the nearest table above it that is written.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table = Some(root.get_ref());
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let (key_span, found) = table?.iter().find(|(k, _)| k.get_ref() == name).map(|(k, v)| (k.span(), v))?;
        span = Some(key_span);
        let mut current = found;
        if let Some(index) = index {
            let toml::de::DeValue::Array(items) = current.get_ref() else { break };
            current = items.get(index)?;
            span = Some(current.span());
        }
        table = match current.get_ref() {
            toml::de::DeValue::Table(inner) => Some(inner),
            _ => None,
        };
    }
    line_at(text, span)
}

/// What needs the whole file: names, choices, duplicate entries, retry bounds.
fn check(config: &WorkerConfig) -> Result<(), (String, String)> {
    let given = [config.token.is_some(), config.token_file.is_some(), config.token_env.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        let key = if config.token.is_some() { "token" } else { "token_file" };
        return Err((key.into(), "give the token one way: `token`, `token_file` or `token_env`".into()));
    }
    if config.participate.is_empty() && config.federated.is_empty() && config.topics.is_empty() {
        return Err((
            "participate".into(),
            "the file has no entries: add a [[participate]], [[federated]] or [[topics]] table".into(),
        ));
    }
    check_retry("retry", &config.retry)?;
    let mut names = std::collections::BTreeMap::new();
    for (i, entry) in config.participate.iter().enumerate() {
        let key = format!("participate[{i}]");
        check_retry(&format!("{key}.retry"), &entry.retry.over(&config.retry))?;
        if entry.then_any && entry.graphs.is_empty() {
            return Err((
                format!("{key}.then_any"),
                "`then_any` needs `graphs`: without them any graph is taken".into(),
            ));
        }
        if let Some(dup) = first_duplicate(&entry.graphs) {
            return Err((format!("{key}.graphs"), format!("graph {dup} is listed twice")));
        }
        if entry.max_subgraphs == Some(0) {
            return Err((format!("{key}.max_subgraphs"), "must be at least 1 (leave it out for no limit)".into()));
        }
        let name = entry.name.clone().unwrap_or_else(|| format!("participate-{}", i + 1));
        if let Some(first) = names.insert(name.clone(), key.clone()) {
            return Err((format!("{key}.name"), format!("the name `{name}` is already used by {first}")));
        }
    }
    let mut graphs = std::collections::BTreeMap::new();
    for (i, entry) in config.federated.iter().enumerate() {
        let key = format!("federated[{i}]");
        check_retry(&format!("{key}.retry"), &entry.retry.over(&config.retry))?;
        let name = entry.name.clone().unwrap_or_else(|| format!("federated-{}", i + 1));
        if let Some(first) = names.insert(name.clone(), key.clone()) {
            return Err((format!("{key}.name"), format!("the name `{name}` is already used by {first}")));
        }
        if let Some(first) = graphs.insert(entry.graph, key.clone()) {
            return Err((
                format!("{key}.graph"),
                format!("{first} already contributes to graph {}: a provider contributes once", entry.graph),
            ));
        }
    }
    let mut topics = std::collections::BTreeMap::new();
    for (i, entry) in config.topics.iter().enumerate() {
        let key = format!("topics[{i}]");
        check_retry(&format!("{key}.retry"), &entry.retry.over(&config.retry))?;
        let name = entry.name.clone().unwrap_or_else(|| format!("topic-{}", entry.topic));
        if let Some(first) = names.insert(name.clone(), key.clone()) {
            return Err((format!("{key}.name"), format!("the name `{name}` is already used by {first}")));
        }
        if let Some(first) = topics.insert(entry.topic, key.clone()) {
            return Err((
                format!("{key}.topic"),
                format!("{first} already answers topic {}: a worker answers each round once", entry.topic),
            ));
        }
        if entry.fetch_retries == 0 {
            return Err((format!("{key}.fetch_retries"), "must be at least 1".into()));
        }
        if entry.fetch_timeout.0.is_zero() {
            return Err((format!("{key}.fetch_timeout"), "must be more than zero".into()));
        }
    }
    Ok(())
}

fn check_retry(key: &str, policy: &RetryPolicy) -> Result<(), (String, String)> {
    if policy.first_delay.0.is_zero() {
        return Err((format!("{key}.first_delay"), "must be more than zero: a failing entry would spin".into()));
    }
    if policy.max_delay.0 < policy.first_delay.0 {
        return Err((format!("{key}.max_delay"), "must be at least `first_delay`".into()));
    }
    if !(0.0..1.0).contains(&policy.jitter) {
        return Err((format!("{key}.jitter"), "must be a fraction from 0 up to (not including) 1".into()));
    }
    if policy.failed_after == 0 {
        return Err((format!("{key}.failed_after"), "must be at least 1".into()));
    }
    Ok(())
}

fn first_duplicate(values: &[u64]) -> Option<u64> {
    let mut seen = std::collections::BTreeSet::new();
    values.iter().copied().find(|v| !seen.insert(*v))
}

fn resolve_paths(config: &mut WorkerConfig, base: &Path) {
    let resolve = |path: &mut PathBuf| {
        if path.is_relative() {
            *path = base.join(&*path);
        }
    };
    for path in [&mut config.token_file, &mut config.ca_cert, &mut config.log_dir, &mut config.status_file]
        .into_iter()
        .flatten()
    {
        resolve(path);
    }
    for entry in &mut config.federated {
        resolve(&mut entry.file);
    }
}

/// Adds each `[[participate]]`'s `groups_env` groups to its `groups`.
fn groups_from_env(config: &mut WorkerConfig, env: impl Fn(&str) -> Option<String>) -> Result<(), (String, String)> {
    for (i, entry) in config.participate.iter_mut().enumerate() {
        let Some(variable) = &entry.groups_env else { continue };
        let key = format!("participate[{i}].groups_env");
        let text =
            env(variable).ok_or_else(|| (key.clone(), format!("the environment variable {variable} is not set")))?;
        for group in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            // The message names the variable, never its value: it holds secrets.
            let group = ComputeGroup::parse(group)
                .map_err(|_| (key.clone(), format!("{variable} must hold `key:secret` groups, comma-separated")))?;
            entry.groups.push(super::tables::GroupSecret(group));
        }
    }
    Ok(())
}

fn token(config: &WorkerConfig, env: impl Fn(&str) -> Option<String>) -> Result<Secret, (String, String)> {
    if let Some(token) = &config.token {
        return Ok(token.clone());
    }
    if let Some(file) = &config.token_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ("token_file".to_string(), format!("cannot read {}: {e}", file.display())))?;
        let token = text.lines().next().unwrap_or_default().trim().to_string();
        if token.is_empty() {
            return Err(("token_file".into(), format!("{} is empty", file.display())));
        }
        return Ok(Secret(token));
    }
    let (variable, key) = match &config.token_env {
        Some(variable) => (variable.as_str(), "token_env"),
        None => ("RAVSOCK_TOKEN", "token"),
    };
    match env(variable).filter(|t| !t.trim().is_empty()) {
        Some(token) => Ok(Secret(token.trim().to_string())),
        None if key == "token" => Err((
            key.into(),
            "no token: set `token_file` or `token_env` (or `token`), or RAVSOCK_TOKEN in the environment".into(),
        )),
        None => Err((key.into(), format!("the environment variable {variable} is not set"))),
    }
}
