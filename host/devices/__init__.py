"""Simulated I2C targets for `SimI2cBackend`, register-accurate to their datasheets.

The device-model contract (`I2cDevice`): a model sees a transaction as the chip does —
``start(read) -> bool`` per START / repeated START with its address (False = NACK the
address), ``write(byte) -> bool`` per byte the controller sends (False = NACK it),
``read(last) -> int`` per byte the controller clocks in (``last``: the controller NACKs
it, ending the read), ``stop()`` at the end of every transaction (also after a failure).
``self.clock`` is the bus clock (virtual in simulation) for conversion timing;
``self.stretch(ns)`` stretches SCL (``timeout`` beyond the bus's limit).
`RegisterDevice` adds the common 8-bit register pointer with auto-increment;
`RegisterMapDevice` describes a chip by its register map (`Register` entries, hooks
``read_<name>`` / ``write_<name>``) — the base class for new sensor models and plugins.

Models: `Bme280`, `Sht3x`, `Tmp102`, `Pcf8574Hd44780` (a character LCD behind an I/O
expander; `A00_ROM` is how its `lines()` decodes character codes), `NackAfter` (a fault model
NACKing after N written bytes). Datasheet arithmetic, pure (`_datasheet`): BME280
calibration layout and compensation (`Bme280Calibration`, `bme280_compensate`), Sensirion
CRC-8 (`crc8`), single-precision rounding (`f32`).
"""

from ._base import I2cDevice, RegisterDevice
from ._regmap import Register, RegisterMapDevice
from ._bme280 import Bme280
from ._datasheet import Bme280Calibration, bme280_compensate, crc8, f32
from ._fault import NackAfter
from ._hd44780 import A00_ROM, Pcf8574Hd44780
from ._sht3x import Sht3x
from ._tmp102 import Tmp102

__all__ = [
    "I2cDevice", "RegisterDevice", "RegisterMapDevice", "Register",
    "Bme280",
    "Sht3x",
    "Tmp102",
    "Pcf8574Hd44780", "A00_ROM",
    "NackAfter",
    # datasheet arithmetic (also used by the reference drivers in wasi_hw.apps.reference)
    "Bme280Calibration", "bme280_compensate", "crc8", "f32",
]
