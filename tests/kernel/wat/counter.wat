;; Reports {"n": <polls since start>} (n < 24: a one-byte CBOR uint). The count lives in
;; a global, so an update or restart starts again at 1.
(module
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (data (i32.const 0) "\a1\61n\00")
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i32.store8 (i32.const 3) (global.get $n))
    (call $report (i32.const 0) (i32.const 4))))
