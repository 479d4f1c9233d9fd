"""The kernel's one wasmtime Engine and its epoch ticker.

Contract:
- `KernelEngine(tick_ms=...)` builds exactly one `wasmtime.Engine` with epoch interruption on
  and a small per-instance address-space reservation (16 MiB + 64 KiB guard instead of ~4 GB).
  The settings are recorded in `config` (a sorted dict) and folded into `fingerprint`, which
  the AoT cache uses in its key: a `.cwasm` is only ever loaded into an engine of the same
  wasmtime version and the same settings.
- A ticker thread calls `engine.increment_epoch()` every `tick_ms`: a C thread that never
  takes the GIL (`_native.ticker`) where available, else a Python daemon thread. A guest call given
  `deadline_ticks(ms)` ticks runs at least `ms` and is interrupted (trap code INTERRUPT) no
  later than the deadline plus one tick after it started.
- Everything that belongs to an Engine (Module, Linker, FuncType, Store) must be created
  from *this* engine: wasmtime objects are never shared across engines.
- `target`: the machine the engine compiles for, as a target triple; ``config["target"]`` is
  always the resolved triple (`host_target()` when none is given), so a `.cwasm` compiled
  elsewhere *for* this machine has this machine's fingerprint. An engine for another target
  (`runs_here` False) only compiles: it has no ticker, and the kernel and the AoT cache refuse
  to load or run anything with it. A wasmtime build lacks the Cranelift backends of other
  architectures (the x86_64 wheel of 50.0.1 aborts the process on
  ``Config.target = "aarch64-…"``), so a foreign target is first tried in a child process
  (`check_target`) and refused with `UserError` when this build cannot compile for it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import platform
import subprocess
import sys
import threading
from importlib.metadata import version

import wasmtime

from . import _native

__all__ = ["KernelEngine", "WASMTIME_VERSION", "host_target", "target_arch", "check_target"]

WASMTIME_VERSION = version("wasmtime")

_MEMORY_RESERVATION = 16 << 20
_MEMORY_GUARD = 64 << 10

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64",
                 "x86_64": "x86_64", "riscv64": "riscv64", "s390x": "s390x"}


def host_target() -> str:
    """This machine's target triple, as wasmtime names it (``x86_64-unknown-linux-gnu``)."""
    machine = platform.machine().lower()
    arch = _ARCH_ALIASES.get(machine, machine)
    if arch == "riscv64":
        arch = "riscv64gc"
    if sys.platform == "darwin":
        return f"{arch}-apple-darwin"
    if sys.platform == "win32":
        return f"{arch}-pc-windows-msvc"
    return f"{arch}-unknown-linux-gnu"


def target_arch(target: str) -> str:
    """The architecture part of a triple: ``aarch64``, ``x86_64``, ``riscv64``, ``pulley64`` …"""
    arch = target.split("-", 1)[0].lower()
    return "riscv64" if arch.startswith("riscv64") else _ARCH_ALIASES.get(arch, arch)


_PROBE = """
import sys, wasmtime
cfg = wasmtime.Config()
try:
    cfg.target = sys.argv[1]
except wasmtime.WasmtimeError as err:
    print(str(err).splitlines()[0]); sys.exit(3)
wasmtime.Engine(cfg)
"""


@functools.lru_cache(maxsize=None)
def check_target(target: str) -> str | None:
    """None if this wasmtime build can compile for `target`, else why not (one line).
    Tried in a child process: an unsupported backend aborts the process that asks."""
    if target_arch(target) == target_arch(host_target()) and target == host_target():
        return None
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE, target], capture_output=True,
                           text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"cannot try target {target}: {err}"
    if r.returncode == 0:
        return None
    if r.returncode == 3:
        return f"unknown target {target!r}: {r.stdout.strip()}"
    if "Support for this target is disabled" in r.stderr:
        return (f"this wasmtime build ({WASMTIME_VERSION}, {host_target()}) has no "
                f"{target_arch(target)} compiler: compile on an {target_arch(target)} machine "
                f"(e.g. `wasi-hw compile` on the target itself)")
    return f"this wasmtime build cannot compile for {target} (probe exit {r.returncode})"


class KernelEngine:
    """One wasmtime Engine with epoch interruption and its ticker thread."""

    def __init__(self, *, tick_ms: float = 5.0, target: str | None = None) -> None:
        if not tick_ms > 0:
            raise ValueError("tick_ms must be positive")
        self.tick_ms = float(tick_ms)
        here = host_target()
        self.target = target or here
        self.runs_here = self.target == here
        if not self.runs_here:
            why = check_target(self.target)
            if why is not None:
                from wasi_hw import UserError
                raise UserError(why)
        self.config = {
            "epoch_interruption": True,
            "memory_reservation": _MEMORY_RESERVATION,
            "memory_guard_size": _MEMORY_GUARD,
            "memory_reservation_for_growth": 0,
            "cranelift_opt_level": "speed",
            "target": self.target,
        }
        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        cfg.memory_reservation = _MEMORY_RESERVATION
        cfg.memory_guard_size = _MEMORY_GUARD
        cfg.memory_reservation_for_growth = 0
        cfg.cranelift_opt_level = "speed"
        if not self.runs_here:
            cfg.target = self.target
        self.engine = wasmtime.Engine(cfg)
        blob = json.dumps({"wasmtime": WASMTIME_VERSION, **self.config}, sort_keys=True)
        self.fingerprint = hashlib.sha256(blob.encode()).hexdigest()[:16]
        self._stop = threading.Event()
        self._native_ticker = _native.ticker(self.engine, self.tick_ms) if self.runs_here else None
        self._ticker = threading.Thread(target=self._tick, name="wasi-hw-epoch", daemon=True)
        if self._native_ticker is None and self.runs_here:
            self._ticker.start()

    def _tick(self) -> None:
        period = self.tick_ms / 1000.0
        while not self._stop.wait(period):
            self.engine.increment_epoch()

    def deadline_ticks(self, deadline_ms: float) -> int:
        """Epoch ticks for a deadline of `deadline_ms`: one more than the deadline spans, since
        the first tick may come at any moment — the guest gets at least `deadline_ms` and is
        stopped before `deadline_ms` + one tick."""
        return max(1, math.ceil(deadline_ms / self.tick_ms)) + 1

    def close(self) -> None:
        """Stop the ticker (the Engine itself is freed with its last user)."""
        self._stop.set()
        if self._native_ticker is not None:
            self._native_ticker.stop()
        if self._ticker.is_alive() and self._ticker is not threading.current_thread():
            self._ticker.join(timeout=1.0)

    def __enter__(self) -> "KernelEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
