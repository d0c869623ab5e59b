//! Jobs (DCP's unit of work): one work function ([`crate::work`]) mapped over a list of
//! slices. What the requester sends and reads over HTTP, what ravsock hands a provider over
//! the `/provider` namespace ([`EVENT_SLICES`]) and what the provider answers
//! ([`EVENT_SLICE_RESULTS`]).
//!
//! Slices, args, files and results are bytes (base64 in JSON); what they mean is between the
//! requester and its work function. Small slices travel in bundles (up to
//! [`MAX_BUNDLE_SLICES`] per message), which is what makes a job of 10,000 tiny slices cheap.

use crate::messages::Requirements;
use crate::work::{ConsoleLevel, Limits, SliceFailure};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A job, allocated by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job#{}", self.0)
    }
}

/// Server → provider: a bundle of slices ([`SliceBundle`] JSON).
pub const EVENT_SLICES: &str = "slices";
/// Provider → server: the results of a bundle ([`BundleResults`] JSON).
pub const EVENT_SLICE_RESULTS: &str = "slice_results";
/// Server → provider: drop a bundle ([`crate::provider::Withdraw`] with the bundle's number).
pub const EVENT_WITHDRAW_SLICES: &str = "withdraw_slices";
/// Server → provider: a job whose work function this connection was sent has ended (completed
/// or cancelled); forget the work function ([`JobEnded`] JSON).
pub const EVENT_JOB_ENDED: &str = "job_ended";

/// Most bytes of one slice's input sent inline (in a request's JSON and a bundle's message).
/// A bigger slice is uploaded through ravftp and named by its digest ([`BigSlice`]).
pub const MAX_SLICE_BYTES: usize = 64 << 10;
/// Most bytes of one slice sent through ravftp (data every slice reads goes in the job's
/// files instead).
pub const MAX_BIG_SLICE_BYTES: u64 = 64 << 20;
/// Most slices through ravftp in one request.
pub const MAX_BIG_SLICES_PER_REQUEST: usize = 1_024;
/// Most slices in one bundle.
pub const MAX_BUNDLE_SLICES: usize = 128;
/// Most slices in one job.
pub const MAX_JOB_SLICES: u64 = 1_000_000;
/// Most bytes of a module, its args and files together.
pub const MAX_WORK_BYTES: usize = 32 << 20;
/// Most slices in one page of results or events.
pub const MAX_PAGE: u64 = 10_000;

/// Bytes, as standard base64 in JSON.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// A list of byte strings, each as standard base64.
mod b64_list {
    use base64::Engine;
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&base64::engine::general_purpose::STANDARD.encode(bytes))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let texts = <Vec<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        texts
            .iter()
            .map(|text| base64::engine::general_purpose::STANDARD.decode(text.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

/// Bytes that serialize as base64.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Blob(#[serde(with = "b64")] pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

/// A compute group a job is limited to: providers that joined with its key and secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeGroup {
    /// The join key (its name).
    pub key: String,
    /// The join secret (stored by the server only as a salted hash).
    pub secret: String,
}

impl fmt::Debug for ComputeGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComputeGroup({}, secret hidden)", self.key)
    }
}

impl ComputeGroup {
    /// Most bytes of a key or a secret.
    pub const MAX_LEN: usize = 128;

    /// The group `key`, joined with `secret`.
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> ComputeGroup {
        ComputeGroup { key: key.into(), secret: secret.into() }
    }

    /// `key:secret`, as `ravpy participate --group` takes it.
    pub fn parse(text: &str) -> Result<ComputeGroup, String> {
        let (key, secret) =
            text.split_once(':').ok_or_else(|| format!("a group is key:secret, and {text:?} has no ':'"))?;
        let group = ComputeGroup::new(key, secret);
        group.check()?;
        Ok(group)
    }

