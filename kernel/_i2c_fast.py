"""The C fast path of ``wasi_i2c.write_read`` / ``write`` / ``read``: the generic chain's
outcome, with the common case taken in C.

Contract:
- `fused_i2c(guard, mem, fail, generic)` returns ``{name: raw import function}`` for the names
  of ``generic`` (the generated shims of ``write_read``, ``write``, ``read``) it covers, or
  ``{}`` when the C extension is not available here (``WASI_HW_NATIVE=0``, the ctypes path),
  the guard's host is not an `I2cHost` (no ``fused_io``) or the guard is not an `I2cGuard`.
  Then the generic chain (generated shim → guard → host) serves every call.
- Each function is `_native.fused_i2c`: it takes only a call every layer would accept —
  the handle open in the guard (its compiled `I2cRule`, ``I2cGuard._rules``) and in the host
  (``I2cHost.fused_io``), the address admitted by the rule's address set and mode, every
  region inside guest memory, the byte total within the guard's, host's and copy quotas,
  and, under a register-restricted grant, the shape the rule's own tables allow
  (``write_read_limit`` / ``write_limit``: answers the rule's ``judge`` gave when it was
  compiled). Anything else goes, before any I/O and with nothing changed, to ``generic``,
  which decides it by calling the same rule and produces the errno, audit record or trap
  that chain defines. No rule is written here or in C: the C code looks answers up.
- The I/O runs as in `I2cHost`: the host's own op constructors, the backend transaction under
  the per-bus lock (the host's timed wait when busy), the host's ``deliver`` on any answer
  but the common shape, read data copied into guest memory only after the backend
  succeeded; any exception becomes ``fail(exc, name)``, as in the shim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _native

__all__ = ["fused_i2c"]


def fused_i2c(guard: Any, mem: Any, fail: Callable[[BaseException, str], int],
              generic: dict[str, Callable[..., int]]) -> dict[str, Callable[..., int]]:
    host = getattr(guard, "_host", None)
    fused_io = getattr(host, "fused_io", None)
    rules = guard.__dict__.get("_rules")
    native = getattr(mem, "native", None)
    if fused_io is None or rules is None or native is None or not _native.available():
        return {}
    handles, host_max, wait, write_op, read_op, deliver = fused_io()
    limit = min(guard._max_transfer, host_max, mem.max_copy)
    out: dict[str, Callable[..., int]] = {}
    for name, fn in generic.items():
        c_fn = _native.fused_i2c(name, rules=rules, handles=handles, fallback=fn, fail=fail,
                                 write_op=write_op, read_op=read_op, wait=wait, deliver=deliver,
                                 region=mem.region, memory=native, limit=limit)
        if c_fn is not None:
            out[name] = c_fn
    return out
