"""USB from a USB/IP server as a backend choice: ``HOST[:PORT]`` parsing, the kernel file's
``kernel.usbip`` key and what `plan_backends` builds from it. (The CLI's ``wasi-hw run
--usbip`` against a served device: tests/integration/test_usb_drivers.py.)"""

from __future__ import annotations

import pytest

from wasi_hw import UserError
from wasi_hw.apps import plan_backends
from wasi_hw.host import UsbipUsbBackend
from wasi_hw.kernel import load_kernel_file, parse_usbip

MANIFEST = """\
name = "echo"
wasm = "echo.wasm"
[[usb]]
vid = 0x1209
pid = 0x0001
interfaces = [0]
"""

KFILE = """\
[kernel]
rounds = 2
usbip = "ADDRESS"

[[driver]]
manifest = "m.toml"
"""


@pytest.mark.parametrize("text, want", [
    ("pi.local", ("pi.local", 3240)),
    ("192.168.1.20:3241", ("192.168.1.20", 3241)),
    ("[::1]:4000", ("::1", 4000)),
    ("[fe80::1]", ("fe80::1", 3240)),
    (" host-1.lan:1 ", ("host-1.lan", 1)),
])
def test_parse_usbip(text, want):
    assert parse_usbip(text) == want


@pytest.mark.parametrize("text", ["", "host:", "host:0", "host:65536", "a b", "::1:3240",
                                  "host:port", "[::1", "host:3240:1"])
def test_parse_usbip_rejects_with_one_line(text):
    with pytest.raises(UserError) as info:
        parse_usbip(text)
    assert "expected HOST[:PORT]" in str(info.value) and "\n" not in str(info.value)


def kernel_file(tmp_path, address: str, extra: str = "") -> object:
    (tmp_path / "m.toml").write_text(MANIFEST)
    k = tmp_path / "k.toml"
    k.write_text(KFILE.replace("ADDRESS", address) + extra)
    return k


def test_kernel_file_usbip_builds_a_usbip_backend(tmp_path):
    plan = load_kernel_file(kernel_file(tmp_path, "10.0.0.7:3300"))
    assert plan.usbip == ("10.0.0.7", 3300)
    backends = plan_backends(plan)     # nothing connects until a driver looks for a device
    assert isinstance(backends.usb, UsbipUsbBackend)
    assert (backends.usb.host, backends.usb.port) == ("10.0.0.7", 3300)
    assert backends.i2c is None        # no I2C grant: no bus opened


def test_kernel_file_usbip_beside_simulated_i2c(tmp_path):
    sim = '\n[[sim.i2c]]\nmodel = "tmp102"\naddress = 0x48\n'
    backends = plan_backends(load_kernel_file(kernel_file(tmp_path, "h", sim)))
    assert isinstance(backends.usb, UsbipUsbBackend) and backends.usb.port == 3240
    assert backends.i2c.device("i2c-1", 0x48) is not None


def test_kernel_file_usbip_errors_are_located(tmp_path):
    k = kernel_file(tmp_path, "h:99999")
    with pytest.raises(
        UserError, match=rf"^{k}:3: kernel\.usbip 'h:99999': expected HOST\[:PORT\]"
    ):
        load_kernel_file(k)
    k = kernel_file(tmp_path, "h", '\n[[sim.usb]]\nmodel = "echo"\n')
    with pytest.raises(UserError, match="kernel.usbip and \\[\\[sim.usb\\]\\] both choose"):
        load_kernel_file(k)
