"""`Smbus2I2cBackend`: real I2C through Linux's i2c-dev (``/dev/i2c-N``) with smbus2 — the
only module that imports smbus2.

Bus ``"i2c-N"`` is ``/dev/i2c-N``, opened on first use; its functionality mask
(``I2C_FUNCS``) is read once. What goes on the wire:

- Adapters with ``I2C_FUNC_I2C``: a transaction is exactly one ``I2C_RDWR`` ioctl — one
  ``i2c_msg`` per operation (``I2C_M_RD`` for reads, ``I2C_M_TEN`` for 10-bit addresses, which
  need ``I2C_FUNC_10BIT_ADDR``), so the kernel issues one START, repeated STARTs between
  messages, and one STOP. At most 42 messages of at most 8192 bytes (i2c-dev's limits).
- SMBus-only adapters (no ``I2C_FUNC_I2C``, e.g. Linux's i2c-stub or many PC SMBus
  controllers) get the common patterns as the SMBus transfer with the same wire bytes:

  ====================================  ==========================================
  transaction                           SMBus call (first supported)
  ====================================  ==========================================
  ``[Write(b"")]``                      quick write
  ``[Read(1)]``                         receive byte
  ``[Write([b])]``                      send byte
  ``[Write([reg, v])]``                 write byte data, else I2C block write
  ``[Write([reg, v0…vn])]`` n ≤ 31       I2C block write, else (2 bytes) write word
  ``[Write([reg]), Read(1)]``           read byte data, else I2C block read
  ``[Write([reg]), Read(2)]``           I2C block read, else read word data
  ``[Write([reg]), Read(n)]`` n ≤ 32     I2C block read
  ====================================  ==========================================

  Anything else (10-bit addresses, multi-byte pointers, bare multi-byte reads) is
  ``not_supported`` — SMBus cannot express it.

Errors are mapped once, here (Linux ``Documentation/i2c/fault-codes.rst``):

============================  ===============================================================
errno                         i2c_errno kind
============================  ===============================================================
ENXIO, ENODEV                 ``nack_address`` (address phase not ACKed; i2c-stub: ENODEV)
EREMOTEIO                     ``nack_address`` if no data byte was sent, else ``nack_unknown``
ETIMEDOUT, EBUSY              ``timeout`` (bus busy / clock stretched too long); EBUSY
                              from ``I2C_SLAVE`` (a kernel driver owns the address): ``access``
EAGAIN                        ``arbitration_loss``
EOPNOTSUPP, ENOTSUP, ENOSYS   ``not_supported``
EBADMSG, EPROTO               ``bus`` (bad PEC / protocol violation)
EOVERFLOW                     ``overrun``
EINVAL                        ``invalid_argument``
EACCES, EPERM                 ``access``
ENOENT (open)                 ``no_such_bus``
anything else (EIO, …)        ``other``
============================  ===============================================================
"""

from __future__ import annotations

import errno as E
import glob
import os
import re
import threading
from collections.abc import Iterable, Sequence

from smbus2 import SMBus, i2c_msg
from smbus2.smbus2 import I2cFunc

from wasi_hw import HwError

from ._clock import Clock, RealClock
from ._i2c_backend import Op, Read, Write

__all__ = ["Smbus2I2cBackend", "linux_i2c_buses"]

I2C_M_TEN = 0x0010
_MAX_MSGS, _MAX_MSG_LEN = 42, 8192

_ERRNO = {
    E.ENXIO: "nack_address", E.ENODEV: "nack_address",
    E.ETIMEDOUT: "timeout", E.EBUSY: "timeout",
    E.EAGAIN: "arbitration_loss",
    E.EOPNOTSUPP: "not_supported", E.ENOTSUP: "not_supported", E.ENOSYS: "not_supported",
    E.EBADMSG: "bus", E.EPROTO: "bus",
    E.EOVERFLOW: "overrun",
    E.EINVAL: "invalid_argument",
    E.EACCES: "access", E.EPERM: "access",
}
_BUS_NAME = re.compile(r"i2c-(\d+)\Z")


