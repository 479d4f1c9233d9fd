"""The I2C backend contract: what every I2C backend (sim, smbus2, replay, …) provides.

A backend serves named buses (``"i2c-1"``) and runs *transactions* on them — embedded-hal's
one primitive. ``transaction(bus, address, ten_bit, ops)`` puts this on the wire::

    START, address+W/R, bytes of ops[0],
    (repeated START, address+W/R, bytes of the next op)*,  STOP

A 7-bit address (0x00–0x7f) is one address byte ``addr << 1 | R/W``; a 10-bit address
(0x000–0x3ff, ``ten_bit=True``) is ``11110 a9 a8 W`` + ``a7..a0`` (a read after a write is
repeated START + ``11110 a9 a8 R``). During a `Write` the target ACKs each byte; during a
`Read` the controller ACKs every byte but the last of the run, which it NACKs before the
STOP or repeated START. A zero-length `Write` alone is an SMBus "quick" write (address
phase only). Callers (`I2cHost`) have already merged adjacent operations of the same kind
and validated addresses; backends still must not crash on any input. `Read` and `Write` are
immutable, so callers may pass the same objects to many calls (`I2cHost` reuses the common
ones); a backend must not rely on their identity.

The result is one ``bytes`` per `Read`, in order, each exactly ``length`` long. Failures
raise `wasi_hw.HwError` whose ``kind`` is an ``i2c_errno`` case name: ``nack_address``,
``nack_data``, ``nack_unknown``, ``bus``, ``arbitration_loss``, ``overrun``, ``timeout``,
``not_supported`` (the adapter cannot express it), ``no_such_bus``, ``access``, ``other``.
On failure the transaction is aborted with a STOP and nothing after the failure happens.

``delay_ns(ns)`` waits on the backend's clock (simulated backends advance virtual time,
real ones sleep; recording backends log it). ``close()`` releases every resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["I2cBackend", "Read", "Write", "Op"]


@dataclass(frozen=True, slots=True)
class Read:
    """Read ``length`` bytes from the target."""

    length: int

    def __post_init__(self) -> None:
        if not isinstance(self.length, int) or self.length < 0:
            raise ValueError(f"Read length must be a non-negative int, got {self.length!r}")


@dataclass(frozen=True, slots=True)
class Write:
    """Write ``data`` to the target."""

    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))


Op = Read | Write


@runtime_checkable
class I2cBackend(Protocol):
    """Runs I2C transactions on named buses (see the module docstring for the wire)."""

    name: str

    def buses(self) -> list[str]: ...

    def transaction(
        self, bus: str, address: int, ten_bit: bool, ops: Sequence[Op]
    ) -> list[bytes]: ...

    def delay_ns(self, ns: int) -> None: ...

    def close(self) -> None: ...
