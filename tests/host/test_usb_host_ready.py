"""UsbHost remembers a passed endpoint check per (handle, transfer type, endpoint) only while
the handle's configuration, alternate settings and claims stay as they were."""

import struct

import pytest

from wasi_hw._bindings import _wasi_usb as abi
from wasi_hw.host import SimUsbBackend, UsbHost
from wasi_hw.host.usbdevices import EchoDevice

from usb_testing import GuestMem, kind, make_filter

F = abi.FilterFlags


@pytest.fixture
def env():
    backend = SimUsbBackend([EchoDevice()])
    host, g = UsbHost(backend, max_transfer=4096), GuestMem()
    region = g.region(4)
    host.list_devices(make_filter(F.VENDOR_ID, vendor_id=0x1209), region)
    h = host.open(struct.unpack("<I", region.read())[0])
    host.claim_interface(h, 0)
    return host, g, h


def test_release_forgets_passed_checks(env):
    host, g, h = env
    assert host.bulk_transfer(h, 0x01, g.region(4), 100) == 4          # check passed, remembered
    host.release_interface(h, 0)
    assert kind(host.bulk_transfer, h, 0x01, g.region(4), 100) == "not_found"
    host.claim_interface(h, 0)
    assert host.bulk_transfer(h, 0x01, g.region(4), 100) == 4


def test_set_configuration_forgets_passed_checks(env):
    host, g, h = env
    assert host.bulk_transfer(h, 0x01, g.region(4), 100) == 4
    host.release_interface(h, 0)
    host.set_configuration(h, 0)                                       # unconfigured
    assert kind(host.bulk_transfer, h, 0x01, g.region(4), 100) == "not_found"


def test_closed_handle_is_bad_after_fast_transfers(env):
    host, g, h = env
    assert host.bulk_transfer(h, 0x01, g.region(4), 100) == 4
    assert host.bulk_transfer(h, 0x81, g.region(4), 100) == 4
    host.close(h)
    assert kind(host.bulk_transfer, h, 0x01, g.region(4), 100) == "bad_handle"


def test_wrong_type_is_still_refused_after_a_bulk_transfer(env):
    host, g, h = env
    assert host.bulk_transfer(h, 0x01, g.region(4), 100) == 4
    assert kind(host.interrupt_transfer, h, 0x01, g.region(4), 100) == "invalid_param"
