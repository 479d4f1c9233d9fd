"""A stateful test module for the fleet's tests and benchmarks: a counter with no hardware.

`counter_wat(pages)` is a driver whose ``poll`` increments a counter in linear memory and a
non-exported mutable global and reports both (CBOR ``{"n": <memory counter>, "g": <global>}``),
with ``pages`` pages of initial memory (the size a snapshot carries; ``fill``: init() fills
them with pseudo-random words, so none is left out of a snapshot as all-zero). `write_counter(dir,
pages, interval_ms, name)` writes its .wasm and manifest; the manifest path is returned.
A gap or repeat in ``n`` or ``g`` after a move means state was lost or duplicated.
``service``: init() also offers that IMC service (serve buffer at 1024, 64 bytes of body);
each call answers with the number of calls served so far, a little-endian u32 kept in memory
(at 8) — counted on whichever node serves, so a gap or repeat across a move shows there too.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["counter_wat", "write_counter"]


def counter_wat(pages: int = 1, *, fail_init: bool = False, fill: bool = False,
                service: str | None = None) -> str:
    # fill: init() writes pseudo-random words over all memory above the first page, so a
    # snapshot carries every page (no zero pages to leave out)
    filler = f"""
    (local $a i32) (local $x i32)
    (local.set $a (i32.const 65536)) (local.set $x (i32.const 2463534242))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $a) (i32.const {pages * 65536})))
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
      (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
      (i32.store (local.get $a) (local.get $x))
      (local.set $a (i32.add (local.get $a) (i32.const 4)))
      (br $next)))""" if fill else ""
    offer = serve = offer_import = ""
    if service is not None:
        offer_import = ('(import "wasi_imc" "offer" '
                        '(func $offer (param i32 i32 i32 i32 i32) (result i32)))')
        offer = (f'(if (call $offer (i32.const 64) (i32.const {len(service.encode())}) '
                 '(i32.const 1024) (i32.const 1096) (i32.const 12)) '
                 '(then (return (i32.const 9))))')
        serve = f"""
  (data (i32.const 64) "{service}")
  (func (export "imc_serve") (result i32)
    (local $c i32)
    (local.set $c (i32.add (i32.load (i32.const 8)) (i32.const 1)))
    (i32.store (i32.const 8) (local.get $c))
    (i32.store (i32.const 1032) (local.get $c))
    (i32.const 4))"""
    init = "(i32.const 7)" if fail_init else \
        f"{filler} (i32.store (i32.const 0) (i32.const 0)) {offer} (i32.const 0)"
    return f"""
(module
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  {offer_import}
  (memory (export "memory") {pages})
  (global $polls (mut i32) (i32.const 0))
  (data (i32.const 16) "\\a2\\61n\\1a\\00\\00\\00\\00\\61g\\1a\\00\\00\\00\\00")
  (func $be (param $at i32) (param $v i32)
    (i32.store8 (local.get $at) (i32.shr_u (local.get $v) (i32.const 24)))
    (i32.store8 offset=1 (local.get $at) (i32.shr_u (local.get $v) (i32.const 16)))
    (i32.store8 offset=2 (local.get $at) (i32.shr_u (local.get $v) (i32.const 8)))
    (i32.store8 offset=3 (local.get $at) (local.get $v)))
  (func (export "init") (result i32) {init})
  (func (export "poll") (result i32)
    (local $n i32)
    (local.set $n (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.store (i32.const 0) (local.get $n))
    (global.set $polls (i32.add (global.get $polls) (i32.const 1)))
    (call $be (i32.const 20) (local.get $n))
    (call $be (i32.const 27) (global.get $polls))
    (call $report (i32.const 16) (i32.const 15))){serve})
"""


def write_counter(directory: Path, pages: int = 1, *, interval_ms: int = 10,
                  name: str = "counter", fail_init: bool = False, version: int = 0,
                  fill: bool = False, service: str | None = None) -> Path:
    import wasmtime

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wat = counter_wat(pages, fail_init=fail_init, fill=fill, service=service) + (
        f";; version {version}\n" if version else ""
    )
    wasm: bytes | bytearray = wasmtime.wat2wasm(wat)
    if version:  # a distinct binary per version: a custom section with the number
        wasm = (
            bytes(wasm)
            + b"\x00"
            + bytes([len(b"v") + 1 + 4])
            + b"\x01v"
            + version.to_bytes(4, "little")
        )
    (directory / f"{name}.wasm").write_bytes(wasm)
    manifest = directory / f"{name}.toml"
    manifest.write_text(f'name = "{name}"\nwasm = "{name}.wasm"\npoll_interval_ms = {interval_ms}\n'
                        f"[limits]\nmemory_pages = {max(pages, 1) + 1}\ndeadline_ms = 200\n"
                        f"report_bytes = 64\n"
                        + (f'[imc]\noffer = ["{service}"]\n' if service is not None else ""))
    return manifest
