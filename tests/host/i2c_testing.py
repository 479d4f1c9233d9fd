"""Test helpers for the I2C host tests: stand-ins for the generated shim's lifted values.

`Region` behaves like `wasi_hw._memory.GuestRegion` (``len()``, ``read()``,
``write(data, offset=0)`` with the data required to fit) over a plain bytearray, so the
host's semantics are tested without an instance; `Op` like a lifted ``Operation`` but
accepts any kind value (forged kinds reach the host when it is called directly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wasi_hw._bindings._wasi_i2c import AddressMode, OpKind

READ, WRITE = OpKind.READ, OpKind.WRITE
SEVEN, TEN = AddressMode.SEVEN_BIT, AddressMode.TEN_BIT


class Region:
    def __init__(self, data: bytes | int = 0) -> None:
        self.buf = bytearray(data) if isinstance(data, (bytes, bytearray)) else bytearray(data)
        self.writes = 0

    def __len__(self) -> int:
        return len(self.buf)

    def read(self) -> bytes:
        return bytes(self.buf)

    def write(self, data: bytes, offset: int = 0) -> None:
        assert offset + len(data) <= len(self.buf), "write past the region"
        self.buf[offset:offset + len(data)] = data
        self.writes += 1


@dataclass
class Op:
    kind: int
    buf: Any


def rd(n: int) -> Op:
    return Op(READ, Region(n))


def wr(data: bytes) -> Op:
    return Op(WRITE, Region(data))
