;; Hostile: asks the host for a memory instead of exporting its own.
(module
  (import "wasi_i2c" "memory" (memory 1))
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (i32.const 0)))
