//! Jobs' slices on a provider: a bundle's work function compiled once per job (kept while the
//! connection lasts: the server sends it with the connection's first bundle of the job), its
//! slices run one after another in the sandbox on a blocking thread, each under the job's
//! limits lowered to this provider's cap, and every outcome sent back in one message. A
//! failing slice (a trap, an exhausted budget, a bad module) is that slice's typed error; the
//! provider goes on.

use crate::{ProviderEvent, Summary, report};
use ravproto::jobs::{BundleResults, EVENT_SLICE_RESULTS, JobId, JobWork, Outcome, SliceBundle, SliceDone, WorkEvent};
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

    /// Runs every slice of `bundle` (none once it is withdrawn).
    fn run(&self, bundle: SliceBundle, withdrawn: &Mutex<BTreeSet<u64>>) -> BundleResults {
        let SliceBundle { bundle: id, job, work, slices } = bundle;
        // A withdrawn bundle (its job cancelled, and perhaps forgotten) is answered empty.
        if withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&id) {
            return BundleResults { bundle: id, results: Vec::new() };
        }
        let loaded = match work {
            Some(work) => Some(self.load(job, work)),
            None => self.works.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&job).cloned(),
        };
        let Some(loaded) = loaded else {
            // Answered empty: the server gives the slices to another hand-out.
            tracing::error!(%job, bundle = id, "a bundle of a job whose work function this connection never got");
            return BundleResults { bundle: id, results: Vec::new() };
        };
        let mut results = Vec::with_capacity(slices.len());
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
            results.push(done);
        }
        BundleResults { bundle: id, results }
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
}

/// Runs a bundle on a blocking thread and sends its outcomes.
pub(crate) async fn handle_bundle(task: SliceTask, bundle: SliceBundle) {
    let id = bundle.bundle;
    let started = std::time::Instant::now();
    let (runner, withdrawn) = (task.runner.clone(), task.withdrawn.clone());
    let results = match tokio::task::spawn_blocking(move || runner.run(bundle, &withdrawn)).await {
        Ok(results) => results,
        Err(error) => {
            tracing::error!(bundle = id, cause = %error, "a bundle's thread failed");
            return;
        }
    };
    if task.withdrawn.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id) {
        tracing::info!(bundle = id, "bundle withdrawn; its outcomes are not sent");
        return;
    }
    let slices = results.results.len() as u64;
    let message = match serde_json::to_value(&results) {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(bundle = id, cause = %error, "cannot encode a bundle's outcomes");
            return;
        }
    };
    if let Err(error) = task.client.emit(EVENT_SLICE_RESULTS, message).await {
        // The server hands the bundle out again when this connection closes.
        tracing::warn!(bundle = id, cause = %error, "cannot send a bundle's outcomes");
        return;
    }
    {
        let mut summary = task.summary.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        summary.slices += slices;
    }
    let millis = started.elapsed().as_secs_f64() * 1e3;
    report(&task.events, ProviderEvent::Sliced { bundle: id, slices, millis });
}
