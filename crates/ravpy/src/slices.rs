//! Jobs' slices on a provider: a bundle's work function compiled once per job (kept while the
//! connection lasts: the server sends it with the connection's first bundle of the job), its
//! slices run one after another in the sandbox on a blocking thread, each under the job's
//! limits lowered to this provider's cap, and the outcomes sent back in one message, or in
//! parts when big results would make one too large. A
//! failing slice (a trap, an exhausted budget, a bad module) is that slice's typed error; the
//! provider goes on.
//!
//! A big slice waits in this connection's ravftp home: it is downloaded just before it runs,
//! so a bundle of big slices holds one in memory at a time. One that cannot be downloaded ends
//! the bundle there; the slices left unanswered go to another hand-out. A result over the
//! inline limit is uploaded to the home and named `stored` in the answer.

use crate::assignment::Bulk;
use crate::{ProviderEvent, Summary, report};
use ravproto::jobs::{
    BundleResults, EVENT_SLICE_RESULTS, JobId, JobWork, MAX_SLICE_BYTES, Outcome, RESULTS_PART_BYTES, SliceBundle,
    SliceDone, WorkEvent,
};
use ravproto::work::{Limits, SliceFailure};
use ravwasm::{EngineError, EngineKind, JobFiles, Sandbox, SliceEvent, SliceInput, WorkFunction};
use rust_socketio::asynchronous::Client;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A job's work function as this provider runs it.
struct Loaded {
    function: Result<WorkFunction, SliceFailure>,
    args: Vec<u8>,
    files: Arc<JobFiles>,
    limits: Limits,
}

/// The sandbox and the jobs' work functions this connection has.
pub(crate) struct Runner {
    sandbox: Sandbox,
    works: Mutex<HashMap<JobId, Arc<Loaded>>>,
    /// The most any slice may use here (`--slice-fuel` and friends).
    cap: Limits,
}

impl Runner {
    /// A runner on `engine`, or on the fastest engine built in.
    pub(crate) fn new(cap: Limits, engine: Option<EngineKind>) -> Result<Runner, EngineError> {
        let sandbox = match engine {
            Some(kind) => Sandbox::with_engine(kind)?,
            None => Sandbox::new(),
        };
        tracing::info!(engine = %sandbox.engine(), "jobs' slices run on this WebAssembly engine");
        Ok(Runner { sandbox, works: Mutex::default(), cap })
    }

    /// Lets an ended job's work function go (bundles running it hold their own reference).
    pub(crate) fn forget(&self, job: JobId) {
        self.works.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&job);
    }

    /// Forgets every work function (a new connection is sent them again).
    pub(crate) fn clear(&self) {
        self.works.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    fn load(&self, job: JobId, work: JobWork) -> Arc<Loaded> {
        let function = self.sandbox.compile(&work.module.0, &work.entry);
        if let Err(failure) = &function {
            tracing::warn!(%job, %failure, "the work function does not load; its slices fail");
        }
        let files: JobFiles = work.files.into_iter().map(|f| (f.name, Arc::from(f.bytes.0))).collect();
        let loaded = Arc::new(Loaded {
            function,
            args: work.args.0,
            files: Arc::new(files),
            limits: work.limits.capped_by(self.cap),
        });
        self.works.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(job, loaded.clone());
        loaded
    }

    /// Loads the work function a bundle carries, in the order bundles arrive: a connection's
    /// second bundle of a job may start before its first, which carries the work function.
    pub(crate) fn prepare(&self, mut bundle: SliceBundle) -> SliceBundle {
        if let Some(work) = bundle.work.take() {
            self.load(bundle.job, work);
        }
        bundle
    }

    /// Runs every slice of `bundle` (none once it is withdrawn), handing `send_part` the
    /// answers that make a part; answers the rest.
    fn run(
        &self,
        bundle: SliceBundle,
        withdrawn: &Mutex<BTreeSet<u64>>,
        send_part: &mut dyn FnMut(BundleResults),
    ) -> BundleResults {
        let SliceBundle { bundle: id, job, work, slices } = bundle;
        let mut answers = Answers::new(id);
        // A withdrawn bundle (its job cancelled, and perhaps forgotten) is answered empty.
        if withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&id) {
            return answers.last();
        }
        let loaded = match work {
            Some(work) => Some(self.load(job, work)),
            None => self.works.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&job).cloned(),
        };
        let Some(loaded) = loaded else {
            // Answered empty: the server gives the slices to another hand-out.
            tracing::error!(%job, bundle = id, "a bundle of a job whose work function this connection never got");
            return answers.last();
        };
        for slice in slices {
            if withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&id) {
                break;
            }
            let done = match &loaded.function {
                Err(failure) => {
                    SliceDone { slice: slice.slice, outcome: Outcome::Failed(failure.clone()), events: vec![] }
                }
                Ok(function) => {
                    let input = SliceInput { slice: &slice.input.0, args: &loaded.args, index: slice.slice };
                    let ran = self.sandbox.run(function, input, &loaded.files, loaded.limits);
                    let events = ran.events.into_iter().filter_map(wire_event).collect();
                    let outcome = match ran.result {
                        Ok(bytes) => Outcome::Value(ravproto::jobs::Blob(bytes)),
                        Err(failure) => Outcome::Failed(failure),
                    };
                    SliceDone { slice: slice.slice, outcome, events }
                }
            };
            if let Some(part) = answers.push(done) {
                send_part(part);
            }
        }
        answers.last()
    }
}

