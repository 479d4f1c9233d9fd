"""The device-model registry, device specs and plugins (`wasi_hw.host._models`).

The plugin examples are the ones `docs/device-models.md` shows, extracted and imported as a
user's package would be: by ``module:Class`` and through a real ``wasi_hw.devices`` entry
point (a ``.dist-info`` on ``sys.path``, read by importlib.metadata).
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import pytest

from wasi_hw import HwError
from wasi_hw.host import (BUILTIN_MODELS, DeviceModels, DeviceSpecError, Read, SimI2cBackend,
                          Write, device_models, parse_device_spec)
from wasi_hw.host.usbdevices import Setup, Stall

DOC = Path(__file__).resolve().parents[2] / "docs" / "device-models.md"


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


@pytest.fixture
def plugin_pkg(tmp_path, monkeypatch):
    """The doc's models as package ``mysensors`` (mcp9808.py, counter.py) on sys.path."""
    pkg = tmp_path / "mysensors"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    mcp, counter = _doc_blocks()
    (pkg / "mcp9808.py").write_text(mcp)
    (pkg / "counter.py").write_text(counter)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "mysensors" or m.startswith("mysensors.")]:
        del sys.modules[name]


def _entry_points(site: Path, dist: str, lines: str) -> None:
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[wasi_hw.devices]\n{textwrap.dedent(lines)}")


def test_mcp9808_example_is_about_thirty_lines():
    mcp = _doc_blocks()[0]
    assert len(mcp.strip().splitlines()) <= 36


def test_mcp9808_by_module_class_with_parameters(plugin_pkg):
    spec = parse_device_spec("mysensors.mcp9808:Mcp9808(temperature_c=21.5)@0x18", where="--sim")
    assert (spec.model, spec.address, spec.bus) == ("mysensors.mcp9808:Mcp9808", 0x18, None)
    dev = device_models().create(spec, kind="i2c")
    bus = SimI2cBackend()
    bus.attach("i2c-1", 0x18, dev)
    tx = lambda reg, n: bus.transaction("i2c-1", 0x18, False, [Write(bytes([reg])), Read(n)])[0]
    assert tx(0x06, 2) == b"\x00\x54"                      # manufacturer id
    assert tx(0x07, 2) == b"\x04\x00"                      # device id / revision
    # limits reset to 0 °C: 21.5 °C = 344/16 is above T_CRIT and T_UPPER
    assert tx(0x05, 2) == bytes([0xC1, 0x58])
    bus.transaction("i2c-1", 0x18, False, [Write(b"\x02\x01\xE0")])   # T_UPPER 30 °C
    bus.transaction("i2c-1", 0x18, False, [Write(b"\x04\x02\x80")])   # T_CRIT 40 °C
    assert dev.value("t_crit") == 0x0280
    assert tx(0x05, 2) == bytes([0x01, 0x58])                           # no flags now
    dev.temperature_c = -10.25
    raw = int.from_bytes(tx(0x05, 2), "big")
    assert raw & 0x1000 and (raw & 0x1FFF) - 0x2000 == -164   # sign bit, two's complement
    assert raw >> 13 == 0b001                                 # below T_LOWER (0 °C)
    assert tx(0x08, 1) == b"\x03"                          # resolution: 1 byte register


def test_register_map_wire_rules(plugin_pkg):
    from mysensors.mcp9808 import Mcp9808

    bus = SimI2cBackend()
    dev = bus.attach("i2c-1", 0x18, Mcp9808())
    with pytest.raises(HwError) as err:                    # read-only register
        bus.transaction("i2c-1", 0x18, False, [Write(b"\x05\x00\x00")])
    assert err.value.kind == "nack_data"
    with pytest.raises(HwError) as err:                    # no register 0x09
        bus.transaction("i2c-1", 0x18, False, [Write(b"\x09")])
    assert err.value.kind == "nack_data"
    with pytest.raises(HwError) as err:                    # a third byte into a 2-byte register
        bus.transaction("i2c-1", 0x18, False, [Write(b"\x02\x01\x00\x00")])
    assert err.value.kind == "nack_data"
    # a half-written register keeps its value
    bus.transaction("i2c-1", 0x18, False, [Write(b"\x03\x01")])
    assert dev.value("t_lower") == 0
    # without auto-increment a longer read repeats the register
    out = bus.transaction("i2c-1", 0x18, False, [Write(b"\x06"), Read(4)])[0]
    assert out == b"\x00\x54\x00\x54"


def test_usb_example_counts(plugin_pkg):
    models = DeviceModels(entry_points=False)
    dev = models.create("mysensors.counter:Counter(start=5)".split("(")[0], {"start": 5},
                        kind="usb")
    dev.handle_control(Setup(0x00, 9, 1, 0, 0))            # SET_CONFIGURATION 1
    assert dev.handle_in(0x81, 64) == b"\x06"
    assert dev.handle_in(0x81, 64) == b"\x07"
    with pytest.raises(Stall):
        dev.handle_out(0x01, b"x")                         # no such endpoint


