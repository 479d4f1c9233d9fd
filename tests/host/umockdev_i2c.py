"""An emulated Linux i2c-dev for tests: real kernel ABI, simulated chips.

`EmulatedI2cDev(backend, ...)` builds a umockdev testbed with ``/dev/i2c-N`` nodes (and
their sysfs ``name``) and attaches `I2cDevHandler`, which answers the i2c-dev ioctls a
program under ``umockdev-wrapper`` (LD_PRELOAD) makes — ``I2C_FUNCS``, ``I2C_SLAVE``,
``I2C_SLAVE_FORCE``, ``I2C_TENBIT``, ``I2C_SMBUS``, ``I2C_RDWR`` — by running the equivalent
transaction on ``backend`` (usually a `SimI2cBackend` with device models). The child process
runs the unmodified smbus2 (or anything else that opens ``/dev/i2c-N``, e.g. ``wasi-hw
run`` with the smbus2 backend).

Use a `RealClock` in the backend: the child waits in real time, so the models must too.

``funcs`` sets the adapter's functionality mask: `FULL_I2C` (a plain I2C controller) or
`SMBUS_ONLY` (like Linux's i2c-stub: no ``I2C_FUNC_I2C``, so no ``I2C_RDWR``). Failures
come back as the errno a Linux adapter would return (``nack_address`` → ENXIO, or
``absent_errno``; ``nack_data``/``nack_unknown`` → EREMOTEIO; ``timeout`` → ETIMEDOUT; …).

Children that are not actually under the preload library exit with `SKIP_RC` (77); the
helpers turn that into ``pytest.skip`` — decided from ``LD_PRELOAD`` inside the child.

    with EmulatedI2cDev(sim) as emu:
        proc = emu.run([sys.executable, "-c", code])        # any command
        results = emu.run_transactions([("i2c-1", 0x76, False, [Write(b"\\xd0"), Read(1)])])
"""

from __future__ import annotations

import errno as E
import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from wasi_hw import HwError
from wasi_hw.host import Read, Write

__all__ = ["EmulatedI2cDev", "I2cDevHandler", "FULL_I2C", "SMBUS_ONLY", "SKIP_RC",
           "CHILD_PREAMBLE", "available", "encode_ops", "decode_ops"]

I2C_SLAVE, I2C_TENBIT, I2C_FUNCS, I2C_SLAVE_FORCE, I2C_RDWR, I2C_SMBUS = (
    0x0703, 0x0704, 0x0705, 0x0706, 0x0707, 0x0720)
I2C_M_RD, I2C_M_TEN = 0x0001, 0x0010

F_I2C, F_10BIT = 0x00000001, 0x00000002
F_QUICK, F_READ_BYTE, F_WRITE_BYTE = 0x00010000, 0x00020000, 0x00040000
F_READ_BYTE_DATA, F_WRITE_BYTE_DATA = 0x00080000, 0x00100000
F_READ_WORD_DATA, F_WRITE_WORD_DATA, F_PROC_CALL = 0x00200000, 0x00400000, 0x00800000
F_WRITE_BLOCK_DATA = 0x02000000
F_READ_I2C_BLOCK, F_WRITE_I2C_BLOCK = 0x04000000, 0x08000000
SMBUS_EMUL = 0x0EFF0008  # what i2c-core emulates on a plain I2C adapter
FULL_I2C = F_I2C | SMBUS_EMUL
# i2c-stub: quick, byte, byte data, word data, I2C block (Linux drivers/i2c/i2c-stub.c)
SMBUS_ONLY = (F_QUICK | F_READ_BYTE | F_WRITE_BYTE | F_READ_BYTE_DATA | F_WRITE_BYTE_DATA
              | F_READ_WORD_DATA | F_WRITE_WORD_DATA | F_READ_I2C_BLOCK | F_WRITE_I2C_BLOCK)

SKIP_RC = 77
CHILD_PREAMBLE = (
    "import os, sys\n"
    "if 'libumockdev-preload' not in os.environ.get('LD_PRELOAD', ''):\n"
    f"    sys.exit({SKIP_RC})\n"
)

