//! The sandbox that runs a job's work function on one slice at a time: a WebAssembly module
//! with no imports but the host's `rav` functions, metered by fuel, bounded in memory, stopped
//! at a deadline or after too long without progress. The ABI is `ravproto::work`'s.
//!
//! Two engines run the same ABI with the same host functions and checks ([`EngineKind`]):
//! wasmi, an interpreter with a small build, always there; and wasmtime (Cranelift, native
//! code, about 3x faster on compute-heavy slices; the README's jobs section measures both),
//! behind the `wasmtime` feature. [`Sandbox::new`] takes the fastest one built in. A
//! [`WorkFunction`] is validated and compiled once and run on many slices; each slice gets a
//! fresh instance, so nothing a slice leaves in memory reaches the next, and a slice is a
//! function of its inputs alone.
//!
//! The two engines count fuel differently (wasmi by its own instructions, wasmtime one unit per
//! WebAssembly operator), so a slice run close to its budget may end `out_of_fuel` on one and not
//! on the other; results that both finish are the same.
//!
//! Every way a module can misbehave (not wasm, a foreign import, a missing export, a trap, an
//! exhausted budget, an oversized result) is a [`SliceFailure`] for that slice; none panics.

mod check;
mod host;
mod wasmi_engine;
#[cfg(feature = "wasmtime")]
mod wasmtime_engine;

use host::SliceState;
pub use ravproto::work::{ConsoleLevel, Limits, SliceFailure};
use std::collections::HashMap;
use std::sync::Arc;

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

/// The WebAssembly engines a sandbox can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// wasmi, an interpreter: always built.
    Wasmi,
    /// wasmtime, compiled with Cranelift: built with the `wasmtime` feature.
    Wasmtime,
}

impl EngineKind {
    /// The engines this build has, the fastest first.
    pub fn built() -> &'static [EngineKind] {
        if cfg!(feature = "wasmtime") { &[EngineKind::Wasmtime, EngineKind::Wasmi] } else { &[EngineKind::Wasmi] }
    }

    /// The engine's name, as `--engine` takes it.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Wasmi => "wasmi",
            EngineKind::Wasmtime => "wasmtime",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = EngineError;

    fn from_str(name: &str) -> Result<EngineKind, EngineError> {
        match name {
            "wasmi" => Ok(EngineKind::Wasmi),
            "wasmtime" => Ok(EngineKind::Wasmtime),
            _ => Err(EngineError::Unknown(name.to_string())),
        }
    }
}

/// Why a sandbox of a given engine cannot be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// No engine has this name.
    #[error("there is no WebAssembly engine called `{0}`: the engines are wasmi and wasmtime")]
    Unknown(String),
    /// The engine is not in this build.
    #[error("this build has no {0} engine (it is built with the `wasmtime` feature)")]
    NotBuilt(EngineKind),
    /// The engine refused to start here.
    #[error("the {kind} engine did not start: {why}")]
    Failed {
        /// The engine.
        kind: EngineKind,
        /// Its reason.
        why: String,
    },
}

/// The engine behind a sandbox.
#[derive(Clone)]
enum Backend {
    Wasmi(wasmi_engine::Wasmi),
    #[cfg(feature = "wasmtime")]
    Wasmtime(wasmtime_engine::Wasmtime),
}

/// A module compiled by one engine.
#[derive(Clone, Debug)]
enum Compiled {
    Wasmi(wasmi_engine::Compiled),
    #[cfg(feature = "wasmtime")]
    Wasmtime(wasmtime_engine::Compiled),
}

/// An engine and the host functions, shared by every work function and slice.
#[derive(Clone)]
pub struct Sandbox {
    backend: Backend,
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox::new()
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sandbox({})", self.engine())
    }
}

/// A work function, validated and compiled, ready for many slices.
#[derive(Clone, Debug)]
pub struct WorkFunction {
    compiled: Compiled,
    entry: String,
    /// The memory's declared size, in pages: more than a slice's limit fails before it starts.
    initial_pages: u64,
}

/// What an engine's run of one slice gave, before the result is read.
pub(crate) struct Run {
    /// The entry's return code, or why it did not return.
    pub(crate) code: Result<i32, SliceFailure>,
    pub(crate) state: SliceState,
    pub(crate) fuel_used: u64,
}

impl Sandbox {
    /// A sandbox on the fastest engine built in (wasmtime with the `wasmtime` feature, unless
    /// it fails to start, then wasmi).
    pub fn new() -> Sandbox {
        EngineKind::built()
            .iter()
            .find_map(|kind| Sandbox::with_engine(*kind).ok())
            .unwrap_or_else(|| Sandbox { backend: Backend::Wasmi(wasmi_engine::Wasmi::new()) })
    }

