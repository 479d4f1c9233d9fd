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
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from importlib.metadata import version

import wasmtime

from . import _native

__all__ = ["KernelEngine", "WASMTIME_VERSION"]

WASMTIME_VERSION = version("wasmtime")

_MEMORY_RESERVATION = 16 << 20
_MEMORY_GUARD = 64 << 10


class KernelEngine:
    """One wasmtime Engine with epoch interruption and its ticker thread."""

    def __init__(self, *, tick_ms: float = 5.0) -> None:
        if not tick_ms > 0:
            raise ValueError("tick_ms must be positive")
        self.tick_ms = float(tick_ms)
        self.config = {
            "epoch_interruption": True,
            "memory_reservation": _MEMORY_RESERVATION,
            "memory_guard_size": _MEMORY_GUARD,
            "memory_reservation_for_growth": 0,
            "cranelift_opt_level": "speed",
            "target": "native",
        }
        cfg = wasmtime.Config()
        cfg.epoch_interruption = True
        cfg.memory_reservation = _MEMORY_RESERVATION
        cfg.memory_guard_size = _MEMORY_GUARD
        cfg.memory_reservation_for_growth = 0
        cfg.cranelift_opt_level = "speed"
        self.engine = wasmtime.Engine(cfg)
        blob = json.dumps({"wasmtime": WASMTIME_VERSION, **self.config}, sort_keys=True)
        self.fingerprint = hashlib.sha256(blob.encode()).hexdigest()[:16]
        self._stop = threading.Event()
        self._native_ticker = _native.ticker(self.engine, self.tick_ms)
        self._ticker = threading.Thread(target=self._tick, name="wasi-hw-epoch", daemon=True)
        if self._native_ticker is None:
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

    def __enter__(self) -> KernelEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