/// A bundle's answers as they are made: those so far go as a part ([`BundleResults::more`])
/// before the next would take them past [`RESULTS_PART_BYTES`], so no message passes the
/// server's limit however many big results a bundle has.
struct Answers {
    bundle: u64,
    results: Vec<SliceDone>,
    weight: usize,
}

impl Answers {
    fn new(bundle: u64) -> Answers {
        Answers { bundle, results: Vec::new(), weight: 0 }
    }

    /// Adds `done`; answers a part to send first, when the answers so far make one.
    fn push(&mut self, done: SliceDone) -> Option<BundleResults> {
        let weight = done.weight();
        let part = (!self.results.is_empty() && self.weight + weight > RESULTS_PART_BYTES).then(|| {
            self.weight = 0;
            BundleResults { bundle: self.bundle, results: std::mem::take(&mut self.results), more: true }
        });
        self.weight += weight;
        self.results.push(done);
        part
    }

    /// The last part.
    fn last(self) -> BundleResults {
        BundleResults { bundle: self.bundle, results: self.results, more: false }
    }
}

/// Sends answers of a bundle (results over the inline limit through ravftp); whether they
/// went.
async fn send(client: &Client, ftp: Option<&Bulk>, mut results: BundleResults) -> bool {
    let big =
        results.results.iter().any(|done| matches!(&done.outcome, Outcome::Value(v) if v.0.len() > MAX_SLICE_BYTES));
    if big {
        let uploaded = match ftp {
            Some(ftp) => ftp.send_big_results(&mut results).await,
            None => Err("no ftp credentials yet".into()),
        };
        if let Err(reason) = uploaded {
            // Left out, they go to another hand-out.
            tracing::warn!(bundle = results.bundle, %reason, "cannot upload big results; those slices go back");
            results.results.retain(|done| !matches!(&done.outcome, Outcome::Value(v) if v.0.len() > MAX_SLICE_BYTES));
        }
    }
    let message = match serde_json::to_value(&results) {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(bundle = results.bundle, cause = %error, "cannot encode a bundle's outcomes");
            return false;
        }
    };
    match client.emit(EVENT_SLICE_RESULTS, message).await {
        Ok(()) => true,
        Err(error) => {
            // The server hands the bundle out again when this connection closes.
            tracing::warn!(bundle = results.bundle, cause = %error, "cannot send a bundle's outcomes");
            false
        }
    }
}

/// What the requester hears of a slice's event (progress only keeps the slice alive).
fn wire_event(event: SliceEvent) -> Option<WorkEvent> {
    match event {
        SliceEvent::Progress(_) => None,
        SliceEvent::Console { level, text } => Some(WorkEvent::Console { level, text }),
        SliceEvent::Custom { name, bytes } => Some(WorkEvent::Custom { name, value: ravproto::jobs::Blob(bytes) }),
    }
}

