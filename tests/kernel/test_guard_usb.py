"""The USB guard over a real `UsbHost` and `SimUsbBackend`: devices, interfaces, endpoints and
operations are denied unless granted; denials are audited; quotas and timeouts are bounded."""

from __future__ import annotations

import struct

import pytest

from wasi_hw import HwError
from wasi_hw._bindings._wasi_usb import Filter, FilterFlags
from wasi_hw.host import SimUsbBackend, UsbHost
from wasi_hw.host.usbdevices import EchoDevice
from wasi_hw.kernel import AuditLog
from wasi_hw.kernel._guard import UsbGuard
from wasi_hw.kernel._hosts import _usb_host
from wasi_hw.kernel._manifest import Limits, Manifest, UsbGrant


class Buf:
    """A stand-in for a `GuestRegion` (host memory instead of guest memory)."""

    def __init__(self, n: int = 0, data: bytes = b"") -> None:
        self.data = bytearray(data or bytes(n))

    def __len__(self) -> int:
        return len(self.data)

    def read(self) -> bytes:
        return bytes(self.data)

    def write(self, data: bytes, offset: int = 0) -> None:
        assert offset + len(data) <= len(self.data)
        self.data[offset:offset + len(data)] = data


def make(ops=(), interfaces=(0,), endpoints=(0x81, 0x01), vid=0x1209, serial=None, **limits):
    backend = SimUsbBackend([EchoDevice("E1"), EchoDevice("E2")])
    m = Manifest(name="usbdrv", wasm=None,
                 usb=(UsbGrant(vid, 0x0001, serial, frozenset(interfaces), frozenset(endpoints),
                               frozenset(ops)),),
                 limits=Limits(**limits))
    audit = AuditLog()
    guard = UsbGuard(_usb_host(UsbHost, m, backend, None), m, audit)
    return guard, audit


def listed(guard) -> list[int]:
    buf = Buf(64)
    n = guard.list_devices(Filter(FilterFlags(0), 0, 0, 0, b""), buf)
    return list(struct.unpack_from(f"<{n}I", buf.data))


def opened(guard) -> int:
    return guard.open(listed(guard)[0])


def denied(audit):
    return [(e["call"], e["why"]) for e in audit.entries]


def test_only_granted_devices_are_listed():
    guard, _ = make(serial="E2")
    assert len(listed(guard)) == 1
    info = guard.device_info(listed(guard)[0])
    assert (info.vendor_id, info.product_id) == (0x1209, 0x0001)
    guard_none, _ = make(vid=0xdead)
    assert listed(guard_none) == []


def test_granted_interface_and_endpoint_work():
    guard, audit = make()
    h = opened(guard)
    guard.claim_interface(h, 0)
    assert guard.bulk_transfer(h, 0x01, Buf(data=b"ping"), 100) == 4
    got = Buf(64)
    assert guard.bulk_transfer(h, 0x81, got, 100) == 4
    assert got.data[:4] == b"ping"
    assert not audit.entries


@pytest.mark.parametrize("call,args,fragment", [
    ("claim_interface", (1,), "interface 1 is not granted"),
    ("interrupt_transfer", (0x82, Buf(8), 10), "endpoint 0x82 is not granted"),
    ("clear_halt", (0x82,), "endpoint 0x82 is not granted"),
    ("reset_device", (), "operation reset is not granted"),
    ("set_configuration", (1,), "operation set_configuration is not granted"),
    ("detach_kernel_driver", (0,), "operation detach_kernel_driver is not granted"),
    ("control_transfer", (0x00, 9, 1, 0, Buf(0), 10), "SET_CONFIGURATION needs"),
    ("control_transfer", (0x00, 5, 9, 0, Buf(0), 10), "SET_ADDRESS"),
    ("control_transfer", (0x81, 6, 0x2200, 3, Buf(8), 10), "interface 3 is not granted"),
    ("control_transfer", (0x02, 1, 0, 0x82, Buf(0), 10), "endpoint 0x82 is not granted"),
])
def test_ungranted_is_access_and_audited(call, args, fragment):
    guard, audit = make()
    h = opened(guard)
    with pytest.raises(HwError) as info:
        getattr(guard, call)(h, *args)
    assert info.value.kind == "access"
    assert len(audit.entries) == 1
    entry = audit.entries[0]
    assert entry["call"] == f"wasi_usb.{call}" and fragment in entry["why"]
    assert entry["asked"]["vid"] == 0x1209 and entry["driver"] == "usbdrv"


def test_granted_operation_passes():
    guard, audit = make(ops=("reset", "set_configuration"))
    h = opened(guard)
    guard.set_configuration(h, 1)
    guard.reset_device(h)
    assert not audit.entries


def test_transfer_quota_and_handle_quota():
    guard, audit = make(max_transfer=16, open_handles=1)
    h = opened(guard)
    guard.claim_interface(h, 0)
    with pytest.raises(HwError) as info:
        guard.bulk_transfer(h, 0x81, Buf(17), 10)
    assert info.value.kind == "no_mem"
    with pytest.raises(HwError) as info:
        guard.open(listed(guard)[1])
    assert info.value.kind == "no_mem"
    assert [e["outcome"] for e in audit.entries] == ["no_mem", "no_mem"]


def test_forged_handle_is_bad_handle():
    guard, _ = make()
    with pytest.raises(HwError) as info:
        guard.bulk_transfer(0x7777, 0x81, Buf(4), 10)
    assert info.value.kind == "bad_handle"


def test_timeout_is_bounded_by_the_deadline():
    guard, _ = make(deadline_ms=25)
    assert guard._timeout(0) == 0 and guard._timeout(10) == 10
    assert guard._timeout(0xFFFFFFFF) == 25
