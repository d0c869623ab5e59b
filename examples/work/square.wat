;; A work function in the WebAssembly text format (ABI v1, see ravproto::work): a slice is a
;; little-endian f64 (ravop::jobs::slice::f64); the result is its square, as 8 bytes. Each
;; slice writes a console line and emits a custom event `seen` with its input. A negative
;; input fails the slice with a reason (rav.error), so a job shows an `error` event.
;; Three more entries for tests: `spin` never ends (its slices run out of fuel), `trap`
;; traps at once, and `count` counts to n (its slice, a little-endian i64) and answers n as
;; 8 bytes: milliseconds a slice, so a job lasts long enough to kill something under it.
;; `sum` adds up a slice's bytes (as unsigned) and answers the total as a little-endian i64:
;; a check that a big slice (megabytes, through ravftp) arrived whole. The allocator grows the
;; memory to fit what the host copies in. `zeros` answers as many zero bytes as its slice
;; says (a little-endian i64): results too big to come back in one message.
(module
  (import "rav" "result" (func $result (param i32 i32)))
  (import "rav" "error" (func $error (param i32 i32)))
  (import "rav" "console" (func $console (param i32 i32 i32)))
  (import "rav" "emit" (func $emit (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "squaring")
  (data (i32.const 80) "seen")
  (data (i32.const 96) "cannot square a negative number")
  (global $next (mut i32) (i32.const 1024))
  (func $alloc (export "rav_alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (global.get $next))
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    ;; Pages short of $end, grown at once (a failed grow leaves the host's copy to fail).
    (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
      (then (drop (memory.grow
        (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16)) (memory.size))))))
    (global.set $next (local.get $end))
    (local.get $p))
  (func (export "square") (param $s i32) (param $len i32) (param i32 i32 i64) (result i32)
    (local $x f64)
    (if (i32.ne (local.get $len) (i32.const 8))
      (then (call $error (i32.const 96) (i32.const 0)) (return (i32.const 2))))
    (local.set $x (f64.load (local.get $s)))
    (call $console (i32.const 0) (i32.const 64) (i32.const 8))
    (call $emit (i32.const 80) (i32.const 4) (local.get $s) (i32.const 8))
    (if (f64.lt (local.get $x) (f64.const 0))
      (then (call $error (i32.const 96) (i32.const 31)) (return (i32.const 1))))
    (f64.store (i32.const 0) (f64.mul (local.get $x) (local.get $x)))
    (call $result (i32.const 0) (i32.const 8))
    (i32.const 0))
  (func (export "spin") (param i32 i32 i32 i32 i64) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "trap") (param i32 i32 i32 i32 i64) (result i32)
    (unreachable))
  (func (export "count") (param $s i32) (param i32 i32 i32 i64) (result i32)
    (local $n i64) (local $i i64)
    (local.set $n (i64.load (local.get $s)))
    (block $done (loop $l
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $l)))
    (i64.store (i32.const 0) (local.get $i))
    (call $result (i32.const 0) (i32.const 8))
    (i32.const 0))
  (func (export "sum") (param $s i32) (param $len i32) (param i32 i32 i64) (result i32)
    (local $i i32) (local $total i64)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $total
        (i64.add (local.get $total) (i64.load8_u (i32.add (local.get $s) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i64.store (i32.const 0) (local.get $total))
    (call $result (i32.const 0) (i32.const 8))
    (i32.const 0))
  (func (export "zeros") (param $s i32) (param i32 i32 i32 i64) (result i32)
    (local $n i32)
    (local.set $n (i32.wrap_i64 (i64.load (local.get $s))))
    (call $result (call $alloc (local.get $n)) (local.get $n))
    (i32.const 0)))
