//! The work-function ABI: what a WebAssembly module must export to be mapped over a job's
//! slices, the host functions it may import, the limits a slice runs under and the typed
//! reasons a slice fails. The sandbox (`ravwasm`) implements it; this module is its one
//! description.
//!
//! # A work function, version 1
//! The module exports:
//! - `memory`: its linear memory (the host reads and writes through it);
//! - `rav_alloc(len: i32) -> i32`: reserves `len` bytes and answers their address (the host
//!   copies the slice and the args there before the call);
//! - the entry named by the job (say `work`):
//!   `(slice_ptr: i32, slice_len: i32, args_ptr: i32, args_len: i32, index: i64) -> i32`,
//!   answering 0 when the slice succeeded and anything else when it failed.
//!
//! It has no start function: code runs only through the entry, where the sandbox meters it.
//!
//! It may import these functions of the module `rav`, and nothing else (no WASI, no clock, no
//! randomness: a slice is a deterministic function of its module, slice, args and files):
//! - `result(ptr: i32, len: i32)`: the slice's result bytes (at most [`Limits::max_result_bytes`];
//!   a slice that never calls it returns no bytes);
//! - `error(ptr: i32, len: i32)`: the UTF-8 reason the slice failed, when the entry answers
//!   non-zero;
//! - `progress(fraction: f32)`: how far along it is, 0 to 1; the only thing that resets the
//!   no-progress timer;
//! - `console(level: i32, ptr: i32, len: i32)`: a UTF-8 line for the requester (levels:
//!   [`ConsoleLevel`]);
//! - `emit(name_ptr: i32, name_len: i32, ptr: i32, len: i32)`: a custom event with bytes;
//! - `file_size(name_ptr: i32, name_len: i32) -> i64`: the size of one of the job's read-only
//!   files, or -1 when there is none of that name;
//! - `file_read(name_ptr: i32, name_len: i32, offset: i64, dst: i32, len: i32) -> i64`: copies
//!   up to `len` bytes of that file from `offset` to `dst`, answering how many (or -1).

use serde::{Deserialize, Serialize};

/// The version of the ABI this module describes; a job names the one its module was built for.
pub const ABI_VERSION: u32 = 1;
/// The module a work function imports its host functions from.
pub const IMPORT_MODULE: &str = "rav";
/// The host functions a work function may import, by name.
pub const HOST_FUNCTIONS: [&str; 7] = ["result", "error", "progress", "console", "emit", "file_size", "file_read"];
/// The exported memory.
pub const EXPORT_MEMORY: &str = "memory";
/// The exported allocator.
pub const EXPORT_ALLOC: &str = "rav_alloc";

/// A console line's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleLevel {
    /// 0 (and anything unknown).
    Log,
    /// 1.
    Warn,
    /// 2.
    Error,
    /// 3.
    Debug,
}

impl ConsoleLevel {
    /// The level a module passes as an integer.
    pub fn from_code(code: i32) -> ConsoleLevel {
        match code {
            1 => ConsoleLevel::Warn,
            2 => ConsoleLevel::Error,
            3 => ConsoleLevel::Debug,
            _ => ConsoleLevel::Log,
        }
    }
}

/// What one slice may spend. A job sets them; a provider caps them with its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU budget: roughly one unit per WebAssembly instruction executed.
    pub fuel: u64,
    /// Linear memory, in 64 KiB pages.
    pub memory_pages: u32,
    /// Wall-clock time for the whole slice, in milliseconds.
    pub deadline_ms: u64,
    /// The slice ends when it has not called `progress` for this long (DCP's ENOPROGRESS).
    pub no_progress_ms: u64,
    /// The largest result, in bytes.
    pub max_result_bytes: u32,
}

impl Default for Limits {
    /// A billion instructions, 256 MiB, a minute, 30 s without progress, 16 MiB of result.
    fn default() -> Limits {
        Limits {
            fuel: 1_000_000_000,
            memory_pages: 4_096,
            deadline_ms: 60_000,
            no_progress_ms: 30_000,
            max_result_bytes: 16 << 20,
        }
    }
}

impl Limits {
    /// The stricter of each of two sets of limits (a job's, capped by a provider's).
    pub fn capped_by(self, cap: Limits) -> Limits {
        Limits {
            fuel: self.fuel.min(cap.fuel),
            memory_pages: self.memory_pages.min(cap.memory_pages),
            deadline_ms: self.deadline_ms.min(cap.deadline_ms),
            no_progress_ms: self.no_progress_ms.min(cap.no_progress_ms),
            max_result_bytes: self.max_result_bytes.min(cap.max_result_bytes),
        }
    }
}