    /// Why the key or the secret is unusable, if it is.
    pub fn check(&self) -> Result<(), String> {
        if self.key.is_empty() || self.key.len() > Self::MAX_LEN || self.key.contains(':') {
            return Err(format!("a group's key is 1 to {} bytes without ':'", Self::MAX_LEN));
        }
        if self.secret.is_empty() || self.secret.len() > Self::MAX_LEN {
            return Err(format!("the secret of group {} must be 1 to {} bytes", self.key, Self::MAX_LEN));
        }
        Ok(())
    }
}

/// What workers are shown of a job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicInfo {
    pub name: String,
    pub description: String,
    pub link: String,
}

/// A read-only file every slice may read (`rav.file_read`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub name: String,
    pub bytes: Blob,
}

/// The work function and what every slice shares: sent to a provider once per connection and
/// job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobWork {
    /// The WebAssembly module.
    pub module: Blob,
    /// Its entry's name.
    pub entry: String,
    /// Passed to every slice.
    #[serde(default)]
    pub args: Blob,
    /// Read-only files.
    #[serde(default)]
    pub files: Vec<JobFile>,
    /// What one slice may use (a provider lowers it to its own cap).
    #[serde(default)]
    pub limits: Limits,
}

impl JobWork {
    /// The bytes of the module, args and files together.
    pub fn bytes(&self) -> usize {
        self.module.0.len()
            + self.args.0.len()
            + self.files.iter().map(|f| f.name.len() + f.bytes.0.len()).sum::<usize>()
    }
}

/// `POST /v1/jobs`: a new job, with its first slices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub work: JobWork,
    /// What a provider must offer.
    #[serde(default)]
    pub requirements: Requirements,
    /// The groups whose providers may compute it; none: every provider (the public group).
    #[serde(default)]
    pub groups: Vec<ComputeGroup>,
    /// What the requester offers per slice (settled by the ledger; stored now).
    #[serde(default)]
    pub slice_payment_offer: u64,
    /// What workers are shown.
    #[serde(default)]
    pub public: Option<PublicInfo>,
    /// Close the job once its first slices are in: it completes when they are computed. An
    /// open job (`false`) takes more slices until it is closed.
    #[serde(default = "yes")]
    pub auto_close: bool,
    /// The first slices (a slice uploaded through ravftp is empty here and named in `big`).
    #[serde(default, with = "b64_list")]
    pub slices: Vec<Vec<u8>>,
    /// The slices uploaded through ravftp.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub big: Vec<BigSlice>,
}

/// A slice over [`MAX_SLICE_BYTES`], uploaded to the requester's ravftp home as
/// [`crate::files::slice_upload`]`(sha256)` before the request that names it. Named by its
/// content, so an upload tried again replaces the same file, and the server checks the bytes
/// it adopts are the ones the requester meant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigSlice {
    /// Its place in the request's `slices` (whose entry there is empty).
    pub at: u64,
    /// Its length in bytes.
    pub len: u64,
    /// SHA-256 of its bytes, 64 lowercase hex digits.
    pub sha256: String,
}

