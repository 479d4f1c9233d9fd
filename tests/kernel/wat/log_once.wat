;; Logs "hi" at info level on every poll.
(module
  (import "wasi_driver" "log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "hi")
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (call $log (i32.const 2) (i32.const 0) (i32.const 2))))
