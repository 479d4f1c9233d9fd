"""Ahead-of-time compilation cache for driver modules.

Contract:
- An entry is keyed by sha256(wasm bytes) and the engine fingerprint (wasmtime version +
  engine settings, see `KernelEngine`): `<root>/<wasm-sha256[:32]>-<fingerprint>.cwasm` plus a
  sidecar `.json` that *we* write at compile time, recording the sha256 of the `.cwasm` bytes,
  the wasm digest, the wasmtime version and the engine settings.
- Loading reads the `.cwasm` bytes once, checks them against the sidecar's digest and only then
  hands *those same bytes* to `Module.deserialize` (no window between check and load). An entry
  without a sidecar, with a mismatched digest, version or settings, or that fails to
  deserialize is never trusted: the wasm is recompiled and the entry rewritten.
- Sealing (the cheap re-check): hashing a 130 KB `.cwasm` and deserializing it from a copy costs
  ~0.3 ms per load, most of a cached start. When a load has verified the digest and the file's
  last change (mtime, ctime) lies at least `SETTLE_S` (2 s) in the past, the sidecar is
  rewritten with the file's identity — device, inode, size, mtime_ns, ctime_ns — as
  ``cwasm_stat``. A later load opens the `.cwasm`, `fstat`s the open file and, if the identity
  equals the seal, deserializes that very file (through its descriptor, memory-mapped by
  wasmtime) without hashing it. Any change to the file after the seal moves its ctime (which a
  process cannot set back) past the recorded one — the settle window is longer than the
  timestamp granularity of Linux filesystems (coarse clock ticks; 1–2 s on ext3/FAT) — and a
  replaced file has another inode, so a modified, replaced or foreign `.cwasm` falls back to the
  full digest check (and is recompiled if it fails). Trade-off: a sealed entry is trusted on
  its metadata, not its bytes — corruption below the filesystem that leaves metadata
  untouched (bit rot on the medium) is not detected, and a same-user process that rewrites the
  file *and* resets the system clock could pass; both are outside what the digest defends
  against anyway (whoever can write the private directory can rewrite the sidecar too).
- With ``describe`` (`AotCache(engine, root, describe=…)`; the kernel passes
  `_sandbox.module_interface`), the sidecar also records ``describe(module)`` at compile time
  and `LoadedModule.interface` returns it on a cache hit (made afresh for an entry that lacks
  it), so what is read of a module's types is read once per compile, not per load. It is as
  trusted as the `.cwasm` beside it (whoever can write one can write the other); its reader
  checks its shape.
- Writes are atomic (temporary file in the same directory + `os.replace`); the `.cwasm` lands
  before its sidecar, so a crash leaves an unrecorded entry, which is recompiled.
- The directory is created private (0700). A directory owned by another user or writable by
  group/others is neither read nor written (someone else could plant a consistent
  `.cwasm` + sidecar pair there): every load compiles.
- Targets: the engine fingerprint (hence the key) and the sidecar's engine settings include
  the target triple the code was compiled for (`KernelEngine.target`). Before any `.cwasm`
  reaches wasmtime, its ELF header's machine is compared with the engine's architecture: a
  `.cwasm` for another architecture is refused (``why`` says "compiled for x86_64, this
  machine is aarch64") and recompiled, never loaded. An engine for another machine
  (`KernelEngine.runs_here` False) only `compile`s — entries for a Pi written on a laptop
  that can compile for it; its `load` raises `UserError`.
- The default root is `$WASI_HW_CACHE`, else `$XDG_CACHE_HOME/wasi-hw/aot`, else
  `~/.cache/wasi-hw/aot`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import wasmtime

from wasi_hw import UserError

from ._engine import WASMTIME_VERSION, KernelEngine, target_arch

__all__ = ["AotCache", "LoadedModule", "default_cache_dir", "SETTLE_S", "cwasm_arch",
           "foreign_cwasm", "cache_dir_problem"]

# ELF e_machine values of the architectures wasmtime's Cranelift emits
_ELF_MACHINES = {62: "x86_64", 183: "aarch64", 243: "riscv64", 22: "s390x"}


def cwasm_arch(head: bytes) -> str | None:
    """The architecture a `.cwasm` (an ELF object) was compiled for, from its first 20
    bytes; None when they are no 64-bit little-endian ELF header of a known machine."""
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    if head[4] != 2 or head[5] != 1:           # ELFCLASS64, little-endian
        return None
    return _ELF_MACHINES.get(int.from_bytes(head[18:20], "little"))


def foreign_cwasm(head: bytes, engine: KernelEngine) -> str | None:
    """Why a `.cwasm` starting with `head` must not be handed to `engine`, or None."""
    want = target_arch(engine.target)
    if want not in _ELF_MACHINES.values():
        return None                            # e.g. pulley: wasmtime's own check decides
    got = cwasm_arch(head)
    if got is None:
        return "not a compiled module (no ELF header of a known machine)"
    if got != want:
        return f"compiled for {got}, this engine is {want}: refused, never loaded"
    return None

#: A `.cwasm` unchanged for this long after a verified load is sealed (module docstring).
SETTLE_S = 2.0


def cache_dir_problem(root: Path, uid: int | None = None) -> str | None:
    """None if the cache directory `root` is ours (`uid`'s) alone or absent, else why it cannot
    be trusted: anyone who can write there could plant a matching `.cwasm` + sidecar pair."""
    try:
        st = Path(root).stat()
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"cache directory unusable: {err}"
    if uid is None and hasattr(os, "getuid"):
        uid = os.getuid()
    if uid is not None and st.st_uid != uid:
        return f"cache directory {root} is owned by another user"
    if st.st_mode & 0o022:
        return f"cache directory {root} is writable by others"
    return None


def default_cache_dir() -> Path:
    env = os.environ.get("WASI_HW_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wasi-hw" / "aot"


@dataclass(frozen=True)
class LoadedModule:
    """A compiled module and how it was obtained."""

    module: wasmtime.Module
    wasm_sha256: str
    source: str            # "cache" (verified .cwasm) or "compiled"
    seconds: float         # time to deserialize or to compile
    cwasm: Path | None     # the cache entry, if one was written or read
    why: str = ""          # why a compile happened when an entry existed ("digest mismatch", …)
    interface: Any = None  # ``describe(module)``: recorded with the entry, or made at compile


class AotCache:
    """Compile-once cache of `.cwasm` files for one `KernelEngine`."""

    def __init__(self, engine: KernelEngine, root: Path | str | None = None, *,
                 describe: Callable[[wasmtime.Module], Any] | None = None) -> None:
        self.engine = engine
        self.root = Path(root) if root is not None else default_cache_dir()
        self.describe = describe

    def paths(self, wasm_sha256: str) -> tuple[Path, Path]:
        stem = f"{wasm_sha256[:32]}-{self.engine.fingerprint}"
        return self.root / f"{stem}.cwasm", self.root / f"{stem}.json"

    def _private(self) -> str | None:
        return cache_dir_problem(self.root)

    def load(self, wasm: bytes) -> LoadedModule:
        """The module for `wasm`: a verified cache entry, else a fresh compile (then stored).

        Raises `wasmtime.WasmtimeError` if `wasm` is not a valid module.
        """
        if not self.engine.runs_here:
            raise UserError(f"an engine for {self.engine.target} only compiles; "
                            "its modules run on that machine")
        digest = hashlib.sha256(wasm).hexdigest()
        cwasm, sidecar = self.paths(digest)
        checked = self._private() or self._check(digest, cwasm, sidecar)
        why = checked if isinstance(checked, str) else ""
        if not why:
            got, record = checked
            t0 = time.perf_counter()
            try:
                if isinstance(got, int):       # a sealed entry's open descriptor
                    module = _deserialize_fd(self.engine.engine, got)
                else:
                    module = wasmtime.Module.deserialize(self.engine.engine, got)
            except wasmtime.WasmtimeError as err:
                why = f"deserialize failed: {err}"
            else:
                interface = record.get("interface")
                if interface is None and self.describe is not None:
                    interface = self.describe(module)      # an entry from before it was kept
                return LoadedModule(module, digest, "cache", time.perf_counter() - t0, cwasm,
                                    interface=interface)
        t0 = time.perf_counter()
        module = wasmtime.Module(self.engine.engine, wasm)
        seconds = time.perf_counter() - t0
        interface = self.describe(module) if self.describe is not None else None
        stored = self._store(digest, module, cwasm, sidecar, interface)
        return LoadedModule(module, digest, "compiled", seconds, cwasm if stored else None, why,
                            interface)

    def compile(self, wasm: bytes) -> LoadedModule:
        """Compile `wasm` and (re)write its entry, whatever the cache holds."""
        digest = hashlib.sha256(wasm).hexdigest()
        cwasm, sidecar = self.paths(digest)
        t0 = time.perf_counter()
        module = wasmtime.Module(self.engine.engine, wasm)
        seconds = time.perf_counter() - t0
        interface = self.describe(module) if self.describe is not None else None
        stored = self._store(digest, module, cwasm, sidecar, interface)
        return LoadedModule(module, digest, "compiled", seconds, cwasm if stored else None,
                            interface=interface)

    # -- internals -------------------------------------------------------------------------

    def _check(self, digest: str, cwasm: Path, sidecar: Path) -> tuple[bytes | int, dict] | str:
        """(the entry's verified bytes or an open descriptor of its sealed file — the caller
        closes it —, the sidecar's record), or why it cannot be used."""
        try:
            record = json.loads(sidecar.read_text())
        except FileNotFoundError:
            return "no entry" if not cwasm.exists() else "unrecorded entry"
        except (OSError, ValueError) as err:
            return f"unreadable sidecar: {err}"
        if not isinstance(record, dict):
            return "malformed sidecar"
        expect = {
            "wasm_sha256": digest,
            "wasmtime": WASMTIME_VERSION,
            "engine": self.engine.config,
        }
        for key, value in expect.items():
            if record.get(key) != value:
                return f"sidecar {key} mismatch"
        try:
            fd = os.open(cwasm, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as err:
            return f"unreadable entry: {err}"
        try:
            st = os.fstat(fd)
            ident = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            foreign = foreign_cwasm(os.pread(fd, 20, 0), self.engine)
            if foreign is not None:
                return foreign
            if record.get("cwasm_stat") == ident:
                result = fd                  # sealed and untouched since: no re-hash
                fd = -1
                return result, record
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read()
        except OSError as err:
            return f"unreadable entry: {err}"
        finally:
            if fd >= 0:
                os.close(fd)
        if foreign_cwasm(data[:20], self.engine) is not None:   # changed since the peek
            return "digest mismatch"
        if len(data) != st.st_size or hashlib.sha256(data).hexdigest() != record.get("cwasm_sha256"):
            return "digest mismatch"
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) >= SETTLE_S * 1e9:
            self._seal(sidecar, record, ident)
        return data, record

    def _seal(self, sidecar: Path, record: dict, ident: list[int]) -> None:
        """Record the verified, settled `.cwasm`'s identity (module docstring); best effort."""
        try:
            _atomic_write(sidecar, json.dumps({**record, "cwasm_stat": ident},
                                              sort_keys=True).encode())
        except OSError:
            pass

    def _store(self, digest: str, module: wasmtime.Module, cwasm: Path, sidecar: Path,
               interface: Any = None) -> bool:
        data = bytes(module.serialize())
        record: dict[str, Any] = {
            "wasm_sha256": digest,
            "cwasm_sha256": hashlib.sha256(data).hexdigest(),
            "wasmtime": WASMTIME_VERSION,
            "engine": self.engine.config,
            "created": time.time(),
        }
        if interface is not None:
            record["interface"] = interface
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self._private() is not None:
                return False                 # never write where others could have written
            _atomic_write(cwasm, data)
            _atomic_write(sidecar, json.dumps(record, sort_keys=True).encode())
        except OSError:
            return False  # a read-only cache only costs speed
        return True


def _deserialize_fd(engine: wasmtime.Engine, fd: int) -> wasmtime.Module:
    """Deserialize the file open as ``fd`` (closing it): memory-mapped by wasmtime through
    ``/proc/self/fd`` — the very inode that was checked — else read from the descriptor."""
    try:
        proc = f"/proc/self/fd/{fd}"
        if os.path.exists(proc):
            return wasmtime.Module.deserialize_file(engine, proc)
        with os.fdopen(os.dup(fd), "rb") as f:
            return wasmtime.Module.deserialize(engine, f.read())
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