def test_entry_point_plugins_are_found_by_name(plugin_pkg, tmp_path):
    _entry_points(tmp_path, "mysensors", """\
        mcp9808 = mysensors.mcp9808:Mcp9808
        counter = mysensors.counter:Counter
        broken = mysensors.nothere:Nope
        bme280 = mysensors.mcp9808:Mcp9808
        """)
    models = DeviceModels()
    assert "mcp9808" in models.names("i2c") and "counter" in models.names("usb")
    info = models.resolve("MCP9808", "i2c")
    assert info.origin == "entry point of mysensors" and info.summary.startswith("Microchip")
    dev = models.create(parse_device_spec("mcp9808(temperature_c=30)@0x18", models=models))
    assert dev.temperature_c == 30.0
    # a plugin may not take a built-in name
    assert models.resolve("bme280").origin == "built-in"
    assert any("'bme280' is already taken" in p for p in models.problems)
    # a broken plugin names itself when asked for, and does not hide the others
    with pytest.raises(DeviceSpecError, match=r"'broken' \(entry point of mysensors\) cannot "
                                              r"be loaded: .*mysensors.nothere"):
        models.resolve("broken")
    assert "broken" not in models.names()


def test_one_name_table_for_every_front_end():
    models = DeviceModels(entry_points=False)
    same = {"lcd": "hd44780", "pcf8574hd44780": "hd44780", "HD44780": "hd44780",
            "hid": "hid-keyboard", "keyboard": "hid-keyboard", "hidkeyboard": "hid-keyboard",
            "hid_keyboard": "hid-keyboard", "mass_storage": "msc", "massstorage": "msc",
            "echodevice": "echo"}
    for alias, name in same.items():
        assert models.resolve(alias).name == name
    assert set(models.names()) == set(BUILTIN_MODELS)


@pytest.mark.parametrize("spec, message", [
    ("bme280(temperature_c=)@0x76", "parameter temperature_c has no value"),
    ("bme280(temperature_c=30@0x76", "missing ) after the parameters"),
    ("bme280(30)@0x76", "parameter '30' is not KEY=VALUE"),
    ("bme280(t=1, t=2)@0x76", "parameter t is given twice"),
    ("bme280@0x99", "address 0x99 is not a 7-bit I2C address"),
    ("bme280@seventy", "'seventy' is not an address"),
    ("bme280", "expected @ADDRESS or @BUS:ADDRESS after the model (it is missing)"),
    ("bme280 x@0x76", "found ' x@0x76' at column 7"),
    ("@0x76", "expected a model name first"),
    ("bme280(name='x)@0x76", "unclosed quote"),
])
def test_malformed_specs_say_what_and_where(spec, message):
    with pytest.raises(DeviceSpecError) as err:
        parse_device_spec(spec, where="--sim")
    assert str(err.value).startswith(f"--sim {spec!r}: ")
    assert message in str(err.value)


@pytest.mark.parametrize("spec, kind, message", [
    ("bme28@0x76", "i2c", "no I2C device model 'bme28' (did you mean bme280?); available: "
                          "bme280, hd44780 (lcd, pcf8574, pcf8574hd44780)"),
    ("bme280(temprature_c=3)@0x76", "i2c", "bme280 has no parameter 'temprature_c' "
                                           "(did you mean temperature_c?)"),
    ("bme280(temperature_c=hot)@0x76", "i2c", "parameter temperature_c must be a number, got hot"),
    ("nack-after@0x10", "i2c", "nack-after needs parameter n"),
    ("hid@0x10", "i2c", "hid-keyboard is a USB device model, not an I2C one"),
    ("nosuch.mod:Thing@0x10", "i2c", "cannot import 'nosuch.mod'"),
    ("wasi_hw.host:Write@0x10", "i2c", "is not a device model"),
])
def test_bad_models_and_parameters_are_named(spec, kind, message):
    with pytest.raises(DeviceSpecError) as err:
        device_models().create(parse_device_spec(spec, where="--sim"), kind=kind,
                               where=f"--sim {spec!r}")
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)


def test_usb_specs_and_the_positional_shorthand(tmp_path):
    models = device_models()
    kbd = models.create(parse_device_spec("hid:hello world", address=False), kind="usb")
    assert type(kbd).__name__ == "HidKeyboard" and kbd.remaining == 2 * len("hello world")
    echo = models.create(parse_device_spec("echo(serial=1234)", address=False), kind="usb")
    assert echo.serial == "1234"                       # an unquoted number kept as text
    with pytest.raises(DeviceSpecError, match=r"msc: .*x.img: No such file or directory"):
        models.create(parse_device_spec(f"msc:{tmp_path}/x.img", address=False), kind="usb")
    with pytest.raises(DeviceSpecError, match="unexpected '@0x10'"):
        parse_device_spec("echo@0x10", address=False, where="--usb-sim")
