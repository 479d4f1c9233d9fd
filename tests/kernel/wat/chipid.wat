;; A well-behaved driver: opens the configured bus, reads the BME280 chip-id register
;; (0xD0) at 0x76 with write_read and reports {"id": <id>} as CBOR.
(module
  (import "wasi_i2c" "open" (func $open (param i32 i32 i32) (result i32)))
  (import "wasi_i2c" "write_read" (func $write_read (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "i2c-1")
  (data (i32.const 32) "\d0")
  (data (i32.const 48) "\a1\62id\18\00")      ;; {"id": uint8 at 53}
  (func (export "init") (result i32)
    (call $open (i32.const 0) (i32.const 5) (i32.const 16)))
  (func (export "poll") (result i32)
    (local $e i32)
    (local.set $e (call $write_read (i32.load (i32.const 16)) (i32.const 0x76) (i32.const 0)
                                    (i32.const 32) (i32.const 1) (i32.const 53) (i32.const 1)))
    (if (local.get $e) (then (return (local.get $e))))
    (call $report (i32.const 48) (i32.const 6))))
