//! The sandbox that runs a job's work function on one slice at a time: a WebAssembly module
//! with no imports but the host's `rav` functions, metered by fuel, bounded in memory, stopped
//! at a deadline or after too long without progress. The ABI is `ravproto::work`'s.
//!
//! The engine is wasmi, an interpreter: its build is small, it meters fuel, and a call that runs
//! out of fuel can be resumed, which is how the sandbox checks the clock without a thread of
//! its own. The README's jobs section measures it against wasmtime (wasmtime runs compute-heavy
//! slices 3x faster and is the way to the compute target). A [`WorkFunction`] is validated and
//! compiled once and run on many slices; each slice gets a fresh instance, so nothing a slice
//! leaves in memory reaches the next, and a slice is a function of its inputs alone.
//!
//! Every way a module can misbehave (not wasm, a foreign import, a missing export, a trap, an
//! exhausted budget, an oversized result) is a [`SliceFailure`] for that slice; none panics.

mod check;
mod host;

use host::{SliceState, Stop};
pub use ravproto::work::{ConsoleLevel, Limits, SliceFailure};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmi::{Config, Engine, Linker, Module, Store, StoreLimitsBuilder, TrapCode, TypedResumableCall};

/// Fuel handed to a slice at a time: between two handfuls the sandbox looks at the clock.
/// About 10 ms of interpretation here, so a deadline is kept to within that.
const FUEL_STEP: u64 = 20_000_000;

/// A job's read-only files, by name.
pub type JobFiles = HashMap<String, Arc<[u8]>>;

/// What a slice told its requester while it ran, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum SliceEvent {
    /// `rav.progress`.
    Progress(f32),
    /// `rav.console`.
    Console {
        /// Its level.
        level: ConsoleLevel,
        /// The line.
        text: String,
    },
    /// `rav.emit`.
    Custom {
        /// The event's name.
        name: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

/// One slice's inputs.
#[derive(Clone, Copy, Debug)]
pub struct SliceInput<'a> {
    /// The slice's bytes.
    pub slice: &'a [u8],
    /// The job's arguments, the same for every slice.
    pub args: &'a [u8],
    /// The slice's number in the job.
    pub index: u64,
}

/// What running one slice gave.
#[derive(Debug)]
pub struct SliceOutcome {
    /// The result bytes, or why there are none.
    pub result: Result<Vec<u8>, SliceFailure>,
    /// The events, in order (at most a thousand; see `dropped_events`).
    pub events: Vec<SliceEvent>,
    /// Events past the limit, counted and not kept.
    pub dropped_events: usize,
    /// The fuel the slice used.
    pub fuel_used: u64,
}

/// The engine and the host functions, shared by every work function and slice.
#[derive(Clone)]
pub struct Sandbox {
    engine: Engine,
    linker: Arc<Linker<SliceState>>,
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox::new()
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sandbox")
    }
}

/// A work function, validated and compiled, ready for many slices.
#[derive(Clone, Debug)]
pub struct WorkFunction {
    module: Module,
    entry: String,
    /// The memory's declared size, in pages: more than a slice's limit fails before it starts.
    initial_pages: u64,
}

impl Sandbox {
    /// A sandbox with fuel metering on.
    pub fn new() -> Sandbox {
        let mut config = Config::default();
        config.consume_fuel(true);
        let engine = Engine::new(&config);
        let linker = Arc::new(host::linker(&engine));
        Sandbox { engine, linker }
    }

    /// Validates and compiles `bytes` as a work function whose entry is `entry`: it must be
    /// WebAssembly without a start function, import only the host's functions with their types, and export the memory,
    /// the allocator and the entry with the ABI's types.
    pub fn compile(&self, bytes: &[u8], entry: &str) -> Result<WorkFunction, SliceFailure> {
        let module = Module::new(&self.engine, bytes).map_err(|e| SliceFailure::NotWasm { why: e.to_string() })?;
        check::no_start(bytes)?;
        check::imports(&module)?;
        let initial_pages = check::exports(&module, entry)?;
        Ok(WorkFunction { module, entry: entry.to_string(), initial_pages })
    }