/// What a bundle's task needs.
pub(crate) struct SliceTask {
    pub(crate) client: Client,
    pub(crate) runner: Arc<Runner>,
    pub(crate) withdrawn: Arc<Mutex<BTreeSet<u64>>>,
    pub(crate) summary: Arc<Mutex<Summary>>,
    pub(crate) events: Option<mpsc::UnboundedSender<ProviderEvent>>,
    /// This connection's ravftp, for big slices.
    pub(crate) ftp: Option<Arc<Bulk>>,
}

impl SliceTask {
    /// Runs `bundle` on a blocking thread, sending the parts of its answers as they are made;
    /// answers the last part and how many slices the parts before it held.
    async fn run(&self, bundle: SliceBundle) -> Option<(BundleResults, u64)> {
        let (runner, withdrawn, id) = (self.runner.clone(), self.withdrawn.clone(), bundle.bundle);
        let (client, ftp, runtime) = (self.client.clone(), self.ftp.clone(), tokio::runtime::Handle::current());
        let ran = tokio::task::spawn_blocking(move || {
            let mut parted = 0;
            let mut send_part = |part: BundleResults| {
                parted += part.results.len() as u64;
                runtime.block_on(send(&client, ftp.as_deref(), part));
            };
            let results = runner.run(bundle, &withdrawn, &mut send_part);
            (results, parted)
        });
        match ran.await {
            Ok(ran) => Some(ran),
            Err(error) => {
                tracing::error!(bundle = id, cause = %error, "a bundle's thread failed");
                None
            }
        }
    }

    /// Runs a bundle holding big slices one slice at a time, each downloaded just before.
    async fn run_with_files(&self, bundle: SliceBundle) -> Option<(BundleResults, u64)> {
        let SliceBundle { bundle: id, job, work, slices } = bundle;
        let mut answers = Answers::new(id);
        let mut parted = 0;
        let mut session = None;
        let mut work = work;
        for mut slice in slices {
            if self.withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&id) {
                break;
            }
            if let Some(file) = slice.file.take() {
                let fetched = match &self.ftp {
                    Some(ftp) => ftp.fetch_slice(&mut session, &file).await,
                    None => Err("a big slice sent before ftp credentials".into()),
                };
                match fetched {
                    Ok(bytes) => slice.input = ravproto::jobs::Blob(bytes),
                    Err(reason) => {
                        tracing::warn!(bundle = id, slice = slice.slice, %reason, "cannot download a big slice; the rest of its bundle goes back");
                        break;
                    }
                }
            }
            let one = SliceBundle { bundle: id, job, work: work.take(), slices: vec![slice] };
            for done in self.run(one).await?.0.results {
                if let Some(part) = answers.push(done) {
                    parted += part.results.len() as u64;
                    send(&self.client, self.ftp.as_deref(), part).await;
                }
            }
        }
        if let Some(session) = session {
            session.quit().await;
        }
        Some((answers.last(), parted))
    }
}

/// Runs a bundle on a blocking thread and sends its outcomes.
pub(crate) async fn handle_bundle(task: SliceTask, bundle: SliceBundle) {
    let id = bundle.bundle;
    let started = std::time::Instant::now();
    let ran = match bundle.slices.iter().any(|slice| slice.file.is_some()) {
        true => task.run_with_files(bundle).await,
        false => task.run(bundle).await,
    };
    let Some((results, parted)) = ran else { return };
    if task.withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id) {
        tracing::info!(bundle = id, "bundle withdrawn; its outcomes are not sent");
        return;
    }
    let slices = parted + results.results.len() as u64;
    if !send(&task.client, task.ftp.as_deref(), results).await {
        return;
    }
    {
        let mut summary = task.summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        summary.slices += slices;
    }
    let millis = started.elapsed().as_secs_f64() * 1e3;
    report(&task.events, ProviderEvent::Sliced { bundle: id, slices, millis });
}
