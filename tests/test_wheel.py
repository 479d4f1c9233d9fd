"""Installed like a user installs it: the built wheel (not editable) in a fresh venv.

The wheel is built by setuptools from the checkout's sdist (the C extension compiled, the demo's
kernel file, manifests and driver ``.wasm`` copied in by ``setup.py``), installed with
``pip install --no-index`` into a new venv whose dependencies come from this venv's
site-packages (offline; ``--no-index`` still checks the wheel's declared dependencies are
met), and run from a directory outside the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_DRIVERS = ("bme280", "sht3x", "tmp102", "hd44780", "usb-echo", "hid-keyboard", "msc")


def _run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory, build_drivers) -> Path:
    """The sdist, built in the checkout under the lock the arm64 tier's build takes too
    (setuptools writes its egg-info there: two builds at once break each other)."""
    sys.path.insert(0, str(ROOT / "tests" / "arm64"))
    import arm64

    build_drivers(*DEMO_DRIVERS)
    return arm64.build_sdist(tmp_path_factory.mktemp("sdist"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, sdist) -> Path:
    """The wheel, built from the unpacked sdist as on a Pi (nothing written in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    with tarfile.open(sdist) as tar:
        tar.extractall(src, filter="data")
    (top,) = src.iterdir()
    out = tmp_path_factory.mktemp("dist")
    code = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
    r = _run([sys.executable, "-c", code, str(out)], cwd=top)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel) -> Path:
    env = tmp_path_factory.mktemp("venv") / "v"
    assert _run([sys.executable, "-m", "venv", str(env)]).returncode == 0
    site = next((env / "lib").glob("python3*/site-packages"))
    # the dependencies already installed here, after the new venv's own packages
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = _run([str(env / "bin/python"), "-m", "pip", "install", "-q", "--no-index",
              "--disable-pip-version-check", str(wheel)])
    assert r.returncode == 0, r.stdout + r.stderr
    return env


def test_the_wheel_carries_the_native_half_and_the_demo(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("wasi_hw/kernel/_cnative.") and n.endswith(".so") for n in names)
    assert "wasi_hw/demo/drivers/demo.kernel.toml" in names
    for d in DEMO_DRIVERS:
        assert f"wasi_hw/demo/drivers/{d}/manifest.toml" in names
        assert f"wasi_hw/demo/build/wasm/{d}.wasm" in names
    assert not any(n.startswith(("tests/", "drivers/", "sdk-rust/")) for n in names)


def test_installed_wasi_hw_runs_outside_the_checkout(venv, tmp_path):
    py = str(venv / "bin/python")
    where = _run([py, "-c", "import wasi_hw, wasi_hw.kernel._native as n; "
                            "print(wasi_hw.__file__); print(n.available())"], cwd=tmp_path)
    path, native = where.stdout.split()
    assert Path(path).is_relative_to(venv) and native == "True", where.stderr

    devices = _run([str(venv / "bin/wasi-hw"), "devices"], cwd=tmp_path)
    assert devices.returncode == 0, devices.stderr
    site = next(venv.glob("lib/python3*/site-packages/wasi_hw"))
    bme280 = site / "demo/build/wasm/bme280.wasm"
    models = _run([str(venv / "bin/wasi-hw"), "run", str(bme280), "--sim", "nosuch@0x76"],
                  cwd=tmp_path)            # the error lists every simulated model installed
    assert models.returncode == 2 and "Traceback" not in models.stderr
    for model in ("bme280", "sht3x", "tmp102", "pcf8574hd44780"):
        assert model in models.stderr, models.stderr

    env = {**os.environ, "WASI_HW_CACHE": str(tmp_path / "aot")}
    one = _run([str(venv / "bin/wasi-hw"), "run", str(bme280), "--sim", "bme280@0x76",
                "--allow", "0x76", "--json"], cwd=tmp_path, env=env)
    assert one.returncode == 0 and "temperature" in one.stdout, one.stderr
    demo = site / "demo/drivers/demo.kernel.toml"
    r = _run([str(venv / "bin/wasi-hw"), "kernel", "run", str(demo), "--rounds", "2", "--json"],
             cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    reports = {e["driver"] for e in map(json.loads, r.stdout.splitlines())
               if e["event"] == "report"}
    assert {"bme280", "sht3x", "tmp102", "lcd", "usb-echo"} <= reports, r.stdout[-2000:]


def test_the_sdist_carries_the_drivers_a_pi_cannot_build(sdist):
    """A Pi builds its wheel from the sdist, without Rust: the .wasm must be inside."""
    names = tarfile.open(sdist).getnames()
    top = names[0].split("/")[0]
    for d in DEMO_DRIVERS:
        assert f"{top}/build/wasm/{d}.wasm" in names
        assert f"{top}/drivers/{d}/manifest.toml" in names
    assert f"{top}/drivers/demo.kernel.toml" in names and f"{top}/setup.py" in names
