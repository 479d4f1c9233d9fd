"""Reference SHT3x driver in native Python over the `I2cBackend` contract.

The wire sequence (the Rust driver ``wasi-hw-driver-sht3x`` produces the same one):

``init()``: write ``[0x30, 0xA2]`` (soft reset), delay 2 ms (datasheet: 1.5 ms max).

``poll()``:
  1. write ``[0x24, 0x00]`` (single shot, high repeatability, no clock stretching).
  2. delay 15 ms (the datasheet's maximum for high repeatability).
  3. read 6 bytes ``T_msb T_lsb CRC RH_msb RH_lsb CRC``; each CRC-8 (poly 0x31, init 0xFF)
     is checked — a mismatch is `DriverError`.

Readings: ``{"temperature_c": -45.0 + 175.0 * st / 65535.0,
"humidity_pct": 100.0 * srh / 65535.0}`` (float64, in that order of operations).
"""

from __future__ import annotations

from ..host._i2c_backend import I2cBackend
from ._common import DriverError, RegisterBus
from ._datasheet import crc8

__all__ = ["Sht3xDriver"]


class Sht3xDriver:
    """Single-shot SHT3x driver (wire sequence in the module docstring)."""

    def __init__(self, backend: I2cBackend, bus: str = "i2c-1", address: int = 0x44) -> None:
        self._io = RegisterBus(backend, bus, address)

    def init(self) -> None:
        self._io.write(b"\x30\xa2")
        self._io.delay_ns(2_000_000)

    def poll(self) -> dict[str, float]:
        io = self._io
        io.write(b"\x24\x00")
        io.delay_ns(15_000_000)
        d = io.read(6)
        for i, name in ((0, "temperature"), (3, "humidity")):
            if crc8(d[i:i + 2]) != d[i + 2]:
                raise DriverError(f"{name} CRC mismatch: {d[i + 2]:#04x} != {crc8(d[i:i + 2]):#04x}")
        st, srh = d[0] << 8 | d[1], d[3] << 8 | d[4]
        return {"temperature_c": -45.0 + 175.0 * st / 65535.0, "humidity_pct": 100.0 * srh / 65535.0}
