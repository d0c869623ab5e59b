//! The wasmtime engine (behind the `wasmtime` feature): modules compiled to native code by
//! Cranelift, for compute-heavy slices (the README measures it beside wasmi). The budget is
//! wasmtime's fuel, given whole; the clocks are kept by epoch interruption: while any slice
//! runs, one thread per process advances the engine's epoch every [`TICK`], and at each tick a
//! running slice's callback looks at its deadline and no-progress limit.
//!
//! One engine serves the process (an engine is meant to be shared, and so is its ticker); its
//! configuration is fixed here: fuel and epochs on. NaNs are left as the processor makes them,
//! as wasmi leaves them: canonicalising them here would make the two engines disagree on the
//! bits of a NaN result on the same machine (the sandbox's tests compare them), and
//! verification by redundancy compares providers' results.

use crate::check::{self, EntryParams};
use crate::host::{self, MAX_TABLE_ELEMENTS, SliceState, Slot, Stop};
use crate::{Run, SliceInput};
use ravproto::work::{EXPORT_ALLOC, EXPORT_MEMORY, SliceFailure};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, PoolingAllocationConfig, ResourceLimiter,
    Store, Trap, TypedFunc, UpdateDeadline,
};

/// How often a running slice's clocks are looked at.
const TICK: Duration = Duration::from_millis(10);
/// Slices that may run at once in the process: the pooling allocator keeps this many instance,
/// memory and table slots mapped (a memory slot is 4 GiB of address space, reserved, not
/// used), and a slice past them waits for one to free rather than fail.
const POOL_SLOTS: usize = 128;

type Data = Slot<Limiter>;

fn stop(failure: SliceFailure) -> wasmtime::Error {
    wasmtime::Error::new(Stop(failure))
}

/// The process's engine, its linker of the host functions and its ticker.
#[derive(Clone)]
pub(crate) struct Wasmtime {
    engine: Engine,
    linker: Arc<Linker<Data>>,
    ticker: Arc<Ticker>,
}

/// A module compiled by [`Wasmtime`], already linked to the host functions.
#[derive(Clone)]
pub(crate) struct Compiled(InstancePre<Data>);

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wasmtime module")
    }
}

impl Wasmtime {
    /// The process's engine, made on first use; an error when wasmtime refuses the
    /// configuration on this machine.
    pub(crate) fn shared() -> Result<Wasmtime, String> {
        static SHARED: OnceLock<Result<Wasmtime, String>> = OnceLock::new();
        SHARED.get_or_init(Wasmtime::new).clone()
    }

    fn new() -> Result<Wasmtime, String> {
        let mut pool = PoolingAllocationConfig::new();
        let slots = POOL_SLOTS as u32;
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size(1 << 32);
        let mut config = Config::new();
        // Pooled instances: a slice's instance comes from a warm slot instead of fresh mappings
        // (about 3x less per trivial slice here; the README measures it).
        config
            .consume_fuel(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| e.to_string())?;
        let mut linker = Linker::new(&engine);
        register(&mut linker).map_err(|e| e.to_string())?;
        let ticker = Arc::new(Ticker::default());
        let (engine_for_ticks, ticks) = (engine.clone(), ticker.clone());
        std::thread::Builder::new()
            .name("ravwasm-epoch".to_string())
            .spawn(move || ticks.run(&engine_for_ticks))
            .map_err(|e| format!("the epoch thread did not start: {e}"))?;
        Ok(Wasmtime { engine, linker: Arc::new(linker), ticker })
    }

    /// Checks that `bytes` are a valid module, without compiling them.
    pub(crate) fn validate(&self, bytes: &[u8]) -> Result<(), SliceFailure> {
        Module::validate(&self.engine, bytes).map_err(|e| SliceFailure::NotWasm { why: e.to_string() })
    }

    /// Compiles a module that passed [`Wasmtime::validate`] and the ABI's checks: a failure
    /// here is one of the pool's bounds (a table past [`MAX_TABLE_ELEMENTS`], a second
    /// memory), reported as a `trap`, as wasmi reports the same module when instantiating it.
    pub(crate) fn compile(&self, bytes: &[u8]) -> Result<Compiled, SliceFailure> {
        let module = Module::new(&self.engine, bytes).map_err(|e| SliceFailure::Trap { why: e.to_string() })?;
        // The imports are checked before this (a foreign one is refused by name), so linking
        // fails only on something the checks missed; it is a typed failure all the same.
        self.linker.instantiate_pre(&module).map(Compiled).map_err(|e| SliceFailure::Trap { why: e.to_string() })
    }