def _kind(err: OSError, wrote_data: bool) -> str:
    if err.errno == E.EREMOTEIO:
        return "nack_unknown" if wrote_data else "nack_address"
    return _ERRNO.get(err.errno or 0, "other")


def linux_i2c_buses(dev_dir: str = "/dev", sys_dir: str = "/sys") -> list[tuple[str, str, str]]:
    """``(name, device path, adapter name)`` of every i2c-dev node, by bus number.
    The adapter name comes from ``<sys>/class/i2c-dev/i2c-N/name`` ("" when unknown)."""
    found = []
    for path in glob.glob(os.path.join(dev_dir, "i2c-*")):
        m = _BUS_NAME.match(os.path.basename(path))
        if not m:
            continue
        name = os.path.basename(path)
        adapter = ""
        for cls in ("i2c-dev", "i2c-adapter"):
            try:
                with open(os.path.join(sys_dir, "class", cls, name, "name"), encoding="utf-8",
                          errors="replace") as f:
                    adapter = f.read().strip()
                break
            except OSError:
                continue
        found.append((int(m.group(1)), name, path, adapter))
    return [(name, path, adapter) for _, name, path, adapter in sorted(found)]


class _Bus:
    __slots__ = ("smbus", "funcs", "lock")

    def __init__(self, smbus: SMBus) -> None:
        self.smbus = smbus
        self.funcs = I2cFunc(smbus.funcs)
        self.lock = threading.Lock()


