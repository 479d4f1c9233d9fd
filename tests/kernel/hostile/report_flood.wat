;; Hostile: each poll makes 2000 reports the host cannot route or print — a list that
;; contains itself (CBOR tags 28/29) and a 4932-digit integer (tag 2) — then one good
;; report. Stores the last errno of each kind at 0x100; returns the good report's.
(module
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\d8\1c\81\d8\1d\00")          ;; shareable [ shared(0) ]: itself
  (data (i32.const 16) "\a1\62ok\f5")                   ;; {"ok": true}
  (data (i32.const 32) "\c2\59\08\00")                  ;; bignum, 2048 bytes of 0xff at 36
  (func $fill (local $i i32)
    (loop $l
      (i32.store8 (i32.add (i32.const 36) (local.get $i)) (i32.const 0xff))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 2048)))))
  (func (export "init") (result i32) (call $fill) (i32.const 0))
  (func (export "poll") (result i32)
    (local $i i32)
    (loop $l
      (i32.store (i32.const 0x100) (call $report (i32.const 0) (i32.const 6)))
      (i32.store (i32.const 0x104) (call $report (i32.const 32) (i32.const 2052)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
    (call $report (i32.const 16) (i32.const 5))))