_ERRNO = {"nack_address": E.ENXIO, "nack_data": E.EREMOTEIO, "nack_unknown": E.EREMOTEIO,
          "timeout": E.ETIMEDOUT, "arbitration_loss": E.EAGAIN, "not_supported": E.EOPNOTSUPP,
          "bus": E.EPROTO, "overrun": E.EOVERFLOW, "invalid_argument": E.EINVAL,
          "access": E.EACCES, "no_such_bus": E.ENODEV}


def available() -> str | None:
    """None when umockdev can be used here, else the reason it cannot."""
    if shutil.which("umockdev-wrapper") is None:
        return "umockdev-wrapper is not installed"
    try:
        import gi
        gi.require_version("UMockdev", "1.0")
        from gi.repository import UMockdev  # noqa: F401
    except (ImportError, ValueError) as err:
        return f"UMockdev GObject bindings unavailable: {err}"
    return None


def encode_ops(ops: Sequence[Read | Write]) -> list:
    return [["r", op.length] if isinstance(op, Read) else ["w", op.data.hex()] for op in ops]


def decode_ops(ops: list) -> list[Read | Write]:
    return [Read(v) if k == "r" else Write(bytes.fromhex(v)) for k, v in ops]


def _handler_class():
    import gi
    gi.require_version("UMockdev", "1.0")
    from gi.repository import UMockdev

    class I2cDevHandler(UMockdev.IoctlBase):
        """Answers i2c-dev ioctls on one bus by running transactions on a backend."""

        def __init__(self, backend, bus: str, funcs: int, absent_errno: int) -> None:
            super().__init__()
            self.backend, self.bus, self.funcs, self.absent_errno = (
                backend,
                bus,
                funcs,
                absent_errno,
            )
            self.address = 0
            self.ten_bit = False
            self.ioctls: list[int] = []
            self.errors: list[BaseException] = []

        def do_handle_ioctl(self, client) -> bool:
            req = client.get_request() & 0xFFFFFFFF
            self.ioctls.append(req)
            try:
                result = self._ioctl(req, client.get_arg())
            except HwError as err:
                code = (
                    self.absent_errno if err.kind == "nack_address" else _ERRNO.get(err.kind, E.EIO)
                )
                client.complete(-1, code)
            except _Errno as err:
                client.complete(-1, err.args[0])
            except BaseException as err:  # a bug in the emulation: fail loudly in the test
                self.errors.append(err)
                client.complete(-1, E.EIO)
            else:
                client.complete(result, 0)
            return True

        def _run(self, ops) -> list[bytes]:
            return self.backend.transaction(self.bus, self.address, self.ten_bit, ops)

        def _ioctl(self, req: int, arg) -> int:
            value = struct.unpack("<Q", bytes(arg.retrieve()))[0]
            if req == I2C_FUNCS:
                arg.resolve(0, 8).update(0, list(struct.pack("<Q", self.funcs)))
                return 0
            if req in (I2C_SLAVE, I2C_SLAVE_FORCE):
                if value > (0x3FF if self.ten_bit else 0x7F):
                    raise _Errno(E.EINVAL)
                self.address = value
                return 0
            if req == I2C_TENBIT:
                if value and not self.funcs & F_10BIT:
                    raise _Errno(E.EOPNOTSUPP)
                self.ten_bit = bool(value)
                return 0
            if req == I2C_RDWR:
                return self._rdwr(arg)
            if req == I2C_SMBUS:
                return self._smbus(arg)
            raise _Errno(E.ENOTTY)

        def _rdwr(self, arg) -> int:
            if not self.funcs & F_I2C:
                raise _Errno(E.EOPNOTSUPP)
            top = arg.resolve(0, 16)
            _, n = struct.unpack_from("<QI", bytes(top.retrieve()))
            if n == 0 or n > 42:
                raise _Errno(E.EINVAL)
            msgs = top.resolve(0, 16 * n)
            raw = bytes(msgs.retrieve())
            ops, bufs, addrs = [], [], set()
            for i in range(n):
                addr, flags, length = struct.unpack_from("<HHH", raw, 16 * i)
                if length > 8192:
                    raise _Errno(E.EINVAL)
                buf = msgs.resolve(16 * i + 8, length) if length else None
                addrs.add((addr, bool(flags & I2C_M_TEN)))
                if flags & I2C_M_RD:
                    ops.append(Read(length))
                    bufs.append(buf)
                else:
                    ops.append(Write(bytes(buf.retrieve()) if buf is not None else b""))
            if len(addrs) != 1:
                raise _Errno(E.EINVAL)  # one target per transaction in this emulation
            (self.address, ten), = addrs
            if ten and not self.funcs & F_10BIT:
                raise _Errno(E.EINVAL)
            saved, self.ten_bit = self.ten_bit, ten
            try:
                results = self._run(ops)
            finally:
                self.ten_bit = saved
            for buf, data in zip(bufs, results, strict=False):
                if buf is not None:
                    buf.update(0, list(data))
            return n

        def _smbus(self, arg) -> int:
            s = arg.resolve(0, 16)
            rw, cmd, size = struct.unpack_from("<BBxxI", bytes(s.retrieve()))
            read = rw == 1
            data = s.resolve(8, 34)
            block = bytes(data.retrieve()) if data is not None else bytes(34)
            need = {
                (0, False): F_QUICK, (0, True): F_QUICK,
                (1, True): F_READ_BYTE, (1, False): F_WRITE_BYTE,
                (2, True): F_READ_BYTE_DATA, (2, False): F_WRITE_BYTE_DATA,
                (3, True): F_READ_WORD_DATA, (3, False): F_WRITE_WORD_DATA,
                (4, False): F_PROC_CALL, (5, False): F_WRITE_BLOCK_DATA,
                (6, True): F_READ_I2C_BLOCK, (6, False): F_WRITE_I2C_BLOCK,
                (8, True): F_READ_I2C_BLOCK, (8, False): F_WRITE_I2C_BLOCK,
            }.get((size, read))
            if need is None or not self.funcs & need:
                raise _Errno(E.EOPNOTSUPP)
            if size == 0:
                self._run([Read(0)] if read else [Write(b"")])
                return 0
            if size == 1:
                if read:
                    data.update(0, list(self._run([Read(1)])[0]))
                else:
                    self._run([Write(bytes([cmd]))])
                return 0
            if size == 2:
                if read:
                    data.update(0, list(self._run([Write(bytes([cmd])), Read(1)])[0]))
                else:
                    self._run([Write(bytes([cmd, block[0]]))])
                return 0
            if size == 3:
                if read:
                    data.update(0, list(self._run([Write(bytes([cmd])), Read(2)])[0]))
                else:
                    self._run([Write(bytes([cmd, block[0], block[1]]))])
                return 0
            if size == 4:
                data.update(
                    0, list(self._run([Write(bytes([cmd, block[0], block[1]])), Read(2)])[0])
                )
                return 0
            if size == 5:
                count = block[0]
                if not 1 <= count <= 32:
                    raise _Errno(E.EINVAL)
                self._run([Write(bytes([cmd]) + block[: count + 1])])
                return 0
            count = block[0]
            if not 1 <= count <= 32:
                raise _Errno(E.EINVAL)
            if read:
                data.update(1, list(self._run([Write(bytes([cmd])), Read(count)])[0]))
            else:
                self._run([Write(bytes([cmd]) + block[1:count + 1])])
            return 0

    return I2cDevHandler


