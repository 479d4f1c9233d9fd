;; Hostile: one wasi_driver attack per poll (poll k runs attack k); poll returns its errno.
;;  1 report from outside memory       2 report of malformed CBOR     3 report above quota
;;  4 log level out of range           5 log of invalid UTF-8         6 config_get buf outside
;;  7 config_get buf too small         8 config_get unknown key       9 inbox buf wraps 2^32
;; 10 now_ns result outside memory    11 config_get result outside   12 log of 2 GiB
(module
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  (import "wasi_driver" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasi_driver" "config_get" (func $config_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_driver" "inbox" (func $inbox (param i32 i32 i32) (result i32)))
  (import "wasi_driver" "now_ns" (func $now_ns (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $k (mut i32) (i32.const 0))
  (data (i32.const 0) "bus")
  (data (i32.const 8) "nope")
  (data (i32.const 32) "\ff\ff\ff")
  (data (i32.const 48) "\c3\28")
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (global.set $k (i32.add (global.get $k) (i32.const 1)))
    (if (i32.eq (global.get $k) (i32.const 1)) (then (return (call $report (i32.const 0xfffff000) (i32.const 16)))))
    (if (i32.eq (global.get $k) (i32.const 2)) (then (return (call $report (i32.const 32) (i32.const 3)))))
    (if (i32.eq (global.get $k) (i32.const 3)) (then (return (call $report (i32.const 0) (i32.const 2000)))))
    (if (i32.eq (global.get $k) (i32.const 4)) (then (return (call $log (i32.const 9) (i32.const 0) (i32.const 3)))))
    (if (i32.eq (global.get $k) (i32.const 5)) (then (return (call $log (i32.const 2) (i32.const 48) (i32.const 2)))))
    (if (i32.eq (global.get $k) (i32.const 6)) (then (return (call $config_get (i32.const 0) (i32.const 3) (i32.const 0xfffe) (i32.const 16) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 7)) (then (return (call $config_get (i32.const 0) (i32.const 3) (i32.const 256) (i32.const 2) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 8)) (then (return (call $config_get (i32.const 8) (i32.const 4) (i32.const 256) (i32.const 16) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 9)) (then (return (call $inbox (i32.const 0xffffff00) (i32.const 0x200) (i32.const 64)))))
    (if (i32.eq (global.get $k) (i32.const 10)) (then (return (call $now_ns (i32.const 0xfffc)))))
    (if (i32.eq (global.get $k) (i32.const 11)) (then (return (call $config_get (i32.const 0) (i32.const 3) (i32.const 256) (i32.const 16) (i32.const 0x10000)))))
    (if (i32.eq (global.get $k) (i32.const 12)) (then (return (call $log (i32.const 2) (i32.const 0) (i32.const 0x7fffffff)))))
    (i32.const 0)))
