//! Jobs from the requester's side (DCP's `compute.for`): map one WebAssembly work function
//! over slices on the grid's providers, hear an event per slice, and read the results in slice
//! order.
//!
//! ```no_run
//! # async fn run(client: ravop::Client, module: Vec<u8>) -> ravop::Result<()> {
//! use ravop::jobs::{WorkFunction, slice};
//! let slices = (1..=5).map(|x: i64| slice::json(&x)).collect::<ravop::Result<Vec<_>>>()?;
//! let job = client.compute_for(slices, WorkFunction::wasm(module, "work"));
//! let handle = job.exec().await?;            // accepted: the job has an id
//! let results = handle.wait().await?;         // in slice order
//! # Ok(()) }
//! ```
//!
//! [`JobBuilder::local_exec`] runs every slice in this process, in the same sandbox as a
//! provider, with the same events: for tests and debugging. An open job
//! ([`JobBuilder::auto_close`]`(false)`) takes more slices from any process that knows its id
//! ([`Client::job`]) until it is closed.

use crate::client::{BlockingClient, Client, WAIT_MS};
use crate::error::{Error, Result};
use ravproto::jobs::{AddSlices, Blob, EventPage, JobFile, JobSpec, JobWork, MAX_PAGE, PublicInfo, ResultPage};
pub use ravproto::jobs::{
    ComputeGroup, Job, JobEvent, JobId, JobState, Outcome, SliceCounts, SliceResult, SlicesAdded,
};
use ravproto::messages::Requirements;
use ravproto::routes;
pub use ravproto::work::{ConsoleLevel, Limits, SliceFailure};
use std::collections::VecDeque;
use std::ops::Range;

/// A slice's outcome: its result bytes, or why it failed.
pub type SliceOutcome = std::result::Result<Vec<u8>, SliceFailure>;

/// Slices and results as bytes: helpers for the common encodings.
pub mod slice {
    use ravproto::TensorData;

    /// `value` as JSON bytes; a value JSON cannot hold (a map with non-string keys) is an
    /// error, never an empty slice.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> crate::Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| crate::Error::Settings(format!("a slice cannot be JSON: {e}")))
    }

    /// JSON bytes read back as a `T`.
    pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> crate::Result<T> {
        serde_json::from_slice(bytes)
            .map_err(|e| crate::Error::Settings(format!("a slice's bytes are not that JSON: {e}")))
    }

    /// A tensor in the project's binary encoding (dtype, shape, little-endian data).
    pub fn tensor(tensor: &TensorData) -> Vec<u8> {
        tensor.encode_binary()
    }

    /// Binary tensor bytes read back.
    pub fn from_tensor(bytes: &[u8]) -> crate::Result<TensorData> {
        TensorData::decode_binary(bytes)
            .map_err(|e| crate::Error::Settings(format!("a slice's bytes are not a tensor: {e}")))
    }

    /// A little-endian `f64` (what a work function reads with one `f64.load`).
    pub fn f64(value: f64) -> Vec<u8> {
        value.to_le_bytes().to_vec()
    }

    /// Eight little-endian bytes read back as an `f64`.
    pub fn to_f64(bytes: &[u8]) -> crate::Result<f64> {
        let array: [u8; 8] =
            bytes.try_into().map_err(|_| crate::Error::Settings(format!("an f64 is 8 bytes, not {}", bytes.len())))?;
        Ok(f64::from_le_bytes(array))
    }
}

/// A work function: a WebAssembly module and the name of its entry (see `ravproto::work`).
#[derive(Clone, Debug)]
pub struct WorkFunction {
    module: Vec<u8>,
    entry: String,
}

impl WorkFunction {
    /// The module's bytes (a `.wasm` file) and its entry.
    pub fn wasm(module: Vec<u8>, entry: impl Into<String>) -> WorkFunction {
        WorkFunction { module, entry: entry.into() }
    }
}

/// A job's read-only files, read by every slice (`rav.file_read`).
#[derive(Clone, Debug, Default)]
pub struct JobFs(Vec<JobFile>);

impl JobFs {
    /// No files.
    pub fn new() -> JobFs {
        JobFs::default()
    }