class _Errno(Exception):
    """Complete the ioctl with this errno."""


_HANDLER = None


def I2cDevHandler(backend, bus: str = "i2c-1", funcs: int = FULL_I2C, absent_errno: int = E.ENXIO):
    """The UMockdev.IoctlBase subclass instance for one bus (class built on first use)."""
    global _HANDLER
    if _HANDLER is None:
        _HANDLER = _handler_class()
    return _HANDLER(backend, bus, funcs, absent_errno)


_CHILD_TRANSACTIONS = CHILD_PREAMBLE + r'''
import json
from wasi_hw import HwError
from wasi_hw.host import Read, Smbus2I2cBackend, Write
spec = json.loads(sys.argv[1])
backend = Smbus2I2cBackend()
out = []
for bus, address, ten_bit, ops in spec:
    ops = [Read(v) if k == "r" else Write(bytes.fromhex(v)) for k, v in ops]
    try:
        out.append(["ok", [r.hex() for r in backend.transaction(bus, address, ten_bit, ops)]])
    except HwError as err:
        out.append(["err", err.kind])
backend.close()
print(json.dumps(out))
'''


class EmulatedI2cDev:
    """A umockdev testbed serving ``/dev/i2c-N`` from ``backend`` (see the module docstring).

    ``buses`` maps the device node name (``"i2c-1"``) to the backend bus it serves;
    ``adapter_name`` is its sysfs ``name``.
    """

    def __init__(
        self,
        backend,
        buses: Mapping[str, str] | None = None,
        *,
        funcs: int = FULL_I2C,
        absent_errno: int = E.ENXIO,
        adapter_name: str = "wasi-hw simulated adapter",
    ) -> None:
        reason = available()
        if reason:
            pytest.skip(reason)
        import gi
        gi.require_version("UMockdev", "1.0")
        from gi.repository import UMockdev
        self.backend = backend
        self.testbed = UMockdev.Testbed.new()
        self.handlers = {}
        for node, bus in (buses or {"i2c-1": "i2c-1"}).items():
            self.testbed.add_from_string(
                f"P: /devices/platform/wasi-hw-sim/{node}/i2c-dev/{node}\nN: {node}\n"
                f"E: SUBSYSTEM=i2c-dev\nE: DEVNAME=/dev/{node}\nA: name={adapter_name}\\n\n")
            handler = I2cDevHandler(backend, bus, funcs, absent_errno)
            if not self.testbed.attach_ioctl(f"/dev/{node}", handler):
                raise RuntimeError(f"umockdev could not attach an ioctl handler to /dev/{node}")
            self.handlers[node] = handler

    def __enter__(self) -> EmulatedI2cDev:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for node in self.handlers:
            self.testbed.detach_ioctl(f"/dev/{node}")
        self.handlers.clear()
        self.testbed = None  # removes the testbed directory and UMOCKDEV_DIR

    def run(self, argv: Sequence[str], *, timeout: float = 60, env: Mapping[str, str] | None = None,
            check_skip: bool = True) -> subprocess.CompletedProcess:
        """Run ``argv`` under ``umockdev-wrapper``; ``SKIP_RC`` → ``pytest.skip``; handler bugs
        fail."""
        proc = subprocess.run(["umockdev-wrapper", *argv], capture_output=True, text=True,
                              timeout=timeout, env=None if env is None else {**os.environ, **env})
        for handler in self.handlers.values():
            if handler.errors:
                raise AssertionError(
                    f"emulated i2c-dev failed: {handler.errors[0]!r}"
                ) from handler.errors[0]
        if check_skip and proc.returncode == SKIP_RC:
            pytest.skip("child did not run under the umockdev preload library")
        return proc

    def run_python(self, code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run Python ``code`` (prefixed with `CHILD_PREAMBLE`) in a child under the wrapper."""
        return self.run([sys.executable, "-c", CHILD_PREAMBLE + code, *args], timeout=timeout)

    def run_transactions(
        self, transactions: Sequence[tuple[str, int, bool, Sequence[Any]]]
    ) -> list:
        """Run each (bus, address, ten_bit, ops) through `Smbus2I2cBackend` in a child;
        returns ``("ok", [bytes…])`` or ``("err", kind)`` per transaction."""
        spec = [[b, a, t, encode_ops(ops)] for b, a, t, ops in transactions]
        proc = self.run([sys.executable, "-c", _CHILD_TRANSACTIONS, json.dumps(spec)])
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        return [("ok", [bytes.fromhex(h) for h in v]) if k == "ok" else ("err", v) for k, v in out]


def run_on(backend, transactions) -> list:
    """The same as `EmulatedI2cDev.run_transactions`, directly on ``backend`` (the sim run)."""
    out = []
    for bus, address, ten_bit, ops in transactions:
        try:
            out.append(("ok", backend.transaction(bus, address, ten_bit, ops)))
        except HwError as err:
            out.append(("err", err.kind))
    return out
