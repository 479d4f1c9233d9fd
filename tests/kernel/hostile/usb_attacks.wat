;; Hostile: one wasi_usb attack per poll (poll k runs attack k); poll returns its errno.
;; init lists the devices (filter at 0: match all), opens the first and claims interface 0.
;;  1 list_devices filter outside memory     2 list_devices array wraps 2^32
;;  3 open a forged device handle           4 bulk transfer on a forged handle
;;  5 bulk IN on ungranted endpoint 0x82    6 bulk buffer runs off the end of memory
;;  7 bulk of 8 KiB (quota 4 KiB)           8 control SET_ADDRESS
;;  9 reset without the reset grant        10 claim ungranted interface 3
;; 11 iso packet array outside memory      12 string_descriptor result outside memory
;; 13 close, then use the stale handle
(module
  (import "wasi_usb" "list_devices" (func $list (param i32 i32 i32 i32) (result i32)))
  (import "wasi_usb" "open" (func $open (param i32 i32) (result i32)))
  (import "wasi_usb" "close" (func $close (param i32) (result i32)))
  (import "wasi_usb" "claim_interface" (func $claim (param i32 i32) (result i32)))
  (import "wasi_usb" "bulk_transfer" (func $bulk (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_usb" "control_transfer" (func $control (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_usb" "iso_transfer" (func $iso (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_usb" "reset_device" (func $reset (param i32) (result i32)))
  (import "wasi_usb" "string_descriptor" (func $string (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $k (mut i32) (i32.const 0))
  (global $h (mut i32) (i32.const 0))
  (func (export "init") (result i32)
    (local $e i32)
    (local.set $e (call $list (i32.const 0) (i32.const 64) (i32.const 4) (i32.const 16)))
    (if (local.get $e) (then (return (local.get $e))))
    (local.set $e (call $open (i32.load (i32.const 64)) (i32.const 20)))
    (if (local.get $e) (then (return (local.get $e))))
    (global.set $h (i32.load (i32.const 20)))
    (call $claim (global.get $h) (i32.const 0)))
  (func (export "poll") (result i32)
    (global.set $k (i32.add (global.get $k) (i32.const 1)))
    (if (i32.eq (global.get $k) (i32.const 1)) (then (return (call $list (i32.const 0xfffffff8) (i32.const 64) (i32.const 4) (i32.const 16)))))
    (if (i32.eq (global.get $k) (i32.const 2)) (then (return (call $list (i32.const 0) (i32.const 0xfffffffc) (i32.const 4) (i32.const 16)))))
    (if (i32.eq (global.get $k) (i32.const 3)) (then (return (call $open (i32.const 0x4242) (i32.const 20)))))
    (if (i32.eq (global.get $k) (i32.const 4)) (then (return (call $bulk (i32.const 0x999) (i32.const 0x81) (i32.const 128) (i32.const 4) (i32.const 10) (i32.const 24)))))
    (if (i32.eq (global.get $k) (i32.const 5)) (then (return (call $bulk (global.get $h) (i32.const 0x82) (i32.const 128) (i32.const 4) (i32.const 10) (i32.const 24)))))
    (if (i32.eq (global.get $k) (i32.const 6)) (then (return (call $bulk (global.get $h) (i32.const 0x81) (i32.const 0xfff0) (i32.const 64) (i32.const 10) (i32.const 24)))))
    (if (i32.eq (global.get $k) (i32.const 7)) (then (return (call $bulk (global.get $h) (i32.const 0x81) (i32.const 128) (i32.const 8192) (i32.const 10) (i32.const 24)))))
    (if (i32.eq (global.get $k) (i32.const 8)) (then (return (call $control (global.get $h) (i32.const 0x00) (i32.const 5) (i32.const 9) (i32.const 0) (i32.const 128) (i32.const 0) (i32.const 10) (i32.const 24)))))
    (if (i32.eq (global.get $k) (i32.const 9)) (then (return (call $reset (global.get $h)))))
    (if (i32.eq (global.get $k) (i32.const 10)) (then (return (call $claim (global.get $h) (i32.const 3)))))
    (if (i32.eq (global.get $k) (i32.const 11)) (then (return (call $iso (global.get $h) (i32.const 0x81) (i32.const 128) (i32.const 8) (i32.const 0xfff8) (i32.const 4) (i32.const 10) (i32.const 24)))))
    (if (i32.eq (global.get $k) (i32.const 12)) (then (return (call $string (global.get $h) (i32.const 3) (i32.const 0) (i32.const 256) (i32.const 64) (i32.const 0x10000)))))
    (if (i32.eq (global.get $k) (i32.const 13)) (then
      (drop (call $close (global.get $h)))
      (return (call $bulk (global.get $h) (i32.const 0x81) (i32.const 128) (i32.const 4) (i32.const 10) (i32.const 24)))))
    (i32.const 0)))
