"""The Raspberry Pi path without a Pi: `wasi-hw run DRIVER.wasm --i2c i2c-1 --allow 0x76`
(no ``--sim``) uses the real-bus backend (smbus2 on ``/dev/i2c-1``); here ``/dev/i2c-1`` is
emulated by umockdev at the kernel ABI (tests/host/umockdev_i2c.py) with a simulated BME280
behind it. The same readings must come out as on the simulated bus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "host"))

from wasi_hw.host import RealClock, SimI2cBackend  # noqa: E402
from wasi_hw.host.devices import Bme280  # noqa: E402

from umockdev_i2c import EmulatedI2cDev, available  # noqa: E402

CLI = "from wasi_hw.apps.cli import main\nsys.exit(main(sys.argv[1:]))\n"


@pytest.fixture(scope="module")
def wasm(build_drivers) -> Path:
    reason = available()
    if reason:
        pytest.skip(reason)
    return build_drivers("bme280")["bme280"]


def test_run_on_real_i2c_dev_abi(wasm, tmp_path):
    sim = SimI2cBackend(["i2c-1"], clock=RealClock())
    sim.attach("i2c-1", 0x76, Bme280(19.25, 99_000.0, 55.0))
    with EmulatedI2cDev(sim) as emu:
        proc = emu.run_python(CLI, "run", str(wasm), "--i2c", "i2c-1", "--allow", "0x76",
                              "--polls", "2", "--interval-ms", "50", "--json",
                              "--cache-dir", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    readings = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(readings) == 2
    assert readings[-1]["temperature_c"] == pytest.approx(19.25, abs=0.02)
    assert readings[-1]["pressure_pa"] == pytest.approx(99_000.0, abs=5)
    assert readings[-1]["humidity_pct"] == pytest.approx(55.0, abs=0.1)
    # the transactions really went through the emulated /dev/i2c-1 to the model
    assert any(h[1] == 0x76 for h in sim.history)


def test_absent_device_on_real_bus_is_nack_address(wasm, tmp_path):
    sim = SimI2cBackend(["i2c-1"], clock=RealClock())
    with EmulatedI2cDev(sim) as emu:
        proc = emu.run_python(CLI, "run", str(wasm), "--allow", "0x76", "--polls", "1",
                              "--cache-dir", str(tmp_path), timeout=120)
    assert proc.returncode == 1
    assert "NackAddress" in proc.stderr