    /// Adds a file.
    pub fn add(mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> JobFs {
        self.0.push(JobFile { name: name.into(), bytes: Blob(bytes.into()) });
        self
    }
}

/// A job being described; nothing is sent before [`JobBuilder::exec`].
#[derive(Clone, Debug)]
pub struct JobBuilder<'a> {
    /// Where [`JobBuilder::exec`] sends it; none: only [`JobBuilder::local_exec`] runs it.
    client: Option<&'a Client>,
    spec: JobSpec,
}

impl Client {
    /// A job mapping `work` over `slices`.
    pub fn compute_for(&self, slices: impl IntoIterator<Item = Vec<u8>>, work: WorkFunction) -> JobBuilder<'_> {
        JobBuilder { client: Some(self), ..JobBuilder::local(slices, work) }
    }

    /// A job of `n` slices, slice `i` being `i` as JSON (DCP's `compute.do`).
    pub fn compute_do(&self, n: u64, work: WorkFunction) -> JobBuilder<'_> {
        // A number's JSON is its digits.
        self.compute_for((0..n).map(|i| i.to_string().into_bytes()), work)
    }

    /// A job of this requester's, by id (from another process: add slices, read results).
    pub fn job(&self, id: JobId) -> JobHandle {
        JobHandle { client: self.clone(), id, total: None }
    }
}

impl JobBuilder<'static> {
    /// A job that only [`JobBuilder::local_exec`] runs (no server: tests, debugging).
    pub fn local(slices: impl IntoIterator<Item = Vec<u8>>, work: WorkFunction) -> JobBuilder<'static> {
        let spec = JobSpec {
            work: JobWork {
                module: Blob(work.module),
                entry: work.entry,
                args: Blob::default(),
                files: Vec::new(),
                limits: Limits::default(),
            },
            requirements: Requirements::default(),
            groups: Vec::new(),
            slice_payment_offer: 0,
            public: None,
            auto_close: true,
            slices: slices.into_iter().collect(),
            big: Vec::new(),
        };
        JobBuilder { client: None, spec }
    }
}

impl JobBuilder<'_> {
    /// Bytes passed to every slice.
    pub fn args(mut self, args: impl Into<Vec<u8>>) -> Self {
        self.spec.work.args = Blob(args.into());
        self
    }

    /// Read-only files for every slice.
    pub fn files(mut self, files: JobFs) -> Self {
        self.spec.work.files = files.0;
        self
    }

    /// What each slice may use (a provider lowers it to its own cap).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.spec.work.limits = limits;
        self
    }

    /// What a provider must offer.
    pub fn requirements(mut self, requirements: Requirements) -> Self {
        self.spec.requirements = requirements;
        self
    }

    /// Only providers of these groups compute it.
    pub fn compute_groups(mut self, groups: impl IntoIterator<Item = ComputeGroup>) -> Self {
        self.spec.groups = groups.into_iter().collect();
        self
    }

    /// What the requester offers per slice.
    pub fn slice_payment_offer(mut self, units: u64) -> Self {
        self.spec.slice_payment_offer = units;
        self
    }

    /// What workers are shown.
    pub fn public(mut self, name: impl Into<String>, description: impl Into<String>, link: impl Into<String>) -> Self {
        self.spec.public = Some(PublicInfo { name: name.into(), description: description.into(), link: link.into() });
        self
    }

    /// `false`: the job stays open for more slices ([`JobHandle::add_slices`]) until
    /// [`JobHandle::close`]. Default `true`.
    pub fn auto_close(mut self, auto_close: bool) -> Self {
        self.spec.auto_close = auto_close;
        self
    }

    /// Sends the job; answers once ravsock accepted it (the `accepted` event), with its id.
    pub async fn exec(self) -> Result<JobHandle> {
        let Some(client) = self.client else {
            return Err(Error::Settings("a job made with JobBuilder::local only runs with local_exec".into()));
        };
        let mut spec = self.spec;
        let total = spec.slices.len() as u64;
        spec.big = client.upload_big_slices(&mut spec.slices).await?;
        let job: Job = client.post(routes::JOBS, &spec).await?;
        Ok(JobHandle { client: client.clone(), id: job.id, total: Some(total) })
    }

    /// Runs every slice here, in order, in the sandbox providers use, under the job's limits:
    /// the events a provider's run would send, then the outcomes in slice order.
    pub fn local_exec(self) -> LocalRun {
        let sandbox = ravwasm::Sandbox::new();
        let work = self.spec.work;
        let files: ravwasm::JobFiles =
            work.files.into_iter().map(|f| (f.name, std::sync::Arc::from(f.bytes.0))).collect();
        let files = std::sync::Arc::new(files);
        let function = sandbox.compile(&work.module.0, &work.entry);
        let mut run = LocalRun::default();
        for (index, input) in self.spec.slices.iter().enumerate() {
            let index = index as u64;
            let outcome = match &function {
                Err(failure) => Err(failure.clone()),
                Ok(function) => {
                    let input = ravwasm::SliceInput { slice: input, args: &work.args.0, index };
                    let ran = sandbox.run(function, input, &files, work.limits);
                    for event in ran.events {
                        match event {
                            ravwasm::SliceEvent::Progress(_) => {}
                            ravwasm::SliceEvent::Console { level, text } => {
                                run.events.push(JobEvent::Console { slice: index, level, text })
                            }
                            ravwasm::SliceEvent::Custom { name, bytes } => {
                                run.events.push(JobEvent::Custom { slice: index, name, value: Blob(bytes) })
                            }
                        }
                    }
                    ran.result
                }
            };
            run.events.push(match &outcome {
                Ok(bytes) => JobEvent::Result { slice: index, value: Blob(bytes.clone()) },
                Err(failure) => JobEvent::Error { slice: index, failure: failure.clone() },
            });
            run.results.push(outcome);
        }
        let failed = run.results.iter().filter(|r| r.is_err()).count() as u64;
        let total = run.results.len() as u64;
        let counts = SliceCounts { total, distributed: 0, computed: total - failed, failed };
        run.events.push(JobEvent::Complete { state: JobState::Complete, counts });
        run
    }
}

