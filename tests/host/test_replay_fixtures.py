"""Regression traces (tests/fixtures/traces/*.cbor) replayed against the drivers.

Each trace holds a driver's whole conversation with a device — simulated, or a real Linux
kernel's i2c-stub / vhci-hcd in the QEMU tier — and, in its header's ``meta.readings``, the
readings that conversation produced. Replaying it must give the same
readings with every recorded request consumed — against the reference driver always, and
against the compiled Rust driver when ``build/wasm/<chip>.wasm`` exists.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from wasi_hw.apps.reference import Bme280Driver, Sht3xDriver
from wasi_hw.host import ReplayI2cBackend, read_trace

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "tests/fixtures/traces"
CASES = {
    "bme280_sim": (Bme280Driver, 0x76, "bme280"),
    "sht3x_sim": (Sht3xDriver, 0x44, "sht3x"),
    # recorded in the QEMU tier: a real kernel's i2c-stub through the smbus2 backend
    "bme280_i2c_stub": (Bme280Driver, 0x76, "bme280"),
}
SIMULATED = ["bme280_sim", "sht3x_sim"]  # reproducible by make_traces.py


def _expected(name):
    trace = read_trace(TRACES / f"{name}.cbor")
    readings = trace.header["meta"]["readings"]
    if name in SIMULATED:
        assert len(readings) == 3
        assert len({tuple(sorted(r.items())) for r in readings}) == 3  # every poll differs
    return trace, readings, trace.header["backends"]["i2c"]["buses"][0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_driver_replays_the_trace(name):
    driver_cls, address, _ = CASES[name]
    trace, readings, bus = _expected(name)
    replay = ReplayI2cBackend(trace)
    driver = driver_cls(replay, bus, address)
    driver.init()
    assert [driver.poll() for _ in readings] == readings
    replay.close()
    replay.done()
    assert replay.divergence is None


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_driver_replays_the_trace(name):
    _, address, chip = CASES[name]
    wasm = REPO / "build/wasm" / f"{chip}.wasm"
    if not wasm.exists():
        pytest.skip(f"{wasm.relative_to(REPO)} not built (wasi-hw build)")
    from wasi_hw.kernel import adhoc_manifest, run_driver
    from wasi_hw.kernel._hosts import Backends

    trace, readings, bus = _expected(name)
    replay = ReplayI2cBackend(trace)
    manifest = adhoc_manifest(wasm, bus=bus, allow=[address])
    result = run_driver(manifest, Backends(i2c=replay, clock=replay.clock), polls=len(readings))
    assert replay.divergence is None, str(replay.divergence)
    assert result.readings == readings  # bit-for-bit: parity with the recording
    replay.done()


def test_real_kernel_trace_is_what_the_stub_held():
    """The i2c-stub trace answers with the seeded simulated BME280 (23.25 °C, 41 %RH)."""
    trace, readings, bus = _expected("bme280_i2c_stub")
    assert trace.header["backends"]["i2c"]["name"] == "smbus2" and bus.startswith("i2c-")
    assert all(abs(r["temperature_c"] - 23.25) < 0.05 for r in readings)
    assert all(abs(r["humidity_pct"] - 41.0) < 0.5 for r in readings)


def test_a_changed_driver_diverges_loudly():
    """A driver asking something else than recorded fails at that request, both sides shown."""
    from wasi_hw.host import ReplayDivergence
    from wasi_hw.host._i2c_backend import Read, Write

    trace, _, _ = _expected("bme280_sim")
    replay = ReplayI2cBackend(trace)
    replay.transaction("i2c-1", 0x76, False, [Write(b"\xd0"), Read(1)])
    with pytest.raises(ReplayDivergence) as err:
        replay.transaction("i2c-1", 0x76, False, [Write(b"\xe0\xb7")])  # wrong reset value
    assert "record 2" in str(err.value)
    assert "recorded `i2c  i2c-1 0x76: write [E0 B6]`" in str(err.value)
    assert "requested `i2c  i2c-1 0x76: write [E0 B7]`" in str(err.value)


def test_fixtures_are_what_the_generator_makes(tmp_path):
    """The committed traces are reproducible from make_traces.py (deterministic sim)."""
    code = (
        f"import sys; sys.path.insert(0, {str(TRACES)!r}); import make_traces as m; "
        f"from pathlib import Path; "
        f"[m.record(n, Path({str(tmp_path)!r}) / (n + '.cbor')) for n in m.TRACES]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    for name in SIMULATED:
        assert (tmp_path / f"{name}.cbor").read_bytes() == (TRACES / f"{name}.cbor").read_bytes()


@pytest.mark.parametrize("name", ["usb_echo_sim", "usb_echo_vhci"])
def test_compiled_usb_driver_replays_the_trace(name):
    """usb-echo.wasm (control, bulk, interrupt round trips, a stall) against its recorded
    USB traffic — from the simulated device, and from a real kernel's vhci-hcd in the QEMU
    tier: `UsbHost` + `ReplayUsbBackend` give it the same readings."""
    wasm = REPO / "build/wasm/usb-echo.wasm"
    if not wasm.exists():
        pytest.skip("build/wasm/usb-echo.wasm not built (wasi-hw build)")
    from wasi_hw.host import ReplayUsbBackend, VirtualClock
    from wasi_hw.kernel import run_driver
    from wasi_hw.kernel._hosts import Backends
    from wasi_hw.kernel._manifest import load_manifest

    trace = read_trace(TRACES / f"{name}.cbor")
    readings = trace.header["meta"]["readings"]
    ops = {r["op"] for r in trace.records}
    assert {"usb.control_in", "usb.control_out", "usb.bulk_in", "usb.interrupt_in"} <= ops
    assert any(r.get("error", {}).get("kind") == "pipe" for r in trace.records)
    replay = ReplayUsbBackend(trace)
    manifest = load_manifest(REPO / "drivers/usb-echo/manifest.toml")
    result = run_driver(manifest, Backends(usb=replay, clock=VirtualClock()), polls=len(readings))
    assert replay.divergence is None, str(replay.divergence)
    assert result.readings == readings
    replay.done()
