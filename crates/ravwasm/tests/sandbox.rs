//! The sandbox against well-behaved and hostile work functions, written in the WebAssembly
//! text format: each misbehaviour is a typed failure of its slice, and the same sandbox runs
//! the next slice as if nothing happened. Every test runs on each engine built in (wasmi, and
//! wasmtime with the `wasmtime` feature, which CI's `--all-features` turns on).

use ravwasm::{
    ConsoleLevel, EngineError, EngineKind, JobFiles, Limits, Sandbox, SliceEvent, SliceFailure, SliceInput,
    WorkFunction,
};
use std::sync::Arc;

/// A bump allocator and the imports a test module uses, around `body` (more functions).
fn module(imports: &str, body: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
          (import "rav" "result" (func $result (param i32 i32)))
          {imports}
          (memory (export "memory") 1)
          (global $next (mut i32) (i32.const 1024))
          (func (export "rav_alloc") (param $len i32) (result i32)
            (local $p i32)
            (local.set $p (global.get $next))
            (global.set $next (i32.add (global.get $next) (local.get $len)))
            (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
              (then (drop (memory.grow (i32.add (i32.div_u (local.get $len) (i32.const 65536)) (i32.const 1))))))
            (local.get $p))
          {body})"#
    );
    wat::parse_str(text).expect("the test module is valid text")
}

/// Squares the slice (an f64, little-endian).
fn square() -> Vec<u8> {
    module(
        "",
        r#"(func (export "work") (param $s i32) (param $sl i32) (param $a i32) (param $al i32) (param $i i64) (result i32)
             (f64.store (i32.const 0) (f64.mul (f64.load (local.get $s)) (f64.load (local.get $s))))
             (call $result (i32.const 0) (i32.const 8))
             (i32.const 0))"#,
    )
}

/// Loops forever without reporting progress.
fn spin() -> Vec<u8> {
    module("", r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32) (loop $l (br $l)) (i32.const 0))"#)
}

/// A sandbox on each engine this build has.
fn sandboxes() -> Vec<Sandbox> {
    EngineKind::built().iter().map(|kind| Sandbox::with_engine(*kind).expect("a built engine starts")).collect()
}

fn compile(sandbox: &Sandbox, bytes: &[u8]) -> WorkFunction {
    sandbox.compile(bytes, "work").expect("the module passes the checks")
}

fn run(sandbox: &Sandbox, function: &WorkFunction, slice: &[u8], limits: Limits) -> ravwasm::SliceOutcome {
    sandbox.run(function, SliceInput { slice, args: &[], index: 7 }, &Arc::new(JobFiles::new()), limits)
}

fn squared(sandbox: &Sandbox, function: &WorkFunction, x: f64) -> f64 {
    let out = run(sandbox, function, &x.to_le_bytes(), Limits::default()).result.expect("the slice succeeds");
    f64::from_le_bytes(out.try_into().expect("8 bytes"))
}

/// After a hostile slice the same sandbox still computes a good one.
fn still_serves(sandbox: &Sandbox) {
    let good = compile(sandbox, &square());
    assert_eq!(squared(sandbox, &good, 3.0), 9.0);
}

#[test]
fn a_work_function_squares_every_slice_in_a_fresh_instance() {
    for sandbox in sandboxes() {
        let function = compile(&sandbox, &square());
        for x in 1..=5 {
            assert_eq!(squared(&sandbox, &function, f64::from(x)), f64::from(x * x));
        }
    }
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    for sandbox in sandboxes() {
        let function = compile(&sandbox, &spin());
        let limits = Limits { fuel: 50_000_000, ..Limits::default() };
        let out = run(&sandbox, &function, &[], limits);
        assert_eq!(out.result, Err(SliceFailure::OutOfFuel { fuel: 50_000_000 }));
        assert!(out.fuel_used >= 50_000_000, "it used its whole budget: {}", out.fuel_used);
        still_serves(&sandbox);
    }
}

