"""The I2C drivers end to end: each `.wasm` built by `wasi-hw build`, loaded from its
manifest (`drivers/<name>/manifest.toml`, register grants included), run by the kernel against
simulated chips, compared with the native Python reference drivers (`wasi_hw.apps.reference`) run
on an identical simulated chip, and with the physical values the chip model was given.
Also: an absent device makes the driver see ``nack_address``; a denied address ``access``
(audited); `wasi-hw run` prints the same readings.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from types import MappingProxyType

import pytest

from wasi_hw.apps.cli import main
from wasi_hw.apps.reference import Bme280Driver, Sht3xDriver
from wasi_hw.host import RealClock, SimI2cBackend
from wasi_hw.host.devices import Bme280, Pcf8574Hd44780, Sht3x, Tmp102
from wasi_hw.kernel import Backends, I2cGrant, Kernel, load_manifest, run_driver

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ("bme280", "sht3x", "tmp102", "hd44780")
SENSORS = DRIVERS[:3]


@pytest.fixture(scope="module")
def built(build_drivers) -> None:
    build_drivers(*DRIVERS)


def sim(address: int, model) -> SimI2cBackend:
    backend = SimI2cBackend(["i2c-1"])
    backend.attach("i2c-1", address, model)
    return backend


def run(name: str, backend: SimI2cBackend, cache: Path, polls: int = 3, **changes):
    m = load_manifest(ROOT / "drivers" / name / "manifest.toml")
    if changes:
        m = dataclasses.replace(m, **changes)
    m = dataclasses.replace(m, poll_interval_ms=20)
    return run_driver(m, Backends(i2c=backend), polls=polls, cache_dir=cache)


def reference(driver_cls, backend: SimI2cBackend, polls: int) -> list[dict]:
    d = driver_cls(backend)
    d.init()
    return [d.poll() for _ in range(polls)]


@pytest.mark.parametrize(
    "t,p,h", [(22.5, 101_325.0, 45.0), (-10.25, 87_000.0, 80.0), (40.0, 110_000.0, 5.0)]
)
def test_bme280_matches_reference(built, cache, t, p, h):
    result = run("bme280", sim(0x76, Bme280(t, p, h)), cache)
    assert result.state == "running" and result.faults == 0 and result.errors == 0
    assert not result.audit                       # the register grants cover the driver
    want = reference(Bme280Driver, sim(0x76, Bme280(t, p, h)), 3)
    assert len(result.readings) == 3
    for got, ref in zip(result.readings, want, strict=True):
        assert got.keys() == ref.keys()
        for k in ref:                              # f32 on the wire
            assert got[k] == pytest.approx(ref[k], rel=1e-6, abs=1e-3)
    last = result.readings[-1]
    assert last["temperature_c"] == pytest.approx(t, abs=0.02)
    assert last["pressure_pa"] == pytest.approx(p, abs=5)
    assert last["humidity_pct"] == pytest.approx(h, abs=0.1)


@pytest.mark.parametrize("t,h", [(23.0, 40.0), (-5.5, 90.0)])
def test_sht3x_matches_reference(built, cache, t, h):
    result = run("sht3x", sim(0x44, Sht3x(t, h)), cache)
    assert result.state == "running" and result.errors == 0
    want = reference(Sht3xDriver, sim(0x44, Sht3x(t, h)), 3)
    for got, ref in zip(result.readings, want, strict=True):
        assert got == pytest.approx(ref, abs=1e-4)
    assert result.readings[-1]["temperature_c"] == pytest.approx(t, abs=0.01)
    assert result.readings[-1]["humidity_pct"] == pytest.approx(h, abs=0.01)


@pytest.mark.parametrize("extended", [False, True])
def test_tmp102_first_poll_reads_model_temperature(built, cache, extended):
    """The chip's temperature register reads 0 until its first conversion (26 ms) ends: the
    driver must wait for it, so even the first poll reports the model's temperature. The
    chip only sees the time the driver waits itself: the kernel is given a real-time clock,
    so it does not advance the bus's virtual clock with the real time that passes (without
    the wait in `init` every poll here reads 0.0, in both modes)."""
    backend = SimI2cBackend(["i2c-1"])
    m = load_manifest(ROOT / "drivers" / "tmp102" / "manifest.toml")
    m = dataclasses.replace(
        m,
        poll_interval_ms=20,
        config=MappingProxyType({**m.config, "extended": str(extended).lower()}),
    )
    events = []
    with Kernel(Backends(i2c=backend, clock=RealClock()), on_event=events.append,
                cache_dir=cache) as kernel:
        kernel.add(m)
        chip = backend.attach("i2c-1", 0x48, Tmp102(31.25))   # power-up: conversion starts
        kernel.run(rounds=3)
    readings = [e.data for e in events if e.kind == "report"]
    assert not [e for e in events if e.kind == "error"], events
    assert chip.extended is extended
    # 12/13-bit format, 0.0625 °C steps: 31.25 is exact from the first conversion on
    assert [r["temperature_c"] for r in readings] == [31.25] * 3


@pytest.mark.parametrize("name", SENSORS)
def test_absent_device_is_nack_address(built, cache, name):
    result = run(name, SimI2cBackend(["i2c-1"]), cache, polls=1)
    assert result.readings == []
    # init (bme280 probes the chip id) or the first poll sees nack_address and reports it
    errors = [e.data[1] for e in result.events if e.kind == "log" and e.data[0] == "error"]
    assert errors and all("NackAddress" in e for e in errors), errors
    assert result.state == "quarantined" or result.errors >= 1


def test_denied_address_is_access_and_audited(built, cache):
    m = load_manifest(ROOT / "drivers" / "bme280" / "manifest.toml")
    grant = dataclasses.replace(m.i2c[0], addresses=frozenset({0x77}))
    result = run("bme280", sim(0x76, Bme280()), cache, polls=1, i2c=(grant,))
    assert result.readings == [] and result.state == "quarantined"
    entries = result.audit
    assert entries and all(e["outcome"] == "access" for e in entries)
    assert entries[0]["asked"] == {"bus": "i2c-1", "address": 0x76, "ten_bit": False}
    logs = " ".join(e.data[1] for e in result.events if e.kind == "log").lower()
    assert "access" in logs, logs


class RealTimeSim(SimI2cBackend):
    """A simulated bus whose delays take real time, as on hardware (the kernel's deadline
    is wall-clock time)."""

    def delay_ns(self, ns: int) -> None:
        time.sleep(ns / 1e9)
        super().delay_ns(ns)


def test_bme280_slowest_measurement_fits_the_manifest_deadline(built, cache):
    """16x oversampling of temperature, pressure and humidity: a forced measurement takes up
    to 112.8 ms (datasheet 9.1), waited inside one poll — in real time it must fit the
    manifest's deadline, or the driver is stopped and quarantined on real hardware."""
    backend = RealTimeSim(["i2c-1"])
    backend.attach("i2c-1", 0x76, Bme280(24.0))
    m = load_manifest(ROOT / "drivers" / "bme280" / "manifest.toml")
    slowest = {"osrs_t": "16", "osrs_p": "16", "osrs_h": "16"}
    result = run_driver(dataclasses.replace(m, config=MappingProxyType({**m.config, **slowest}),
                                            poll_interval_ms=20),
                        Backends(i2c=backend), polls=2, cache_dir=cache)
    # (with 100 ms the host refuses the wait as longer than the deadline: "Chip(Busy)")
    logs = [e.data for e in result.events if e.kind in ("log", "error")]
    assert result.faults == result.errors == 0 and result.state == "running", logs
    assert len(result.readings) == 2
    assert result.readings[-1]["temperature_c"] == pytest.approx(24.0, abs=0.02)


