"""``wasi-hw usbip serve`` / ``list``: what they print, what serve creates, how both refuse
bad input."""

from __future__ import annotations

import subprocess
import sys

from usbip_testing import ServerProcess

from wasi_hw.host._usbip_usb import UsbipUsbBackend


def test_serve_prints_bus_ids_and_creates_missing_image(tmp_path):
    img = tmp_path / "new.img"
    with ServerProcess("echo", "hid:ab", f"msc:{img}", extra=("--msc-size", "2M")) as srv:
        assert srv.lines[1].split()[:2] == ["1-1", "1209:0001"]
        assert srv.lines[2].split()[:2] == ["1-2", "1209:0002"]
        assert srv.lines[3].split()[:2] == ["1-3", "1209:0003"]
        assert img.stat().st_size == 2 << 20
        backend = UsbipUsbBackend(srv.host, srv.port)
        assert [d.product_id for d in backend.devices()] == [1, 2, 3]
        backend.shutdown()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "wasi_hw", "usbip", *args],
                          capture_output=True, text=True, timeout=30)


def _run(*args):
    return _cli("serve", *args)


def test_bad_device_spec_is_one_line_error(tmp_path):
    out = _run("--device", "floppy", "--port", "0")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "--device 'floppy': no USB device model 'floppy'" in out.stderr


def test_bad_image_and_size_are_one_line_errors(tmp_path):
    bad = tmp_path / "odd.img"
    bad.write_bytes(b"x" * 100)
    out = _run("--device", f"msc:{bad}", "--port", "0")
    assert out.returncode == 2 and "not a positive multiple of 512" in out.stderr
    out = _run("--device", f"msc:{tmp_path / 'n.img'}", "--msc-size", "1000", "--port", "0")
    assert out.returncode == 2 and "--msc-size" in out.stderr
    out = _run("--msc-size", "lots", "--port", "0")
    assert out.returncode == 2 and "bad size 'lots'" in out.stderr


def test_port_in_use_is_one_line_error():
    with ServerProcess("echo") as srv:
        out = _run("--port", str(srv.port))
    assert out.returncode == 2 and "cannot listen on 127.0.0.1" in out.stderr
    assert "Traceback" not in out.stderr


def test_list_shows_what_a_server_exports(tmp_path):
    with ServerProcess("echo", f"msc:{tmp_path / 'd.img'}") as srv:
        out = _cli("list", "--host", srv.host, "--port", str(srv.port))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "1-1  1209:0001  full  interfaces ff/00/00",
        "1-2  1209:0003  high  interfaces 08/06/50",
    ]


def test_list_of_unreachable_server_is_one_line_error():
    with ServerProcess("echo") as srv:
        port = srv.port
    out = _cli("list", "--port", str(port), "--timeout", "1")
    assert out.returncode == 2 and out.stderr.startswith(f"wasi-hw: cannot list 127.0.0.1:{port}")
    assert out.stderr.count("\n") == 1