#[test]
fn every_host_function_of_the_abi_is_offered_with_its_type() {
    // The ABI's list, the compile-time check's types and the linker's registrations agree:
    // a module importing all seven compiles, instantiates and runs.
    let types = [
        ("result", "(param i32 i32)"),
        ("error", "(param i32 i32)"),
        ("progress", "(param f32)"),
        ("console", "(param i32 i32 i32)"),
        ("emit", "(param i32 i32 i32 i32)"),
        ("file_size", "(param i32 i32) (result i64)"),
        ("file_read", "(param i32 i32 i64 i32 i32) (result i64)"),
    ];
    let names: Vec<&str> = types.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ravproto::work::HOST_FUNCTIONS);
    let imports: String = types
        .iter()
        .filter(|(name, _)| *name != "result")
        .map(|(name, ty)| format!(r#"(import "rav" "{name}" (func {ty}))"#))
        .collect();
    let all = module(&imports, r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0))"#);
    for sandbox in sandboxes() {
        assert_eq!(run(&sandbox, &compile(&sandbox, &all), &[], Limits::default()).result, Ok(vec![]));
    }
}

#[test]
fn a_start_function_is_refused_at_compile_time() {
    for sandbox in sandboxes() {
        // It would loop forever while the instance is made, before the entry's meter runs.
        let start = module(
            "",
            r#"(func $forever (loop $l (br $l)))
               (start $forever)
               (func (export "work") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0))"#,
        );
        assert_eq!(sandbox.compile(&start, "work").unwrap_err(), SliceFailure::StartFunction);
        still_serves(&sandbox);
    }
}

#[test]
fn a_deadline_stops_a_slice_with_fuel_to_spare() {
    for sandbox in sandboxes() {
        let function = compile(&sandbox, &spin());
        let limits = Limits { fuel: u64::MAX, deadline_ms: 20, ..Limits::default() };
        assert_eq!(run(&sandbox, &function, &[], limits).result, Err(SliceFailure::Deadline { ms: 20 }));
        let limits = Limits { fuel: u64::MAX, no_progress_ms: 20, ..Limits::default() };
        assert_eq!(run(&sandbox, &function, &[], limits).result, Err(SliceFailure::NoProgress { ms: 20 }));
    }
}

#[test]
fn progress_keeps_a_long_slice_alive_and_is_reported() {
    for sandbox in sandboxes() {
        // Counts to 200 million, reporting progress every million.
        let function = compile(
            &sandbox,
            &module(
                r#"(import "rav" "progress" (func $progress (param f32)))"#,
                r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32)
                     (local $n i32)
                     (loop $l
                       (local.set $n (i32.add (local.get $n) (i32.const 1)))
                       (if (i32.eqz (i32.rem_u (local.get $n) (i32.const 1000000)))
                         (then (call $progress (f32.div (f32.convert_i32_u (local.get $n)) (f32.const 200000000)))))
                       (br_if $l (i32.lt_u (local.get $n) (i32.const 200000000))))
                     (i32.const 0))"#,
            ),
        );
        let out = run(&sandbox, &function, &[], Limits { fuel: u64::MAX, ..Limits::default() });
        assert_eq!(out.result, Ok(vec![]));
        let progress: Vec<f32> =
            out.events.iter().filter_map(|e| if let SliceEvent::Progress(p) = e { Some(*p) } else { None }).collect();
        assert_eq!(progress.len(), 200);
        assert_eq!(progress.last(), Some(&1.0));
    }
}

#[test]
fn a_memory_bomb_meets_the_memory_limit() {
    for sandbox in sandboxes() {
        // Grows by a page until refused, then would grow again forever.
        let grows = compile(
            &sandbox,
            &module(
                "",
                r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32)
                     (loop $l (drop (memory.grow (i32.const 1))) (br $l))
                     (i32.const 0))"#,
            ),
        );
        let limits = Limits { memory_pages: 64, ..Limits::default() };
        assert_eq!(run(&sandbox, &grows, &[], limits).result, Err(SliceFailure::MemoryLimit { pages: 64 }));
        // A memory declared larger than the limit fails before it is allocated.
        let declared = wat::parse_str(
            r#"(module (memory (export "memory") 60000)
                 (func (export "rav_alloc") (param i32) (result i32) (i32.const 0))
                 (func (export "work") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0)))"#,
        )
        .unwrap();
        let declared = compile(&sandbox, &declared);
        assert_eq!(run(&sandbox, &declared, &[], limits).result, Err(SliceFailure::MemoryLimit { pages: 64 }));
        still_serves(&sandbox);
    }
}

