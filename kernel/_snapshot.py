"""Snapshots of a driver instance between calls: its linear memory and mutable globals.

Contract:
- `migratable(wasm)` returns the module with every mutable global it defines but does not
  export exported as ``__wasihw_global_<index>`` (exports are added, nothing else changes),
  so a snapshot can read and restore all of its state; a module without such globals comes
  back unchanged. Malformed or unparseable wasm raises `LoadError`.
- `take(instance)` is called between calls into the guest (never during one, the kernel loop
  guarantees it): a `Snapshot` of the memory's current bytes and every exported mutable
  global's value by export name. Taking copies the memory once.
- `Snapshot.encode()` / `Snapshot.decode(data)`: a self-describing byte image (CBOR header:
  pages, globals, which pages are not all zero; then those pages, raw) — a driver's mostly
  empty memory costs only its used pages; `decode` raises `LoadError` for anything that is not
  such an image.
- `restore(instance, snapshot)` grows the fresh instance's memory to the snapshot's size —
  a `LoadError` when that is above the manifest's ``limits.memory_pages`` (snapshots stay
  bounded by the module's memory limit) — writes the bytes and sets the globals; a global the
  snapshot names that the instance lacks, or of another type, is a `LoadError`.
- ``Snapshot.offers``: the IMC services the instance offered, as (service, serve buffer
  pointer, length) — filled by `Kernel.snapshot`, carried by the image, and re-offered by the
  kernel after a restore (through the same offer rule as a fresh ``offer``), since a restored
  instance never runs the ``init()`` that offered them.
"""

from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass, field
from typing import Any, cast

import cbor2
import wasmtime

from ._sandbox import DriverInstance, LoadError

__all__ = ["Snapshot", "take", "restore", "migratable", "GLOBAL_PREFIX"]

GLOBAL_PREFIX = "__wasihw_global_"
_MAGIC = b"WHSNAP1\n"
_PAGE = 65536
_ZERO_PAGE = bytes(_PAGE)


@dataclass(frozen=True)
class Snapshot:
    """A driver's state between calls: memory bytes and mutable globals (name → (type, value))."""

    memory: bytes
    globals: dict[str, tuple[str, Any]] = field(default_factory=dict)
    offers: tuple[tuple[str, int, int], ...] = ()

    @property
    def pages(self) -> int:
        return len(self.memory) // _PAGE

    def encode(self) -> bytes:
        mem = memoryview(self.memory)
        used = [i for i in range(self.pages) if mem[i * _PAGE:(i + 1) * _PAGE] != _ZERO_PAGE]
        head = cbor2.dumps({"pages": self.pages, "used": used,
                            "globals": {k: [t, v] for k, (t, v) in self.globals.items()},
                            "offers": [list(o) for o in self.offers]})
        return b"".join((_MAGIC, struct.pack("<I", len(head)), head,
                         *(mem[i * _PAGE:(i + 1) * _PAGE] for i in used)))

    @classmethod
    def decode(cls, data: bytes | memoryview) -> Snapshot:
        data = memoryview(data)
        if bytes(data[:len(_MAGIC)]) != _MAGIC or len(data) < len(_MAGIC) + 4:
            raise LoadError("not a wasi-hw snapshot image")
        (n,) = struct.unpack_from("<I", data, len(_MAGIC))
        start = len(_MAGIC) + 4
        try:
            head = cbor2.loads(bytes(data[start:start + n]))
            pages = int(head["pages"])
            used = [int(i) for i in head["used"]]
            globs = {str(k): (str(v[0]), v[1]) for k, v in head["globals"].items()}
            offers = tuple((str(o[0]), int(o[1]), int(o[2])) for o in head.get("offers", ()))
        except Exception as err:
            raise LoadError(f"snapshot header is malformed: {err}") from None
        body = data[start + n:]
        if len(body) != len(used) * _PAGE or any(not 0 <= i < pages for i in used) or \
                len(set(used)) != len(used):
            raise LoadError(f"snapshot holds {len(body)} bytes for pages {used[:8]}…, "
                            f"header says {len(used)} of {pages} pages")
        memory = bytearray(pages * _PAGE)
        for k, i in enumerate(used):
            memory[i * _PAGE:(i + 1) * _PAGE] = body[k * _PAGE:(k + 1) * _PAGE]
        return cls(bytes(memory), globs, offers)


def _globals(instance: DriverInstance) -> dict[str, wasmtime.Global]:
    exports = instance.instance.exports(instance.store)
    out = {}
    for name, ext in exports._extern_map.items():    # wasmtime-py: name → Extern
        if isinstance(ext, wasmtime.Global) and ext.type(instance.store).mutable:
            out[name] = ext
    return out


def take(instance: DriverInstance) -> Snapshot:
    """The state of `instance` between calls (memory copied once)."""
    store = instance.store
    memory = cast(wasmtime.Memory, instance.instance.exports(store)["memory"])
    size = memory.data_len(store)
    data = ctypes.string_at(memory.data_ptr(store), size)
    globs = {}
    for name, g in _globals(instance).items():
        globs[name] = (str(g.type(store).content), g.value(store))
    return Snapshot(data, globs)


