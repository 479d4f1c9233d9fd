"""Bosch BME280 (humidity, pressure, temperature) register model, per the BME280 datasheet
(BST-BME280-DS002), I2C interface.

Wire: a write sets the register pointer with its first byte, then takes (register, value)
*pairs* — "slave address, then pairs of register address and data" (datasheet §6.2.1).
A read returns registers from the pointer on, auto-incrementing (burst read).

Registers: calibration NVM 0x88–0xA1 and 0xE1–0xE7 (generated from the calibration
constants given, default: a plausible part), ``id`` 0xD0 = 0x60, ``reset`` 0xE0 (write 0xB6:
power-on reset, NVM copied again: ``status.im_update`` for 2 ms), ``ctrl_hum`` 0xF2
(takes effect on the next ``ctrl_meas`` write), ``status`` 0xF3 (bit 3 measuring, bit 0
im_update), ``ctrl_meas`` 0xF4 (osrs_t, osrs_p, mode), ``config`` 0xF5 (t_sb, filter),
data 0xF7–0xFE (press 20 bit, temp 20 bit, hum 16 bit; 0x80000/0x8000 when skipped).

Timing on the bus clock: a measurement takes the datasheet's *maximum* measurement time
1.25 + 2.3·T_os + (2.3·P_os + 0.575) + (2.3·H_os + 0.575) ms (§9.1, skipped = 0); the data
registers update when it ends. Forced mode measures once then returns to sleep; normal mode
cycles measurement + t_standby. The IIR filter (§3.4.4) and the resolution of
16 + (osrs − 1) bits without filter are applied.

The raw ADC values are produced by inverting the datasheet's integer compensation
(§4.2.3) by bisection, so the environment set in ``temperature_c``/``pressure_pa``/
``humidity_pct`` comes back out of the compensation (to the ADC resolution).
"""

from __future__ import annotations

from ._base import RegisterDevice
from ._datasheet import Bme280Calibration, bme280_compensate

__all__ = ["Bme280"]

CHIP_ID = 0x60
_OVERSAMPLING = (0, 1, 2, 4, 8, 16, 16, 16)
_STANDBY_NS = (500_000, 62_500_000, 125_000_000, 250_000_000, 500_000_000, 1_000_000_000,
               10_000_000, 20_000_000)
_FILTER = (0, 2, 4, 8, 16, 16, 16, 16)
_SKIPPED_20 = 0x80000
_SKIPPED_16 = 0x8000


def _bisect(f, target: int, lo: int, hi: int, increasing: bool) -> int:
    """The x in [lo, hi] whose f(x) is closest to target, f monotonic."""
    a, b = lo, hi
    while b - a > 1:
        mid = (a + b) // 2
        if (f(mid) < target) == increasing:
            a = mid
        else:
            b = mid
    return min((a, b), key=lambda x: abs(f(x) - target))


