"""The pytest plugin for driver authors (`wasi_hw.apps.testing`), through its own ``wasi_hw``
fixture (loaded by the ``pytest11`` entry point, as in any project that installs wasi-hw),
with drivers of this tree under the real kernel."""

from __future__ import annotations

import pytest

from wasi_hw.host import Read, Write
from wasi_hw.apps.testing import ScriptMismatch, i2c, usb


@pytest.fixture(scope="module")
def wasm(build_drivers):
    return build_drivers("hello", "tmp102", "bme280")


def test_simulated_device_with_parameters_readings_audit_and_trace(wasi_hw, wasm):
    wasi_hw.driver(wasm["tmp102"], config={"address": "0x49"})
    chip = wasi_hw.sim_i2c("tmp102(temperature_c=31.5)@0x49")
    run = wasi_hw.run(polls=3)
    assert run.state == "running" and run.faults == 0
    assert [r["temperature_c"] for r in run.readings] == [31.5] * 3
    assert run.audit == []
    reads = [t for t in run.i2c() if t["ops"] == [{"write": b"\x00"}, {"read": 2}]]
    assert len(reads) == 3 and all(t["address"] == 0x49 for t in reads)
    assert reads[0]["result"] == [bytes([0x1F, 0x80])]        # 31.5 °C, 12-bit format
    chip.temperature_c = -5.0
    assert wasi_hw.run(polls=1).readings[-1]["temperature_c"] == -5.0


def test_denied_access_shows_in_the_audit_records(wasi_hw, wasm):
    wasi_hw.driver(wasm["hello"], config={"address": "0x51"}, allow=[0x50])
    wasi_hw.sim_i2c("bme280@0x50")
    run = wasi_hw.run(polls=1)
    assert run.readings == [] and run.errors == 1
    assert run.audit and run.audit[0]["asked"]["address"] == 0x51
    assert run.i2c() == []                      # the denied request never reached the bus


def test_expect_i2c_script_consumed_in_order(wasi_hw, wasm):
    wasi_hw.driver(wasm["hello"], config={"address": "0x48"})
    wasi_hw.expect_i2c([i2c.read(0x48, [0x5A]), i2c.read(0x48, [0xA5]),
                        i2c.transaction(0x48, [Read(1)], [b"\x01"])])
    run = wasi_hw.run(polls=3)
    assert [r["byte"] for r in run.readings] == [0x5A, 0xA5, 0x01]


def test_expect_i2c_scripted_error_reaches_the_driver(wasi_hw, wasm):
    wasi_hw.driver(wasm["hello"], config={"address": "0x48"})
    wasi_hw.expect_i2c([i2c.read(0x48, [0], error="nack_address"), i2c.read(0x48, [7])])
    run = wasi_hw.run(polls=2)
    assert run.readings == [{"address": 0x48, "byte": 7}] and run.errors == 1
    assert any("NackAddress" in msg or "nack" in msg.lower() for _, msg in run.logs)


def test_expect_i2c_mismatch_names_both_sides(wasi_hw, wasm):
    wasi_hw.driver(wasm["hello"], config={"address": "0x48"})
    wasi_hw.expect_i2c([i2c.write_read(0x48, [0x00], [1, 2])])
    with pytest.raises(ScriptMismatch) as err:
        wasi_hw.run(polls=1)
    assert "recorded `i2c  i2c-1 0x48: write [00], read 2`" in str(err.value)
    assert "requested `i2c  i2c-1 0x48: read 1`" in str(err.value)


def test_expect_i2c_leftovers_fail(wasi_hw, wasm):
    wasi_hw.driver(wasm["hello"], config={"address": "0x48"})
    wasi_hw.expect_i2c([i2c.read(0x48, [1]), i2c.write(0x48, [0x10, 0x20])])
    with pytest.raises(ScriptMismatch, match=r"record 2 .*never requested: `i2c  i2c-1 0x48: "
                                             r"write \[10 20\]`"):
        wasi_hw.run(polls=1)