impl BigSlice {
    /// Why it cannot stand for entry `at` of `slices`, if it cannot.
    fn check(&self, slices: &[Vec<u8>]) -> Result<(), String> {
        let entry = usize::try_from(self.at).ok().and_then(|at| slices.get(at));
        match entry {
            None => return Err(format!("big slice {} is past the {} slices of the request", self.at, slices.len())),
            Some(entry) if !entry.is_empty() => {
                return Err(format!("slice {} is sent both inline and through ravftp", self.at));
            }
            Some(_) => {}
        }
        if self.len <= MAX_SLICE_BYTES as u64 || self.len > MAX_BIG_SLICE_BYTES {
            return Err(format!(
                "big slice {} is {} bytes: a slice through ravftp is {} to {MAX_BIG_SLICE_BYTES} bytes (smaller ones go inline)",
                self.at,
                self.len,
                MAX_SLICE_BYTES + 1
            ));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(format!("big slice {}: sha256 must be 64 lowercase hex digits", self.at));
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}

impl JobSpec {
    /// Why the spec is unusable, if it is (checked by the server; the module itself is
    /// checked by each provider's sandbox, never run by the server).
    pub fn check(&self) -> Result<(), String> {
        if self.work.module.0.get(..4) != Some(b"\0asm") {
            return Err("the work function is not a WebAssembly module (no \\0asm header)".into());
        }
        if self.work.entry.is_empty() || self.work.entry.len() > 256 {
            return Err("the entry's name must be 1 to 256 bytes".into());
        }
        if self.work.bytes() > MAX_WORK_BYTES {
            return Err(format!("the module, args and files are over {MAX_WORK_BYTES} bytes together"));
        }
        for group in &self.groups {
            group.check()?;
        }
        if let Some(public) = &self.public
            && public.name.len() + public.description.len() + public.link.len() > 4096
        {
            return Err("the public name, description and link are over 4096 bytes together".into());
        }
        check_slices(&self.slices, &self.big, 0)
    }
}

/// Why these slices (with those of them sent through ravftp) cannot join a job holding `held`
/// already, if they cannot.
pub fn check_slices(slices: &[Vec<u8>], big: &[BigSlice], held: u64) -> Result<(), String> {
    if held + slices.len() as u64 > MAX_JOB_SLICES {
        return Err(format!("a job holds at most {MAX_JOB_SLICES} slices"));
    }
    if big.len() > MAX_BIG_SLICES_PER_REQUEST {
        return Err(format!("at most {MAX_BIG_SLICES_PER_REQUEST} slices through ravftp per request"));
    }
    let mut places = std::collections::BTreeSet::new();
    for slice in big {
        slice.check(slices)?;
        if !places.insert(slice.at) {
            return Err(format!("big slice {} is named twice", slice.at));
        }
    }
    match slices.iter().position(|slice| slice.len() > MAX_SLICE_BYTES) {
        Some(i) => Err(format!(
            "slice {} is {} bytes, over the {MAX_SLICE_BYTES} a slice may have inline (upload a bigger one through ravftp; put data every slice reads in the job's files)",
            held + i as u64,
            slices[i].len()
        )),
        None => Ok(()),
    }
}

/// `POST /v1/jobs/{id}/slices`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddSlices {
    #[serde(with = "b64_list")]
    pub slices: Vec<Vec<u8>>,
    /// The slices uploaded through ravftp (see [`JobSpec::big`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub big: Vec<BigSlice>,
}

/// The answer to [`AddSlices`]: the numbers the slices got (`first..first + count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlicesAdded {
    pub first: u64,
    pub count: u64,
}

/// A job's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Takes more slices.
    Open,
    /// Takes no more slices; completes when every slice has an outcome.
    Closed,
    /// Every slice has a result or an error.
    Complete,
    /// Cancelled by its requester.
    Cancelled,
}

impl JobState {
    /// The integer stored in the database.
    pub fn code(self) -> i64 {
        match self {
            JobState::Open => 0,
            JobState::Closed => 1,
            JobState::Complete => 2,
            JobState::Cancelled => 3,
        }
    }

    /// The state of a stored integer.
    pub fn from_code(code: i64) -> Option<JobState> {
        [JobState::Open, JobState::Closed, JobState::Complete, JobState::Cancelled]
            .into_iter()
            .find(|s| s.code() == code)
    }

    /// Whether it has ended.
    pub fn ended(self) -> bool {
        matches!(self, JobState::Complete | JobState::Cancelled)
    }
}

/// How far a job is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceCounts {
    /// Slices in the job.
    pub total: u64,
    /// Slices handed to providers and not yet answered.
    pub distributed: u64,
    /// Slices with a result.
    pub computed: u64,
    /// Slices that failed (an `error` event each).
    pub failed: u64,
}

/// `GET /v1/jobs/{id}`: a job as its requester (or a provider choosing) sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub owner: String,
    pub state: JobState,
    pub counts: SliceCounts,
    pub public: Option<PublicInfo>,
    /// The groups' keys (never their secrets).
    pub groups: Vec<String>,
    pub requirements: Requirements,
    pub slice_payment_offer: u64,
}

