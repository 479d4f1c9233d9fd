"""The C fast path of ``wasi_usb.bulk_transfer``: the generic chain's outcome, with the
common case taken in C.

Contract:
- `fused_bulk_transfer(guard, mem, fail, generic)` returns a raw import function with the
  generated shim's signature ``(handle, endpoint, data, data_len, timeout, ret) -> errno``:
  `_native.fused_bulk` over ``generic``, or ``generic`` itself when the C extension is not
  available here (``WASI_HW_NATIVE=0``, the ctypes path) or the guard's host is not a
  `UsbHost` (no ``bulk_plans``).
- The C function takes only a transfer every layer has already accepted: the guard's
  decision for ``(handle, endpoint)`` (`UsbGuard._ep_ok`: the pairs its compiled `UsbRule`
  allowed, kept until the handle is closed — the C code looks the pair up, it decides
  nothing) and the host's plan for it (``UsbHost.bulk_plans``, dropped whenever the
  configuration, alternate settings or claims change); per call it checks ``ret`` and
  ``data`` inside guest memory, the length against the guard's, host's and copy quotas, and
  IN of a non-empty buffer. Anything else goes, before any I/O, to ``generic`` (shim → guard
  → host), which produces the errno, audit record or trap that chain defines.
- The I/O runs as in the chain: the timeout capped at the per-call deadline (0 stays 0, then
  the host's default); IN hands the backend's bytes to guest memory in one copy
  (``overflow`` if the device sent more than asked), OUT reads the guest buffer once; the
  count goes to ``ret``; any exception becomes ``fail(exc, "bulk_transfer")``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from . import _native

__all__ = ["fused_bulk_transfer"]

_U32 = struct.Struct("<I")


def fused_bulk_transfer(guard: Any, mem: Any, fail: Callable[[BaseException, str], int],
                        generic: Callable[..., int]) -> Callable[..., int]:
    host = getattr(guard, "_host", None)
    plans = getattr(host, "bulk_plans", None)
    granted = guard.__dict__.get("_ep_ok")
    native = getattr(mem, "native", None)
    if host is None or plans is None or granted is None or native is None:
        return generic
    fn = _native.fused_bulk(plans=plans, granted=granted, generic=generic, fail=fail,
                            pack=_U32.pack, memory=native,
                            limit=min(guard._max_transfer, host.max_transfer, mem.max_copy),
                            deadline_ms=guard._deadline_ms,
                            default_timeout_ms=host.default_timeout_ms)
    return generic if fn is None else fn
