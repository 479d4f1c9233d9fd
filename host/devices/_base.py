"""The device-model contract shared by every simulated I2C target (see the package docstring)."""

from __future__ import annotations

from ..._errors import HwError
from .._clock import Clock, VirtualClock

__all__ = ["I2cDevice", "RegisterDevice"]


class I2cDevice:
    """Base class of simulated I2C targets: it sees the bus exactly as a chip does.

    The bus calls, per transaction: ``start(read)`` for each START / repeated START with the
    address byte (return False to NACK the address), then ``write(byte)`` per byte the
    controller sends (return False to NACK it) or ``read(last)`` per byte the controller
    clocks in (``last``: the controller will NACK this byte, ending the read), and
    ``stop()`` once at the end — also after a NACK or any failure.

    ``self.clock`` is the bus's clock (set by `attach`); ``self.stretch(ns)`` holds SCL low
    for ``ns`` (advances the clock; beyond the bus's stretch limit the transaction fails
    with ``timeout``).
    """

    clock: Clock

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self._stretch_limit_ns: int | None = None

    def attach(self, clock: Clock, stretch_limit_ns: int | None) -> None:
        """Called by the bus when the model is attached."""
        self.clock = clock
        self._stretch_limit_ns = stretch_limit_ns

    def stretch(self, ns: int) -> None:
        """Hold SCL low for ``ns`` nanoseconds (clock stretching)."""
        if ns <= 0:
            return
        limit = self._stretch_limit_ns
        if limit is not None and ns > limit:
            self.clock.sleep_ns(limit)
            raise HwError("timeout", f"target stretched SCL longer than {limit} ns")
        self.clock.sleep_ns(ns)

    def start(self, read: bool) -> bool:
        return True

    def write(self, byte: int) -> bool:
        return True

    def read(self, last: bool) -> int:
        return 0xFF  # nobody drives SDA: the pull-ups read as ones

    def stop(self) -> None:
        pass


class RegisterDevice(I2cDevice):
    """A chip with an 8-bit register pointer (the common "write reg, read data" pattern).

    Wire semantics: in a write, the first byte sets the pointer; each further byte goes to
    `write_register(pointer, byte)` and the pointer advances (`auto_increment`). In a read,
    bytes come from `read_register(pointer)` and the pointer advances. Subclasses override
    `read_register` / `write_register` / `next_pointer`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pointer = 0
        self._first = False

    def start(self, read: bool) -> bool:
        self._first = not read
        return True

    def write(self, byte: int) -> bool:
        if self._first:
            self._first = False
            self.pointer = byte
            return True
        ok = self.write_register(self.pointer, byte)
        self.pointer = self.next_pointer(self.pointer, write=True)
        return ok

    def read(self, last: bool) -> int:
        value = self.read_register(self.pointer) & 0xFF
        self.pointer = self.next_pointer(self.pointer, write=False)
        return value

    def next_pointer(self, pointer: int, write: bool) -> int:
        return (pointer + 1) & 0xFF

    def read_register(self, reg: int) -> int:
        return 0

    def write_register(self, reg: int, value: int) -> bool:
        return True
