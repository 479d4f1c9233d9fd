;; Hostile: imports wasi_i2c.open with the wrong signature.
(module
  (import "wasi_i2c" "open" (func (param i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (i32.const 0)))
