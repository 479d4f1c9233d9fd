"""The fused fast path of ``wasi_usb.bulk_transfer``: shim, guard and host in one function.

Contract:
- `fused_bulk_transfer(guard, mem, fail, generic)` returns a raw import function with the
  generated shim's signature ``(handle, endpoint, data, data_len, timeout, ret) -> errno``, or
  ``generic`` itself when the guard's host is not a `UsbHost` (no ``bulk_plans``).
- It handles only a transfer every layer has already accepted: the guard has checked
  ``(handle, endpoint)`` against the grants (`UsbGuard._ep_ok`, kept until the handle is
  closed) and the host has checked the endpoint against the handle's configuration, alternate
  settings and claims (``UsbHost.bulk_plans``, dropped whenever one of those changes). It then
  checks what the layers check per call — ``ret`` and ``data`` inside guest memory, the length
  against the guard's and host's transfer quotas and the copy quota, IN of a non-empty buffer —
  and hands anything else, before any I/O, to ``generic`` (the generated shim → guard → host
  chain), which produces the errno, audit record or trap that chain defines. So both paths
  give the same results and errors; the fused one only skips re-deciding what was decided.
- The I/O and what follows run as in the chain: the timeout is capped at the per-call deadline
  (0 stays 0) and 0 becomes the host's default; IN hands the backend's bytes to guest memory in
  one copy (``overflow`` if the device sent more than asked), OUT reads the guest buffer once;
  the count goes to ``ret``. Any exception becomes ``fail(exc, "bulk_transfer")``, as in the
  shim. Guest memory is reached through `GuestMemory.hot()` (pinned for the call, or its C
  accessors, which check the same bounds on each access).
- When ``mem`` has C accessors (``mem.native``) and ``c_version`` (the default), the function
  returned is `_native.fused_bulk`, this same function written in C (kernel/_cnative.c),
  which the native trampoline runs without boxing its arguments; ``c_version=False`` gives
  the Python one. Both are tested against the generic chain.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from wasi_hw import HwError

__all__ = ["fused_bulk_transfer"]

_MASK32 = 0xFFFFFFFF
_U32 = struct.Struct("<I")


def fused_bulk_transfer(guard: Any, mem: Any, fail: Callable[[BaseException, str], int],
                        generic: Callable[..., int], *,
                        c_version: bool = True) -> Callable[..., int]:
    host = getattr(guard, "_host", None)
    plans = getattr(host, "bulk_plans", None)
    granted = getattr(guard, "_ep_ok", None)
    if host is None or plans is None or granted is None:
        return generic
    limit = min(guard._max_transfer, host.max_transfer, mem.max_copy)
    deadline = guard._deadline_ms
    default = host.default_timeout_ms
    native = getattr(mem, "native", None)
    if native is not None and c_version:    # this very function, in C
        from ._native import fused_bulk
        fn = fused_bulk(plans=plans, granted=granted, generic=generic, fail=fail,
                        pack=_U32.pack, memory=native, limit=limit, deadline_ms=deadline,
                        default_timeout_ms=default)
        if fn is not None:
            return fn
    pin, unpin, read, write = mem.hot()
    pack = _U32.pack

    def bulk_transfer(handle: int, endpoint: int, data: int, data_len: int, timeout: int,
                      ret: int) -> int:
        key = (handle, endpoint)
        plan = plans.get(key)
        if plan is None or key not in granted:
            return generic(handle, endpoint, data, data_len, timeout, ret)
        top = pin()
        try:
            data &= _MASK32
            n = data_len & _MASK32
            ret &= _MASK32
            if n > limit or data + n > top or ret + 4 > top or (n == 0 and plan[2]):
                return generic(handle, endpoint, data, data_len, timeout, ret)
            timeout &= _MASK32
            if timeout:
                timeout = min(timeout, deadline)
            backend_handle, io, is_in = plan
            try:
                if is_in:
                    got = io(backend_handle, endpoint, n, timeout or default)
                    m = len(got)
                    if m > n:
                        raise HwError("overflow",
                                      f"the device sent {m} bytes for a {n}-byte buffer")
                    if m:
                        write(data, got)
                else:
                    m = io(backend_handle, endpoint, read(data, n), timeout or default)
                write(ret, pack(m))
                return 0
            except Exception as exc:  # noqa: BLE001 — as the generated shim
                return fail(exc, "bulk_transfer")
        finally:
            unpin()

    return bulk_transfer
