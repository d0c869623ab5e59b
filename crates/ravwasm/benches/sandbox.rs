//! The sandbox's cost: one slice of a trivial function (a fresh instance, the slice copied in,
//! the call, the result copied out) with the module compiled once; and a numeric loop in the
//! sandbox beside the same loop in native Rust, on each engine built in: `cargo bench -p
//! ravwasm --bench sandbox` (wasmi), `cargo bench -p ravwasm --features wasmtime --bench sandbox`
//! (wasmtime, then wasmi).

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use ravwasm::{EngineKind, JobFiles, Limits, Sandbox, SliceInput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

/// A bump allocator, a squaring entry, and a loop entry (`n` iterations of an LCG-like mix).
const MODULE: &str = r#"(module
  (import "rav" "result" (func $result (param i32 i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "rav_alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $p))
  (func (export "square") (param $s i32) (param i32 i32 i32 i64) (result i32)
    (f64.store (i32.const 0) (f64.mul (f64.load (local.get $s)) (f64.load (local.get $s))))
    (call $result (i32.const 0) (i32.const 8))
    (i32.const 0))
  (func (export "mix") (param $s i32) (param i32 i32 i32 i64) (result i32)
    (local $n i64) (local $x i64)
    (local.set $n (i64.load (local.get $s)))
    (local.set $x (i64.const 1))
    (block $done (loop $l
      (br_if $done (i64.eqz (local.get $n)))
      (local.set $x (i64.add (i64.mul (local.get $x) (i64.const 6364136223846793005)) (i64.const 1442695040888963407)))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 33))))
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br $l)))
    (i64.store (i32.const 0) (local.get $x))
    (call $result (i32.const 0) (i32.const 8))
    (i32.const 0)))"#;

fn native_mix(mut n: u64) -> u64 {
    let mut x: u64 = 1;
    while n != 0 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        x ^= x >> 33;
        n -= 1;
    }
    x
}

fn main() {
    for kind in EngineKind::built() {
        println!("== {kind}");
        bench(&Sandbox::with_engine(*kind).expect("a built engine starts"));
    }
}

fn bench(sandbox: &Sandbox) {
    let bytes = wat::parse_str(MODULE).unwrap();
    let files = Arc::new(JobFiles::new());
    let limits = Limits { fuel: u64::MAX, ..Limits::default() };
    let started = Instant::now();
    let square = sandbox.compile(&bytes, "square").unwrap();
    println!("compile: {:.1} µs (once per provider)", started.elapsed().as_secs_f64() * 1e6);

    for round in 0..3 {
        let n = 100_000;
        let started = Instant::now();
        for i in 0..n {
            let x = (i as f64).to_le_bytes();
            let out = sandbox.run(&square, SliceInput { slice: &x, args: &[], index: i }, &files, limits);
            black_box(out.result.unwrap());
        }
        let per = started.elapsed().as_secs_f64() / n as f64 * 1e6;
        println!("round {round}: trivial slice (instantiate + copy in + call + copy out): {per:.2} µs per slice");
    }

    let mix = sandbox.compile(&bytes, "mix").unwrap();
    let iterations: u64 = 100_000_000;
    for round in 0..3 {
        let started = Instant::now();
        let out =
            sandbox.run(&mix, SliceInput { slice: &iterations.to_le_bytes(), args: &[], index: 0 }, &files, limits);
        let sandboxed = started.elapsed().as_secs_f64();
        let got = u64::from_le_bytes(out.result.unwrap().try_into().unwrap());
        let started = Instant::now();
        let want = native_mix(black_box(iterations));
        let native = started.elapsed().as_secs_f64();
        assert_eq!(got, want);
        println!(
            "round {round}: numeric loop of {iterations} iterations: sandbox {sandboxed:.3} s, native {native:.3} s, {:.1}x",
            sandboxed / native
        );
    }
}
