"""The distribution maps host/, kernel/ and apps/ under the one import root `wasi_hw`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_ROOTS = {"wasi_hw": ROOT / "wasi_hw", "wasi_hw.host": ROOT / "host", "wasi_hw.kernel": ROOT / "kernel",
          "wasi_hw.fleet": ROOT / "fleet", "wasi_hw.apps": ROOT / "apps"}


def _packages_on_disk() -> set[str]:
    found = set()
    for name, base in _ROOTS.items():
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    return found


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = _packages_on_disk()
    # wasi_hw/host or wasi_hw/kernel must not exist as real directories (they are mapped).
    assert not any((ROOT / "wasi_hw" / d).exists() for d in ("host", "kernel", "apps"))
    assert on_disk - listed == set(), "packages missing from pyproject.toml [tool.setuptools] packages"
    assert listed - on_disk == set(), "pyproject.toml lists packages that do not exist"


def test_import_root_and_console_script():
    import wasi_hw
    import wasi_hw.host
    import wasi_hw.kernel
    import wasi_hw.apps

    assert Path(wasi_hw.host.__file__).parent == ROOT / "host"
    assert Path(wasi_hw.kernel.__file__).parent == ROOT / "kernel"
    assert Path(wasi_hw.apps.__file__).parent == ROOT / "apps"
    out = subprocess.run([sys.executable, "-m", "wasi_hw", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: wasi-hw" in out.stdout


def test_unknown_command_is_one_line_not_a_traceback():
    out = subprocess.run([sys.executable, "-m", "wasi_hw", "no-such-command"], capture_output=True, text=True)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr


def test_closed_output_pipe_is_quiet():
    trace = ROOT / "tests" / "fixtures" / "traces" / "bme280_sim.cbor"
    out = subprocess.run(["bash", "-c", f"'{sys.executable}' -m wasi_hw trace show '{trace}' | head -n 1"],
                         capture_output=True, text=True)
    assert out.stdout.count("\n") == 1
    assert "Broken pipe" not in out.stderr and "Traceback" not in out.stderr