def restore(instance: DriverInstance, snap: Snapshot) -> None:
    """Put `snap` into the fresh `instance` (before any call into it)."""
    store = instance.store
    limit = instance.sandbox.manifest.limits.memory_pages
    if snap.pages > limit:
        raise LoadError(f"snapshot has {snap.pages} pages of memory, above the manifest's "
                        f"limits.memory_pages = {limit}")
    memory = cast(wasmtime.Memory, instance.instance.exports(store)["memory"])
    have = memory.data_len(store) // _PAGE
    if snap.pages > have:
        try:
            memory.grow(store, snap.pages - have)
        except wasmtime.WasmtimeError as err:
            raise LoadError(f"cannot grow memory to {snap.pages} pages: {err}") from None
    elif snap.pages < have:
        raise LoadError(f"snapshot has {snap.pages} pages, the fresh instance already {have}")
    ctypes.memmove(memory.data_ptr(store), snap.memory, len(snap.memory))
    targets = _globals(instance)
    for name, (ty, value) in snap.globals.items():
        g = targets.get(name)
        if g is None or str(g.type(store).content) != ty:
            raise LoadError(f"snapshot global {name!r} ({ty}) has no match in the module")
        g.set_value(store, value)


# -- making every mutable global reachable --------------------------------------------------

def _uleb(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(b):
            raise LoadError("wasm: truncated LEB128")
        byte = b[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def _enc_uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _skip_name(b: bytes, i: int) -> int:
    n, i = _uleb(b, i)
    return i + n


def _skip_limits(b: bytes, i: int) -> int:
    flags = b[i]
    _, i = _uleb(b, i + 1)
    if flags & 1:
        _, i = _uleb(b, i)
    return i


def _skip_valtype(b: bytes, i: int) -> int:
    t = b[i]
    if t in (0x63, 0x64):              # (ref null? ht): a heap type follows
        _, i = _uleb(b, i + 1)
        return i
    return i + 1


_SIMPLE_CONST_OPS = {0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E}   # extended-const arithmetic


def _skip_const_expr(b: bytes, i: int) -> int:
    while True:
        if i >= len(b):
            raise LoadError("wasm: truncated constant expression")
        op = b[i]
        i += 1
        if op == 0x0B:
            return i
        if op in (0x41, 0x42, 0x23, 0xD2, 0xD0):   # i32/i64.const, global.get, ref.func/null
            _, i = _uleb(b, i)
        elif op == 0x43:
            i += 4
        elif op == 0x44:
            i += 8
        elif op == 0xFD:                          # v128.const
            _, i = _uleb(b, i)
            i += 16
        elif op not in _SIMPLE_CONST_OPS:
            raise LoadError(f"wasm: unsupported opcode {op:#x} in a global's initialiser")


def migratable(wasm: bytes) -> bytes:
    """`wasm` with every non-exported mutable global it defines exported (see the contract)."""
    b = bytes(wasm)
    if b[:4] != b"\0asm" or len(b) < 8:
        raise LoadError("not a wasm binary module")
    sections: list[tuple[int, int, int, int]] = []   # (id, header start, content start, end)
    i = 8
    while i < len(b):
        sid = b[i]
        size, j = _uleb(b, i + 1)
        if j + size > len(b):
            raise LoadError("wasm: section runs past the end")
        sections.append((sid, i, j, j + size))
        i = j + size
    imported_globals = 0
    mutable: list[int] = []
    exported: set[int] = set()
    export_sec = None
    for sid, h, s, e in sections:
        if sid == 2:                                   # imports
            n, i = _uleb(b, s)
            for _ in range(n):
                i = _skip_name(b, _skip_name(b, i))
                kind = b[i]
                i += 1
                if kind == 0:
                    _, i = _uleb(b, i)
                elif kind == 1:
                    i = _skip_limits(b, _skip_valtype(b, i))
                elif kind == 2:
                    i = _skip_limits(b, i)
                elif kind == 3:
                    i = _skip_valtype(b, i) + 1
                    imported_globals += 1
                elif kind == 4:
                    _, i = _uleb(b, i + 1)
                else:
                    raise LoadError(f"wasm: unknown import kind {kind}")
        elif sid == 6:                                 # globals
            n, i = _uleb(b, s)
            for k in range(n):
                i = _skip_valtype(b, i)
                if b[i] & 1:
                    mutable.append(imported_globals + k)
                i = _skip_const_expr(b, i + 1)
        elif sid == 7:                                 # exports
            export_sec = (h, s, e)
            n, i = _uleb(b, s)
            for _ in range(n):
                i = _skip_name(b, i)
                kind = b[i]
                idx, i = _uleb(b, i + 1)
                if kind == 3:
                    exported.add(idx)
    missing = [g for g in mutable if g not in exported]
    if not missing:
        return b
    if export_sec is None:
        raise LoadError("wasm: no export section (a driver exports its memory)")
    head_start, s, e = export_sec
    n, body = _uleb(b, s)
    extra = b"".join(_enc_uleb(len(name)) + name + b"\x03" + _enc_uleb(g)
                     for g in missing for name in [f"{GLOBAL_PREFIX}{g}".encode()])
    content = _enc_uleb(n + len(missing)) + b[body:e] + extra
    return b[:head_start] + b"\x07" + _enc_uleb(len(content)) + content + b[e:]