def test_config_selects_address(built, cache):
    m = load_manifest(ROOT / "drivers" / "bme280" / "manifest.toml")
    grant = I2cGrant("i2c-1", frozenset({0x77}), registers=m.i2c[0].registers, write_pairs=True)
    result = run("bme280", sim(0x77, Bme280(18.0)), cache, polls=1, i2c=(grant,),
                 config=MappingProxyType({**m.config, "address": "0x77"}))
    assert result.readings[0]["temperature_c"] == pytest.approx(18.0, abs=0.02)


def test_cli_run_prints_readings(built, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WASI_HW_CACHE", str(tmp_path))
    wasm = ROOT / "build" / "wasm" / "bme280.wasm"
    rc = main(["run", str(wasm), "--i2c", "i2c-1", "--allow", "0x76", "--sim", "bme280@0x76",
               "--polls", "2", "--json"])
    assert rc == 0
    readings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(readings) == 2
    assert readings[0]["temperature_c"] == pytest.approx(22.5, abs=0.02)


def test_lcd_shows_exactly_the_configured_text(built, cache):
    """What the display shows (the model decoding its A00 character ROM) is what the driver
    reports it shows — the degree sign included (A00 code 0xDF)."""
    lcd = Pcf8574Hd44780()
    m = load_manifest(ROOT / "drivers" / "hd44780" / "manifest.toml")
    result = run("hd44780", sim(0x27, lcd), cache, polls=1,
                 config=MappingProxyType({**m.config, "text": "Hello, wasi-hw!\nT=21.5°C ok"}))
    assert result.state == "running" and not result.audit
    assert lcd.lines() == ["Hello, wasi-hw! ", "T=21.5°C ok     "]
    assert lcd.ddram[0x40 + 6] == 0xDF                  # the byte on the wire: A00's degree
    assert result.readings[0] == {"line1": "Hello, wasi-hw!", "line2": "T=21.5°C ok"}
    assert [line.rstrip() for line in lcd.lines()] == [result.readings[0]["line1"],
                                                       result.readings[0]["line2"]]
    assert lcd.lost == 0


def test_sensor_routed_to_lcd(built, cache):
    backend = SimI2cBackend(["i2c-1"])
    backend.attach("i2c-1", 0x44, Sht3x(23.0, 40.0))
    lcd = backend.attach("i2c-1", 0x27, Pcf8574Hd44780())
    events = []
    with Kernel(Backends(i2c=backend), on_event=events.append, cache_dir=cache) as kernel:
        for name in ("sht3x", "hd44780"):
            m = load_manifest(ROOT / "drivers" / name / "manifest.toml")
            kernel.add(dataclasses.replace(m, poll_interval_ms=20))
        kernel.route("sht3x", "lcd")
        kernel.run(rounds=3)
    shown = [line.rstrip() for line in lcd.lines()]
    lcd_reports = [e.data for e in events if e.driver == "lcd" and e.kind == "report"]
    # the reading arrived through the route, and the display shows exactly what the driver says
    assert shown[0].startswith("temp") and shown[0].endswith("23.0"), shown
    assert shown[1].startswith("humid") and shown[1].endswith("40.0"), shown
    assert lcd_reports[-1] == {"line1": shown[0], "line2": shown[1]}
    assert lcd.lost == 0
