"""Clocks: where "now" comes from and how "wait" happens.

Contract (`Clock`): ``now_ns()`` returns monotonic nanoseconds; ``sleep_ns(ns)`` returns no
earlier than ``ns`` nanoseconds later (``ns < 0`` is a `ValueError`).

- `VirtualClock`: simulated time. Sleeping advances the time instantly and never blocks;
  device models read it to time their conversions, so a simulated run is deterministic and
  as fast as the CPU allows. Thread-safe.
- `RealClock`: ``time.monotonic_ns`` and ``time.sleep``.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "VirtualClock", "RealClock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time in nanoseconds, and a way to wait."""

    def now_ns(self) -> int: ...

    def sleep_ns(self, ns: int) -> None: ...


def _check(ns: int) -> int:
    ns = int(ns)
    if ns < 0:
        raise ValueError(f"cannot sleep a negative time ({ns} ns)")
    return ns


class VirtualClock:
    """Simulated time: `sleep_ns` (and `advance`) move it forward instantly."""

    __slots__ = ("_now", "_lock")

    def __init__(self, start_ns: int = 0) -> None:
        self._now = _check(start_ns)
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        return self._now

    def sleep_ns(self, ns: int) -> None:
        ns = _check(ns)
        with self._lock:
            self._now += ns

    advance = sleep_ns

    def __repr__(self) -> str:
        return f"VirtualClock(now_ns={self._now})"


class RealClock:
    """Wall-independent real time (`time.monotonic_ns`); sleeping blocks the thread."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def sleep_ns(self, ns: int) -> None:
        ns = _check(ns)
        deadline = time.monotonic_ns() + ns
        while True:  # time.sleep may return early on some platforms
            left = deadline - time.monotonic_ns()
            if left <= 0:
                return
            time.sleep(left / 1e9)

    def __repr__(self) -> str:
        return "RealClock()"
