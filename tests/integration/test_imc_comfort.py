"""The comfort module runs unchanged next to the sensors and in a second kernel process over
NATS; either way it gets both sensors' readings by service name and the LCD shows its dew
point (what the simulated LCD's screen holds is the oracle)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ROOT / "drivers"
SIM = """
[[sim.i2c]]
model = "bme280"
address = 0x76
params = { temperature_c = 20.0, pressure_pa = 100800.0, humidity_pct = 50.0 }
[[sim.i2c]]
model = "sht3x"
address = 0x44
params = { temperature_c = 20.0, humidity_pct = 50.0 }
[[sim.i2c]]
model = "lcd"
address = 0x27
"""


def _kernel_file(path: Path, drivers: list[str], sim: bool) -> Path:
    text = "[kernel]\ntick_ms = 5\n" + "".join(
        f'[[driver]]\nmanifest = "{DRIVERS / d / "manifest.toml"}"\npoll_interval_ms = 100\n'
        for d in drivers) + (SIM if sim else "")
    path.write_text(text)
    return path


def _run(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "wasi_hw", "kernel", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _dew_points(stdout: str, driver: str) -> list[float]:
    out = []
    for line in stdout.splitlines():
        ev = json.loads(line)
        if ev.get("event") == "report" and ev["driver"] == driver:
            data = ev["data"]
            if driver == "comfort":
                out.append(data["dewpoint_c"])
            elif str(data.get("line1", "")).startswith("dewpoint_c"):
                out.append(float(data["line1"].split(":")[1]))
    return out


@pytest.fixture(scope="module")
def wasm(build_drivers):
    return build_drivers("bme280", "sht3x", "hd44780", "comfort")


def test_comfort_in_the_sensors_kernel(wasm, tmp_path):
    kf = _kernel_file(tmp_path / "all.toml", ["bme280", "sht3x", "comfort", "hd44780"], True)
    p = _run([str(kf), "--duration", "2", "--json", "--cache-dir", str(tmp_path / "aot")])
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert _dew_points(out, "comfort") and _dew_points(out, "lcd"), err
    assert _dew_points(out, "lcd")[-1] == pytest.approx(9.3, abs=0.1)   # 20 °C, 50 %
    assert "|dewpoint_c:" in err      # the simulated LCD's screen, printed at exit


def test_comfort_in_another_kernel_process_over_nats(wasm, tmp_path, nats_server):
    sensors = _kernel_file(tmp_path / "sensors.toml", ["bme280", "sht3x", "hd44780"], True)
    comfort = _kernel_file(tmp_path / "comfort.toml", ["comfort"], False)
    common = ["--json", "--nats", nats_server.url, "--lattice", "home"]
    a = _run([str(sensors), "--duration", "6", *common, "--cache-dir", str(tmp_path / "a")])
    time.sleep(1.5)                    # the sensors offer their services first
    b = _run([str(comfort), "--duration", "3", *common, "--cache-dir", str(tmp_path / "b")])
    out_b, err_b = b.communicate(timeout=120)
    out_a, err_a = a.communicate(timeout=120)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    assert _dew_points(out_b, "comfort"), err_b
    assert _dew_points(out_b, "comfort")[-1] == pytest.approx(9.3, abs=0.1)
    shown = _dew_points(out_a, "lcd")
    assert shown and shown[-1] == pytest.approx(9.3, abs=0.1), err_a
    assert "|dewpoint_c:" in err_a
