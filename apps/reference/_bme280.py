"""Reference BME280 driver in native Python over the `I2cBackend` contract — the behaviour
of ``drivers/bme280`` (``wasi-hw-driver-bme280``), byte for byte on the wire.

``init()``:
  1. write_read ``[0xD0]`` → 1 byte; must be 0x60, else `DriverError` (0x58: a BMP280).
  2. write ``[0xE0, 0xB6]`` (soft reset), delay 2 ms.
  3. status: write_read ``[0xF3]`` → 1 byte until bit 0 (im_update) is clear — at most 11
     reads, 1 ms apart, else `DriverError`.
  4. write_read ``[0x88]`` → 26 bytes, write_read ``[0xE1]`` → 7 bytes (calibration).

``poll()`` (one forced measurement):
  1. write ``[0xF2, osrs_h]``, write ``[0xF4, osrs_t << 5 | osrs_p << 2 | 0b01]``.
  2. delay the datasheet's maximum measurement time (µs, §9.1):
     1250 + 2300·T + (2300·P + 575 if P) + (2300·H + 575 if H) — 9300 µs at ×1/×1/×1.
  3. status until bit 3 (measuring) is clear, as in init step 3.
  4. write_read ``[0xF7]`` → 8 bytes: press, temp (20 bit), hum (16 bit).

Reading: the datasheet's integer compensation (§4.2.3), then single precision as the Rust
driver reports it: ``temperature_c = f32(T) / 100``, ``pressure_pa = f32(P) / 256``,
``humidity_pct = f32(H) / 1024`` (each an f32 operation); skipped quantities are left out.
"""

from __future__ import annotations

from wasi_hw.host import I2cBackend
from wasi_hw.host.devices import Bme280Calibration, bme280_compensate, f32

from ._common import DriverError, RegisterBus

__all__ = ["Bme280Driver", "measurement_time_us"]

CHIP_ID = 0x60
STATUS_RETRIES = 10
_OSRS_BITS = {0: 0, 1: 1, 2: 2, 4: 3, 8: 4, 16: 5}


def measurement_time_us(osrs_t: int, osrs_p: int, osrs_h: int) -> int:
    """Datasheet §9.1 maximum measurement time for oversampling counts (0 = skipped)."""
    us = 1250 + 2300 * osrs_t
    if osrs_p:
        us += 2300 * osrs_p + 575
    if osrs_h:
        us += 2300 * osrs_h + 575
    return us


class Bme280Driver:
    """Forced-mode BME280 driver; oversampling counts 0 (skip), 1, 2, 4, 8 or 16."""

    def __init__(self, backend: I2cBackend, bus: str = "i2c-1", address: int = 0x76, *,
                 osrs_t: int = 1, osrs_p: int = 1, osrs_h: int = 1) -> None:
        for name, value in (("osrs_t", osrs_t), ("osrs_p", osrs_p), ("osrs_h", osrs_h)):
            if value not in _OSRS_BITS:
                raise ValueError(f"{name} must be one of 0, 1, 2, 4, 8, 16, not {value!r}")
        if not osrs_t:
            raise ValueError("osrs_t cannot be 0: pressure and humidity need the temperature")
        self._io = RegisterBus(backend, bus, address)
        self._osrs = (osrs_t, osrs_p, osrs_h)
        self.calibration: Bme280Calibration | None = None

    def _wait_status_clear(self, mask: int) -> None:
        for attempt in range(STATUS_RETRIES + 1):
            if not self._io.write_read(b"\xf3", 1)[0] & mask:
                return
            if attempt < STATUS_RETRIES:
                self._io.delay_ns(1_000_000)
        raise DriverError(f"status bit {mask:#04x} still set after {STATUS_RETRIES} ms")

    def init(self) -> None:
        io = self._io
        chip = io.write_read(b"\xd0", 1)[0]
        if chip != CHIP_ID:
            raise DriverError(f"chip id {chip:#04x} is not a BME280 (0x60)")
        io.write(b"\xe0\xb6")
        io.delay_ns(2_000_000)
        self._wait_status_clear(0x01)
        self.calibration = Bme280Calibration.from_nvm(
            io.write_read(b"\x88", 26), io.write_read(b"\xe1", 7)
        )

    def poll(self) -> dict[str, float]:
        if self.calibration is None:
            raise DriverError("poll before init")
        io = self._io
        t, p, h = self._osrs
        io.write(bytes([0xF2, _OSRS_BITS[h]]))
        io.write(bytes([0xF4, _OSRS_BITS[t] << 5 | _OSRS_BITS[p] << 2 | 0b01]))
        io.delay_ns(measurement_time_us(t, p, h) * 1000)
        self._wait_status_clear(0x08)
        d = io.write_read(b"\xf7", 8)
        adc_p = d[0] << 12 | d[1] << 4 | d[2] >> 4
        adc_t = d[3] << 12 | d[4] << 4 | d[5] >> 4
        adc_h = d[6] << 8 | d[7]
        temp, press, hum = bme280_compensate(self.calibration, adc_t, adc_p, adc_h)
        reading = {"temperature_c": f32(f32(temp) / 100)}
        if p:
            reading["pressure_pa"] = f32(f32(press) / 256)
        if h:
            reading["humidity_pct"] = f32(f32(hum) / 1024)
        return reading
