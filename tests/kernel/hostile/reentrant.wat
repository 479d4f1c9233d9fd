;; Reentrancy probe: poll reports a reading; the test's report sink calls back into the
;; driver while this host call is still running.
(module
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\01")
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (call $report (i32.const 0) (i32.const 1))))
