"""Native Python reference drivers: the behaviour the Rust drivers must match.

Each driver talks to an `I2cBackend` directly with exactly the wire sequence its module
docstring lists (the same one the Rust driver produces), and ``poll()`` returns the same
reading dict the Rust driver reports. Used by parity tests and on machines without wasm.
"""

from ._bme280 import Bme280Driver
from ._common import DriverError, RegisterBus
from ._datasheet import Bme280Calibration, bme280_compensate, crc8
from ._sht3x import Sht3xDriver

__all__ = ["Bme280Driver", "Bme280Calibration", "bme280_compensate", "Sht3xDriver", "crc8",
           "DriverError", "RegisterBus"]