class Smbus2I2cBackend:
    """Linux i2c-dev buses through smbus2 (see the module docstring for the wire and errors)."""

    name = "smbus2"

    def __init__(self, buses: Iterable[str] | None = None, *, clock: Clock | None = None,
                 dev_dir: str = "/dev") -> None:
        self.clock = clock or RealClock()
        self._dev_dir = dev_dir
        self._names = None if buses is None else [str(b) for b in buses]
        self._open: dict[str, _Bus] = {}
        self._guard = threading.Lock()

    def buses(self) -> list[str]:
        if self._names is not None:
            return list(self._names)
        return [name for name, _, _ in linux_i2c_buses(self._dev_dir)]

    def funcs(self, bus: str) -> I2cFunc:
        """The adapter's functionality mask (``I2C_FUNCS``)."""
        return self._bus(bus).funcs

    def _bus(self, bus: str) -> _Bus:
        with self._guard:
            b = self._open.get(bus)
            if b is not None:
                return b
            if not _BUS_NAME.match(bus) or (self._names is not None and bus not in self._names):
                raise HwError("no_such_bus", f"{bus!r} is not an i2c-dev bus name (i2c-N)")
            path = os.path.join(self._dev_dir, bus)
            try:
                smbus = SMBus(path)
            except OSError as err:
                if err.errno in (E.ENOENT, E.ENODEV, E.ENXIO):
                    raise HwError("no_such_bus", f"{path}: {err.strerror}") from None
                raise HwError(_kind(err, False), f"{path}: {err.strerror}") from None
            b = self._open[bus] = _Bus(smbus)
            return b

    def transaction(self, bus: str, address: int, ten_bit: bool, ops: Sequence[Op]) -> list[bytes]:
        if not all(isinstance(op, (Read, Write)) for op in ops):
            raise HwError("invalid_argument", "operations must be Read or Write")
        if not 0 <= address <= (0x3FF if ten_bit else 0x7F):
            raise HwError("invalid_argument", f"address {address:#x} out of range")
        b = self._bus(bus)
        wrote = any(isinstance(op, Write) and op.data for op in ops)
        with b.lock:
            try:
                if b.funcs & I2cFunc.I2C:
                    return self._rdwr(b, address, ten_bit, ops)
                return self._smbus(b, address, ten_bit, ops)
            except OSError as err:
                kind = _kind(err, wrote)
                if (err.errno == E.EBUSY and not b.funcs & I2cFunc.I2C
                        and getattr(b.smbus, "address", address) != address):
                    kind = "access"  # I2C_SLAVE refused: a kernel driver owns the address
                raise HwError(kind, f"{bus} @ {address:#x}: {err.strerror or err}") from None

    def _rdwr(self, b: _Bus, address: int, ten_bit: bool, ops: Sequence[Op]) -> list[bytes]:
        if ten_bit and not b.funcs & I2cFunc.ADDR_10BIT:
            raise HwError("not_supported", "the adapter has no 10-bit addressing")
        if len(ops) > _MAX_MSGS:
            raise HwError("not_supported", f"i2c-dev takes at most {_MAX_MSGS} messages")
        msgs = []
        for op in ops:
            size = op.length if isinstance(op, Read) else len(op.data)
            if size > _MAX_MSG_LEN:
                raise HwError("not_supported", f"i2c-dev messages are at most {_MAX_MSG_LEN} bytes")
            msg = (
                i2c_msg.read(address, op.length)
                if isinstance(op, Read)
                else i2c_msg.write(address, op.data)
            )
            if ten_bit:
                msg.flags |= I2C_M_TEN
            msgs.append(msg)
        b.smbus.i2c_rdwr(*msgs)
        return [bytes(m) for m, op in zip(msgs, ops, strict=True) if isinstance(op, Read)]

    def _smbus(self, b: _Bus, address: int, ten_bit: bool, ops: Sequence[Op]) -> list[bytes]:
        f, s = b.funcs, b.smbus
        shape = " + ".join(
            f"read {op.length}" if isinstance(op, Read) else f"write {len(op.data)}" for op in ops
        )
        if ten_bit:
            raise HwError("not_supported", "SMBus-only adapter: no 10-bit addresses")
        if len(ops) == 1 and isinstance(ops[0], Write):
            d = ops[0].data
            if not d and f & I2cFunc.SMBUS_QUICK:
                s.write_quick(address)
                return []
            if len(d) == 1 and f & I2cFunc.SMBUS_WRITE_BYTE:
                s.write_byte(address, d[0])
                return []
            if len(d) == 2 and f & I2cFunc.SMBUS_WRITE_BYTE_DATA:
                s.write_byte_data(address, d[0], d[1])
                return []
            if 2 <= len(d) <= 33 and f & I2cFunc.SMBUS_WRITE_I2C_BLOCK:
                s.write_i2c_block_data(address, d[0], list(d[1:]))
                return []
            if len(d) == 3 and f & I2cFunc.SMBUS_WRITE_WORD_DATA:
                s.write_word_data(address, d[0], d[1] | d[2] << 8)
                return []
        elif len(ops) == 1 and isinstance(ops[0], Read):
            if ops[0].length == 1 and f & I2cFunc.SMBUS_READ_BYTE:
                return [bytes([s.read_byte(address)])]
        elif (len(ops) == 2 and isinstance(ops[0], Write) and isinstance(ops[1], Read)
              and len(ops[0].data) == 1):
            reg, n = ops[0].data[0], ops[1].length
            if n == 1 and f & I2cFunc.SMBUS_READ_BYTE_DATA:
                return [bytes([s.read_byte_data(address, reg)])]
            if 1 <= n <= 32 and f & I2cFunc.SMBUS_READ_I2C_BLOCK:
                return [bytes(s.read_i2c_block_data(address, reg, n))]
            if n == 2 and f & I2cFunc.SMBUS_READ_WORD_DATA:
                return [s.read_word_data(address, reg).to_bytes(2, "little")]
        raise HwError("not_supported", f"SMBus-only adapter cannot express [{shape}]")

    def delay_ns(self, ns: int) -> None:
        self.clock.sleep_ns(ns)

    def close(self) -> None:
        with self._guard:
            for b in self._open.values():
                b.smbus.close()
            self._open.clear()
