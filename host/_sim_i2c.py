"""`SimI2cBackend`: simulated I2C buses with register-accurate device models attached.

Wire behaviour (the `I2cBackend` contract): for each run of operations the bus calls the
model at the address with ``start(read)``; no model, or a model that returns False, is
``nack_address``. Each written byte goes to ``model.write(byte)`` (False → ``nack_data``),
each read byte comes from ``model.read(last)``; ``model.stop()`` ends every transaction,
failed or not. Models see only what a chip would see, so register pointers, auto-increment
and command/readout sequences behave as on hardware.

Time: the bus owns a `Clock` (default a fresh `VirtualClock`) shared with its models. When
``bus_hz`` is set (default 100 kHz) the clock advances with the wire as it goes (9 SCL
periods per address or data byte, before the model sees it; one each for START and STOP),
so a device's busy time passes as on a real bus; ``delay_ns`` sleeps on the same clock. Clock
stretching longer than ``stretch_limit_ns`` fails with ``timeout``.

Fault injection: ``fail_next(bus, kind, count)`` makes the next transactions on ``bus``
fail with ``HwError(kind)`` before touching any model (arbitration loss, bus errors, …).
``history`` keeps the last transactions (bus, address, ten_bit, ops, result-or-kind).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Sequence

from wasi_hw import HwError

from ._clock import Clock, VirtualClock
from ._i2c_backend import Op, Read, Write
from .devices._base import I2cDevice

__all__ = ["SimI2cBackend"]


class SimI2cBackend:
    """Virtual I2C buses; attach device models at addresses with `attach`."""

    name = "sim"

    def __init__(
        self,
        buses: Iterable[str] = ("i2c-1",),
        *,
        clock: Clock | None = None,
        bus_hz: int | None = 100_000,
        stretch_limit_ns: int | None = 25_000_000,
        history: int = 1000,
    ) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self._bus_hz = bus_hz
        self._stretch_limit_ns = stretch_limit_ns
        self._devices: dict[str, dict[tuple[int, bool], I2cDevice]] = {b: {} for b in buses}
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self.history: collections.deque = collections.deque(maxlen=history)
        self._closed = False

    # --- configuration -------------------------------------------------------------------
    def add_bus(self, bus: str) -> None:
        with self._lock:
            self._devices.setdefault(bus, {})

    def attach(
        self, bus: str, address: int, device: I2cDevice, *, ten_bit: bool = False
    ) -> I2cDevice:
        """Attach ``device`` at ``address`` on ``bus`` (created if new); returns the device."""
        limit = 0x3FF if ten_bit else 0x7F
        if not 0 <= address <= limit:
            raise ValueError(
                f"address {address:#x} out of range for {'10' if ten_bit else '7'}-bit mode"
            )
        with self._lock:
            devs = self._devices.setdefault(bus, {})
            if (address, ten_bit) in devs:
                raise ValueError(f"{bus}: address {address:#x} is already taken")
            device.attach(self.clock, self._stretch_limit_ns)
            devs[(address, ten_bit)] = device
        return device

    def detach(self, bus: str, address: int, *, ten_bit: bool = False) -> I2cDevice:
        with self._lock:
            return self._devices[bus].pop((address, ten_bit))

    def device(self, bus: str, address: int, *, ten_bit: bool = False) -> I2cDevice:
        return self._devices[bus][(address, ten_bit)]

    def fail_next(self, bus: str, kind: str, count: int = 1) -> None:
        """Make the next ``count`` transactions on ``bus`` fail with ``HwError(kind)``."""
        with self._lock:
            self._faults.setdefault(bus, []).extend([kind] * count)

    # --- the I2cBackend contract ---------------------------------------------------------
    def buses(self) -> list[str]:
        return sorted(self._devices)

    def transaction(self, bus: str, address: int, ten_bit: bool, ops: Sequence[Op]) -> list[bytes]:
        with self._lock:
            try:
                result = self._run(bus, address, bool(ten_bit), ops)
            except HwError as err:
                self.history.append((bus, address, bool(ten_bit), tuple(ops), err.kind))
                raise
            self.history.append((bus, address, bool(ten_bit), tuple(ops), tuple(result)))
            return result

    def delay_ns(self, ns: int) -> None:
        self.clock.sleep_ns(ns)

    def close(self) -> None:
        self._closed = True

    # --- the wire ---
    def _clocks(self, n: int) -> None:
        """Let ``n`` SCL periods pass (nothing when ``bus_hz`` is None)."""
        if self._bus_hz:
            self.clock.sleep_ns(n * 1_000_000_000 // self._bus_hz)

    def _run(self, bus: str, address: int, ten_bit: bool, ops: Sequence[Op]) -> list[bytes]:
        if self._closed:
            raise HwError("other", "backend is closed")
        devs = self._devices.get(bus)
        if devs is None:
            raise HwError("no_such_bus", f"no simulated bus {bus!r}")
        faults = self._faults.get(bus)
        if faults:
            raise HwError(faults.pop(0), "injected fault")
        device = devs.get((address, ten_bit))
        results: list[bytes] = []
        self._clocks(1)  # START
        try:
            for i, op in enumerate(ops):
                read = isinstance(op, Read)
                # address phase: 1 byte, 2 for 10-bit (a read after a write repeats only the first)
                self._clocks(9 * (2 if ten_bit and not (read and i) else 1))
                if device is None or not device.start(read):
                    raise HwError("nack_address", f"{bus}: no ACK from address {address:#x}")
                if isinstance(op, Read):
                    n = op.length
                    data = bytearray()
                    for j in range(n):
                        self._clocks(9)
                        data.append(device.read(j == n - 1) & 0xFF)
                    results.append(bytes(data))
                elif isinstance(op, Write):
                    for j, byte in enumerate(op.data):
                        self._clocks(9)
                        if not device.write(byte):
                            raise HwError(
                                "nack_data", f"{bus}: {address:#x} did not ACK data byte {j}"
                            )
                else:
                    raise HwError("invalid_argument", f"not an I2C operation: {op!r}")
        finally:
            if device is not None:
                device.stop()
            self._clocks(1)  # STOP
        return results