    /// Runs one slice in a fresh instance; the memory's initial size is already checked.
    pub(crate) fn run(&self, compiled: &Compiled, entry: &str, input: SliceInput<'_>, state: SliceState) -> Run {
        let limits = state.limits;
        let limiter =
            Limiter { memory_bytes: (limits.memory_pages as usize).saturating_mul(65_536), pages: limits.memory_pages };
        // Counted from before the store takes a pool slot until after it gives it back.
        let running = self.ticker.enter();
        let mut store = Store::new(&self.engine, Slot { state, limiter });
        store.limiter(|data| &mut data.limiter);
        // Fuel metering is on for this engine, so setting it cannot fail.
        let _ = store.set_fuel(limits.fuel);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| match store.data().state.out_of_time() {
            Some(failure) => Err(stop(failure)),
            None => Ok(UpdateDeadline::Continue(1)),
        });
        let code = call(compiled, entry, input, &mut store);
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data().state;
        drop(running);
        Run { code, state, fuel_used }
    }
}

fn call(compiled: &Compiled, entry: &str, input: SliceInput<'_>, store: &mut Store<Data>) -> Result<i32, SliceFailure> {
    let instance = compiled.0.instantiate(&mut *store).map_err(|e| failure(&e, store))?;
    let memory = instance.get_memory(&mut *store, EXPORT_MEMORY).ok_or_else(|| check::lost_export(EXPORT_MEMORY))?;
    let alloc: TypedFunc<i32, i32> =
        instance.get_typed_func(&mut *store, EXPORT_ALLOC).map_err(|_| check::lost_export(EXPORT_ALLOC))?;
    let entry: TypedFunc<EntryParams, i32> =
        instance.get_typed_func(&mut *store, entry).map_err(|_| check::lost_export(entry))?;
    let place = |store: &mut Store<Data>, bytes: &[u8], what: &str| -> Result<i32, SliceFailure> {
        let len = crate::length(bytes, what)?;
        let ptr = alloc.call(&mut *store, len).map_err(|e| failure(&e, store))?;
        memory.write(&mut *store, ptr as u32 as usize, bytes).map_err(|_| crate::outside(ptr, what))?;
        Ok(ptr)
    };
    let slice = place(store, input.slice, "the slice")?;
    let args = place(store, input.args, "the args")?;
    entry.call(&mut *store, crate::params(slice, args, input)).map_err(|e| failure(&e, store))
}

fn register(linker: &mut Linker<Data>) -> wasmtime::Result<()> {
    host::host_functions!(wasmtime, linker);
    Ok(())
}

/// A slice's memory and tables, bounded; going past a bound stops the slice with its failure.
pub(crate) struct Limiter {
    memory_bytes: usize,
    pages: u32,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(stop(SliceFailure::MemoryLimit { pages: self.pages }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _: usize, desired: usize, _: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(stop(SliceFailure::Trap {
                why: format!("a table of {desired} elements is larger than {MAX_TABLE_ELEMENTS}"),
            }));
        }
        Ok(true)
    }
}

/// The failure a wasmtime error stands for.
fn failure(error: &wasmtime::Error, store: &Store<Data>) -> SliceFailure {
    if let Some(Stop(failure)) = error.downcast_ref::<Stop>() {
        return failure.clone();
    }
    let limits = store.data().state.limits;
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => SliceFailure::OutOfFuel { fuel: limits.fuel },
        Some(trap) => SliceFailure::Trap { why: trap.to_string() },
        None => SliceFailure::Trap { why: error.to_string() },
    }
}

/// Advances the engine's epoch every [`TICK`] while at least one slice runs, and sleeps on a
/// condition variable while none does, so an idle provider's sandbox costs no wake-ups. It
/// also holds a slice back while [`POOL_SLOTS`] run.
#[derive(Default)]
struct Ticker {
    running: Mutex<usize>,
    wake: Condvar,
}

/// A running slice, counted while it lives.
struct Running<'a>(&'a Ticker);

impl Ticker {
    fn enter(&self) -> Running<'_> {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut running = self.wake.wait_while(running, |n| *n >= POOL_SLOTS).unwrap_or_else(|e| e.into_inner());
        *running += 1;
        // The ticker and any slice waiting for a slot wait on the same condition.
        self.wake.notify_all();
        Running(self)
    }

    fn run(&self, engine: &Engine) {
        loop {
            let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            let running = self.wake.wait_while(running, |n| *n == 0).unwrap_or_else(|e| e.into_inner());
            drop(running);
            std::thread::sleep(TICK);
            engine.increment_epoch();
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        *self.0.running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.wake.notify_all();
    }
}
