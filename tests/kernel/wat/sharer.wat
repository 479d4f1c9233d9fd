;; A scriptable sharing driver: every poll takes one command from its inbox and runs it
;; (poll returns the call's errno; 0 with an empty inbox). A command is five little-endian
;; u32s — op, a, b, c, name_len — then the driver name it concerns (UTF-8).
;;   op 1 grant(ptr=a, len=b, name, rights=c) → handle at 1008
;;   op 2 revoke(handle=a)
;;   op 3 granted_read(name, offset=a, buf=b, len=c)
;;   op 4 granted_write(name, offset=a, data=b, len=c)
;;   op 5 granted_len(name) → length at 1008
;;   op 6 memory.fill(dst=a, value=b, len=c)   (the driver writes its own memory)
;;   op 7 trap (unreachable)
(module
  (import "wasi_driver" "inbox" (func $inbox (param i32 i32 i32) (result i32)))
  (import "wasi_driver" "grant" (func $grant (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_driver" "revoke" (func $revoke (param i32) (result i32)))
  (import "wasi_driver" "granted_len" (func $granted_len (param i32 i32 i32) (result i32)))
  (import "wasi_driver" "granted_read" (func $granted_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_driver" "granted_write" (func $granted_write (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func $arg (param $i i32) (result i32)
    (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (local $op i32) (local $e i32)
    (local.set $e (call $inbox (i32.const 1024) (i32.const 256) (i32.const 1000)))
    (if (local.get $e) (then (return (local.get $e))))
    (if (i32.eqz (i32.load (i32.const 1000))) (then (return (i32.const 0))))
    (local.set $op (call $arg (i32.const 0)))
    (if (i32.eq (local.get $op) (i32.const 1)) (then (return
      (call $grant (call $arg (i32.const 1)) (call $arg (i32.const 2))
                   (i32.const 1044) (call $arg (i32.const 4)) (call $arg (i32.const 3))
                   (i32.const 1008)))))
    (if (i32.eq (local.get $op) (i32.const 2)) (then (return
      (call $revoke (call $arg (i32.const 1))))))
    (if (i32.eq (local.get $op) (i32.const 3)) (then (return
      (call $granted_read (i32.const 1044) (call $arg (i32.const 4))
                          (call $arg (i32.const 1)) (call $arg (i32.const 2)) (call $arg (i32.const 3))))))
    (if (i32.eq (local.get $op) (i32.const 4)) (then (return
      (call $granted_write (i32.const 1044) (call $arg (i32.const 4))
                           (call $arg (i32.const 1)) (call $arg (i32.const 2)) (call $arg (i32.const 3))))))
    (if (i32.eq (local.get $op) (i32.const 5)) (then (return
      (call $granted_len (i32.const 1044) (call $arg (i32.const 4)) (i32.const 1008)))))
    (if (i32.eq (local.get $op) (i32.const 6)) (then
      (memory.fill (call $arg (i32.const 1)) (call $arg (i32.const 2)) (call $arg (i32.const 3)))
      (return (i32.const 0))))
    (if (i32.eq (local.get $op) (i32.const 7)) (then (unreachable)))
    (i32.const 99)))
