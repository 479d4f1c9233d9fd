"""Manifests: validated before anything runs, errors located file:line, grants frozen."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from wasi_hw import UserError
from wasi_hw.kernel._manifest import ManifestError, load_manifest

GOOD = """\
name = "bme280"
wasm = "bme280.wasm"
poll_interval_ms = 250

[config]
bus = "i2c-1"
address = "0x76"

[[i2c]]
bus = "i2c-1"
addresses = [0x76, 0x77]

[[i2c.registers]]
first = 0x88
last = 0xff
access = "r"

[[i2c.registers]]
first = 0xf2
last = 0xf5
access = "rw"

[[usb]]
vid = 0x1209
pid = 0x0001
serial = "S1"
interfaces = [0]
endpoints = [0x81, 0x01]
operations = ["set_configuration"]

[limits]
memory_pages = 8
deadline_ms = 50

[restart]
max_faults = 2
backoff_ms = 10
"""


def write(tmp_path, text, name="m.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_good_manifest(tmp_path):
    m = load_manifest(write(tmp_path, GOOD))
    assert m.name == "bme280"
    assert m.wasm == (tmp_path / "bme280.wasm").resolve()
    assert dict(m.config) == {"bus": "i2c-1", "address": "0x76"}
    g = m.i2c_grant("i2c-1")
    assert g.addresses == {0x76, 0x77}
    assert g.allows_register(0x88, write=False) and not g.allows_register(0x88, write=True)
    assert g.allows_register(0xF4, write=True)
    assert m.usb[0].endpoints == {0x81, 0x01} and m.usb[0].operations == {"set_configuration"}
    assert m.limits.memory_pages == 8 and m.limits.deadline_ms == 50
    assert m.limits.open_handles == 4  # default
    assert m.restart.max_faults == 2 and m.poll_interval_ms == 250


def test_grants_are_frozen(tmp_path):
    m = load_manifest(write(tmp_path, GOOD))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.i2c[0].addresses = frozenset({0x10})
    with pytest.raises(AttributeError):
        m.i2c[0].addresses.add(0x10)
    with pytest.raises(TypeError):
        m.config["bus"] = "i2c-2"


@pytest.mark.parametrize("old,new,line,fragment", [
    ('poll_interval_ms = 250', 'poll_interval = 250', 3, "unknown key 'poll_interval'"),
    ('addresses = [0x76, 0x77]', 'addresses = [0x76, 0x80]', 11, "0x80 is out of range"),
    ('access = "rw"', 'access = "x"', 21, 'must be "r", "w" or "rw"'),
    ('operations = ["set_configuration"]', 'operations = ["format_disk"]', 29,
     "unknown operation 'format_disk'"),
    ('deadline_ms = 50', 'deadline_ms = "fast"', 33, "must be milliseconds, not a string"),
    ('endpoints = [0x81, 0x01]', 'endpoints = [0x81, 0x00]', 28, "not an endpoint address"),
    ('max_faults = 2', 'max_faults = 2\nbogus = 1', 37, "unknown key 'bogus'"),
    ('address = "0x76"', 'address = 0x76', 7, "must be a string"),
    ('last = 0xff', 'last = 0x10', 15, "below first"),
])
def test_semantic_errors_are_located(tmp_path, old, new, line, fragment):
    assert old in GOOD
    p = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ManifestError) as info:
        load_manifest(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}:{line}: "), msg
    assert fragment in msg


def test_missing_required_key(tmp_path):
    p = write(tmp_path, 'name = "x"\n')
    with pytest.raises(ManifestError, match=r"m\.toml:1: manifest: missing required key 'wasm'"):
        load_manifest(p)


def test_syntax_error_is_located(tmp_path):
    p = write(tmp_path, 'name = "x"\nwasm = "y.wasm"\n[limits\n')
    with pytest.raises(ManifestError, match=r"m\.toml:3: TOML syntax"):
        load_manifest(p)


def test_missing_file_is_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_manifest(tmp_path / "nope.toml")


def test_bad_name(tmp_path):
    p = write(tmp_path, 'name = "Bad Name"\nwasm = "y.wasm"\n')
    with pytest.raises(ManifestError, match=r":1: driver name"):
        load_manifest(p)


# -- kernel files ---------------------------------------------------------------------------

from wasi_hw.apps import plan_backends  # noqa: E402
from wasi_hw.kernel import load_kernel_file  # noqa: E402

KFILE = """\
[kernel]
rounds = 3

[[driver]]
manifest = "m.toml"