    /// A sandbox on `kind`.
    pub fn with_engine(kind: EngineKind) -> Result<Sandbox, EngineError> {
        let backend = match kind {
            EngineKind::Wasmi => Backend::Wasmi(wasmi_engine::Wasmi::new()),
            #[cfg(feature = "wasmtime")]
            EngineKind::Wasmtime => {
                Backend::Wasmtime(wasmtime_engine::Wasmtime::shared().map_err(|why| EngineError::Failed { kind, why })?)
            }
            #[cfg(not(feature = "wasmtime"))]
            EngineKind::Wasmtime => return Err(EngineError::NotBuilt(kind)),
        };
        Ok(Sandbox { backend })
    }

    /// The engine this sandbox runs on.
    pub fn engine(&self) -> EngineKind {
        match self.backend {
            Backend::Wasmi(_) => EngineKind::Wasmi,
            #[cfg(feature = "wasmtime")]
            Backend::Wasmtime(_) => EngineKind::Wasmtime,
        }
    }

    /// Validates and compiles `bytes` as a work function whose entry is `entry`: it must be
    /// WebAssembly without a start function, import only the host's functions with their
    /// types, and export the memory, the allocator and the entry with the ABI's types.
    pub fn compile(&self, bytes: &[u8], entry: &str) -> Result<WorkFunction, SliceFailure> {
        // The engine validates first, so the checks read a well-formed module.
        let (compiled, initial_pages) = match &self.backend {
            Backend::Wasmi(engine) => {
                let compiled = engine.compile(bytes)?;
                (Compiled::Wasmi(compiled), check::module(bytes, entry)?)
            }
            #[cfg(feature = "wasmtime")]
            Backend::Wasmtime(engine) => {
                // Validated without compiling, so that a module with a foreign import is refused
                // by name before wasmtime links it.
                engine.validate(bytes)?;
                let initial_pages = check::module(bytes, entry)?;
                (Compiled::Wasmtime(engine.compile(bytes)?), initial_pages)
            }
        };
        Ok(WorkFunction { compiled, entry: entry.to_string(), initial_pages })
    }

    /// Runs one slice of `function` in a fresh instance under `limits`.
    pub fn run(
        &self,
        function: &WorkFunction,
        input: SliceInput<'_>,
        files: &Arc<JobFiles>,
        limits: Limits,
    ) -> SliceOutcome {
        let state = SliceState::new(limits, files);
        let run = if function.initial_pages > u64::from(limits.memory_pages) {
            Run { code: Err(SliceFailure::MemoryLimit { pages: limits.memory_pages }), state, fuel_used: 0 }
        } else {
            match (&self.backend, &function.compiled) {
                (Backend::Wasmi(engine), Compiled::Wasmi(compiled)) => {
                    engine.run(compiled, &function.entry, input, state)
                }
                #[cfg(feature = "wasmtime")]
                (Backend::Wasmtime(engine), Compiled::Wasmtime(compiled)) => {
                    engine.run(compiled, &function.entry, input, state)
                }
                #[cfg(feature = "wasmtime")]
                _ => Run {
                    code: Err(SliceFailure::Trap {
                        why: "the work function was compiled by another engine".to_string(),
                    }),
                    state,
                    fuel_used: 0,
                },
            }
        };
        let Run { code, state, fuel_used } = run;
        let result = code.and_then(|code| match code {
            0 => Ok(state.result),
            _ => Err(SliceFailure::Failed { why: state.error.unwrap_or_default() }),
        });
        SliceOutcome { result, events: state.events, dropped_events: state.dropped_events, fuel_used }
    }
}

/// A length as the ABI's i32, or the failure of an input too large to pass.
pub(crate) fn length(bytes: &[u8], what: &str) -> Result<i32, SliceFailure> {
    i32::try_from(bytes.len())
        .map_err(|_| SliceFailure::Trap { why: format!("{what} of {} bytes is too large", bytes.len()) })
}

/// The failure of an allocator that answered a place outside the memory.
pub(crate) fn outside(ptr: i32, what: &str) -> SliceFailure {
    SliceFailure::Trap { why: format!("rav_alloc answered {ptr} for {what}, outside the module's memory") }
}

/// The entry's arguments: the slice and the args where the allocator placed them, and the
/// slice's number.
pub(crate) fn params(slice: i32, args: i32, input: SliceInput<'_>) -> check::EntryParams {
    (slice, input.slice.len() as i32, args, input.args.len() as i32, input.index as i64)
}