/// Why a slice failed: the module could not be used, the sandbox stopped it, or the function
/// said so. Reported as the slice's `error` event; the provider goes on with the next slice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SliceFailure {
    /// The bytes are not a valid WebAssembly module.
    #[error("the work function is not a valid WebAssembly module: {why}")]
    NotWasm {
        /// The validator's reason.
        why: String,
    },
    /// The module imports something the host does not offer.
    #[error(
        "the work function imports {module}.{name}, which the sandbox does not offer (only rav.{{result, error, progress, console, emit, file_size, file_read}})"
    )]
    ForbiddenImport {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
    },
    /// An export the ABI needs is missing or has the wrong type.
    #[error("the work function has no export {name} of the type the ABI needs ({expected})")]
    MissingExport {
        /// The export's name.
        name: String,
        /// What the ABI expects of it.
        expected: String,
    },
    /// The module has a start function (code that would run before the entry, unmetered by
    /// the slice's clocks); set-up belongs in the entry.
    #[error("the work function has a start function; the ABI runs code only through the entry")]
    StartFunction,
    /// The slice used its CPU budget.
    #[error("the slice used its CPU budget of {fuel} units")]
    OutOfFuel {
        /// The budget.
        fuel: u64,
    },
    /// The slice asked for more memory than it may have.
    #[error("the slice asked for more than its {pages} pages (64 KiB each) of memory")]
    MemoryLimit {
        /// The limit.
        pages: u32,
    },
    /// The slice ran past its wall-clock deadline.
    #[error("the slice ran past its deadline of {ms} ms")]
    Deadline {
        /// The deadline.
        ms: u64,
    },
    /// The slice did not report progress for too long.
    #[error("the slice reported no progress for {ms} ms")]
    NoProgress {
        /// The limit.
        ms: u64,
    },
    /// The slice's result is larger than the limit.
    #[error("the slice's result of {len} bytes is larger than the limit of {limit}")]
    ResultTooLarge {
        /// The result's size.
        len: u64,
        /// The limit.
        limit: u32,
    },
    /// The module trapped (unreachable, a bad memory access, a division by zero, a bad pointer
    /// passed to the host, ...).
    #[error("the work function trapped: {why}")]
    Trap {
        /// The trap.
        why: String,
    },
    /// Nobody answered the slice: every provider it went to left or missed its deadline
    /// (decided by the server, never by a sandbox).
    #[error("the slice was handed out {handouts} times and never answered (its providers left or missed its deadline)")]
    Abandoned {
        /// Hand-outs.
        handouts: u32,
    },
    /// The function answered non-zero, with the reason it gave through `rav.error`.
    #[error("the work function failed: {why}")]
    Failed {
        /// Its reason (empty when it gave none).
        why: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        expect_test::expect![[r#"{"fuel":1000000000,"memory_pages":4096,"deadline_ms":60000,"no_progress_ms":30000,"max_result_bytes":16777216}"#]]
            .assert_eq(&serde_json::to_string(&Limits::default()).unwrap());
        let failures = [
            SliceFailure::OutOfFuel { fuel: 5 },
            SliceFailure::ForbiddenImport { module: "wasi".into(), name: "fd_write".into() },
            SliceFailure::Failed { why: "no".into() },
        ];
        expect_test::expect![[r#"[{"code":"out_of_fuel","fuel":5},{"code":"forbidden_import","module":"wasi","name":"fd_write"},{"code":"failed","why":"no"}]"#]]
            .assert_eq(&serde_json::to_string(&failures).unwrap());
        assert_eq!(ConsoleLevel::from_code(2), ConsoleLevel::Error);
        assert_eq!(ConsoleLevel::from_code(99), ConsoleLevel::Log);
    }

    #[test]
    fn a_providers_cap_keeps_the_stricter_of_each_limit() {
        let job = Limits { fuel: 10, memory_pages: 1_000, ..Limits::default() };
        let cap = Limits { fuel: 100, memory_pages: 10, deadline_ms: 5, ..Limits::default() };
        assert_eq!(job.capped_by(cap), Limits { fuel: 10, memory_pages: 10, deadline_ms: 5, ..Limits::default() });
    }
}