[[sim.i2c]]
model = "bme280"
address = 0x76
params = { temperature_c = 19.0 }
"""


def test_kernel_file_with_manifest_and_sim(tmp_path):
    write(tmp_path, GOOD)
    k = write(tmp_path, KFILE, "k.toml")
    plan = load_kernel_file(k)
    assert [m.name for m in plan.manifests] == ["bme280"] and plan.rounds == 3
    backends = plan_backends(plan)
    assert backends.i2c.device("i2c-1", 0x76).temperature_c == 19.0
    assert backends.usb is not None          # the manifest has a USB grant: a sim USB bus


@pytest.mark.parametrize("old,new,line,fragment", [
    ('model = "bme280"', 'model = "toaster"', None, "no I2C device model 'toaster'"),
    ('address = 0x76', 'address = 0x99', 9, "out of range"),
    ('rounds = 3', 'rounds = 3\nspeed = 1', 3, "kernel: unknown key 'speed'"),
    ('manifest = "m.toml"', 'manifest = "missing.toml"', None, "missing.toml: no such file"),
])
def test_kernel_file_errors(tmp_path, old, new, line, fragment):
    write(tmp_path, GOOD)
    k = write(tmp_path, KFILE.replace(old, new), "k.toml")
    with pytest.raises(UserError) as info:
        plan_backends(load_kernel_file(k))
    msg = str(info.value)
    assert fragment in msg
    if line is not None:
        assert msg.startswith(f"{k}:{line}: "), msg


def test_duplicate_driver_names(tmp_path):
    write(tmp_path, GOOD)
    k = write(tmp_path, KFILE.replace('[[driver]]\nmanifest = "m.toml"\n',
                                      '[[driver]]\nmanifest = "m.toml"\n[[driver]]\nmanifest = "m.toml"\n'),
              "k.toml")
    with pytest.raises(ManifestError, match=r"k\.toml:6: driver name 'bme280' appears twice"):
        load_kernel_file(k)


def test_programmatic_manifests_are_frozen_too():
    from wasi_hw.kernel import I2cGrant, Manifest, UsbGrant

    cfg = {"bus": "i2c-1"}
    m = Manifest(name="x", wasm=None, config=cfg, i2c=[I2cGrant("i2c-1", {0x76}, registers=[])],
                 usb=[UsbGrant(1, 2, interfaces={0}, endpoints=[0x81], operations=["reset"])])
    cfg["bus"] = "i2c-9"                       # the caller's dict is not shared
    assert m.config["bus"] == "i2c-1"
    assert isinstance(m.i2c, tuple) and isinstance(m.i2c[0].addresses, frozenset)
    assert isinstance(m.usb[0].endpoints, frozenset) and m.usb[0].operations == {"reset"}
    with pytest.raises(TypeError):
        m.config["bus"] = "i2c-2"


@pytest.mark.parametrize("lines,pointer", [
    ("", "auto_increment"),
    ('write_pairs = true', "write_pairs"),
    ('pointer = "write_pairs"', "write_pairs"),
    ('pointer = "none"', "none"),
])
def test_register_pointer_behaviour(tmp_path, lines, pointer):
    text = GOOD.replace("addresses = [0x76, 0x77]", f"addresses = [0x76, 0x77]\n{lines}")
    g = load_manifest(write(tmp_path, text)).i2c[0]
    assert g.pointer == pointer and g.write_pairs == (pointer == "write_pairs")


@pytest.mark.parametrize("lines,fragment", [
    ('pointer = "sideways"', 'i2c.pointer must be one of auto_increment, write_pairs, none'),
    ('write_pairs = true\npointer = "none"', "contradicts pointer = 'none'"),
])
def test_register_pointer_errors(tmp_path, lines, fragment):
    text = GOOD.replace("addresses = [0x76, 0x77]", f"addresses = [0x76, 0x77]\n{lines}")
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, text))
    assert fragment in str(info.value)
IMC = """\
name = "comfort"
wasm = "comfort.wasm"

[imc]
offer = ["comfort.now"]
callers = ["gateway"]
call = ["bme280.reading", "sht3x.reading"]
publish = ["dewpoint"]
subscribe = ["bme280.alarm"]
"""


def test_imc_table(tmp_path):
    m = load_manifest(write(tmp_path, IMC))
    assert m.imc.call == frozenset({"bme280.reading", "sht3x.reading"})
    assert m.imc.offer == frozenset({"comfort.now"}) and m.imc.callers == frozenset({"gateway"})
    assert m.imc.publish == frozenset({"dewpoint"}) and m.imc.subscribe == frozenset({"bme280.alarm"})
    assert load_manifest(write(tmp_path, 'name = "x"\nwasm = "x.wasm"\n', "x.toml")).imc.callers is None


@pytest.mark.parametrize("old, new, line, fragment", [
    ('call = ["bme280.reading", "sht3x.reading"]', 'call = ["Bme280"]', 7, "is not a service name"),
    ('call = ["bme280.reading", "sht3x.reading"]', 'call = ["a.>"]', 7, "is not a service name"),
    ('subscribe = ["bme280.alarm"]', 'subscribe = ["alarm"]', 9, "must name the publisher"),
    ('publish = ["dewpoint"]', 'publish = ["dewpoint", "dewpoint"]', 8, "lists a name twice"),
    ('callers = ["gateway"]', 'callers = ["no such"]', 6, "is not a module name"),
    ('publish = ["dewpoint"]', 'publish = "dewpoint"', 8, "must be a list"),
    ('subscribe = ["bme280.alarm"]', 'subscribe = ["bme280.alarm"]\nlisten = ["x"]', 10, "unknown key 'listen'"),
    ('offer = ["comfort.now"]', 'offer = []', 6, "imc.offer is empty"),
])
def test_imc_errors_are_located(tmp_path, old, new, line, fragment):
    with pytest.raises(ManifestError) as info:
        load_manifest(write(tmp_path, IMC.replace(old, new)))
    assert f"m.toml:{line}:" in str(info.value) and fragment in str(info.value)