#[test]
fn imports_outside_the_host_list_are_refused_at_compile_time() {
    for sandbox in sandboxes() {
        let wasi = module(
            r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
            r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0))"#,
        );
        assert_eq!(
            sandbox.compile(&wasi, "work").unwrap_err(),
            SliceFailure::ForbiddenImport { module: "wasi_snapshot_preview1".into(), name: "fd_write".into() }
        );
        // A host function's name with another type is refused too, as is a clock under our name.
        let mistyped = module(
            r#"(import "rav" "progress" (func (param f64)))"#,
            r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0))"#,
        );
        assert!(matches!(sandbox.compile(&mistyped, "work"), Err(SliceFailure::ForbiddenImport { .. })));
        let clock = module(
            r#"(import "rav" "now" (func (result i64)))"#,
            r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0))"#,
        );
        assert!(matches!(sandbox.compile(&clock, "work"), Err(SliceFailure::ForbiddenImport { .. })));
        still_serves(&sandbox);
    }
}

#[test]
fn bytes_that_are_not_wasm_and_missing_exports_are_refused() {
    for sandbox in sandboxes() {
        assert!(matches!(sandbox.compile(b"#!/bin/sh\nrm -rf /\n", "work"), Err(SliceFailure::NotWasm { .. })));
        assert!(matches!(sandbox.compile(&square()[..20], "work"), Err(SliceFailure::NotWasm { .. })));
        assert_eq!(
            sandbox.compile(&square(), "main").unwrap_err(),
            SliceFailure::MissingExport {
                name: "main".into(),
                expected: "func (param i32 i32 i32 i32 i64) (result i32)".into()
            }
        );
        let no_alloc = wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "work") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0)))"#,
        )
        .unwrap();
        assert!(
            matches!(sandbox.compile(&no_alloc, "work"), Err(SliceFailure::MissingExport { name, .. }) if name == "rav_alloc")
        );
        still_serves(&sandbox);
    }
}

#[test]
fn a_trap_and_a_bad_pointer_fail_their_slice() {
    for sandbox in sandboxes() {
        let unreachable =
            module("", r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32) (unreachable))"#);
        let out = run(&sandbox, &compile(&sandbox, &unreachable), &[], Limits::default());
        assert!(
            matches!(&out.result, Err(SliceFailure::Trap { why }) if why.contains("unreachable")),
            "{:?}",
            out.result
        );
        let wild = module(
            "",
            r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32)
                 (call $result (i32.const 65000) (i32.const 1000)) (i32.const 0))"#,
        );
        let out = run(&sandbox, &compile(&sandbox, &wild), &[], Limits::default());
        assert!(matches!(&out.result, Err(SliceFailure::Trap { why }) if why.contains("outside")), "{:?}", out.result);
        still_serves(&sandbox);
    }
}

#[test]
fn a_result_larger_than_the_limit_is_refused() {
    for sandbox in sandboxes() {
        let big = module(
            "",
            r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32)
                 (call $result (i32.const 0) (i32.const 60000)) (i32.const 0))"#,
        );
        let limits = Limits { max_result_bytes: 1_000, ..Limits::default() };
        let out = run(&sandbox, &compile(&sandbox, &big), &[], limits);
        assert_eq!(out.result, Err(SliceFailure::ResultTooLarge { len: 60_000, limit: 1_000 }));
        still_serves(&sandbox);
    }
}

