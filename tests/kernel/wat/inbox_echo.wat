;; Reports whatever arrives in its inbox (routes deliver other drivers' readings there).
(module
  (import "wasi_driver" "inbox" (func $inbox (param i32 i32 i32) (result i32)))
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (local $e i32)
    (local.set $e (call $inbox (i32.const 64) (i32.const 256) (i32.const 16)))
    (if (local.get $e) (then (return (local.get $e))))
    (if (i32.eqz (i32.load (i32.const 16))) (then (return (i32.const 0))))
    (call $report (i32.const 64) (i32.load (i32.const 16)))))