/// `GET /v1/jobs`: jobs the caller may see (a provider: the open ones it may compute).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<Job>,
}

/// What a slice told its requester while it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkEvent {
    /// `rav.console`.
    Console { level: ConsoleLevel, text: String },
    /// `rav.emit`.
    Custom { name: String, value: Blob },
}

/// One slice's outcome, as stored and as read back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Its result bytes.
    Value(Blob),
    /// Why it failed.
    Failed(SliceFailure),
    /// A result over [`MAX_SLICE_BYTES`], which travels through ravftp: from a provider, its
    /// bytes are in the provider's home as [`crate::files::bundle_result`]; from the server,
    /// they are in its blob store, fetched with [`crate::routes::job_result_file`].
    Stored { len: u64 },
}

/// A slice with its outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceResult {
    pub slice: u64,
    pub outcome: Outcome,
}

/// `GET /v1/jobs/{id}/results?from&to`: the outcomes of the slices in the range that have one,
/// in slice order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultPage {
    pub results: Vec<SliceResult>,
}

/// What a requester hears of its job ([`EventPage`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobEvent {
    /// A slice's result.
    Result { slice: u64, value: Blob },
    /// A slice's result over [`MAX_SLICE_BYTES`], kept by the server: fetched through ravftp
    /// ([`crate::routes::job_result_file`]; ravop does it and hands on a `result`).
    StoredResult { slice: u64, len: u64 },
    /// A slice failed for good.
    Error { slice: u64, failure: SliceFailure },
    /// A line a slice wrote.
    Console { slice: u64, level: ConsoleLevel, text: String },
    /// An event a slice emitted.
    Custom { slice: u64, name: String, value: Blob },
    /// The counts after the events before it.
    Status { counts: SliceCounts },
    /// Every slice has an outcome and the job takes no more (or it was cancelled).
    Complete { state: JobState, counts: SliceCounts },
}

/// `GET /v1/jobs/{id}/events?after=N&timeout_ms=T`: the events of slices finished after the
/// first `after` (in the order they finished), waiting up to `T` for one. Each slice's events
/// come once: ask again with `after = next`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<JobEvent>,
    /// The `after` of the next request.
    pub next: u64,
}

/// One slice of a bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundledSlice {
    pub slice: u64,
    /// Its bytes; empty when they wait in the provider's ravftp home (`file`).
    pub input: Blob,
    /// A big slice: the file in the provider's ravftp home holding its bytes, to download (and
    /// delete) before the slice runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<SliceFile>,
}

/// A slice's bytes as a file in a ravftp home.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceFile {
    pub name: String,
    pub len: u64,
}

/// [`EVENT_SLICES`]: slices of one job for a provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SliceBundle {
    /// The bundle (answer with it).
    pub bundle: u64,
    pub job: JobId,
    /// The work function, the first time this connection gets a bundle of the job.
    #[serde(default)]
    pub work: Option<JobWork>,
    pub slices: Vec<BundledSlice>,
}

/// One slice's answer from a provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SliceDone {
    pub slice: u64,
    pub outcome: Outcome,
    /// What it said while it ran, in order.
    #[serde(default)]
    pub events: Vec<WorkEvent>,
}

/// [`EVENT_SLICE_RESULTS`]: a provider's answers to a bundle (every slice of it, or the
/// slices missing go to another provider). Answers too big for one message come in parts:
/// each but the last has `more`, and a part is sent once its results pass
/// [`RESULTS_PART_BYTES`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleResults {
    pub bundle: u64,
    pub results: Vec<SliceDone>,
    /// More answers of this bundle follow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

/// A provider sends the answers it has as a part ([`BundleResults::more`]) before the next
/// would take them past this many bytes of results and events: a part is then at most this
/// plus one result, well under the server's 64 MiB message limit in base64.
pub const RESULTS_PART_BYTES: usize = 16 << 20;

