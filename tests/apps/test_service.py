"""`wasi-hw service install`: the unit and udev rule it writes, and the unit's own command line
run as systemd would run it — started, sent SIGTERM, the summary and exit status checked;
started again, the audit log of the first run still there.

systemd itself does not run here (no init in the build machines); what the unit promises
beyond its ExecStart is checked by `systemd-analyze verify` where that tool exists. The
command line is taken from the written unit: specifiers ``%S`` / ``%C`` become temporary
state and cache directories (made 0700 as ``StateDirectory=`` / ``CacheDirectory=`` would),
``Environment=`` is applied, and stderr is a file named by ``JOURNAL_STREAM`` as the journal's
stream would be.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import wasmtime

from wasi_hw.apps.cli import main

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "kernel" / "hostile" / "denied_address.wat"


@pytest.fixture
def kernel_file(tmp_path, build_drivers) -> Path:
    build_drivers("bme280")
    (tmp_path / "probe.wasm").write_bytes(wasmtime.wat2wasm(HOSTILE.read_text()))
    path = tmp_path / "pi.kernel.toml"
    path.write_text(f"""
[kernel]
tick_ms = 5
[[driver]]
manifest = "{ROOT / 'drivers/bme280/manifest.toml'}"
poll_interval_ms = 50
[[driver]]
name = "probe"                      # asks for 0x77 every poll: denied, audited
wasm = "probe.wasm"
poll_interval_ms = 50
[[driver.i2c]]
bus = "i2c-1"
addresses = [0x76]
[[sim.i2c]]
model = "bme280"
address = 0x76
""")
    return path


def _unit(tmp_path: Path, kernel_file: Path, capsys) -> tuple[Path, str]:
    rc = main(["service", "install", str(kernel_file), "--user", "nobody", "--root",
               str(tmp_path / "root"), "--no-start"])
    out = capsys.readouterr().out
    assert rc == 0, out
    unit = tmp_path / "root/etc/systemd/system/wasi-hw-pi.service"
    assert f"wrote {unit}" in out and "sudo systemctl enable --now wasi-hw-pi.service" in out
    assert not (tmp_path / "root/etc/udev").exists()      # simulated devices: no device rights
    return unit, unit.read_text()


def _directive(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def test_unit_runs_unprivileged_with_the_bus_groups_and_restarts(tmp_path, kernel_file, capsys):
    unit, text = _unit(tmp_path, kernel_file, capsys)
    assert _directive(text, "User") == ["nobody"]
    assert _directive(text, "SupplementaryGroups") == ["i2c plugdev"]
    assert _directive(text, "Restart") == ["on-failure"]
    assert _directive(text, "SuccessExitStatus") == ["143"]
    assert _directive(text, "KillSignal") == ["SIGTERM"]
    assert "--audit %S/wasi-hw/pi/audit.jsonl" in _directive(text, "ExecStart")[0]
    assert _directive(text, "StateDirectory") == ["wasi-hw/pi"]
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr


def _start(text: str, tmp_path: Path, run: int):
    state, cache = tmp_path / "state", tmp_path / "cache"
    for d in (state / "wasi-hw/pi", cache / "wasi-hw/pi"):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    expand = lambda s: s.replace("%S", str(state)).replace("%C", str(cache))  # noqa: E731
    argv = shlex.split(expand(_directive(text, "ExecStart")[0]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASI_HW")}
    for assignment in shlex.split(expand(" ".join(_directive(text, "Environment")))):
        key, value = assignment.split("=", 1)
        env[key] = value
    err = open(tmp_path / f"stderr{run}", "w+")
    st = os.fstat(err.fileno())
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                            cwd=state / "wasi-hw/pi")
    return proc, err, state / "wasi-hw/pi/audit.jsonl"


def _run_until_reading_then_term(proc, err) -> tuple[str, str]:
    try:
        line = proc.stdout.readline()             # the first reading: drivers are running
        assert "bme280" in line and "temperature" in line, line + Path(err.name).read_text()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err.seek(0)
    return line + out, err.read()


def test_the_units_command_stops_cleanly_on_sigterm_and_keeps_its_audit_log(
        tmp_path, kernel_file, capsys):
    _, text = _unit(tmp_path, kernel_file, capsys)
    proc, err, audit = _start(text, tmp_path, 1)
    out, log = _run_until_reading_then_term(proc, err)
    assert proc.returncode == 143, log
    lines = log.splitlines()
    assert "<5>wasi-hw: SIGTERM, stopping drivers" in lines, log
    summary = [l for l in lines if l.startswith("<6>kernel: ")]
    assert summary and "bme280:" in summary[0] and "probe:" in summary[0], log
    assert "stopped" in summary[0] and "quarantined" not in summary[0]
    assert all(l[:1] == "<" and l[2] == ">" for l in lines), log   # one prefixed line each
    assert any(l.startswith("<4>probe") and "audit" in l for l in lines), log
    assert "\x1b" not in log + out and "Traceback" not in log
    first = audit.read_text().splitlines()
    assert first and all(json.loads(l)["driver"] == "probe" for l in first)

    # Restart=on-failure starts the same command again: the audit log is appended to
    proc, err, _ = _start(text, tmp_path, 2)
    _run_until_reading_then_term(proc, err)
    assert proc.returncode == 143
    again = audit.read_text().splitlines()
    assert again[:len(first)] == first and len(again) > len(first)


def test_udev_rule_from_the_granted_devices(tmp_path, capsys):
    path = tmp_path / "real.kernel.toml"
    path.write_text(f"""
[[driver]]
manifest = "{ROOT / 'drivers/bme280/manifest.toml'}"
[[driver]]
manifest = "{ROOT / 'drivers/usb-echo/manifest.toml'}"
""")
    assert main(["service", "install", str(path), "--user", "pi", "--root",
                 str(tmp_path / "root"), "--no-start"]) == 0
    out = capsys.readouterr().out
    rules = (tmp_path / "root/etc/udev/rules.d/70-wasi-hw-real.rules").read_text()
    assert ('SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="1209", '
            'ATTR{idProduct}=="0001", MODE="0660", GROUP="plugdev"') in rules
    assert 'SUBSYSTEM=="i2c-dev", KERNEL=="i2c-1", MODE="0660", GROUP="i2c"' in rules
    assert rules.count("\nSUBSYSTEM") + rules.startswith("SUBSYSTEM") == 2   # nothing else
    assert "sudo udevadm control --reload" in out


def test_refusals_are_one_line(tmp_path, kernel_file, capsys):
    assert main(["service", "install", str(kernel_file), "--user", "root",
                 "--root", str(tmp_path)]) == 2
    assert "unprivileged" in capsys.readouterr().err
    assert main(["service", "install", "--exec", "fleet node", "--user", "pi",
                 "--root", str(tmp_path)]) == 2
    assert "--exec needs --name" in capsys.readouterr().err
