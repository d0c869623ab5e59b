//! The host side of one slice: the state a slice's store carries, and the `rav` functions a
//! work function may import (see `ravproto::work`), written once over the module's memory as
//! bytes so that both engines run the same code. Each copies through the memory with bounds
//! checks; a bad pointer, an oversized result or too many events stops the slice with a typed
//! failure, never the provider. `host_functions!` registers them in an engine's linker.

use crate::{JobFiles, SliceEvent};
use ravproto::work::{ConsoleLevel, Limits, SliceFailure};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events one slice may send; past this they are counted, not kept.
pub(crate) const MAX_EVENTS: usize = 1_000;
/// The longest console line or event name, in bytes; longer ones are cut.
const MAX_TEXT: usize = 4_096;
/// The largest custom event's bytes.
const MAX_EMIT: usize = 64 << 10;
/// The most elements a slice's tables may hold: a table is host memory the page limit does not
/// count, so a module declaring a huge one is stopped before it is allocated.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// What a slice's store holds, whatever the engine.
pub(crate) struct SliceState {
    pub(crate) limits: Limits,
    pub(crate) files: Arc<JobFiles>,
    pub(crate) result: Vec<u8>,
    pub(crate) error: Option<String>,
    pub(crate) events: Vec<SliceEvent>,
    pub(crate) dropped_events: usize,
    pub(crate) started: Instant,
    pub(crate) last_progress: Instant,
}

impl SliceState {
    pub(crate) fn new(limits: Limits, files: &Arc<JobFiles>) -> SliceState {
        let started = Instant::now();
        SliceState {
            limits,
            files: files.clone(),
            result: Vec::new(),
            error: None,
            events: Vec::new(),
            dropped_events: 0,
            started,
            last_progress: started,
        }
    }

    /// The deadline or the no-progress limit, when one has passed.
    pub(crate) fn out_of_time(&self) -> Option<SliceFailure> {
        let now = Instant::now();
        if now.duration_since(self.started) > Duration::from_millis(self.limits.deadline_ms) {
            return Some(SliceFailure::Deadline { ms: self.limits.deadline_ms });
        }
        if now.duration_since(self.last_progress) > Duration::from_millis(self.limits.no_progress_ms) {
            return Some(SliceFailure::NoProgress { ms: self.limits.no_progress_ms });
        }
        None
    }
}

/// A store's data: the slice's state and the engine's resource limiter.
pub(crate) struct Slot<L> {
    pub(crate) state: SliceState,
    pub(crate) limiter: L,
}

/// A host function's reason to stop the slice; the sandbox turns it back into the failure.
#[derive(Debug)]
pub(crate) struct Stop(pub(crate) SliceFailure);

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Stop {}

fn bad_pointer(what: &str) -> SliceFailure {
    SliceFailure::Trap { why: format!("{what} points outside the module's memory") }
}

/// `len` bytes at `ptr` of the module's memory.
fn read<'m>(memory: &'m [u8], ptr: i32, len: i32, what: &str) -> Result<&'m [u8], SliceFailure> {
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    memory.get(start..start.saturating_add(len)).ok_or_else(|| bad_pointer(what))
}

