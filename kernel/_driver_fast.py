"""The fused fast path of ``wasi_driver.report``: shim, guard and host in one function.

Contract:
- `fused_report(guard, mem, fail, generic)` returns a raw import function with the generated
  shim's signature ``(data, data_len) -> errno``, or ``generic`` itself when the guard's host
  is not a `DriverEnv` (no ``fused_report``).
- It takes a report every layer accepts by size — at most the guard's ``report_bytes``, the
  host's ``max_report`` and the copy quota — and hands anything larger to ``generic`` (the
  generated shim → guard → host chain), which produces the errno and audit record that
  chain defines. The bytes are read through `GuestMemory.hot()` (a region outside memory is
  the shim's `GuestFault`), decoded and delivered by the host's own ``fused_report()``
  function (its CBOR rules, its sink). Any exception becomes ``fail(exc, "report")``, as in
  the shim. tests/kernel/test_driver_fast.py runs both against the chain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._guard import DriverGuard

__all__ = ["fused_report"]

_MASK32 = 0xFFFFFFFF
_GUARD_REPORT = DriverGuard.report    # a guard that reports otherwise gets the chain


def fused_report(guard: Any, mem: Any, fail: Callable[[BaseException, str], int],
                 generic: Callable[..., int]) -> Callable[..., int]:
    host = getattr(guard, "_host", None)
    deliver = getattr(host, "fused_report", None)
    if deliver is None or type(guard).report is not _GUARD_REPORT:
        return generic
    deliver, host_max = deliver()
    limit = min(guard._m.limits.report_bytes, host_max, mem.max_copy)
    pin, unpin, read, _ = mem.hot()

    def report(data: int, data_len: int) -> int:
        n = data_len & _MASK32
        if n > limit:
            return generic(data, data_len)
        pin()
        try:
            deliver(read(data & _MASK32, n))
            return 0
        except Exception as exc:  # noqa: BLE001 — as the generated shim
            return fail(exc, "report")
        finally:
            unpin()

    return report