#[test]
fn a_failing_function_gives_its_reason_and_events_arrive_in_order() {
    for sandbox in sandboxes() {
        let function = module(
            r#"(import "rav" "error" (func $error (param i32 i32)))
               (import "rav" "console" (func $console (param i32 i32 i32)))
               (import "rav" "emit" (func $emit (param i32 i32 i32 i32)))
               (data (i32.const 0) "hello")
               (data (i32.const 16) "tick")
               (data (i32.const 32) "no negatives")"#,
            r#"(func (export "work") (param $s i32) (param $sl i32) (param i32 i32) (param $i i64) (result i32)
                 (call $console (i32.const 1) (i32.const 0) (i32.const 5))
                 (call $emit (i32.const 16) (i32.const 4) (local.get $s) (local.get $sl))
                 (if (result i32) (i64.eq (local.get $i) (i64.const 7))
                   (then (call $error (i32.const 32) (i32.const 12)) (i32.const 1))
                   (else (i32.const 0))))"#,
        );
        let out = run(&sandbox, &compile(&sandbox, &function), b"abc", Limits::default());
        assert_eq!(out.result, Err(SliceFailure::Failed { why: "no negatives".into() }));
        assert_eq!(
            out.events,
            vec![
                SliceEvent::Console { level: ConsoleLevel::Warn, text: "hello".into() },
                SliceEvent::Custom { name: "tick".into(), bytes: b"abc".to_vec() },
            ]
        );
    }
}

#[test]
fn a_slice_reads_the_jobs_files_and_nothing_else() {
    for sandbox in sandboxes() {
        // Returns the file "weights.bin" whole, or fails when there is none.
        let function = module(
            r#"(import "rav" "file_size" (func $size (param i32 i32) (result i64)))
               (import "rav" "file_read" (func $read (param i32 i32 i64 i32 i32) (result i64)))
               (data (i32.const 0) "weights.bin")"#,
            r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32)
                 (local $n i64)
                 (local.set $n (call $size (i32.const 0) (i32.const 11)))
                 (if (i64.lt_s (local.get $n) (i64.const 0)) (then (return (i32.const 1))))
                 (drop (call $read (i32.const 0) (i32.const 11) (i64.const 0) (i32.const 2048) (i32.wrap_i64 (local.get $n))))
                 (call $result (i32.const 2048) (i32.wrap_i64 (local.get $n)))
                 (i32.const 0))"#,
        );
        let function = compile(&sandbox, &function);
        let mut files = JobFiles::new();
        files.insert("weights.bin".into(), Arc::from(&b"\x01\x02\x03"[..]));
        let out =
            sandbox.run(&function, SliceInput { slice: &[], args: &[], index: 0 }, &Arc::new(files), Limits::default());
        assert_eq!(out.result, Ok(vec![1, 2, 3]));
        let none = sandbox.run(
            &function,
            SliceInput { slice: &[], args: &[], index: 0 },
            &Arc::new(JobFiles::new()),
            Limits::default(),
        );
        assert_eq!(none.result, Err(SliceFailure::Failed { why: String::new() }));
    }
}

#[test]
fn a_slice_cannot_see_what_the_previous_one_left() {
    for sandbox in sandboxes() {
        // Counts calls in a global: a fresh instance per slice always answers 1.
        let function = module(
            r#"(global $calls (mut i32) (i32.const 0))"#,
            r#"(func (export "work") (param i32 i32 i32 i32 i64) (result i32)
                 (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
                 (i32.store (i32.const 0) (global.get $calls))
                 (call $result (i32.const 0) (i32.const 4))
                 (i32.const 0))"#,
        );
        let function = compile(&sandbox, &function);
        for _ in 0..3 {
            assert_eq!(run(&sandbox, &function, &[], Limits::default()).result, Ok(1u32.to_le_bytes().to_vec()));
        }
    }
}

