"""Datasheet arithmetic shared by the simulated chips and the reference drivers above them
(pure, no I/O, no imports from the rest of wasi_hw): BME280 calibration layout and integer
compensation (BST-BME280-DS002 §4.2.2–4.2.3), Sensirion CRC-8 (SHT3x-DIS §4.12)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["Bme280Calibration", "bme280_compensate", "crc8", "f32"]


@dataclass(frozen=True)
class Bme280Calibration:
    """Trimming parameters dig_T1…dig_H6 (datasheet table 16)."""

    T1: int = 27504
    T2: int = 26435
    T3: int = -1000
    P1: int = 36477
    P2: int = -10685
    P3: int = 3024
    P4: int = 2855
    P5: int = 140
    P6: int = -7
    P7: int = 15500
    P8: int = -14600
    P9: int = 6000
    H1: int = 75
    H2: int = 362
    H3: int = 0
    H4: int = 313
    H5: int = 50
    H6: int = 30

    @classmethod
    def from_nvm(cls, block1: bytes, block2: bytes) -> Bme280Calibration:
        """Parse registers 0x88–0xA1 (26 bytes) and 0xE1–0xE7 (7 bytes)."""
        t_p = struct.unpack("<HhhHhhhhhhhh", block1[:24])
        h2, h3 = struct.unpack("<hB", block2[:3])
        h4 = _s12(block2[3] << 4 | block2[4] & 0x0F)
        h5 = _s12(block2[5] << 4 | block2[4] >> 4)
        h6 = struct.unpack("<b", block2[6:7])[0]
        return cls(*t_p, block1[25], h2, h3, h4, h5, h6)  # type: ignore[call-arg]  # 12 + 6 fields

    def to_nvm(self) -> tuple[bytes, bytes]:
        """The inverse of `from_nvm`: the two register blocks."""
        block1 = struct.pack("<HhhHhhhhhhhhBB", self.T1, self.T2, self.T3, self.P1, self.P2,
                             self.P3, self.P4, self.P5, self.P6, self.P7, self.P8, self.P9,
                             0, self.H1)
        h4, h5 = self.H4 & 0xFFF, self.H5 & 0xFFF
        block2 = struct.pack("<hB", self.H2, self.H3) + bytes(
            [h4 >> 4, (h4 & 0x0F) | ((h5 & 0x0F) << 4), h5 >> 4, self.H6 & 0xFF])
        return block1, block2


def _s12(v: int) -> int:
    return v - 0x1000 if v & 0x800 else v


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def bme280_compensate(
    cal: Bme280Calibration, adc_t: int, adc_p: int, adc_h: int
) -> tuple[int, int, int]:
    """Datasheet §4.2.3 integer compensation → (T in 0.01 °C, P in Pa/256, H in %RH/1024)."""
    var1 = (((adc_t >> 3) - (cal.T1 << 1)) * cal.T2) >> 11
    var2 = (((((adc_t >> 4) - cal.T1) * ((adc_t >> 4) - cal.T1)) >> 12) * cal.T3) >> 14
    t_fine = var1 + var2
    temp = (t_fine * 5 + 128) >> 8

    v1 = t_fine - 128000
    v2 = v1 * v1 * cal.P6
    v2 = v2 + ((v1 * cal.P5) << 17)
    v2 = v2 + (cal.P4 << 35)
    v1 = ((v1 * v1 * cal.P3) >> 8) + ((v1 * cal.P2) << 12)
    v1 = (((1 << 47) + v1) * cal.P1) >> 33
    if v1 == 0:
        press = 0  # avoid division by zero (datasheet)
    else:
        p = 1048576 - adc_p
        p = _cdiv(((p << 31) - v2) * 3125, v1)
        v1 = (cal.P9 * (p >> 13) * (p >> 13)) >> 25
        v2 = (cal.P8 * p) >> 19
        press = ((p + v1 + v2) >> 8) + (cal.P7 << 4)

    x = t_fine - 76800
    x = (((((adc_h << 14) - (cal.H4 << 20) - (cal.H5 * x)) + 16384) >> 15)
         * (((((((x * cal.H6) >> 10) * (((x * cal.H3) >> 11) + 32768)) >> 10) + 2097152)
             * cal.H2 + 8192) >> 14))
    x = x - (((((x >> 15) * (x >> 15)) >> 7) * cal.H1) >> 4)
    x = min(max(x, 0), 419430400)
    return temp, press, x >> 12


def crc8(data: bytes) -> int:
    """Sensirion CRC-8: polynomial 0x31, init 0xFF, no reflection, no final XOR."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


_F32 = struct.Struct("<f")


def f32(x: float) -> float:
    """``x`` rounded to IEEE single precision (round to nearest even), as a Python float.
    One f32 operation on f32 inputs equals the f64 operation rounded with this (53 ≥ 2·24+2
    bits, so double rounding is innocuous), which is how the Rust drivers' f32 arithmetic is
    reproduced exactly."""
    return _F32.unpack(_F32.pack(x))[0]
