;; Hostile: a 2 GiB read length into a buffer at 0 (must not make the host allocate).
;; init opens "i2c-1" (handle at 16); poll returns the errno of the attack.
(module
  (import "wasi_i2c" "open" (func $open (param i32 i32 i32) (result i32)))
  (import "wasi_i2c" "close" (func $close (param i32) (result i32)))
  (import "wasi_i2c" "read" (func $read (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_i2c" "write" (func $write (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_i2c" "write_read" (func $write_read (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_i2c" "transaction" (func $transaction (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "i2c-1")
  (data (i32.const 32) "\d0")
  (func (export "init") (result i32)
    (call $open (i32.const 0) (i32.const 5) (i32.const 16)))
  (func (export "poll") (result i32)
    (call $read (i32.load (i32.const 16)) (i32.const 0x76) (i32.const 0) (i32.const 0) (i32.const 0x7fffffff))))
