"""The fused fast path of ``wasi_i2c.write_read`` / ``write`` / ``read``: shim, guard and host
in one function each.

Contract:
- `fused_i2c(guard, mem, fail, generic)` returns ``{name: raw import function}`` for the names
  of ``generic`` (the generated shims of ``write_read``, ``write``, ``read``, with their
  signatures) it covers, or ``{}`` when the guard's host is not an `I2cHost` (no ``fused_io``)
  or the guard is not an `I2cGuard`.
- It handles only a call every layer would accept: the handle is open in the guard (its
  bus's grant resolved at ``open``: ``I2cGuard._rules``) and in the host (backend, bus and
  per-bus lock: ``I2cHost.fused_io``), both looked up per call (a closed handle is gone from
  both); the mode is 7-bit, or 10-bit under a ``ten_bit`` grant; the address is granted and
  fits the mode; every region lies inside guest memory; the byte total is within the guard's
  and host's transfer quotas and the copy quota; and under a register-restricted grant the
  registers pass the guard's rules (the same decisions as ``I2cGuard._registers``, on the
  same data, with the same register-pointer update, made before any I/O as the guard does).
  Anything else — denials, faults, bad handles, quotas, unusual shapes — goes, before any
  I/O and with nothing changed, to ``generic`` (the generated shim → guard → host chain),
  which produces the errno, audit record or trap that chain defines. So both paths give the
  same results, memory effects, audit entries, register pointers and backend traffic; the
  fused one only skips re-deciding through three layers what each would decide.
- Guest memory is reached through `GuestMemory.hot()`: its C accessors where the kernel
  built them (the same bounds, checked on each access instead of pinned).
- When ``mem`` has C accessors (``mem.native``) and ``c_version`` (the default), each function
  returned is `_native.fused_i2c`: the same function written in C (kernel/_cnative.c), run by
  the native trampoline without boxing its arguments; every call it does not take goes,
  before any I/O, to the Python function below it. ``c_version=False``
  gives the Python functions. Both are tested against the generic chain.
- The I/O and what follows run as in `I2cHost`: the wire is built by the host's own op
  constructors, the backend transaction runs under the per-bus lock (the host's timed wait
  when it is busy), the answer is checked as the host checks it (the host's ``deliver`` on
  anything but the common shape) and read data is copied into guest memory only after the
  backend succeeded. Any exception becomes ``fail(exc, name)``, as in the shim. Guest memory
  is pinned for the call, as in the shim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["fused_i2c"]

_MASK32 = 0xFFFFFFFF


def fused_i2c(guard: Any, mem: Any, fail: Callable[[BaseException, str], int],
              generic: dict[str, Callable[..., int]], *,
              c_version: bool = True) -> dict[str, Callable[..., int]]:
    host = getattr(guard, "_host", None)
    fused_io = getattr(host, "fused_io", None)
    rules = getattr(guard, "_rules", None)
    if fused_io is None or rules is None:
        return {}
    handles, host_max, wait, write_op, read_op, deliver = fused_io()
    buses = guard._buses
    pointers = guard._pointer
    limit = min(guard._max_transfer, host_max, mem.max_copy)
    pin, unpin, mread, mwrite = mem.hot()
    mregion = mem.region
    out: dict[str, Callable[..., int]] = {}

    def admit(b: int, a: int, m: int) -> tuple[Any, Any] | None:
        """(grant rule, host entry) when handle ``b`` is open in guard and host and address
        ``a`` in mode ``m`` is granted and fits the mode; None sends the call to the chain."""
        rule = rules.get(b)
        entry = handles.get(b)
        if rule is None or entry is None or a not in rule.addresses or \
                (a > 0x7F if m == 0 else (m != 1 or not rule.ten_bit or a > 0x3FF)):
            return None
        return rule, entry

    def transact(entry: Any, a: int, m: int, wire: list) -> Any:
        """The backend transaction under the bus lock (the host's timed wait when busy)."""
        backend, name, lock = entry
        if not lock.acquire(False):
            wait(lock, name)
        try:
            return backend.transaction(name, a, m == 1, wire)
        finally:
            lock.release()

    g_write_read = generic.get("write_read")
    if g_write_read is not None:
        def write_read(bus: int, address: int, mode: int, data: int, data_len: int,
                       buf: int, buf_len: int) -> int:
            b, a, m = bus & _MASK32, address & _MASK32, mode & _MASK32
            admitted = admit(b, a, m)
            if admitted is None:
                return g_write_read(bus, address, mode, data, data_len, buf, buf_len)
            rule, entry = admitted
            top = pin()
            try:
                dp, dn = data & _MASK32, data_len & _MASK32
                bp, n = buf & _MASK32, buf_len & _MASK32
                if dn + n > limit or dp + dn > top or bp + n > top:
                    return g_write_read(bus, address, mode, data, data_len, buf, buf_len)
                raw = mread(dp, dn)
                if rule.registers:
                    # the guard's short path: a pointer write, then an allowed read
                    if dn != 1:
                        return g_write_read(bus, address, mode, data, data_len, buf, buf_len)
                    ptr = raw[0]
                    if ptr not in rule.covered or n > rule.read_run[ptr]:
                        return g_write_read(bus, address, mode, data, data_len, buf, buf_len)
                    pointers[(buses[b], a)] = ptr + n
                try:
                    wire = [write_op(raw), read_op(n)]
                    results = transact(entry, a, m, wire)
                    if len(results) == 1 and len(results[0]) == n:
                        if n:
                            mwrite(bp, results[0])
                    else:
                        deliver((*entry, m == 1), results, ((mregion(bp, n),),))
                    return 0
                except Exception as exc:  # noqa: BLE001 — as the generated shim
                    return fail(exc, "write_read")
            finally:
                unpin()

        out["write_read"] = write_read

    g_write = generic.get("write")
    if g_write is not None:
        def write(bus: int, address: int, mode: int, data: int, data_len: int) -> int:
            b, a, m = bus & _MASK32, address & _MASK32, mode & _MASK32
            admitted = admit(b, a, m)
            if admitted is None:
                return g_write(bus, address, mode, data, data_len)
            rule, entry = admitted
            top = pin()
            try:
                dp, n = data & _MASK32, data_len & _MASK32
                if n > limit or dp + n > top:
                    return g_write(bus, address, mode, data, data_len)
                raw = mread(dp, n)
                if rule.registers:
                    ptr = _write_pointer(rule, raw, n)
                    if ptr is None:
                        return g_write(bus, address, mode, data, data_len)
                    if ptr >= 0:
                        pointers[(buses[b], a)] = ptr
                try:
                    wire = [write_op(raw)]
                    results = transact(entry, a, m, wire)
                    if type(results) is not list or results:
                        deliver((*entry, m == 1), results, ())
                    return 0
                except Exception as exc:  # noqa: BLE001 — as the generated shim
                    return fail(exc, "write")
            finally:
                unpin()

        out["write"] = write

    g_read = generic.get("read")
    if g_read is not None:
        def read(bus: int, address: int, mode: int, buf: int, buf_len: int) -> int:
            b, a, m = bus & _MASK32, address & _MASK32, mode & _MASK32
            admitted = admit(b, a, m)
            if admitted is None:
                return g_read(bus, address, mode, buf, buf_len)
            rule, entry = admitted
            top = pin()
            try:
                bp, n = buf & _MASK32, buf_len & _MASK32
                if n > limit or bp + n > top:
                    return g_read(bus, address, mode, buf, buf_len)
                if rule.registers:
                    # a read continues from the pointer this driver last set on the device
                    key = (buses[b], a)
                    ptr = pointers.get(key)
                    if ptr is None or ptr > 0xFF or n > rule.read_run[ptr]:
                        return g_read(bus, address, mode, buf, buf_len)
                    pointers[key] = ptr + n
                try:
                    wire = [read_op(n)]
                    results = transact(entry, a, m, wire)
                    if type(results) is list and len(results) == 1 and len(results[0]) == n:
                        if n:
                            mwrite(bp, results[0])
                    else:
                        deliver((*entry, m == 1), results, ((mregion(bp, n),),))
                    return 0
                except Exception as exc:  # noqa: BLE001 — as the generated shim
                    return fail(exc, "read")
            finally:
                unpin()

        out["read"] = read

    native = getattr(mem, "native", None)
    if native is not None and c_version:    # the common case in C, these functions behind it
        from ._native import fused_i2c as c_fused
        for name, fn in list(out.items()):
            c_fn = c_fused(name, rules=rules, handles=handles, buses=buses, pointers=pointers,
                           fallback=fn, fail=fail,
                           write_op=write_op, read_op=read_op, wait=wait, deliver=deliver,
                           region=mregion, memory=native, limit=limit)
            if c_fn is not None:
                out[name] = c_fn
    return out


def _write_pointer(rule: Any, data: bytes, n: int) -> int | None:
    """The register pointer after a Write of ``data`` that the guard's rules allow (-1: the
    pointer is left as it was), or None when the guard would deny it (the generic chain then
    audits the denial)."""
    if rule.write_pairs and n > 1:
        # register/value pairs: every even-indexed byte is a register that needs a "w" range
        if not rule.writable.issuperset(data[0:n - 1:2]):
            return None
        return data[n - 1] if n % 2 else data[n - 2] + 1
    if not n:
        return -1
    ptr = data[0]
    if n == 1:
        return ptr if ptr in rule.covered else None
    if n - 1 > rule.write_run[ptr]:
        return None
    return ptr + n - 1
