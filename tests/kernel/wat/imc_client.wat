;; An IMC client driven by the test through its memory. poll runs the operation in byte 200:
;; 0 call(name at 0 [len at 64], request at 4096 [len at 68], response at 16384 [cap at 72],
;;   timeout at 76) → length at 84;  1 publish(topic at 0, data at 4096 [len at 68]);
;; 2 subscribe(topic at 0) → handle at 84;  3 receive(handle at 80, buf 16384 [cap 72]) → 84;
;; 4 offer(name at 0, buf 1024, 64 bytes) → 84 (this module exports no imc_serve).
;; poll acts only when byte 201 is 1 (and clears it: the kernel's own polls do nothing);
;; it returns the errno.
(module
  (import "wasi_imc" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_imc" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
  (import "wasi_imc" "subscribe" (func $subscribe (param i32 i32 i32) (result i32)))
  (import "wasi_imc" "receive" (func $receive (param i32 i32 i32 i32) (result i32)))
  (import "wasi_imc" "offer" (func $offer (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (local $op i32)
    (if (i32.ne (i32.load8_u (i32.const 201)) (i32.const 1)) (then (return (i32.const 0))))
    (i32.store8 (i32.const 201) (i32.const 0))
    (local.set $op (i32.load8_u (i32.const 200)))
    (if (i32.eq (local.get $op) (i32.const 0)) (then
      (return (call $call (i32.const 0) (i32.load (i32.const 64)) (i32.const 4096)
        (i32.load (i32.const 68)) (i32.const 16384) (i32.load (i32.const 72))
        (i32.load (i32.const 76)) (i32.const 84)))))
    (if (i32.eq (local.get $op) (i32.const 1)) (then
      (return (call $publish (i32.const 0) (i32.load (i32.const 64)) (i32.const 4096)
        (i32.load (i32.const 68))))))
    (if (i32.eq (local.get $op) (i32.const 2)) (then
      (return (call $subscribe (i32.const 0) (i32.load (i32.const 64)) (i32.const 84)))))
    (if (i32.eq (local.get $op) (i32.const 3)) (then
      (return (call $receive (i32.load (i32.const 80)) (i32.const 16384) (i32.load (i32.const 72))
        (i32.const 84)))))
    (call $offer (i32.const 0) (i32.load (i32.const 64)) (i32.const 1024) (i32.const 64)
      (i32.const 84)))
)