fn text(memory: &[u8], ptr: i32, len: i32, what: &str) -> Result<String, SliceFailure> {
    let bytes = read(memory, ptr, len.clamp(0, MAX_TEXT as i32), what)?;
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn push(state: &mut SliceState, event: SliceEvent) {
    if state.events.len() < MAX_EVENTS {
        state.events.push(event);
    } else {
        state.dropped_events += 1;
    }
}

/// `rav.result`: the slice's result bytes, at most the limit.
pub(crate) fn result(memory: &mut [u8], state: &mut SliceState, ptr: i32, len: i32) -> Result<(), SliceFailure> {
    let limit = state.limits.max_result_bytes;
    if len as u32 > limit {
        return Err(SliceFailure::ResultTooLarge { len: u64::from(len as u32), limit });
    }
    state.result = read(memory, ptr, len, "the result")?.to_vec();
    Ok(())
}

/// `rav.error`: the reason the slice gives for failing.
pub(crate) fn error(memory: &mut [u8], state: &mut SliceState, ptr: i32, len: i32) -> Result<(), SliceFailure> {
    state.error = Some(text(memory, ptr, len, "the error")?);
    Ok(())
}

/// `rav.progress`: a fraction done, which also resets the no-progress clock.
pub(crate) fn progress(_: &mut [u8], state: &mut SliceState, fraction: f32) -> Result<(), SliceFailure> {
    state.last_progress = Instant::now();
    let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    push(state, SliceEvent::Progress(fraction));
    Ok(())
}

/// `rav.console`: a line at a level.
pub(crate) fn console(
    memory: &mut [u8],
    state: &mut SliceState,
    level: i32,
    ptr: i32,
    len: i32,
) -> Result<(), SliceFailure> {
    let line = text(memory, ptr, len, "a console line")?;
    push(state, SliceEvent::Console { level: ConsoleLevel::from_code(level), text: line });
    Ok(())
}

/// `rav.emit`: a custom event, its name and bytes.
pub(crate) fn emit(
    memory: &mut [u8],
    state: &mut SliceState,
    name: (i32, i32),
    ptr: i32,
    len: i32,
) -> Result<(), SliceFailure> {
    let name = text(memory, name.0, name.1, "an event's name")?;
    if len as u32 as usize > MAX_EMIT {
        return Err(SliceFailure::Trap {
            why: format!("a custom event of {} bytes is larger than {MAX_EMIT}", len as u32),
        });
    }
    let bytes = read(memory, ptr, len, "an event's bytes")?.to_vec();
    push(state, SliceEvent::Custom { name, bytes });
    Ok(())
}

/// `rav.file_size`: a job file's length, or -1 when there is none of that name.
pub(crate) fn file_size(memory: &mut [u8], state: &mut SliceState, name: (i32, i32)) -> Result<i64, SliceFailure> {
    let name = text(memory, name.0, name.1, "a file's name")?;
    Ok(state.files.get(&name).map_or(-1, |file| file.len() as i64))
}

/// `rav.file_read`: up to `len` bytes of a job file from `offset` into memory at `dst`;
/// answers how many were copied, or -1 when there is no file of that name.
pub(crate) fn file_read(
    memory: &mut [u8],
    state: &mut SliceState,
    name: (i32, i32),
    offset: i64,
    dst: i32,
    len: i32,
) -> Result<i64, SliceFailure> {
    let name = text(memory, name.0, name.1, "a file's name")?;
    let Some(file) = state.files.get(&name) else { return Ok(-1) };
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(file.len());
    let end = start.saturating_add(len as u32 as usize).min(file.len());
    let dst = dst as u32 as usize;
    let target = memory.get_mut(dst..dst.saturating_add(end - start)).ok_or_else(|| bad_pointer("a file read"))?;
    target.copy_from_slice(&file[start..end]);
    Ok((end - start) as i64)
}

/// Registers the `rav` functions in `$linker`, a linker of `$engine` (wasmi or wasmtime, whose
/// linker, caller and memory APIs have the same shape) over stores of `Data` (a [`Slot`]); the
/// calling module must define `Data` and `stop(SliceFailure) -> $engine::Error`. A macro rather
/// than a trait because the closures' types are the engines' own.
macro_rules! host_functions {
    ($engine:ident, $linker:expr) => {{
        use ravproto::work::{EXPORT_MEMORY, IMPORT_MODULE, SliceFailure};
        use $crate::host;
        type Caller<'a> = $engine::Caller<'a, Data>;

        /// Runs `op` over the caller's memory and slice state; a failure stops the slice.
        fn with<R>(
            caller: &mut Caller<'_>,
            op: impl FnOnce(&mut [u8], &mut host::SliceState) -> Result<R, SliceFailure>,
        ) -> Result<R, $engine::Error> {
            let Some($engine::Extern::Memory(memory)) = caller.get_export(EXPORT_MEMORY) else {
                return Err(stop(SliceFailure::Trap { why: "the module exports no memory".to_string() }));
            };
            let (bytes, data) = memory.data_and_store_mut(caller);
            op(bytes, &mut data.state).map_err(stop)
        }

        let linker = $linker;
        let m = IMPORT_MODULE;
        linker.func_wrap(m, "result", |mut c: Caller<'_>, p: i32, l: i32| {
            with(&mut c, |m, s| host::result(m, s, p, l))
        })?;
        linker
            .func_wrap(m, "error", |mut c: Caller<'_>, p: i32, l: i32| with(&mut c, |m, s| host::error(m, s, p, l)))?;
        linker.func_wrap(m, "progress", |mut c: Caller<'_>, f: f32| with(&mut c, |m, s| host::progress(m, s, f)))?;
        linker.func_wrap(m, "console", |mut c: Caller<'_>, level: i32, p: i32, l: i32| {
            with(&mut c, |m, s| host::console(m, s, level, p, l))
        })?;
        linker.func_wrap(m, "emit", |mut c: Caller<'_>, np: i32, nl: i32, p: i32, l: i32| {
            with(&mut c, |m, s| host::emit(m, s, (np, nl), p, l))
        })?;
        linker.func_wrap(m, "file_size", |mut c: Caller<'_>, np: i32, nl: i32| {
            with(&mut c, |m, s| host::file_size(m, s, (np, nl)))
        })?;
        linker.func_wrap(m, "file_read", |mut c: Caller<'_>, np: i32, nl: i32, offset: i64, dst: i32, len: i32| {
            with(&mut c, |m, s| host::file_read(m, s, (np, nl), offset, dst, len))
        })?;
    }};
}
pub(crate) use host_functions;