class Bme280(RegisterDevice):
    """BME280 at 0x76/0x77. Set the environment through the attributes below."""

    def __init__(self, temperature_c: float = 22.5, pressure_pa: float = 101_325.0,
                 humidity_pct: float = 45.0, calibration: Bme280Calibration | None = None,
                 chip_id: int = CHIP_ID) -> None:
        super().__init__()
        self._pair_reg = False
        self.temperature_c = temperature_c
        self.pressure_pa = pressure_pa
        self.humidity_pct = humidity_pct
        self.calibration = calibration or Bme280Calibration()
        self.chip_id = chip_id  # 0x58 makes it answer like a BMP280
        block1, block2 = self.calibration.to_nvm()
        self._nvm = {0x88 + i: b for i, b in enumerate(block1)}
        self._nvm.update({0xE1 + i: b for i, b in enumerate(block2)})
        self._power_on(0)

    def attach(self, clock, stretch_limit_ns) -> None:
        super().attach(clock, stretch_limit_ns)
        self._power_on(clock.now_ns())  # powered up when put on the bus

    # --- state ---------------------------------------------------------------------------
    def _power_on(self, now: int) -> None:
        self.ctrl_hum = 0
        self._osrs_h_active = 0
        self.ctrl_meas = 0
        self.config = 0
        self._data = [_SKIPPED_20, _SKIPPED_20, _SKIPPED_16]  # press, temp, hum
        self._filtered: list[float] | None = None
        self._meas_end: int | None = None  # when the running measurement ends
        self._cycle_start = 0
        self._nvm_busy_until = now + 2_000_000
        self._measurements = 0

    @property
    def measurements(self) -> int:
        """How many measurements have completed so far (on the bus clock)."""
        self._update()
        return self._measurements

    @property
    def mode(self) -> int:
        return self.ctrl_meas & 0b11

    def measurement_time_ns(self) -> int:
        """Datasheet §9.1 maximum measurement time for the active settings."""
        t = _OVERSAMPLING[self.ctrl_meas >> 5]
        p = _OVERSAMPLING[(self.ctrl_meas >> 2) & 7]
        h = _OVERSAMPLING[self._osrs_h_active]
        us = 1250 + 2300 * t + (2300 * p + 575 if p else 0) + (2300 * h + 575 if h else 0)
        return us * 1000

    def _raw(self) -> tuple[int, int, int]:
        cal = self.calibration
        t_target = round(self.temperature_c * 100)
        adc_t = _bisect(lambda a: bme280_compensate(cal, a, 0, 0)[0], t_target, 0, 0xFFFFF, True)
        p_target = round(self.pressure_pa * 256)
        adc_p = _bisect(
            lambda a: bme280_compensate(cal, adc_t, a, 0)[1], p_target, 0, 0xFFFFF, False
        )
        h_target = round(self.humidity_pct * 1024)
        adc_h = _bisect(lambda a: bme280_compensate(cal, adc_t, 0, a)[2], h_target, 0, 0xFFFF, True)
        return adc_p, adc_t, adc_h

    def _complete_measurement(self) -> None:
        adc_p, adc_t, adc_h = self._raw()
        coeff = _FILTER[(self.config >> 2) & 7]
        if coeff:
            new = [float(adc_p), float(adc_t)]
            if self._filtered is None:
                self._filtered = new
            else:
                self._filtered = [
                    (old * (coeff - 1) + n) / coeff
                    for old, n in zip(self._filtered, new, strict=True)
                ]
            adc_p, adc_t = (round(v) for v in self._filtered)
        osrs_t = _OVERSAMPLING[self.ctrl_meas >> 5]
        osrs_p = _OVERSAMPLING[(self.ctrl_meas >> 2) & 7]
        osrs_h = _OVERSAMPLING[self._osrs_h_active]

        def resolution(value: int, osrs: int) -> int:
            if coeff:
                return value  # 20 bit with the filter on
            bits = 16 + (osrs.bit_length() - 1)  # 16 + log2(osrs)
            return value & ~((1 << (20 - bits)) - 1)

        self._data = [
            resolution(adc_p, osrs_p) if osrs_p else _SKIPPED_20,
            resolution(adc_t, osrs_t) if osrs_t else _SKIPPED_20,
            adc_h if osrs_h else _SKIPPED_16,
        ]
        self._measurements += 1

    def _update(self) -> None:
        """Advance the state machine to the bus clock's now."""
        now = self.clock.now_ns()
        mode = self.mode
        if mode == 0b11:  # normal: measure, standby, measure, …
            if self._meas_end is not None and now >= self._meas_end:
                self._complete_measurement()
                measure = self.measurement_time_ns()
                period = measure + _STANDBY_NS[self.config >> 5]
                self._cycle_start += (now - self._cycle_start) // period * period
                if now >= self._cycle_start + measure:  # in standby: the next cycle is ahead
                    self._cycle_start += period
                self._meas_end = self._cycle_start + measure
        elif self._meas_end is not None and now >= self._meas_end:
            self._complete_measurement()
            self._meas_end = None
            self.ctrl_meas &= ~0b11  # forced → sleep

    def _start_mode(self) -> None:
        now = self.clock.now_ns()
        self._osrs_h_active = self.ctrl_hum & 7
        if self.mode == 0:
            self._meas_end = None
        else:
            self._cycle_start = now
            self._meas_end = now + self.measurement_time_ns()

    def measuring(self) -> bool:
        """The status register's ``measuring`` bit."""
        self._update()
        now = self.clock.now_ns()
        return self._meas_end is not None and self._cycle_start <= now < self._meas_end

    # --- registers -----------------------------------------------------------------------
    def start(self, read: bool) -> bool:
        self._update()
        self._pair_reg = not read
        return super().start(read)

    def write(self, byte: int) -> bool:
        if self._first:  # first byte: the register address
            self._first = False
            self.pointer = byte
            self._pair_reg = False
            return True
        if self._pair_reg:  # every other byte after that: the next register address
            self.pointer = byte
            self._pair_reg = False
            return True
        self._pair_reg = True
        self._touch("w", self.pointer)
        return self.write_register(self.pointer, byte)

    def read_register(self, reg: int) -> int:
        if reg in self._nvm:
            return self._nvm[reg]
        if reg == 0xD0:
            return self.chip_id
        if reg == 0xF2:
            return self.ctrl_hum
        if reg == 0xF3:
            return (0x08 if self.measuring() else 0) | (
                1 if self.clock.now_ns() < self._nvm_busy_until else 0
            )
        if reg == 0xF4:
            return self.ctrl_meas
        if reg == 0xF5:
            return self.config
        if 0xF7 <= reg <= 0xFC:
            value = self._data[(reg - 0xF7) // 3]
            return (value >> 12, (value >> 4) & 0xFF, (value & 0xF) << 4)[(reg - 0xF7) % 3]
        if reg == 0xFD:
            return self._data[2] >> 8
        if reg == 0xFE:
            return self._data[2] & 0xFF
        return 0x00

    def write_register(self, reg: int, value: int) -> bool:
        if reg == 0xE0:
            if value == 0xB6:
                self._power_on(self.clock.now_ns())
        elif reg == 0xF2:
            self.ctrl_hum = value & 0x07
        elif reg == 0xF4:
            self.ctrl_meas = value
            self._start_mode()
        elif reg == 0xF5:
            self.config = value & 0xFD  # bit 1 reserved
        return True  # the BME280 ACKs writes to any register, read-only ones are ignored