/// What [`JobBuilder::local_exec`] gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalRun {
    /// Per slice: console lines and custom events, then its result or error; then `complete`.
    pub events: Vec<JobEvent>,
    /// The outcomes, in slice order.
    pub results: Vec<SliceOutcome>,
}

/// A job on the grid.
#[derive(Clone, Debug)]
pub struct JobHandle {
    client: Client,
    id: JobId,
    /// Slices sent with it, when this handle made it.
    total: Option<u64>,
}

impl JobHandle {
    /// Its id (for [`Client::job`] in another process).
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Its state and counts.
    pub async fn status(&self) -> Result<Job> {
        self.client.get(&routes::job(self.id)).await
    }

    /// Adds slices to an open job; answers the numbers they got. Slices over
    /// `ravproto::jobs::MAX_SLICE_BYTES` are uploaded through ravftp first.
    pub async fn add_slices(&self, slices: impl IntoIterator<Item = Vec<u8>>) -> Result<SlicesAdded> {
        let mut slices: Vec<Vec<u8>> = slices.into_iter().collect();
        let big = self.client.upload_big_slices(&mut slices).await?;
        let body = AddSlices { slices, big };
        self.client.post(&routes::job_slices(self.id), &body).await
    }

    /// Closes an open job: it completes once the slices it has are done.
    pub async fn close(&self) -> Result<Job> {
        self.client.post(&routes::job_close(self.id), &()).await
    }

    /// Cancels the job: nothing more is computed.
    pub async fn cancel(&self) -> Result<Job> {
        self.client.post(&routes::job_cancel(self.id), &()).await
    }

    /// The outcomes of the slices in `range` that have one, in slice order (pages of
    /// `ravproto::jobs::MAX_PAGE`).
    pub async fn results(&self, range: Range<u64>) -> Result<Vec<SliceResult>> {
        let mut out = Vec::new();
        let mut from = range.start;
        while from < range.end {
            let to = range.end.min(from + MAX_PAGE);
            let path = format!("{}?from={from}&to={to}", routes::job_results(self.id));
            out.extend(self.client.get::<ResultPage>(&path).await?.results);
            from = to;
        }
        // Results over the inline limit were kept as files: fetched through ravftp, over one
        // session.
        let mut session = None;
        for result in &mut out {
            if let Outcome::Stored { .. } = result.outcome {
                let bytes = self.client.fetch_job_result(&mut session, self.id, result.slice).await?;
                result.outcome = Outcome::Value(Blob(bytes));
            }
        }
        if let Some(session) = session {
            session.quit().await;
        }
        Ok(out)
    }

