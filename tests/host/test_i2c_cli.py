"""``wasi-hw devices`` (the listing with real nodes is in test_smbus2_umockdev.py)."""

from __future__ import annotations

import json

import wasi_hw.apps.cli._devices as cli
from wasi_hw.apps.cli import main


def test_no_buses(monkeypatch, capsys):
    monkeypatch.setattr(cli, "linux_i2c_buses", lambda: [])
    assert main(["devices"]) == 0
    assert "no I2C buses found" in capsys.readouterr().out
    assert main(["devices", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_inaccessible_bus_is_reported_not_raised(monkeypatch, capsys, tmp_path):
    node = tmp_path / "i2c-3"
    node.touch()
    node.chmod(0)
    monkeypatch.setattr(cli, "linux_i2c_buses", lambda: [("i2c-3", str(node), "stub")])
    monkeypatch.setattr(cli.Smbus2I2cBackend, "funcs",
                        lambda self, bus: (_ for _ in ()).throw(cli.HwError("access", "denied")))
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "i2c-3" in out and "no access" in out and "stub" in out
