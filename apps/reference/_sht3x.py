"""Reference SHT3x driver in native Python over the `I2cBackend` contract — the behaviour
of ``drivers/sht3x`` (``wasi-hw-driver-sht3x``), byte for byte on the wire.

``init()``: no bus traffic (single shots need no set-up).

``poll()`` (one single shot without clock stretching):
  1. write the command: high ``[0x24, 0x00]``, medium ``[0x24, 0x0B]``, low ``[0x24, 0x16]``.
  2. delay the datasheet's maximum duration: 15 / 6 / 4 ms.
  3. read 6 bytes ``T_msb T_lsb CRC RH_msb RH_lsb CRC``; while the sensor NACKs the read
     header (``nack_address`` / ``nack_unknown``: not ready yet) retry up to 5 times, 1 ms
     apart, then `DriverError`. Both CRC-8s (poly 0x31, init 0xFF) must match, else
     `DriverError`.

Reading, in single precision as the Rust driver computes it:
``temperature_c = -45 + (175·S_T) / 65535``, ``humidity_pct = (100·S_RH) / 65535``, every
operation an f32 one.
"""

from __future__ import annotations

from wasi_hw import HwError
from wasi_hw.host import I2cBackend
from wasi_hw.host.devices import crc8, f32

from ._common import DriverError, RegisterBus

__all__ = ["Sht3xDriver"]

READ_RETRIES = 5
_REPEATABILITY = {"high": (0x2400, 15_000), "medium": (0x240B, 6_000), "low": (0x2416, 4_000)}


class Sht3xDriver:
    """Single-shot SHT3x driver; ``repeatability`` is "high", "medium" or "low"."""

    def __init__(self, backend: I2cBackend, bus: str = "i2c-1", address: int = 0x44, *,
                 repeatability: str = "high") -> None:
        key = repeatability.strip().lower()
        if key not in _REPEATABILITY:
            raise ValueError(f"repeatability must be high, medium or low, not {repeatability!r}")
        self._io = RegisterBus(backend, bus, address)
        self._command, self._duration_us = _REPEATABILITY[key]

    def init(self) -> None:
        pass

    def poll(self) -> dict[str, float]:
        io = self._io
        io.write(self._command.to_bytes(2, "big"))
        io.delay_ns(self._duration_us * 1000)
        for attempt in range(READ_RETRIES + 1):
            try:
                d = io.read(6)
                break
            except HwError as err:
                if err.kind not in ("nack_address", "nack_unknown"):
                    raise
                if attempt == READ_RETRIES:
                    raise DriverError(f"no measurement after {READ_RETRIES} retries") from None
                io.delay_ns(1_000_000)
        for i, name in ((0, "temperature"), (3, "humidity")):
            if crc8(d[i:i + 2]) != d[i + 2]:
                raise DriverError(
                    f"{name} CRC mismatch: {d[i + 2]:#04x} != {crc8(d[i : i + 2]):#04x}"
                )
        st, srh = float(d[0] << 8 | d[1]), float(d[3] << 8 | d[4])
        return {"temperature_c": f32(-45.0 + f32(f32(175.0 * st) / 65535.0)),
                "humidity_pct": f32(f32(100.0 * srh) / 65535.0)}