    /// Its events as they come: per finished slice its console lines, custom events and
    /// result or error (once each), status after each batch, and `complete` last.
    /// Read with HTTP long polls; [`JobHandle::subscribe`] has them pushed instead.
    pub fn events(&self) -> JobEvents {
        JobEvents {
            client: self.client.clone(),
            id: self.id,
            after: 0,
            buffered: VecDeque::new(),
            ended: false,
            push: None,
            ftp: None,
        }
    }

    /// The same events as [`JobHandle::events`], pushed by the server over `/requester` as
    /// the slices' outcomes are stored (one socket.io connection, which reconnects by itself
    /// and follows the job again from where it was read to).
    pub async fn subscribe(&self) -> Result<JobEvents> {
        let push = crate::events::JobPush::open(&self.client, self.id, 0).await?;
        Ok(JobEvents { push: Some(push), ..self.events() })
    }

    /// Waits for the job to complete; answers every outcome in slice order.
    pub async fn wait(&self) -> Result<Vec<SliceOutcome>> {
        self.wait_with(|_| {}).await
    }

    /// [`JobHandle::wait`], calling `progress` with the counts as they change (a progress
    /// bar: `wait_with(ravop::jobs::progress_bar())`).
    pub async fn wait_with(&self, mut progress: impl FnMut(&SliceCounts)) -> Result<Vec<SliceOutcome>> {
        // The outcomes come with the events: no second read unless one is missing.
        let mut outcomes: Vec<Option<SliceOutcome>> = Vec::new();
        let mut put = |slice: u64, outcome: SliceOutcome| {
            let slice = slice as usize;
            if outcomes.len() <= slice {
                outcomes.resize(slice + 1, None);
            }
            outcomes[slice] = Some(outcome);
        };
        let mut events = self.events();
        let mut end = None;
        while let Some(event) = events.next().await? {
            match event {
                JobEvent::Result { slice, value } => put(slice, Ok(value.0)),
                JobEvent::Error { slice, failure } => put(slice, Err(failure)),
                JobEvent::Status { counts } => progress(&counts),
                JobEvent::Complete { state, counts } => {
                    progress(&counts);
                    end = Some((state, counts));
                }
                // (`next` hands on a stored result as `result`.)
                JobEvent::StoredResult { .. } | JobEvent::Console { .. } | JobEvent::Custom { .. } => {}
            }
        }
        let Some((state, counts)) = end else { return Err(Error::Transport("the job's events ended early".into())) };
        if state == JobState::Cancelled {
            return Err(Error::Settings(format!("{} was cancelled", self.id)));
        }
        let total = self.total.unwrap_or(counts.total).max(counts.total) as usize;
        if outcomes.len() == total && outcomes.iter().all(Option::is_some) {
            return Ok(outcomes.into_iter().flatten().collect());
        }
        // Events read before this handle (another process's `wait`) are not sent again.
        let results = self.results(0..total as u64).await?;
        Ok(results
            .into_iter()
            .map(|r| match r.outcome {
                Outcome::Value(value) => Ok(value.0),
                Outcome::Failed(failure) => Err(failure),
                // `results` fetched every stored one.
                Outcome::Stored { len } => {
                    Err(SliceFailure::Failed { why: format!("a result of {len} bytes was not fetched") })
                }
            })
            .collect())
    }
}

/// A job's events, read with long polls or pushed ([`JobEvents::next`]).
#[derive(Debug)]
pub struct JobEvents {
    client: Client,
    id: JobId,
    after: u64,
    buffered: VecDeque<JobEvent>,
    ended: bool,
    /// The `/requester` connection, when the events are pushed.
    push: Option<crate::events::JobPush>,
    /// The ravftp session that fetches results kept as files.
    ftp: Option<ravftp::FtpClient>,
}

