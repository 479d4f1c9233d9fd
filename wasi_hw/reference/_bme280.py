"""Reference BME280 driver in native Python over the `I2cBackend` contract.

The wire sequence (the Rust driver ``wasi-hw-driver-bme280`` produces the same one):

``init()``:
  1. write_read ``[0xD0]`` → 1 byte; must be 0x60, else `DriverError`.
  2. write ``[0xE0, 0xB6]`` (soft reset), delay 2 ms (NVM copy).
  3. write_read ``[0x88]`` → 26 bytes, write_read ``[0xE1]`` → 7 bytes (calibration).
  4. write ``[0xF2, 0x01, 0xF5, 0x00]`` (humidity ×1; t_sb 0.5 ms, filter off).

``poll()``:
  1. write ``[0xF4, 0x25]`` (temperature ×1, pressure ×1, forced mode).
  2. delay 9.3 ms — the datasheet's maximum measurement time for ×1/×1/×1.
  3. write_read ``[0xF3]`` → 1 byte; while bit 3 (measuring) is set: delay 1 ms and read it
     again (at most 10 times, then `DriverError`).
  4. write_read ``[0xF7]`` → 8 bytes (press, temp, hum raw).

Readings: the datasheet's integer compensation (§4.2.3, 64-bit pressure) →
``{"temperature_c": T / 100, "pressure_pa": P / 256, "humidity_pct": H / 1024}``
(floats; T in 0.01 °C, P in Q24.8 Pa, H in Q22.10 %RH).
"""

from __future__ import annotations

from ..host._i2c_backend import I2cBackend
from ._common import DriverError, RegisterBus
from ._datasheet import Bme280Calibration, bme280_compensate

__all__ = ["Bme280Driver", "MEASUREMENT_NS"]

CHIP_ID = 0x60
MEASUREMENT_NS = 9_300_000  # 1.25 + 2.3 + (2.3 + 0.575) + (2.3 + 0.575) ms


class Bme280Driver:
    """Forced-mode BME280 driver (wire sequence in the module docstring)."""

    def __init__(self, backend: I2cBackend, bus: str = "i2c-1", address: int = 0x76) -> None:
        self._io = RegisterBus(backend, bus, address)
        self.calibration: Bme280Calibration | None = None

    def init(self) -> None:
        io = self._io
        chip = io.write_read(b"\xd0", 1)[0]
        if chip != CHIP_ID:
            raise DriverError(f"chip id {chip:#04x} is not a BME280 (0x60)")
        io.write(b"\xe0\xb6")
        io.delay_ns(2_000_000)
        self.calibration = Bme280Calibration.from_nvm(io.write_read(b"\x88", 26), io.write_read(b"\xe1", 7))
        io.write(b"\xf2\x01\xf5\x00")

    def poll(self) -> dict[str, float]:
        if self.calibration is None:
            raise DriverError("poll before init")
        io = self._io
        io.write(b"\xf4\x25")
        io.delay_ns(MEASUREMENT_NS)
        for _ in range(10):
            if not io.write_read(b"\xf3", 1)[0] & 0x08:
                break
            io.delay_ns(1_000_000)
        else:
            raise DriverError("measurement did not finish")
        d = io.write_read(b"\xf7", 8)
        adc_p = d[0] << 12 | d[1] << 4 | d[2] >> 4
        adc_t = d[3] << 12 | d[4] << 4 | d[5] >> 4
        adc_h = d[6] << 8 | d[7]
        t, p, h = bme280_compensate(self.calibration, adc_t, adc_p, adc_h)
        return {"temperature_c": t / 100, "pressure_pa": p / 256, "humidity_pct": h / 1024}