impl SliceDone {
    /// Roughly the bytes it adds to a message (before base64).
    pub fn weight(&self) -> usize {
        let outcome = match &self.outcome {
            Outcome::Value(value) => value.0.len(),
            Outcome::Failed(_) | Outcome::Stored { .. } => 256,
        };
        let events: usize = self
            .events
            .iter()
            .map(|event| match event {
                WorkEvent::Console { text, .. } => text.len() + 32,
                WorkEvent::Custom { name, value } => name.len() + value.0.len() + 32,
            })
            .sum();
        64 + outcome + events
    }
}

/// A job ended: a provider that holds its work function lets it go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEnded {
    pub job: JobId,
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn wire_forms() {
        let bundle = SliceBundle {
            bundle: 7,
            job: JobId(3),
            work: Some(JobWork {
                module: Blob(b"\0asm".to_vec()),
                entry: "work".into(),
                args: Blob(vec![1]),
                files: vec![JobFile { name: "w.bin".into(), bytes: Blob(vec![2, 3]) }],
                limits: Limits::default(),
            }),
            slices: vec![
                BundledSlice { slice: 0, input: Blob(vec![0xff]), file: None },
                BundledSlice {
                    slice: 1,
                    input: Blob::default(),
                    file: Some(SliceFile { name: crate::files::bundle_slice(7, 1), len: 70_000 }),
                },
            ],
        };
        expect![[r#"{"bundle":7,"job":3,"work":{"module":"AGFzbQ==","entry":"work","args":"AQ==","files":[{"name":"w.bin","bytes":"AgM="}],"limits":{"fuel":1000000000,"memory_pages":4096,"deadline_ms":60000,"no_progress_ms":30000,"max_result_bytes":16777216}},"slices":[{"slice":0,"input":"/w=="},{"slice":1,"input":"","file":{"name":"jin-7-1.bin","len":70000}}]}"#]]
        .assert_eq(&serde_json::to_string(&bundle).unwrap());
        expect![[r#"{"job":3}"#]].assert_eq(&serde_json::to_string(&JobEnded { job: JobId(3) }).unwrap());
        let results = BundleResults {
            bundle: 7,
            results: vec![
                SliceDone {
                    slice: 0,
                    outcome: Outcome::Value(Blob(vec![4])),
                    events: vec![
                        WorkEvent::Console { level: ConsoleLevel::Warn, text: "hi".into() },
                        WorkEvent::Custom { name: "n".into(), value: Blob(vec![]) },
                    ],
                },
                SliceDone { slice: 1, outcome: Outcome::Failed(SliceFailure::OutOfFuel { fuel: 9 }), events: vec![] },
            ],
            more: false,
        };
        expect![[r#"{"bundle":7,"results":[{"slice":0,"outcome":{"value":"BA=="},"events":[{"kind":"console","level":"warn","text":"hi"},{"kind":"custom","name":"n","value":""}]},{"slice":1,"outcome":{"failed":{"code":"out_of_fuel","fuel":9}},"events":[]}]}"#]]
        .assert_eq(&serde_json::to_string(&results).unwrap());
        // A result over the inline limit: the provider's answer and the requester's event.
        let stored = SliceDone { slice: 4, outcome: Outcome::Stored { len: 70_000 }, events: vec![] };
        expect![[r#"{"slice":4,"outcome":{"stored":{"len":70000}},"events":[]}"#]]
            .assert_eq(&serde_json::to_string(&stored).unwrap());
        let event = JobEvent::StoredResult { slice: 4, len: 70_000 };
        expect![[r#"{"type":"stored_result","slice":4,"len":70000}"#]]
            .assert_eq(&serde_json::to_string(&event).unwrap());
        let part = BundleResults { bundle: 7, results: vec![], more: true };
        expect![[r#"{"bundle":7,"results":[],"more":true}"#]].assert_eq(&serde_json::to_string(&part).unwrap());
        let events = EventPage {
            events: vec![
                JobEvent::Result { slice: 2, value: Blob(vec![9]) },
                JobEvent::Error { slice: 3, failure: SliceFailure::Trap { why: "unreachable".into() } },
                JobEvent::Complete {
                    state: JobState::Complete,
                    counts: SliceCounts { total: 4, distributed: 0, computed: 3, failed: 1 },
                },
            ],
            next: 4,
        };
        expect![[r#"{"events":[{"type":"result","slice":2,"value":"CQ=="},{"type":"error","slice":3,"failure":{"code":"trap","why":"unreachable"}},{"type":"complete","state":"complete","counts":{"total":4,"distributed":0,"computed":3,"failed":1}}],"next":4}"#]]
        .assert_eq(&serde_json::to_string(&events).unwrap());
        let spec: JobSpec = serde_json::from_str(
            r#"{"work":{"module":"AGFzbQ==","entry":"work"},"slices":["AQ==","Ag=="],"groups":[{"key":"lab","secret":"s"}]}"#,
        )
        .unwrap();
        assert!(spec.auto_close);
        assert_eq!(spec.slices, vec![vec![1], vec![2]]);
        assert_eq!(format!("{:?}", spec.groups), "[ComputeGroup(lab, secret hidden)]");
        assert!(spec.check().is_ok());
    }

    #[test]
    fn bad_specs_and_groups_are_refused_with_reasons() {
        assert!(ComputeGroup::parse("lab:s3cret").is_ok());
        assert!(ComputeGroup::parse("lab").unwrap_err().contains("no ':'"));
        assert!(ComputeGroup::parse(":x").is_err());
        assert!(ComputeGroup::parse("lab:").is_err());
        let mut spec = JobSpec {
            work: JobWork {
                module: Blob(b"#!/bin/sh".to_vec()),
                entry: "work".into(),
                args: Blob::default(),
                files: vec![],
                limits: Limits::default(),
            },
            requirements: Requirements::default(),
            groups: vec![],
            slice_payment_offer: 0,
            public: None,
            auto_close: true,
            slices: vec![],
            big: vec![],
        };
        assert!(spec.check().unwrap_err().contains("not a WebAssembly module"));
        spec.work.module = Blob(b"\0asm\x01\0\0\0".to_vec());
        spec.slices = vec![vec![0; MAX_SLICE_BYTES + 1]];
        assert!(spec.check().unwrap_err().contains("slice 0 is 65537 bytes"));
        assert!(check_slices(&[vec![1]], &[], MAX_JOB_SLICES).is_err());
        // Big slices: each names an empty entry once, with a size past the inline limit and a
        // digest.
        let digest = "0f".repeat(32);
        let big = |at: u64, len: u64| BigSlice { at, len, sha256: digest.clone() };
        let slices = [vec![1], vec![], vec![]];
        assert!(check_slices(&slices, &[big(1, 70_000), big(2, MAX_BIG_SLICE_BYTES)], 0).is_ok());
        let refused = |big: &[BigSlice]| check_slices(&slices, big, 0).unwrap_err();
        assert!(refused(&[big(0, 70_000)]).contains("both inline and through ravftp"));
        assert!(refused(&[big(3, 70_000)]).contains("past the 3 slices"));
        assert!(refused(&[big(1, 70_000), big(1, 70_000)]).contains("named twice"));
        assert!(refused(&[big(1, 100)]).contains("smaller ones go inline"));
        assert!(refused(&[big(1, MAX_BIG_SLICE_BYTES + 1)]).contains("65537 to 67108864 bytes"));
        let upper = BigSlice { sha256: "0F".repeat(32), ..big(1, 70_000) };
        assert!(refused(&[upper]).contains("lowercase hex"));
        let added: AddSlices = serde_json::from_str(&format!(
            r#"{{"slices":["AQ==",""],"big":[{{"at":1,"len":70000,"sha256":"{digest}"}}]}}"#
        ))
        .unwrap();
        assert_eq!(added.big, vec![big(1, 70_000)]);
        expect![[r#"{"slices":["AQ=="]}"#]]
            .assert_eq(&serde_json::to_string(&AddSlices { slices: vec![vec![1]], big: vec![] }).unwrap());
        assert_eq!(JobState::from_code(JobState::Cancelled.code()), Some(JobState::Cancelled));
    }
}
