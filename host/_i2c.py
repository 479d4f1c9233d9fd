"""`I2cHost`: the semantics of ``witx/wasi_i2c.witx``, once, for one driver instance.

Implements the generated ``WasiI2c`` protocol over one or more `I2cBackend` buses:

- ``open(name)``: the bus *name* maps to a backend bus through an explicit table given at
  construction (``{"i2c-1": backend}`` or ``{"env": (backend, "i2c-3")}``; a bare backend
  serves all of its ``buses()`` under their own names). Unknown → ``no_such_bus``. Returns
  a handle private to this instance; handles are never reused, so a closed or forged one is
  ``bad_handle``. More than ``max_handles`` open → ``no_mem``.
- ``transaction(bus, address, mode, operations)``: address checked against the mode
  (7-bit ≤ 0x7f, 10-bit ≤ 0x3ff, else ``invalid_argument``); an empty list is
  ``invalid_argument``; more than ``max_ops`` operations or ``max_transfer`` bytes in total is
  ``no_mem``. Adjacent operations of the same kind are merged (embedded-hal: no repeated
  START between them) and the backend runs the result as one transaction under a per-bus
  lock that is held for exactly that call — a driver cannot keep a bus between calls.
  Read data is written into the guest regions only after the backend succeeded.
- ``read`` / ``write`` / ``write_read``: one- and two-operation transactions, built directly
  (a write and a read never merge) with the same checks, lock and write-back.
- ``delay_ns(ns)``: at most ``max_delay_ns`` (else ``invalid_argument``, nothing waited);
  waits through the backend's ``delay_ns`` when one backend serves every bus (so traces and
  simulated time see it), else on ``clock``.

Grants are not checked here: the kernel wraps this object with its guard. Enum arguments
arrive lifted (the generated ``AddressMode`` / ``OpKind``); plain ints of the same values
are accepted too, anything else is ``invalid_argument``.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Union

from wasi_hw import HwError, wasi_i2c_bindings

from ._clock import Clock, RealClock
from ._i2c_backend import I2cBackend, Read, Write

__all__ = ["I2cHost"]

AddressMode = wasi_i2c_bindings.AddressMode
OpKind = wasi_i2c_bindings.OpKind
_OP_READ, _OP_WRITE = OpKind.READ, OpKind.WRITE

# (backend → bus name → lock), shared by every I2cHost so drivers serialise per real bus
_LOCKS: "weakref.WeakKeyDictionary[Any, dict[str, threading.Lock]]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _bus_lock(backend: Any, bus: str) -> threading.Lock:
    with _LOCKS_GUARD:
        try:
            per_backend = _LOCKS.setdefault(backend, {})
        except TypeError:  # not weak-referenceable: one lock table per host is still correct
            per_backend = {}
        return per_backend.setdefault(bus, threading.Lock())


BusTarget = Union[I2cBackend, "tuple[I2cBackend, str]"]


class I2cHost:
    """One driver's view of the I2C buses it may open (see the module docstring)."""

    def __init__(
        self,
        buses: Mapping[str, BusTarget] | I2cBackend,
        clock: Clock | None = None,
        *,
        max_handles: int = 8,
        max_ops: int = 64,
        max_transfer: int = 4096,
        max_delay_ns: int = 1_000_000_000,
        lock_timeout_s: float = 5.0,
    ) -> None:
        table: dict[str, tuple[I2cBackend, str]] = {}
        if isinstance(buses, Mapping):
            for name, target in buses.items():
                backend, bus = target if isinstance(target, tuple) else (target, name)
                table[str(name)] = (backend, str(bus))
        else:
            table = {name: (buses, name) for name in buses.buses()}
        self._buses = table
        backends = {id(b): b for b, _ in table.values()}
        self._delay_backend = next(iter(backends.values())) if len(backends) == 1 else None
        if clock is None:
            clock = getattr(self._delay_backend, "clock", None) or RealClock()
        self.clock = clock
        self._handles: dict[int, tuple[I2cBackend, str, threading.Lock]] = {}
        self._next = itertools.count(1)
        self._max_handles = max_handles
        self._max_ops = max_ops
        self._max_transfer = max_transfer
        self._max_delay_ns = max_delay_ns
        self._lock_timeout_s = lock_timeout_s

    @property
    def bus_names(self) -> list[str]:
        """The names ``open`` accepts."""
        return sorted(self._buses)

    # --- handles -------------------------------------------------------------------------
    def open(self, name: str) -> int:
        target = self._buses.get(name)
        if target is None:
            raise HwError("no_such_bus", f"no I2C bus named {name!r}")
        if len(self._handles) >= self._max_handles:
            raise HwError("no_mem", f"more than {self._max_handles} open I2C buses")
        handle = next(self._next) & 0xFFFFFFFF
        backend, bus = target
        self._handles[handle] = (backend, bus, _bus_lock(backend, bus))
        return handle

    def close(self, bus: int) -> None:
        if self._handles.pop(bus, None) is None:
            raise HwError("bad_handle", f"{bus} is not an open I2C bus")

    def close_all(self) -> None:
        """Drop every handle (the driver instance ended)."""
        self._handles.clear()

    # --- transactions --------------------------------------------------------------------
    def transaction(self, bus: int, address: int, mode: int, operations: Sequence[Any]) -> None:
        if not operations:
            raise HwError("invalid_argument", "empty transaction")
        if len(operations) > self._max_ops:
            raise HwError("no_mem", f"{len(operations)} operations exceed the quota of {self._max_ops}")
        ops: list[tuple[OpKind, Any]] = []
        for op in operations:
            try:
                kind = _OP_KINDS[op.kind]
            except (KeyError, TypeError):
                raise HwError("invalid_argument", f"operation kind {op.kind!r} is neither read nor write") from None
            ops.append((kind, op.buf))
        self._run(bus, address, mode, ops)

    def read(self, bus: int, address: int, mode: int, buf: Any) -> None:
        n = len(buf)
        target = self._target(bus, address, mode, n)
        self._deliver(target, self._exchange(target, address, [_read_op(n)]), ((buf,),))

    def write(self, bus: int, address: int, mode: int, data: bytes) -> None:
        target = self._target(bus, address, mode, len(data))
        self._deliver(target, self._exchange(target, address, [_write_op(data)]), ())

    def write_read(self, bus: int, address: int, mode: int, data: bytes, buf: Any) -> None:
        # a write and a read never merge: the wire is exactly [Write(data), Read(len(buf))]
        n = len(buf)
        target = self._target(bus, address, mode, len(data) + n)
        backend, name, lock, ten_bit = target
        wire = [_write_op(data), _read_op(n)]
        if not lock.acquire(False):
            self._wait(lock, name)
        try:
            results = backend.transaction(name, address, ten_bit, wire)
        finally:
            lock.release()
        if len(results) == 1 and len(results[0]) == n:   # the common case, checked inline
            if n:
                buf.write(results[0])
            return
        self._deliver(target, results, ((buf,),))

    def delay_ns(self, ns: int) -> None:
        if ns < 0 or ns > self._max_delay_ns:
            raise HwError("invalid_argument", f"delay of {ns} ns exceeds the bound of {self._max_delay_ns} ns")
        if self._delay_backend is not None:
            self._delay_backend.delay_ns(ns)
        else:
            self.clock.sleep_ns(ns)

    def fused_io(self) -> tuple[Any, ...]:
        """What the kernel's fused fast path (``wasi_hw.kernel._i2c_fast``) needs to do exactly
        what `read` / `write` / `write_read` do once every check has passed: ``(handles,
        max_transfer, wait, write_op, read_op, deliver)`` — ``handles`` is the live handle table
        (handle → (backend, bus, lock)), ``wait(lock, bus)`` the bus lock's timed acquire after a
        failed non-blocking one (``timeout`` when it stays busy), ``deliver(target, results,
        reads)`` the check and write-back of the backend's answer."""
        return self._handles, self._max_transfer, self._wait, _write_op, _read_op, self._deliver

    def _wait(self, lock: Any, bus: str) -> None:
        if not lock.acquire(timeout=self._lock_timeout_s):
            raise HwError("timeout", f"{bus} stayed busy for {self._lock_timeout_s} s")

    # --- the one path to the backend -----------------------------------------------------
    def _target(self, handle: int, address: int, mode: int, total: int) -> tuple[Any, str, Any, bool]:
        """(backend, bus, lock, ten_bit) of an open handle, with address, mode and the total
        byte count checked (before any guest buffer is copied)."""
        entry = self._handles.get(handle)
        if entry is None:
            raise HwError("bad_handle", f"{handle} is not an open I2C bus")
        try:
            ten_bit = _TEN_BIT[mode]
        except (KeyError, TypeError):
            raise HwError("invalid_argument", f"address mode {mode!r} is neither 7- nor 10-bit") from None
        if not 0 <= address <= (0x3FF if ten_bit else 0x7F):
            raise HwError("invalid_argument",
                          f"address {address:#x} does not fit {'10' if ten_bit else '7'}-bit mode")
        if total > self._max_transfer:
            raise HwError("no_mem", f"{total} bytes exceed the transfer quota of {self._max_transfer}")
        backend, bus, lock = entry
        return backend, bus, lock, ten_bit

    def _exchange(self, target: tuple[Any, str, Any, bool], address: int,
                  wire: list[Read | Write]) -> Sequence[bytes]:
        """Run ``wire`` as one backend transaction under the bus lock (held for this call only)."""
        backend, bus, lock, ten_bit = target
        if not lock.acquire(False):
            self._wait(lock, bus)
        try:
            return backend.transaction(bus, address, ten_bit, wire)
        finally:
            lock.release()

    @staticmethod
    def _deliver(target: tuple[Any, str, Any, bool], results: Sequence[bytes],
                 reads: Sequence[Sequence[Any]]) -> None:
        """Write each Read's data into its guest regions, after checking the backend's answer."""
        if len(results) != len(reads) or any(
                len(r) != sum(len(b) for b in bufs) for r, bufs in zip(results, reads)):
            backend = target[0]
            raise HwError("other", f"backend {getattr(backend, 'name', backend)!r} returned malformed read data")
        for data, bufs in zip(results, reads):
            offset = 0
            for buf in bufs:
                n = len(buf)
                if n:
                    buf.write(data[offset:offset + n])
                offset += n

    def _run(self, handle: int, address: int, mode: int, ops: list[tuple[OpKind, Any]]) -> None:
        # merge adjacent same-kind operations; total bytes bounded before anything is copied
        target = self._target(handle, address, mode, sum(len(buf) for _, buf in ops))
        wire: list[Read | Write] = []
        reads: list[list[Any]] = []  # guest regions behind each merged Read
        prev = None
        for kind, buf in ops:
            if kind == _OP_WRITE:
                data = buf if isinstance(buf, (bytes, bytearray)) else buf.read()
                if prev == _OP_WRITE:
                    wire[-1] = Write(wire[-1].data + bytes(data))
                else:
                    wire.append(_write_op(data))
            else:
                if prev == _OP_READ:
                    wire[-1] = _read_op(wire[-1].length + len(buf))
                    reads[-1].append(buf)
                else:
                    wire.append(_read_op(len(buf)))
                    reads.append([buf])
            prev = kind
        self._deliver(target, self._exchange(target, address, wire), reads)


# Operations are immutable, so the common ones are made once and shared between calls
# (bounded: reads up to 256 bytes, writes of at most 4 bytes — register pointers and pairs).
_READS: dict[int, Read] = {}
_WRITES: dict[bytes, Write] = {}
_TEN_BIT = {AddressMode.SEVEN_BIT: False, AddressMode.TEN_BIT: True}  # ints 0 / 1 hash alike
_OP_KINDS = {kind: kind for kind in OpKind}


def _read_op(n: int) -> Read:
    op = _READS.get(n)
    if op is None:
        op = Read(n)
        if n <= 256:
            _READS[n] = op
    return op


def _write_op(data: Any) -> Write:
    if type(data) is not bytes:
        data = bytes(data if isinstance(data, (bytes, bytearray)) else data.read())
    op = _WRITES.get(data)
    if op is None:
        op = Write(data)
        if len(data) <= 4 and len(_WRITES) < 4096:
            _WRITES[data] = op
    return op
