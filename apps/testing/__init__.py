"""wasi_hw.apps.testing — the pytest plugin for driver authors.

Installed with wasi-hw (entry point ``pytest11``), it gives every test the ``wasi_hw``
fixture: a `DriverTest` that builds or loads a driver, attaches simulated devices (built-in
models, plugins, ``module:Class``, parameters), or a script of expected transactions
(`expect_i2c` with `i2c.write` / `i2c.read` / `i2c.write_read` / `i2c.transaction`,
`expect_usb` with `usb.call`), or a recorded trace (`replay`), runs polls under the real
kernel and returns a `DriverRun`: readings, logs, audit records and the bus trace.
A script mismatch or an expected transaction that never came fails the test
(`ScriptMismatch`, an `AssertionError`) naming both sides.

Driver crates are built once per test session (``wasi-hw build PATH``'s route and settings).
"""

from ._harness import DriverRun, DriverTest, ScriptMismatch
from ._script import i2c, usb

__all__ = ["DriverTest", "DriverRun", "ScriptMismatch", "i2c", "usb"]
