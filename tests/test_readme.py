"""The README's commands work as written (those that need no hardware).

Each `wasi-hw …` line of the README's shell blocks that runs on simulated devices is run
verbatim (comments stripped) from a scratch directory that sees the repo's `build/` and
`drivers/`. Lines that need a Raspberry Pi, root or a USB/IP kernel module are listed in
NEEDS_HARDWARE; the trace example's "on the Pi" recording is made from a simulated sensor.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

NEEDS_HARDWARE = (
    "wasi-hw build",                                   # the test command has just built
    "--polls 10 --interval-ms 1000",                   # real /dev/i2c-1
    "wasi-hw usbip serve --device echo --device msc",  # vhci loopback recipe (root)
    "wasi-hw run drivers/usb-echo/manifest.toml     #",  # after `usbip attach`
    "trace record", "trace show", "trace replay", "--trace bme280.cbor",  # test_trace_example
    "wasi-hw doctor",                                  # exits 1 here: no I2C (tests/apps/test_doctor.py)
)


def _commands() -> list[str]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            if line.startswith("wasi-hw ") and not any(h in line for h in NEEDS_HARDWARE):
                lines.append(line.split("  #")[0].strip())
    return lines


@pytest.fixture
def scratch(tmp_path, build_drivers):
    build_drivers()  # every driver
    for name in ("build", "drivers"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def _run(line: str, cwd: Path) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "wasi_hw", *shlex.split(line)[1:]]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_readme_lists_the_examples():
    cmds = _commands()
    assert any("--sim bme280@0x76" in c for c in cmds)
    assert any(c.startswith("wasi-hw kernel run drivers/demo.kernel.toml") for c in cmds)
    assert any(c.startswith("wasi-hw parity") for c in cmds)


@pytest.mark.parametrize("line", _commands())
def test_readme_command_works_as_written(line, scratch):
    out = _run(line, scratch)
    assert out.returncode == 0, f"{line}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr
    if "bme280" in line and " run " in f" {line} ":
        assert "temperature_c" in out.stdout + out.stderr


def test_trace_example(scratch):
    lines = [l.split("  #")[0].strip() for l in README.splitlines() if l.startswith("wasi-hw trace")]
    record, show, replay = lines
    rec = _run(record + " --sim bme280@0x76", scratch)      # no Pi here: a simulated sensor
    assert rec.returncode == 0, rec.stderr[-2000:]
    shown = _run(show, scratch)
    assert shown.returncode == 0 and "0x76" in shown.stdout
    rep = _run(replay, scratch)
    assert rep.returncode == 0, rep.stdout[-2000:] + rep.stderr[-2000:]
    assert "temperature_c" in rep.stdout + rep.stderr
    parity = next(l.split("  #")[0].strip() for l in README.splitlines()
                  if "--trace bme280.cbor" in l)
    par = _run(parity, scratch)
    assert par.returncode == 0, par.stdout[-2000:] + par.stderr[-2000:]
