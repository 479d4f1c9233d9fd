;; An IMC provider: offers "echo" (serve buffer at 1024, 8-byte header + 4096 bytes) in init.
;; imc_serve replies with the request, its first byte incremented (proof it ran here);
;; first byte 0xFF traps, 0xFE returns -1, 0xFD loops forever, 0xFC claims a 5000-byte reply;
;; a header whose service id is not the one offer returned gives -2. The i32 at 20 counts
;; imc_serve entries.
(module
  (import "wasi_imc" "offer" (func $offer (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "echo")
  (func (export "init") (result i32)
    (call $offer (i32.const 0) (i32.const 4) (i32.const 1024) (i32.const 4104) (i32.const 16)))
  (func (export "poll") (result i32) (i32.const 0))
  (func (export "imc_serve") (result i32)
    (local $n i32) (local $b i32)
    (i32.store (i32.const 20) (i32.add (i32.load (i32.const 20)) (i32.const 1)))
    (if (i32.ne (i32.load (i32.const 1024)) (i32.load (i32.const 16)))
      (then (return (i32.const -2))))
    (local.set $n (i32.load (i32.const 1028)))
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (local.set $b (i32.load8_u (i32.const 1032)))
    (if (i32.eq (local.get $b) (i32.const 0xFF)) (then unreachable))
    (if (i32.eq (local.get $b) (i32.const 0xFE)) (then (return (i32.const -1))))
    (if (i32.eq (local.get $b) (i32.const 0xFD)) (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $b) (i32.const 0xFC)) (then (return (i32.const 5000))))
    (i32.store8 (i32.const 1032) (i32.add (local.get $b) (i32.const 1)))
    (local.get $n))
)