def test_replay_of_a_recorded_run(wasi_hw, wasm, tmp_path):
    wasi_hw.driver(wasm["bme280"], config={"address": "0x76"})
    wasi_hw.sim_i2c("bme280(temperature_c=27.25, humidity_pct=60)@0x76")
    recorded = wasi_hw.run(polls=2, deadline_ms=5000)   # no restart, even on a loaded machine
    assert recorded.faults == 0
    path = tmp_path / "bme280.cbor"
    recorded.save_trace(path)

    from wasi_hw.apps.testing import DriverTest

    again = DriverTest(tmp_path)
    again.driver(wasm["bme280"], config={"address": "0x76"})
    again.replay(path)
    replayed = again.run(polls=2, deadline_ms=5000)
    assert replayed.readings == recorded.readings
    assert abs(replayed.readings[0]["temperature_c"] - 27.25) < 0.02
    # a replay that asks for more than was recorded fails
    third = DriverTest(tmp_path)
    third.driver(wasm["bme280"], config={"address": "0x76"})
    third.replay(path)
    with pytest.raises(ScriptMismatch, match="end of trace"):
        third.run(polls=3, deadline_ms=5000)


def test_operation_objects_in_scripts(wasi_hw, wasm):
    item = i2c.transaction(0x10, [Write(b"\x01"), Read(2)], [b"\xAA\xBB"])
    assert item["ops"] == [{"write": b"\x01"}, {"read": 2}] and item["result"] == [b"\xAA\xBB"]
    with pytest.raises(TypeError, match="not an I2C expectation"):
        wasi_hw.expect_i2c([("write", 0x10)])


@pytest.fixture(scope="module")
def usb_driver(tmp_path_factory, build_drivers):
    """The `wasi-hw new driver --usb` template, built (it reads bulk IN 0x81 per poll)."""
    import os
    import sys
    from pathlib import Path

    from wasi_hw.apps import build_path, new_driver

    root = Path(__file__).resolve().parents[3]
    crate = new_driver(tmp_path_factory.mktemp("usb"), "counter", bus="usb")
    old = os.environ.get("CARGO_TARGET_DIR")
    os.environ["CARGO_TARGET_DIR"] = str(root / "target")
    try:
        wasm = build_path(crate)[0].path
    finally:
        if old is None:
            del os.environ["CARGO_TARGET_DIR"]
        else:
            os.environ["CARGO_TARGET_DIR"] = old
    sys.path.insert(0, str(crate / "tests"))
    from sim_counter import SimCounter
    sys.path.remove(str(crate / "tests"))
    assert wasm == crate / "build" / "wasm" / "counter.wasm"
    return crate / "manifest.toml", SimCounter


def _usb_script(model, answers):
    calls = [usb.devices(model), usb.call("open", device_id="sim:1", result=1),
             usb.call("get_configuration", handle=1, result=0),
             usb.call("set_configuration", handle=1, value=1),
             usb.call("claim_interface", handle=1, interface=0)]
    return calls + [usb.call("bulk_in", handle=1, endpoint=0x81, length=64, timeout_ms=100,
                             result=a) for a in answers]


def test_expect_usb_script(wasi_hw, usb_driver):
    wasm, model = usb_driver
    wasi_hw.driver(wasm)
    wasi_hw.expect_usb(_usb_script(model(), [b"\x2a", b"\x01\x02"]))
    run = wasi_hw.run(polls=2)
    assert run.readings == [{"bytes": 1, "first": 42}, {"bytes": 2, "first": 1}]


def test_expect_usb_mismatch_and_leftovers(wasi_hw, usb_driver):
    wasm, model = usb_driver
    wasi_hw.driver(wasm)
    script = _usb_script(model(), [b"\x2a"])
    script[-1]["args"]["length"] = 32                 # the driver asks for 64
    wasi_hw.expect_usb(script)
    with pytest.raises(ScriptMismatch, match=r"recorded `usb  bulk_in\(.*length=32"):
        wasi_hw.run(polls=1)
    wasi_hw.expect_usb(_usb_script(model(), [b"\x01", b"\x02", b"\x03"]))
    with pytest.raises(ScriptMismatch, match="never requested"):
        wasi_hw.run(polls=1)
