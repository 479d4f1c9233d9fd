;; Hostile: a bus name that is not UTF-8; init returns open's errno.
(module
  (import "wasi_i2c" "open" (func $open (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\ff\fe-1")
  (func (export "init") (result i32) (call $open (i32.const 0) (i32.const 4) (i32.const 16)))
  (func (export "poll") (result i32) (i32.const 0)))
