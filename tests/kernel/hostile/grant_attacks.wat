;; Hostile: one attack on the memory-grant calls per poll (poll k runs attack k); poll
;; returns its errno. Its manifest lets it grant to "chipid" only (chipid does not accept).
;;  1 grant of a region past the end of memory   2 grant of a region wrapping 2^32
;;  3 grant with unknown rights bits             4 grant with no rights
;;  5 grant to itself                            6 grant to a driver not in grant_to
;;  7 grant to chipid (its receive_from is empty) 8 grant to a driver name of invalid UTF-8
;;  9 grant with the handle out-pointer outside memory
;; 10 revoke of a forged handle                 11 granted_read with no grant
;; 12 granted_read into a buffer outside memory 13 granted_write of data wrapping 2^32
;; 14 granted_len with its result outside memory 15 grant name of 2 GiB
(module
  (import "wasi_driver" "grant" (func $grant (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_driver" "revoke" (func $revoke (param i32) (result i32)))
  (import "wasi_driver" "granted_len" (func $granted_len (param i32 i32 i32) (result i32)))
  (import "wasi_driver" "granted_read" (func $granted_read (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_driver" "granted_write" (func $granted_write (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $k (mut i32) (i32.const 0))
  (data (i32.const 0) "grant_attacks")
  (data (i32.const 16) "lcd")
  (data (i32.const 24) "chipid")
  (data (i32.const 32) "\c3\28")
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (global.set $k (i32.add (global.get $k) (i32.const 1)))
    (if (i32.eq (global.get $k) (i32.const 1)) (then (return
      (call $grant (i32.const 0xfff0) (i32.const 0x20) (i32.const 24) (i32.const 6) (i32.const 1) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 2)) (then (return
      (call $grant (i32.const 0xfffffff0) (i32.const 0x20) (i32.const 24) (i32.const 6) (i32.const 1) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 3)) (then (return
      (call $grant (i32.const 256) (i32.const 16) (i32.const 24) (i32.const 6) (i32.const 4) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 4)) (then (return
      (call $grant (i32.const 256) (i32.const 16) (i32.const 24) (i32.const 6) (i32.const 0) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 5)) (then (return
      (call $grant (i32.const 256) (i32.const 16) (i32.const 0) (i32.const 13) (i32.const 1) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 6)) (then (return
      (call $grant (i32.const 256) (i32.const 16) (i32.const 16) (i32.const 3) (i32.const 1) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 7)) (then (return
      (call $grant (i32.const 256) (i32.const 16) (i32.const 24) (i32.const 6) (i32.const 3) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 8)) (then (return
      (call $grant (i32.const 256) (i32.const 16) (i32.const 32) (i32.const 2) (i32.const 1) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 9)) (then (return
      (call $grant (i32.const 256) (i32.const 16) (i32.const 24) (i32.const 6) (i32.const 1) (i32.const 0xfffe)))))
    (if (i32.eq (global.get $k) (i32.const 10)) (then (return
      (call $revoke (i32.const 0x1234)))))
    (if (i32.eq (global.get $k) (i32.const 11)) (then (return
      (call $granted_read (i32.const 24) (i32.const 6) (i32.const 0) (i32.const 256) (i32.const 4)))))
    (if (i32.eq (global.get $k) (i32.const 12)) (then (return
      (call $granted_read (i32.const 24) (i32.const 6) (i32.const 0) (i32.const 0xfffc) (i32.const 8)))))
    (if (i32.eq (global.get $k) (i32.const 13)) (then (return
      (call $granted_write (i32.const 24) (i32.const 6) (i32.const 0) (i32.const 0xffffff00) (i32.const 0x200)))))
    (if (i32.eq (global.get $k) (i32.const 14)) (then (return
      (call $granted_len (i32.const 24) (i32.const 6) (i32.const 0x10000)))))
    (if (i32.eq (global.get $k) (i32.const 15)) (then (return
      (call $grant (i32.const 256) (i32.const 16) (i32.const 0) (i32.const 0x7fffffff) (i32.const 1) (i32.const 64)))))
    (i32.const 0)))