#[test]
fn a_table_bomb_is_stopped_before_it_is_allocated() {
    for sandbox in sandboxes() {
        // Ten million table elements is about 80 MB of the host's memory that no page limit counts.
        let bomb = wat::parse_str(
            r#"(module (memory (export "memory") 1) (table 10000000 funcref)
                 (func (export "rav_alloc") (param i32) (result i32) (i32.const 0))
                 (func (export "work") (param i32 i32 i32 i32 i64) (result i32) (i32.const 0)))"#,
        )
        .unwrap();
        // wasmi refuses it when an instance is made; wasmtime's pooled slots are sized at start,
        // so it refuses the module when compiling it.
        let result = match sandbox.compile(&bomb, "work") {
            Ok(function) => run(&sandbox, &function, &[], Limits::default()).result,
            Err(failure) => Err(failure),
        };
        assert!(matches!(&result, Err(SliceFailure::Trap { why }) if why.contains("table")), "{sandbox:?}: {result:?}");
        still_serves(&sandbox);
    }
}

#[test]
fn engines_are_named_and_one_not_built_is_a_typed_error() {
    for kind in [EngineKind::Wasmi, EngineKind::Wasmtime] {
        assert_eq!(kind.name().parse::<EngineKind>(), Ok(kind));
    }
    assert_eq!("v8".parse::<EngineKind>(), Err(EngineError::Unknown("v8".into())));
    assert_eq!(Sandbox::new().engine(), EngineKind::built()[0], "the default is the fastest built");
    for kind in [EngineKind::Wasmi, EngineKind::Wasmtime] {
        match Sandbox::with_engine(kind) {
            Ok(sandbox) => assert_eq!(sandbox.engine(), kind),
            Err(error) => {
                assert!(!EngineKind::built().contains(&kind), "{kind} is built and failed: {error}");
                assert_eq!(error, EngineError::NotBuilt(kind));
            }
        }
    }
}

#[test]
fn a_function_compiled_by_one_engine_fails_on_another_without_harm() {
    let all = sandboxes();
    let (Some(first), Some(last)) = (all.first(), all.last()) else { unreachable!("wasmi is always built") };
    let function = compile(first, &square());
    let out = run(last, &function, &2.0f64.to_le_bytes(), Limits::default());
    if first.engine() == last.engine() {
        assert_eq!(out.result, Ok(4.0f64.to_le_bytes().to_vec()));
    } else {
        assert!(matches!(&out.result, Err(SliceFailure::Trap { why }) if why.contains("another engine")));
    }
}

#[test]
fn every_engine_gives_the_same_outcomes_and_events() {
    // Integer and float work (half the slices take the square root of a negative number: a
    // NaN, whose bits must agree too), a console line and a custom event per slice.
    let function = module(
        r#"(import "rav" "console" (func $console (param i32 i32 i32)))
           (import "rav" "emit" (func $emit (param i32 i32 i32 i32)))
           (data (i32.const 64) "mixed")"#,
        r#"(func (export "work") (param $s i32) (param $sl i32) (param i32 i32) (param $i i64) (result i32)
             (local $x f64)
             (local.set $x (f64.load (local.get $s)))
             (f64.store (i32.const 0) (f64.add (f64.sqrt (local.get $x)) (f64.convert_i64_s (local.get $i))))
             (i64.store (i32.const 8) (i64.mul (local.get $i) (i64.const 6364136223846793005)))
             (call $console (i32.const 0) (i32.const 64) (i32.const 5))
             (call $emit (i32.const 64) (i32.const 5) (i32.const 0) (i32.const 16))
             (call $result (i32.const 0) (i32.const 16))
             (i32.const 0))"#,
    );
    let outcomes: Vec<Vec<_>> = sandboxes()
        .iter()
        .map(|sandbox| {
            let function = compile(sandbox, &function);
            (0..50u64)
                .map(|i| {
                    let x = (i as f64 - 25.0) * 1.7;
                    let out = sandbox.run(
                        &function,
                        SliceInput { slice: &x.to_le_bytes(), args: &[], index: i },
                        &Arc::new(JobFiles::new()),
                        Limits::default(),
                    );
                    (out.result, out.events)
                })
                .collect()
        })
        .collect();
    assert!(outcomes[0].iter().all(|(result, events)| result.is_ok() && events.len() == 2));
    assert!(outcomes.windows(2).all(|pair| pair[0] == pair[1]), "the engines disagree");
}
