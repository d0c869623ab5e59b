//! What a module must be before it runs (the ABI of `ravproto::work`): imports only the host's
//! `rav` functions with their types, and exports the memory, the allocator and the entry.
//! Checked once when a work function is compiled, so that a slice never finds out halfway.

use crate::host::SliceState;
use ravproto::work::{EXPORT_ALLOC, EXPORT_MEMORY, IMPORT_MODULE, SliceFailure};
use wasmi::{ExternType, FuncType, Instance, Memory, Module, Store, TypedFunc, ValType};

/// The entry's parameters: the slice and the args (pointer, length) and the slice's number.
type EntryParams = (i32, i32, i32, i32, i64);

/// The host functions' types, by name.
fn host_type(name: &str) -> Option<FuncType> {
    use ValType::{F32, I32, I64};
    let (params, results): (&[ValType], &[ValType]) = match name {
        "result" | "error" => (&[I32, I32], &[]),
        "progress" => (&[F32], &[]),
        "console" => (&[I32, I32, I32], &[]),
        "emit" => (&[I32, I32, I32, I32], &[]),
        "file_size" => (&[I32, I32], &[I64]),
        "file_read" => (&[I32, I32, I64, I32, I32], &[I64]),
        _ => return None,
    };
    Some(FuncType::new(params.iter().copied(), results.iter().copied()))
}

/// The module has no start section (`bytes` already passed validation).
pub(crate) fn no_start(bytes: &[u8]) -> Result<(), SliceFailure> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(wasmparser::Payload::StartSection { .. }) => return Err(SliceFailure::StartFunction),
            // The code section is the last that may precede nothing but data and custom ones.
            Ok(wasmparser::Payload::CodeSectionStart { .. }) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Every import is one of the host's functions, with its type.
pub(crate) fn imports(module: &Module) -> Result<(), SliceFailure> {
    for import in module.imports() {
        let forbidden =
            || SliceFailure::ForbiddenImport { module: import.module().to_string(), name: import.name().to_string() };
        let ExternType::Func(ty) = import.ty() else { return Err(forbidden()) };
        if import.module() != IMPORT_MODULE || host_type(import.name()).as_ref() != Some(ty) {
            return Err(forbidden());
        }
    }
    Ok(())
}

fn missing(name: &str, expected: &str) -> SliceFailure {
    SliceFailure::MissingExport { name: name.to_string(), expected: expected.to_string() }
}

/// The memory, the allocator and the entry are exported with the ABI's types; answers the
/// memory's initial size in pages.
pub(crate) fn exports(module: &Module, entry: &str) -> Result<u64, SliceFailure> {
    let memory = match module.get_export(EXPORT_MEMORY) {
        Some(ExternType::Memory(memory)) if !memory.is_64() => memory,
        _ => return Err(missing(EXPORT_MEMORY, "a 32-bit memory")),
    };
    let alloc = FuncType::new([ValType::I32], [ValType::I32]);
    if module.get_export(EXPORT_ALLOC).as_ref().and_then(ExternType::func) != Some(&alloc) {
        return Err(missing(EXPORT_ALLOC, "func (param i32) (result i32)"));
    }
    use ValType::{I32, I64};
    let entry_type = FuncType::new([I32, I32, I32, I32, I64], [I32]);
    if module.get_export(entry).as_ref().and_then(ExternType::func) != Some(&entry_type) {
        return Err(missing(entry, "func (param i32 i32 i32 i32 i64) (result i32)"));
    }
    Ok(memory.minimum())
}

/// An instance's exports the sandbox calls.
pub(crate) struct Exports {
    pub(crate) memory: Memory,
    pub(crate) alloc: TypedFunc<i32, i32>,
    pub(crate) entry: TypedFunc<EntryParams, i32>,
}

impl Exports {
    /// The exports of an instance of a module that passed [`exports`].
    pub(crate) fn of(instance: &Instance, store: &Store<SliceState>, entry: &str) -> Result<Exports, SliceFailure> {
        let memory = instance.get_memory(store, EXPORT_MEMORY).ok_or_else(|| missing(EXPORT_MEMORY, "a memory"))?;
        let alloc = instance
            .get_typed_func(store, EXPORT_ALLOC)
            .map_err(|_| missing(EXPORT_ALLOC, "func (param i32) (result i32)"))?;
        let entry = instance
            .get_typed_func(store, entry)
            .map_err(|_| missing(entry, "func (param i32 i32 i32 i32 i64) (result i32)"))?;
        Ok(Exports { memory, alloc, entry })
    }
}