    /// Runs one slice of `function` in a fresh instance under `limits`.
    pub fn run(
        &self,
        function: &WorkFunction,
        input: SliceInput<'_>,
        files: &Arc<JobFiles>,
        limits: Limits,
    ) -> SliceOutcome {
        let started = Instant::now();
        let state = SliceState {
            limits,
            memory: StoreLimitsBuilder::new()
                .memory_size((limits.memory_pages as usize).saturating_mul(65_536))
                .trap_on_grow_failure(true)
                .build(),
            files: files.clone(),
            result: Vec::new(),
            error: None,
            events: Vec::new(),
            dropped_events: 0,
            last_progress: started,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        let mut meter = Meter { limits, started, given: 0 };
        let result = self.call(function, input, &mut store, &mut meter);
        let left = store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        let result = result.and_then(|code| match code {
            0 => Ok(state.result),
            _ => Err(SliceFailure::Failed { why: state.error.unwrap_or_default() }),
        });
        SliceOutcome {
            result,
            events: state.events,
            dropped_events: state.dropped_events,
            fuel_used: meter.given.saturating_sub(left),
        }
    }

    fn call(
        &self,
        function: &WorkFunction,
        input: SliceInput<'_>,
        store: &mut Store<SliceState>,
        meter: &mut Meter,
    ) -> Result<i32, SliceFailure> {
        if function.initial_pages > u64::from(meter.limits.memory_pages) {
            return Err(SliceFailure::MemoryLimit { pages: meter.limits.memory_pages });
        }
        meter.refuel(store)?;
        let instance =
            self.linker.instantiate_and_start(&mut *store, &function.module).map_err(|e| failure(&e, meter))?;
        let exports = check::Exports::of(&instance, store, &function.entry)?;
        let mut place = |store: &mut Store<SliceState>, bytes: &[u8], what: &str| -> Result<i32, SliceFailure> {
            let len = i32::try_from(bytes.len())
                .map_err(|_| SliceFailure::Trap { why: format!("{what} of {} bytes is too large", bytes.len()) })?;
            let call = exports.alloc.call_resumable(&mut *store, len);
            let ptr = meter.drive(store, call)?;
            exports.memory.write(&mut *store, ptr as u32 as usize, bytes).map_err(|_| SliceFailure::Trap {
                why: format!("rav_alloc answered {ptr} for {what}, outside the module's memory"),
            })?;
            Ok(ptr)
        };
        let slice = place(store, input.slice, "the slice")?;
        let args = place(store, input.args, "the args")?;
        let params = (slice, input.slice.len() as i32, args, input.args.len() as i32, input.index as i64);
        let call = exports.entry.call_resumable(&mut *store, params);
        meter.drive(store, call)
    }
}

/// The fuel given so far and the clocks a slice is held to.
struct Meter {
    limits: Limits,
    started: Instant,
    given: u64,
}

impl Meter {
    /// Hands the store its next handful of fuel, or stops the slice when the budget, the
    /// deadline or the no-progress limit is spent.
    fn refuel(&mut self, store: &mut Store<SliceState>) -> Result<(), SliceFailure> {
        let left = store.get_fuel().unwrap_or(0);
        let used = self.given.saturating_sub(left);
        if used >= self.limits.fuel {
            return Err(SliceFailure::OutOfFuel { fuel: self.limits.fuel });
        }
        let now = Instant::now();
        if now.duration_since(self.started) > Duration::from_millis(self.limits.deadline_ms) {
            return Err(SliceFailure::Deadline { ms: self.limits.deadline_ms });
        }
        if now.duration_since(store.data().last_progress) > Duration::from_millis(self.limits.no_progress_ms) {
            return Err(SliceFailure::NoProgress { ms: self.limits.no_progress_ms });
        }
        let step = FUEL_STEP.min(self.limits.fuel - used);
        // Fuel metering is on for this engine, so setting it cannot fail.
        let _ = store.set_fuel(left + step);
        self.given += step;
        Ok(())
    }

    /// Runs a resumable call to its end, refuelling it a handful at a time.
    fn drive<R: wasmi::WasmResults>(
        &mut self,
        store: &mut Store<SliceState>,
        mut call: Result<TypedResumableCall<R>, wasmi::Error>,
    ) -> Result<R, SliceFailure> {
        loop {
            match call.map_err(|e| failure(&e, self))? {
                TypedResumableCall::Finished(value) => return Ok(value),
                TypedResumableCall::OutOfFuel(paused) => {
                    self.refuel(store)?;
                    call = paused.resume(&mut *store);
                }
                TypedResumableCall::HostTrap(trap) => return Err(failure(trap.host_error(), self)),
            }
        }
    }
}

/// The failure a wasmi error stands for.
fn failure(error: &wasmi::Error, meter: &Meter) -> SliceFailure {
    if let Some(Stop(failure)) = error.downcast_ref::<Stop>() {
        return failure.clone();
    }
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => SliceFailure::OutOfFuel { fuel: meter.limits.fuel },
        Some(TrapCode::GrowthOperationLimited | TrapCode::OutOfSystemMemory) => {
            SliceFailure::MemoryLimit { pages: meter.limits.memory_pages }
        }
        Some(code) => SliceFailure::Trap { why: code.to_string() },
        None => SliceFailure::Trap { why: error.to_string() },
    }
}
