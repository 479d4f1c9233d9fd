"""A compiled driver over USB/IP when the transport itself fails: the usb-echo `.wasm`, run
by the kernel on `UsbipUsbBackend`, follows its server going away and a new server on the
same port (hotplug left → arrived). The drivers' normal paths over USB/IP are covered by
tests/integration/test_usb_drivers.py (its ``transport="usbip"`` cases)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasi_hw.host import UsbipServer, UsbipUsbBackend
from wasi_hw.host.usbdevices import EchoDevice

pytestmark = pytest.mark.engine  # compiled drivers against a USB/IP server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(build_drivers) -> None:
    build_drivers("usb-echo")


def test_echo_driver_follows_server_loss_and_restart(built, tmp_path):
    from wasi_hw.kernel import Backends, Kernel, load_manifest

    events = []
    first = UsbipServer([EchoDevice()], port=0).start()
    host, port = first.address
    backend = UsbipUsbBackend(host, port, io_timeout=1.0)
    try:
        with Kernel(Backends(usb=backend), on_event=events.append, cache_dir=tmp_path) as kernel:
            kernel.add(load_manifest(ROOT / "drivers" / "usb-echo" / "manifest.toml"))
            kernel.run(rounds=1)
            first.stop()  # the server goes away: every import's connection closes
            kernel.run(rounds=2)  # rounds count every poll so far
            with UsbipServer([EchoDevice(serial="ECHO0002")], host=host, port=port):
                kernel.run(rounds=3)
    finally:
        first.stop()
        backend.shutdown()
    readings = [e.data for e in events if e.kind == "report"]
    assert [r["connected"] for r in readings] == [True, False, True], events
    assert [(r["arrivals"], r["departures"]) for r in readings] == [(0, 0), (0, 1), (1, 1)]
    assert readings[0]["ok"] is True and readings[0]["serial"] == "ECHO0001"
    assert readings[2]["ok"] is True and readings[2]["serial"] == "ECHO0002"
    assert readings[2]["counter"] == 0  # the new device's own interrupt counter
