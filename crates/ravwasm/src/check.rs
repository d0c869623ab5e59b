//! What a module must be before it runs (the ABI of `ravproto::work`): no start function,
//! imports only the host's `rav` functions with their types, and exports the memory, the
//! allocator and the entry. Checked once when a work function is compiled, so that a slice
//! never finds out halfway.
//!
//! The checks read the module's sections with wasmparser after the engine has validated it,
//! so that both engines (wasmi, and wasmtime behind its feature) share one reading of the ABI
//! instead of each asking its own module API.

use ravproto::work::{EXPORT_ALLOC, EXPORT_MEMORY, IMPORT_MODULE, SliceFailure};
use std::collections::HashMap;
use wasmparser::{ExternalKind, FuncType, MemoryType, Parser, Payload, TypeRef, ValType};

/// The entry's parameters: the slice and the args (pointer, length) and the slice's number.
pub(crate) type EntryParams = (i32, i32, i32, i32, i64);

const ALLOC_TYPE: &str = "func (param i32) (result i32)";
const ENTRY_TYPE: &str = "func (param i32 i32 i32 i32 i64) (result i32)";

/// The host functions' types, by name.
fn host_type(name: &str) -> Option<(&'static [ValType], &'static [ValType])> {
    use ValType::{F32, I32, I64};
    Some(match name {
        "result" | "error" => (&[I32, I32], &[]),
        "progress" => (&[F32], &[]),
        "console" => (&[I32, I32, I32], &[]),
        "emit" => (&[I32, I32, I32, I32], &[]),
        "file_size" => (&[I32, I32], &[I64]),
        "file_read" => (&[I32, I32, I64, I32, I32], &[I64]),
        _ => return None,
    })
}

fn is(ty: &FuncType, params: &[ValType], results: &[ValType]) -> bool {
    ty.params() == params && ty.results() == results
}

fn missing(name: &str, expected: &str) -> SliceFailure {
    SliceFailure::MissingExport { name: name.to_string(), expected: expected.to_string() }
}

fn unreadable(error: wasmparser::BinaryReaderError) -> SliceFailure {
    SliceFailure::NotWasm { why: error.to_string() }
}

/// What the checks need of a module's sections.
#[derive(Default)]
struct Sections {
    types: Vec<FuncType>,
    /// Each function's type index, imported functions first (the function index space).
    functions: Vec<u32>,
    memories: Vec<MemoryType>,
    exports: HashMap<String, (ExternalKind, u32)>,
}

impl Sections {
    fn func_type(&self, index: u32) -> Option<&FuncType> {
        self.types.get(*self.functions.get(index as usize)? as usize)
    }

    fn export_type(&self, name: &str) -> Option<&FuncType> {
        match self.exports.get(name)? {
            (ExternalKind::Func, index) => self.func_type(*index),
            _ => None,
        }
    }
}

/// Checks a module the engine has already validated and answers its memory's initial size in
/// pages (more than a slice's limit fails before the slice starts).
pub(crate) fn module(bytes: &[u8], entry: &str) -> Result<u64, SliceFailure> {
    let mut sections = Sections::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(unreadable)? {
            Payload::StartSection { .. } => return Err(SliceFailure::StartFunction),
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    sections.types.push(ty.map_err(unreadable)?);
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(unreadable)?;
                    let forbidden = || SliceFailure::ForbiddenImport {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                    };
                    let TypeRef::Func(index) = import.ty else { return Err(forbidden()) };
                    let wanted = host_type(import.name).filter(|_| import.module == IMPORT_MODULE);
                    match (wanted, sections.types.get(index as usize)) {
                        (Some((params, results)), Some(ty)) if is(ty, params, results) => {}
                        _ => return Err(forbidden()),
                    }
                    sections.functions.push(index);
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    sections.functions.push(index.map_err(unreadable)?);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    sections.memories.push(memory.map_err(unreadable)?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(unreadable)?;
                    sections.exports.insert(export.name.to_string(), (export.kind, export.index));
                }
            }
            // Nothing after the code section changes what is checked here.
            Payload::CodeSectionStart { .. } => break,
            _ => {}
        }
    }
    let memory = match sections.exports.get(EXPORT_MEMORY) {
        Some((ExternalKind::Memory, index)) => sections.memories.get(*index as usize).filter(|m| !m.memory64),
        _ => None,
    };
    let memory = memory.ok_or_else(|| missing(EXPORT_MEMORY, "a 32-bit memory"))?;
    use ValType::{I32, I64};
    if !sections.export_type(EXPORT_ALLOC).is_some_and(|ty| is(ty, &[I32], &[I32])) {
        return Err(missing(EXPORT_ALLOC, ALLOC_TYPE));
    }
    if !sections.export_type(entry).is_some_and(|ty| is(ty, &[I32, I32, I32, I32, I64], &[I32])) {
        return Err(missing(entry, ENTRY_TYPE));
    }
    Ok(memory.initial)
}

/// The failure of an instance that lacks an export [`module`] found (it cannot, but the
/// engines answer an option).
pub(crate) fn lost_export(name: &str) -> SliceFailure {
    let expected = match name {
        EXPORT_MEMORY => "a memory",
        EXPORT_ALLOC => ALLOC_TYPE,
        _ => ENTRY_TYPE,
    };
    missing(name, expected)
}
