"""The parity runner (`wasi-hw parity`): every driver behaves the same on every backend here.

I2C drivers: the simulated bus, smbus2 on an emulated ``/dev/i2c-1`` (umockdev at the kernel
ABI, the smbus2 leg in a child under ``umockdev-wrapper``) and a replay of the sim leg — plus
the native Python reference driver for the BME280 and the SHT3x. USB drivers: the simulated
bus, USB/IP to an in-process server, replay. A driver with one register changed is caught by
replaying a good recording and by parity against the reference, the difference named.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw.apps.cli import main
from wasi_hw.apps._parity import Leg, compare, normalise, run_parity, setup_for

ROOT = Path(__file__).resolve().parents[1]
WASM = ROOT / "build" / "wasm"
sys.path.insert(0, str(ROOT / "tests" / "host"))

I2C_DRIVERS = {"bme280": "bme280", "sht3x": "sht3x", "tmp102": None, "hd44780": None}
USB_DRIVERS = ("usb-echo", "msc", "hid-keyboard")


def wasm(name: str) -> Path:
    path = WASM / f"{name}.wasm"
    if not path.exists():
        from wasi_hw.apps._build import build, select_toolchain
        try:
            select_toolchain()
        except UserError as err:
            pytest.skip(f"{path.name} not built and no Rust toolchain: {err}")
        build(ROOT, [name])
    return path


def parity_json(capsys, *argv: str) -> tuple[int, dict]:
    rc = main(["parity", *argv, "--json"])
    out = capsys.readouterr().out
    return rc, json.loads(out)


def emulated_bus(setup):
    """An emulated /dev/i2c-1 serving the same device models the sim leg uses."""
    from umockdev_i2c import EmulatedI2cDev
    from wasi_hw.host import RealClock, SimI2cBackend
    from wasi_hw.host import device_models

    sim = SimI2cBackend(["i2c-1"], clock=RealClock())
    for d in setup.i2c_devices:
        sim.attach(d.bus, d.address, device_models().create(d.model, d.params, kind="i2c"))
    return EmulatedI2cDev(sim)


@pytest.mark.parametrize("driver", sorted(I2C_DRIVERS))
def test_i2c_driver_parity_sim_smbus2_replay(driver, capsys):
    path = wasm(driver)
    setup = setup_for(path)
    ref = I2C_DRIVERS[driver]
    with emulated_bus(setup):
        argv = [str(path), "--backends", "sim,smbus2,replay", "--wrap", "smbus2=umockdev-wrapper"]
        if ref:
            argv += ["--reference", ref]
        rc, report = parity_json(capsys, *argv)
    legs = {leg["backend"]: leg for leg in report["legs"]}
    assert rc == 0, json.dumps(report, indent=1)
    assert report["ok"]
    assert set(legs) == {"sim", "smbus2", "replay"} | ({f"ref:{ref}"} if ref else set())
    sim = legs["sim"]
    assert sim["outcome"]["state"] == "running" and sim["outcome"]["faults"] == 0
    assert sim["readings"] and sim["operations"] > 0      # the LCD reports on change only
    for leg in legs.values():
        assert leg["readings"] == sim["readings"]
        assert leg["operations"] == sim["operations"]
        assert leg["difference"] is None and not leg["failure"]


@pytest.mark.parametrize("driver", USB_DRIVERS)
def test_usb_driver_parity_sim_usbip_replay(driver, capsys):
    rc, report = parity_json(capsys, str(wasm(driver)), "--backends", "sim,usbip,replay")
    assert rc == 0, json.dumps(report, indent=1)
    legs = {leg["backend"]: leg for leg in report["legs"]}
    assert set(legs) == {"sim", "usbip", "replay"}
    assert legs["sim"]["operations"] > 0 and len(legs["sim"]["readings"]) == 2
    assert legs["usbip"]["readings"] == legs["sim"]["readings"]
    assert legs["replay"]["operations"] == legs["sim"]["operations"]


@pytest.fixture(scope="module")
def changed_bme280(tmp_path_factory) -> Path:
    """bme280.wasm with the ctrl_hum register (0xF2) of its first write changed to 0xF5."""
    good = wasm("bme280").read_bytes()
    needle = bytes([0x41, 0xF2, 0x01])          # i32.const 0xF2
    at = good.find(needle)
    assert at > 0, "no i32.const 0xF2 in bme280.wasm"
    bad = bytearray(good)
    bad[at + 1] = 0xF5
    path = tmp_path_factory.mktemp("changed") / "bme280.wasm"
    path.write_bytes(bytes(bad))
    return path


def test_changed_driver_caught_by_replay(changed_bme280, tmp_path, capsys):
    manifest = str(ROOT / "drivers" / "bme280" / "manifest.toml")
    assert main(["parity", str(wasm("bme280")), "--backends", "sim",
                 "--trace-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    rc, report = parity_json(capsys, str(changed_bme280), "--manifest", manifest,
                             "--backends", "sim,replay", "--trace", str(tmp_path / "sim.cbor"))
    assert rc == 1
    replay = report["legs"][1]
    assert "write [F2 01]" in replay["failure"] and "write [F5 01]" in replay["failure"]
    assert replay["difference"]["what"] == "failure"


def test_changed_driver_caught_by_parity_with_reference(changed_bme280, capsys):
    manifest = str(ROOT / "drivers" / "bme280" / "manifest.toml")
    rc = main(["parity", str(changed_bme280), "--manifest", manifest, "--backends", "sim",
               "--reference", "bme280"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "trace differs at operation 7" in out
    assert "write [F5 01]" in out and "write [F2 01]" in out
    assert out.strip().splitlines()[-1] == "parity: 1 leg(s) differ from sim"


def test_good_driver_passes_its_own_recording(tmp_path, capsys):
    assert main(["parity", str(wasm("bme280")), "--backends", "sim",
                 "--trace-dir", str(tmp_path)]) == 0
    assert main(["parity", str(wasm("bme280")), "--backends", "sim,replay",
                 "--trace", str(tmp_path / "sim.cbor")]) == 0
    assert "parity: OK" in capsys.readouterr().out


def test_normalise_drops_what_differs_between_backends():
    a = [{"op": "usb.devices", "t_ns": 1, "args": {}, "result": []},
         {"op": "usb.open", "t_ns": 5, "dur_ns": 3, "args": {"device_id": "sim:1"}, "result": 1},
         {"op": "usb.bulk_in", "t_ns": 9, "args": {"handle": 1, "endpoint": 129, "length": 4,
                                                   "timeout_ms": 5},
          "error": {"kind": "timeout", "message": "sim says"}},
         {"op": "usb.close", "args": {"handle": 1}, "result": None}]
    b = [{"op": "usb.open", "t_ns": 50, "args": {"device_id": "usbip:1-1"}, "result": 1},
         {"op": "usb.bulk_in", "t_ns": 90, "args": {"handle": 1, "endpoint": 129, "length": 4,
                                                    "timeout_ms": 5},
          "error": {"kind": "timeout", "message": "libusb says otherwise"}}]
    assert normalise(a) == normalise(b)
    assert normalise(a)[0]["args"]["device_id"] == "device1"
    c = [dict(b[0]), dict(b[1], error={"kind": "pipe", "message": ""})]
    assert normalise(c) != normalise(b)
    d = compare(Leg("sim", records=b), Leg("pyusb", records=c))
    assert d is not None and d.what == "trace" and d.where == "operation 2 of 2"
    assert "!! timeout" in d.theirs and "!! pipe" in d.ours


def test_wrong_backend_for_the_bus_is_a_user_error():
    setup = setup_for(wasm("bme280"))
    with pytest.raises(UserError, match="cannot run on usbip"):
        run_parity(setup, ["sim", "usbip"])
    with pytest.raises(UserError, match="unknown backend"):
        run_parity(setup, ["sim", "spi"])
    assert main(["parity", str(wasm("bme280")), "--backends", "sim", "--wrap", "x"]) == 2


def pyusb_leg(driver: str, trace_dir: str) -> dict:
    """Run in a child under umockdev-wrapper: the driver's pyusb leg against emulated usbfs
    serving the same device models the sim leg uses."""
    from umockdev_usb import EmulatedUsb
    from wasi_hw.apps._parity import run_leg
    from wasi_hw.host import device_models

    setup = setup_for(WASM / f"{driver}.wasm")
    models = [device_models().create(d.model, d.params, kind="usb") for d in setup.usb_devices]
    with EmulatedUsb(models):
        leg = run_leg(setup, "pyusb", trace_dir=Path(trace_dir))
    return {"readings": leg.readings, "outcome": leg.outcome, "trace": str(leg.trace_path)}


@pytest.mark.parametrize("driver", ["usb-echo", "msc"])
def test_usb_driver_parity_pyusb_under_umockdev(driver, tmp_path, monkeypatch):
    from umockdev_usb import available, run_under_umockdev
    from wasi_hw.apps._parity import run_leg
    from wasi_hw.host import read_trace

    reason = available()
    if reason:
        pytest.skip(reason)
    setup = setup_for(wasm(driver))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    got = run_under_umockdev("test_parity:pyusb_leg", driver, str(tmp_path), timeout=180)
    pyusb = Leg("pyusb", readings=got["readings"], outcome=got["outcome"],
                records=read_trace(got["trace"]).records)
    sim = run_leg(setup, "sim")
    assert sim.operations > 0
    assert compare(sim, pyusb) is None, str(compare(sim, pyusb))