impl JobEvents {
    /// The next event; `None` after `complete`.
    pub async fn next(&mut self) -> Result<Option<JobEvent>> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                let event = match event {
                    // Kept as a file: fetched through ravftp and handed on as a result.
                    JobEvent::StoredResult { slice, len } => {
                        match self.client.fetch_job_result(&mut self.ftp, self.id, slice).await {
                            Ok(bytes) => JobEvent::Result { slice, value: Blob(bytes) },
                            Err(error) => {
                                // Kept for the next call, so a failed fetch loses no result.
                                self.buffered.push_front(JobEvent::StoredResult { slice, len });
                                return Err(error);
                            }
                        }
                    }
                    JobEvent::Complete { .. } => {
                        self.ended = true;
                        event
                    }
                    event => event,
                };
                return Ok(Some(event));
            }
            if self.ended {
                if let Some(push) = self.push.take() {
                    push.close().await;
                }
                if let Some(ftp) = self.ftp.take() {
                    ftp.quit().await;
                }
                return Ok(None);
            }
            let (events, next) = match &mut self.push {
                Some(push) => {
                    let page = push.next(self.after).await?;
                    (page.events, page.next)
                }
                None => {
                    let path = format!("{}?after={}&timeout_ms={WAIT_MS}", routes::job_events(self.id), self.after);
                    let page: EventPage = self.client.get(&path).await?;
                    (page.events, page.next)
                }
            };
            self.after = next;
            self.buffered.extend(events);
        }
    }
}

/// A progress bar for [`JobHandle::wait_with`]: slices with an outcome of all the job's
/// slices, with the rate and the failures so far.
pub fn progress_bar() -> impl FnMut(&SliceCounts) {
    let bar = crate::client::styled_bar("{spinner} [{bar:40}] {pos}/{len} slices ({per_sec}, ETA {eta}) {msg}");
    move |counts: &SliceCounts| {
        bar.set_length(counts.total);
        bar.set_position(counts.computed + counts.failed);
        bar.set_message(format!("{} failed", counts.failed));
        if counts.computed + counts.failed == counts.total && counts.distributed == 0 {
            bar.finish();
        }
    }
}

impl BlockingClient {
    /// Sends the job `describe` builds and waits for it: its id and outcomes in slice order.
    pub fn run_job(
        &self,
        describe: impl for<'c> FnOnce(&'c Client) -> JobBuilder<'c>,
    ) -> Result<(JobId, Vec<SliceOutcome>)> {
        self.runtime.block_on(async {
            let handle = describe(&self.inner).exec().await?;
            let results = handle.wait().await?;
            Ok((handle.id(), results))
        })
    }

    /// Sends an open job (`auto_close(false)` is set) and answers its id at once.
    pub fn open_job(&self, describe: impl for<'c> FnOnce(&'c Client) -> JobBuilder<'c>) -> Result<JobId> {
        self.runtime.block_on(async { Ok(describe(&self.inner).auto_close(false).exec().await?.id()) })
    }

    /// See [`JobHandle::add_slices`].
    pub fn add_slices(&self, job: JobId, slices: impl IntoIterator<Item = Vec<u8>>) -> Result<SlicesAdded> {
        self.runtime.block_on(self.inner.job(job).add_slices(slices))
    }

    /// See [`JobHandle::close`].
    pub fn close_job(&self, job: JobId) -> Result<Job> {
        self.runtime.block_on(self.inner.job(job).close())
    }

    /// See [`JobHandle::results`].
    pub fn job_results(&self, job: JobId, range: Range<u64>) -> Result<Vec<SliceResult>> {
        self.runtime.block_on(self.inner.job(job).results(range))
    }

    /// See [`JobHandle::wait`].
    pub fn wait_job(&self, job: JobId) -> Result<Vec<SliceOutcome>> {
        self.runtime.block_on(self.inner.job(job).wait())
    }
}

#[cfg(test)]
mod tests {
    use super::slice;
    use std::collections::BTreeMap;

    #[test]
    fn slice_helpers_round_trip_and_refuse_what_they_cannot_encode() {
        assert_eq!(slice::from_json::<Vec<i32>>(&slice::json(&vec![1, 2]).unwrap()).unwrap(), vec![1, 2]);
        // JSON keys are strings: a map keyed by a tuple is an error, not an empty slice.
        let map: BTreeMap<(i32, i32), i32> = BTreeMap::from([((1, 2), 3)]);
        assert!(slice::json(&map).is_err());
        assert_eq!(slice::to_f64(&slice::f64(2.5)).unwrap(), 2.5);
        assert!(slice::to_f64(&[1, 2, 3]).is_err());
        assert!(slice::from_tensor(b"not a tensor").is_err());
    }
}
