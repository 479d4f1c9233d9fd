"""Native Python reference drivers: the behaviour the Rust drivers must match.

Each driver talks to an `I2cBackend` directly with exactly the wire sequence its module
docstring lists — the one the Rust driver in ``drivers/<chip>`` produces — and ``poll()``
returns the reading dict the Rust driver reports, down to its single-precision rounding.
Used by parity tests and on machines without wasm. An application of the host layer: the
datasheet arithmetic they share with the simulated chips is `wasi_hw.host.devices`'
(`Bme280Calibration`, `bme280_compensate`, `crc8`, `f32`).
"""

from ._bme280 import Bme280Driver, measurement_time_us
from ._common import DriverError, RegisterBus
from ._sht3x import Sht3xDriver

__all__ = ["Bme280Driver", "measurement_time_us", "Sht3xDriver", "DriverError", "RegisterBus"]
