;; Hostile: imports a function no spec defines, and one from a module that does not exist.
(module
  (import "wasi_i2c" "format_disk" (func (param i32) (result i32)))
  (import "env" "system" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (i32.const 0)))
