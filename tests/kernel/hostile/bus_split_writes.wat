;; Hostile: with 0xF2..0xF5 granted read-only, one transaction of two Write operations
;; [F4] and [F5] — each alone looks like a pointer write, but on the wire they are one
;; message that writes 0xF5 into ctrl_meas. Then a register/value pair and a read that
;; relies on where the pair left the pointer. Stores both errnos at 0x100, returns 0.
(module
  (import "wasi_i2c" "open" (func $open (param i32 i32 i32) (result i32)))
  (import "wasi_i2c" "transaction" (func $tx (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "i2c-1")
  (data (i32.const 32) "\f4\f5\f4\00")
  ;; ops at 64: Write [F4] (32, 1), Write [F5] (33, 1)
  (data (i32.const 64) "\01\00\00\00\20\00\00\00\01\00\00\00\01\00\00\00\21\00\00\00\01\00\00\00")
  ;; ops at 96: Write [F4 00] (34, 2), Read 1 (48, 1)
  (data (i32.const 96) "\01\00\00\00\22\00\00\00\02\00\00\00\00\00\00\00\30\00\00\00\01\00\00\00")
  (func (export "init") (result i32)
    (call $open (i32.const 0) (i32.const 5) (i32.const 16)))
  (func (export "poll") (result i32)
    (i32.store (i32.const 0x100)
      (call $tx (i32.load (i32.const 16)) (i32.const 0x76) (i32.const 0) (i32.const 64) (i32.const 2)))
    (i32.store (i32.const 0x104)
      (call $tx (i32.load (i32.const 16)) (i32.const 0x76) (i32.const 0) (i32.const 96) (i32.const 2)))
    (i32.or (i32.load (i32.const 0x100)) (i32.load (i32.const 0x104)))))
