//! The wasmi engine, an interpreter: a small build, fuel metering, and calls that run out of
//! fuel can be resumed, which is how a slice's clocks are checked without a thread: fuel is
//! handed out a handful at a time and the deadline and no-progress limit are looked at between
//! two handfuls.

use crate::check::{self, EntryParams};
use crate::host::{self, MAX_TABLE_ELEMENTS, SliceState, Slot, Stop};
use crate::{Run, SliceInput};
use ravproto::work::{EXPORT_ALLOC, EXPORT_MEMORY, SliceFailure};
use std::sync::Arc;
use wasmi::{
    Config, Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder, TrapCode, TypedFunc, TypedResumableCall,
};

/// Fuel handed to a slice at a time: between two handfuls the sandbox looks at the clock.
/// About 10 ms of interpretation here, so a deadline is kept to within that.
const FUEL_STEP: u64 = 20_000_000;

type Data = Slot<StoreLimits>;

impl wasmi::errors::HostError for Stop {}

fn stop(failure: SliceFailure) -> wasmi::Error {
    wasmi::Error::host(Stop(failure))
}

/// The engine and its linker of the host functions, shared by every work function and slice.
#[derive(Clone)]
pub(crate) struct Wasmi {
    engine: Engine,
    linker: Arc<Linker<Data>>,
}

/// A module compiled by [`Wasmi`].
#[derive(Clone, Debug)]
pub(crate) struct Compiled(Module);

impl Wasmi {
    pub(crate) fn new() -> Wasmi {
        let mut config = Config::default();
        config.consume_fuel(true);
        let engine = Engine::new(&config);
        let mut linker = Linker::new(&engine);
        // Registering seven distinct names in an empty linker cannot clash.
        register(&mut linker).expect("the host functions register in an empty linker");
        Wasmi { engine, linker: Arc::new(linker) }
    }

    pub(crate) fn compile(&self, bytes: &[u8]) -> Result<Compiled, SliceFailure> {
        Module::new(&self.engine, bytes).map(Compiled).map_err(|e| SliceFailure::NotWasm { why: e.to_string() })
    }

    /// Runs one slice in a fresh instance; the memory's initial size is already checked.
    pub(crate) fn run(&self, compiled: &Compiled, entry: &str, input: SliceInput<'_>, state: SliceState) -> Run {
        let limits = state.limits;
        let limiter = StoreLimitsBuilder::new()
            .memory_size((limits.memory_pages as usize).saturating_mul(65_536))
            .table_elements(MAX_TABLE_ELEMENTS)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.engine, Slot { state, limiter });
        store.limiter(|data| &mut data.limiter);
        let mut meter = Meter { given: 0 };
        let code = self.call(compiled, entry, input, &mut store, &mut meter);
        let left = store.get_fuel().unwrap_or(0);
        Run { code, state: store.into_data().state, fuel_used: meter.given.saturating_sub(left) }
    }

    fn call(
        &self,
        compiled: &Compiled,
        entry: &str,
        input: SliceInput<'_>,
        store: &mut Store<Data>,
        meter: &mut Meter,
    ) -> Result<i32, SliceFailure> {
        meter.refuel(store)?;
        let instance = self.linker.instantiate_and_start(&mut *store, &compiled.0).map_err(|e| failure(&e, store))?;
        let memory = instance.get_memory(&*store, EXPORT_MEMORY).ok_or_else(|| check::lost_export(EXPORT_MEMORY))?;
        let alloc: TypedFunc<i32, i32> =
            instance.get_typed_func(&*store, EXPORT_ALLOC).map_err(|_| check::lost_export(EXPORT_ALLOC))?;
        let entry: TypedFunc<EntryParams, i32> =
            instance.get_typed_func(&*store, entry).map_err(|_| check::lost_export(entry))?;
        let mut place = |store: &mut Store<Data>, bytes: &[u8], what: &str| -> Result<i32, SliceFailure> {
            let len = crate::length(bytes, what)?;
            let call = alloc.call_resumable(&mut *store, len);
            let ptr = meter.drive(store, call)?;
            memory.write(&mut *store, ptr as u32 as usize, bytes).map_err(|_| crate::outside(ptr, what))?;
            Ok(ptr)
        };
        let slice = place(store, input.slice, "the slice")?;
        let args = place(store, input.args, "the args")?;
        let call = entry.call_resumable(&mut *store, crate::params(slice, args, input));
        meter.drive(store, call)
    }
}

fn register(linker: &mut Linker<Data>) -> Result<(), wasmi::errors::LinkerError> {
    host::host_functions!(wasmi, linker);
    Ok(())
}

/// The fuel given so far.
struct Meter {
    given: u64,
}

impl Meter {
    /// Hands the store its next handful of fuel, or stops the slice when the budget, the
    /// deadline or the no-progress limit is spent.
    fn refuel(&mut self, store: &mut Store<Data>) -> Result<(), SliceFailure> {
        let state = &store.data().state;
        let left = store.get_fuel().unwrap_or(0);
        let used = self.given.saturating_sub(left);
        if used >= state.limits.fuel {
            return Err(SliceFailure::OutOfFuel { fuel: state.limits.fuel });
        }
        if let Some(failure) = state.out_of_time() {
            return Err(failure);
        }
        let step = FUEL_STEP.min(state.limits.fuel - used);
        // Fuel metering is on for this engine, so setting it cannot fail.
        let _ = store.set_fuel(left + step);
        self.given += step;
        Ok(())
    }

    /// Runs a resumable call to its end, refuelling it a handful at a time.
    fn drive<R: wasmi::WasmResults>(
        &mut self,
        store: &mut Store<Data>,
        mut call: Result<TypedResumableCall<R>, wasmi::Error>,
    ) -> Result<R, SliceFailure> {
        loop {
            match call.map_err(|e| failure(&e, store))? {
                TypedResumableCall::Finished(value) => return Ok(value),
                TypedResumableCall::OutOfFuel(paused) => {
                    self.refuel(store)?;
                    call = paused.resume(&mut *store);
                }
                TypedResumableCall::HostTrap(trap) => return Err(failure(trap.host_error(), store)),
            }
        }
    }
}

/// The failure a wasmi error stands for.
fn failure(error: &wasmi::Error, store: &Store<Data>) -> SliceFailure {
    if let Some(Stop(failure)) = error.downcast_ref::<Stop>() {
        return failure.clone();
    }
    let limits = store.data().state.limits;
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => SliceFailure::OutOfFuel { fuel: limits.fuel },
        Some(TrapCode::GrowthOperationLimited | TrapCode::OutOfSystemMemory) => {
            SliceFailure::MemoryLimit { pages: limits.memory_pages }
        }
        Some(code) => SliceFailure::Trap { why: code.to_string() },
        None => SliceFailure::Trap { why: error.to_string() },
    }
}
