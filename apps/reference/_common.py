"""What the reference drivers share: `DriverError` and `RegisterBus`, the register-access
patterns as `I2cBackend` transactions (write = one Write; write_read = Write + Read with a
repeated START; read = one Read)."""

from __future__ import annotations

from wasi_hw.host import I2cBackend, Read, Write

__all__ = ["DriverError", "RegisterBus"]


class DriverError(Exception):
    """The chip answered, but not as its datasheet says (wrong id, bad CRC, stuck busy)."""


class RegisterBus:
    """One target on one bus of a backend."""

    __slots__ = ("backend", "bus", "address")

    def __init__(self, backend: I2cBackend, bus: str, address: int) -> None:
        self.backend, self.bus, self.address = backend, bus, address

    def write(self, data: bytes) -> None:
        self.backend.transaction(self.bus, self.address, False, [Write(data)])

    def read(self, n: int) -> bytes:
        return self.backend.transaction(self.bus, self.address, False, [Read(n)])[0]

    def write_read(self, data: bytes, n: int) -> bytes:
        return self.backend.transaction(self.bus, self.address, False, [Write(data), Read(n)])[0]

    def delay_ns(self, ns: int) -> None:
        self.backend.delay_ns(ns)
