//! The host side of one slice: the state a slice's store carries, and the `rav` functions a
//! work function may import (see `ravproto::work`). Each copies through the module's memory
//! with bounds checks; a bad pointer, an oversized result or too many events stops the slice
//! with a typed failure, never the provider.

use crate::{JobFiles, SliceEvent};
use ravproto::work::{ConsoleLevel, IMPORT_MODULE, Limits, SliceFailure};
use std::sync::Arc;
use std::time::Instant;
use wasmi::{Caller, Extern, Linker, StoreLimits};

/// Events one slice may send; past this they are counted, not kept.
pub(crate) const MAX_EVENTS: usize = 1_000;
/// The longest console line or event name, in bytes; longer ones are cut.
const MAX_TEXT: usize = 4_096;
/// The largest custom event's bytes.
const MAX_EMIT: usize = 64 << 10;

/// What a slice's store holds.
pub(crate) struct SliceState {
    pub(crate) limits: Limits,
    pub(crate) memory: StoreLimits,
    pub(crate) files: Arc<JobFiles>,
    pub(crate) result: Vec<u8>,
    pub(crate) error: Option<String>,
    pub(crate) events: Vec<SliceEvent>,
    pub(crate) dropped_events: usize,
    pub(crate) last_progress: Instant,
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

impl wasmi::errors::HostError for Stop {}

fn stop(failure: SliceFailure) -> wasmi::Error {
    wasmi::Error::host(Stop(failure))
}

fn bad_pointer(what: &str) -> wasmi::Error {
    stop(SliceFailure::Trap { why: format!("{what} points outside the module's memory") })
}

/// `len` bytes at `ptr` of the caller's exported memory.
fn read(caller: &Caller<'_, SliceState>, ptr: i32, len: i32, what: &str) -> Result<Vec<u8>, wasmi::Error> {
    let Some(Extern::Memory(memory)) = caller.get_export(ravproto::work::EXPORT_MEMORY) else {
        return Err(bad_pointer(what));
    };
    let data = memory.data(caller);
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    data.get(start..start.saturating_add(len)).map(<[u8]>::to_vec).ok_or_else(|| bad_pointer(what))
}

fn text(caller: &Caller<'_, SliceState>, ptr: i32, len: i32, what: &str) -> Result<String, wasmi::Error> {
    let bytes = read(caller, ptr, len.clamp(0, MAX_TEXT as i32), what)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn push(state: &mut SliceState, event: SliceEvent) {
    if state.events.len() < MAX_EVENTS {
        state.events.push(event);
    } else {
        state.dropped_events += 1;
    }
}

/// The `rav` functions, registered once for every slice of a sandbox.
pub(crate) fn linker(engine: &wasmi::Engine) -> Linker<SliceState> {
    let mut linker = Linker::new(engine);
    // Registering seven distinct names in an empty linker cannot clash.
    register(&mut linker).expect("the host functions register in an empty linker");
    linker
}

fn register(linker: &mut Linker<SliceState>) -> Result<(), wasmi::errors::LinkerError> {
    let m = IMPORT_MODULE;
    linker.func_wrap(m, "result", |caller: Caller<'_, SliceState>, ptr: i32, len: i32| {
        let limit = caller.data().limits.max_result_bytes;
        if len as u32 > limit {
            return Err(stop(SliceFailure::ResultTooLarge { len: u64::from(len as u32), limit }));
        }
        let bytes = read(&caller, ptr, len, "the result")?;
        let mut caller = caller;
        caller.data_mut().result = bytes;
        Ok(())
    })?;
    linker.func_wrap(m, "error", |mut caller: Caller<'_, SliceState>, ptr: i32, len: i32| {
        let why = text(&caller, ptr, len, "the error")?;
        caller.data_mut().error = Some(why);
        Ok(())
    })?;
    linker.func_wrap(m, "progress", |mut caller: Caller<'_, SliceState>, fraction: f32| {
        let state = caller.data_mut();
        state.last_progress = Instant::now();
        let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
        push(state, SliceEvent::Progress(fraction));
    })?;
    linker.func_wrap(m, "console", |mut caller: Caller<'_, SliceState>, level: i32, ptr: i32, len: i32| {
        let line = text(&caller, ptr, len, "a console line")?;
        push(caller.data_mut(), SliceEvent::Console { level: ConsoleLevel::from_code(level), text: line });
        Ok(())
    })?;
    linker.func_wrap(
        m,
        "emit",
        |mut caller: Caller<'_, SliceState>, name_ptr: i32, name_len: i32, ptr: i32, len: i32| {
            let name = text(&caller, name_ptr, name_len, "an event's name")?;
            if len as u32 as usize > MAX_EMIT {
                return Err(stop(SliceFailure::Trap {
                    why: format!("a custom event of {} bytes is larger than {MAX_EMIT}", len as u32),
                }));
            }
            let bytes = read(&caller, ptr, len, "an event's bytes")?;
            push(caller.data_mut(), SliceEvent::Custom { name, bytes });
            Ok(())
        },
    )?;
    linker.func_wrap(m, "file_size", |caller: Caller<'_, SliceState>, name_ptr: i32, name_len: i32| {
        let name = text(&caller, name_ptr, name_len, "a file's name")?;
        Ok(caller.data().files.get(&name).map_or(-1, |file| file.len() as i64))
    })?;
    linker.func_wrap(
        m,
        "file_read",
        |mut caller: Caller<'_, SliceState>, name_ptr: i32, name_len: i32, offset: i64, dst: i32, len: i32| {
            let name = text(&caller, name_ptr, name_len, "a file's name")?;
            let files = caller.data().files.clone();
            let Some(file) = files.get(&name) else { return Ok(-1) };
            let start = usize::try_from(offset).unwrap_or(usize::MAX).min(file.len());
            let end = start.saturating_add(len as u32 as usize).min(file.len());
            let Some(Extern::Memory(memory)) = caller.get_export(ravproto::work::EXPORT_MEMORY) else {
                return Err(bad_pointer("a file read"));
            };
            let dst = dst as u32 as usize;
            let target = memory
                .data_mut(&mut caller)
                .get_mut(dst..dst.saturating_add(end - start))
                .ok_or_else(|| bad_pointer("a file read"))?;
            target.copy_from_slice(&file[start..end]);
            Ok((end - start) as i64)
        },
    )?;
    Ok(())
}
