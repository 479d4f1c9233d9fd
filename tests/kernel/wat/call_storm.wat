;; Makes 2000 host calls (wasi_driver.now_ns) per poll, then reports {"n": 2000 calls ok}:
;; a measure of the host-call path's cost.
(module
  (import "wasi_driver" "now_ns" (func $now (param i32) (result i32)))
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\a1\61n\19\07\d0")     ;; {"n": 2000}
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (local $i i32) (local $e i32)
    (loop $l
      (local.set $e (call $now (i32.const 16)))
      (if (local.get $e) (then (return (local.get $e))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 2000))))
    (call $report (i32.const 0) (i32.const 6))))
