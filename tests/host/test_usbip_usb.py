"""`UsbipUsbBackend` against our `UsbipServer` (in process, and as a killable process)."""

from __future__ import annotations

import signal
import struct
import threading
import time

import pytest

from wasi_hw import HwError
from wasi_hw.host._usb_backend import UsbBackend
from wasi_hw.host._usbip_usb import UsbipUsbBackend
from wasi_hw.host.usbdevices import EchoDevice
from wasi_hw.host.usbdevices._keyboard import HidKeyboard
from wasi_hw.host.usbdevices._mass_storage import MassStorage

from usb_testing import GuestMem, IsoSource, bot_command, kind, make_filter
from usbip_testing import ServerProcess, open_configured, usbip_backend

pytestmark = pytest.mark.engine  # a USB/IP server per test, killed and frozen on purpose

SET_BUFFER, GET_BUFFER, STALL, GET_QUEUED = 1, 2, 3, 4


@pytest.fixture
def echo():
    with usbip_backend(EchoDevice(), EchoDevice("ECHO0002")) as (server, backend):
        info, handle = open_configured(backend)
        yield server, backend, handle


def test_is_a_usb_backend():
    assert issubclass(UsbipUsbBackend, UsbBackend) and UsbipUsbBackend.name == "usbip"


def test_enumeration_matches_the_models():
    models = [EchoDevice(), HidKeyboard("a")]
    with usbip_backend(*models) as (server, backend):
        devs = backend.devices()
        assert [(d.vendor_id, d.product_id) for d in devs] == [(0x1209, 1), (0x1209, 2)]
        for d, m in zip(devs, models, strict=True):
            assert d.device_descriptor == m.device_descriptor
            assert d.config_descriptors == m.config_descriptors
            assert d.serial == m.serial and d.speed == m.speed
        assert [d.port_path for d in devs] == [(1,), (2,)]
        assert [(d.bus_number, d.address) for d in devs] == [(1, 2), (1, 3)]
        assert backend.devices() == devs  # stable ids while attached
        assert len({d.id for d in devs}) == 2


def test_strings_and_configuration(echo):
    _server, b, h = echo
    assert b.string_descriptor(h, 2, 0) == "Echo"
    assert b.string_descriptor(h, 3, 0x0409) == "ECHO0001"
    assert kind(b.string_descriptor, h, 9, 0) == "pipe"
    assert kind(b.string_descriptor, h, 1, 0x0407) == "pipe"  # language not offered
    assert b.get_configuration(h) == 1
    assert kind(b.set_configuration, h, 7) == "not_found"
    assert kind(b.set_configuration, h, 1) == "busy"  # interface 0 is claimed


def test_control_in_out_and_stall_then_recovery(echo):
    _server, b, h = echo
    assert b.control_out(h, 0x40, SET_BUFFER, 0, 0, b"hello", 500) == 5
    assert b.control_in(h, 0xC0, GET_BUFFER, 0, 0, 64, 500) == b"hello"
    assert b.control_in(h, 0xC0, GET_BUFFER, 0, 0, 2, 500) == b"he"
    assert kind(b.control_in, h, 0xC0, STALL, 0, 0, 1, 500) == "pipe"
    assert kind(b.control_out, h, 0x40, SET_BUFFER, 0, 0, bytes(300), 500) == "pipe"
    assert b.control_in(h, 0xC0, GET_BUFFER, 0, 0, 64, 500) == b"hello"


@pytest.mark.parametrize("size", [1, 63, 64, 65, 4096, 65536])
def test_bulk_echo(echo, size):
    _server, b, h = echo
    data = bytes((i * 7 + size) & 0xFF for i in range(size))
    got = bytearray()
    errors = []

    def reader():  # the device queues 4 KiB at most: read while writing
        try:
            while len(got) < size:
                got.extend(b.bulk_in(h, 0x81, 4096, 3000))
        except HwError as err:
            errors.append(err)

    t = threading.Thread(target=reader)
    t.start()
    assert b.bulk_out(h, 0x01, data, 3000) == size
    t.join(10)
    assert not errors and bytes(got) == data


def test_in_without_data_times_out_then_next_transfer_works(echo):
    _server, b, h = echo
    t0 = time.monotonic()
    assert kind(b.bulk_in, h, 0x81, 64, 150) == "timeout"
    assert 0.14 < time.monotonic() - t0 < 1.5
    assert b.bulk_out(h, 0x01, b"after", 500) == 5
    assert b.bulk_in(h, 0x81, 64, 500) == b"after"  # the unlinked URB took nothing
    assert b.control_in(h, 0xC0, GET_QUEUED, 0, 0, 2, 500) == b"\0\0"


def test_interrupt_halt_and_clear_halt(echo):
    _server, b, h = echo
    first = struct.unpack("<I", b.interrupt_in(h, 0x82, 8, 500))[0]
    assert struct.unpack("<I", b.interrupt_in(h, 0x82, 8, 500))[0] == first + 1
    b.control_out(h, 0x02, 0x03, 0, 0x82, b"", 500)  # SET_FEATURE(ENDPOINT_HALT)
    assert kind(b.interrupt_in, h, 0x82, 8, 500) == "pipe"
    b.clear_halt(h, 0x82)
    assert len(b.interrupt_in(h, 0x82, 8, 500)) == 4


def test_claims_alt_settings_and_handles(echo):
    _server, b, h = echo
    info = b.devices()[0]
    other = b.open(info.id)
    assert kind(b.claim_interface, other, 0) == "busy"
    assert kind(b.claim_interface, h, 5) == "not_found"
    b.set_alt_setting(h, 0, 0)
    assert kind(b.set_alt_setting, h, 0, 3) == "not_found"
    assert kind(b.set_alt_setting, other, 0, 0) == "not_found"  # not claimed by it
    b.release_interface(h, 0)
    assert kind(b.release_interface, h, 0) == "not_found"
    b.claim_interface(other, 0)
    b.close(other)
    b.claim_interface(h, 0)  # released by close
    assert kind(b.detach_kernel_driver, h, 0) == "not_found"
    assert kind(b.get_configuration, object()) == "invalid_param"


def test_reset_device_keeps_configuration_and_clears_device_state(echo):
    _server, b, h = echo
    b.bulk_out(h, 0x01, b"queued", 500)
    b.reset_device(h)
    assert b.get_configuration(h) == 1
    assert b.control_in(h, 0xC0, GET_QUEUED, 0, 0, 2, 500) == b"\0\0"


def test_disconnect_gives_no_device_and_reimport_gets_new_id(echo):
    server, b, h = echo
    old = b.devices()[0].id
    server.disconnect("1-1")
    assert kind(b.bulk_in, h, 0x81, 64, 2000) == "no_device"
    assert kind(b.open, old) == "no_device"
    ids = [d.id for d in b.devices()]
    assert old not in ids and len(ids) == 2
    b.close(h)  # never raises for a gone device


def test_server_killed_mid_transfer_is_no_device_promptly():
    with ServerProcess("echo") as srv:
        b = UsbipUsbBackend(srv.host, srv.port)
        _info, h = open_configured(b)
        result = []
        t = threading.Thread(target=lambda: result.append(kind(b.bulk_in, h, 0x81, 64, 20000)))
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        srv.signal(signal.SIGKILL)
        t.join(5)
        assert result == ["no_device"] and time.monotonic() - t0 < 2
        assert b.devices() == []
        b.shutdown()


def test_frozen_server_is_no_device_after_timeout_and_grace():
    with ServerProcess("echo") as srv:
        b = UsbipUsbBackend(srv.host, srv.port, io_timeout=1.0, unlink_grace=0.5)
        _info, h = open_configured(b)
        srv.signal(signal.SIGSTOP)
        t0 = time.monotonic()
        assert kind(b.bulk_in, h, 0x81, 64, 200) == "no_device"  # no RET_UNLINK came
        assert time.monotonic() - t0 < 1.5
        b.shutdown()


def test_unreachable_server_lists_nothing():
    with ServerProcess("echo") as srv:
        port = srv.port
    assert UsbipUsbBackend("127.0.0.1", port, io_timeout=0.5).devices() == []


def _read10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def _write10(lba: int, blocks: int) -> bytes:
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


def test_mass_storage_read_write_through_bot(tmp_path):
    img = MassStorage.create_image(tmp_path / "disk.img", 128)
    msc = MassStorage(img)
    try:
        with usbip_backend(msc) as (_server, b):
            _info, h = open_configured(b)
            assert b.control_in(h, 0xA1, 0xFE, 0, 0, 1, 500) == b"\0"  # GET MAX LUN
            inquiry, st = bot_command(b, h, bytes([0x12, 0, 0, 0, 36, 0]), data_in=36)
            assert st == (1, 0, 0) and inquiry[8:15] == b"WASI-HW"
            cap, st = bot_command(b, h, bytes([0x25]) + bytes(9), data_in=8, tag=2)
            assert struct.unpack(">II", cap) == (127, 512) and st[2] == 0
            data = bytes(range(256)) * 2 * 16  # 16 blocks
            _, st = bot_command(b, h, _write10(3, 16), data_out=data, tag=3, timeout_ms=2000)
            assert st == (3, 0, 0)
            got, st = bot_command(b, h, _read10(3, 16), data_in=len(data), tag=4, timeout_ms=2000)
            assert got == data and st == (4, 0, 0)
            assert img.read_bytes()[3 * 512: 19 * 512] == data
    finally:
        msc.close()


def test_mass_storage_disconnect_loses_no_acknowledged_write(tmp_path):
    img = MassStorage.create_image(tmp_path / "disk.img", 256)
    blocks = {lba: bytes([lba + 1]) * 512 * 4 for lba in range(0, 64, 4)}
    with ServerProcess(f"msc:{img}") as srv:
        b = UsbipUsbBackend(srv.host, srv.port)
        _info, h = open_configured(b)
        for tag, (lba, data) in enumerate(blocks.items(), 1):
            _, st = bot_command(b, h, _write10(lba, 4), data_out=data, tag=tag, timeout_ms=2000)
            assert st == (tag, 0, 0)  # acknowledged by its CSW
        # start one more write and die in its data phase
        cbw = struct.pack("<IIIBBB", 0x43425355, 99, 8 * 512, 0, 0, 10)
        cbw += _write10(100, 8).ljust(16, b"\0")
        assert b.bulk_out(h, 0x01, cbw, 1000) == 31
        b.bulk_out(h, 0x01, b"\xee" * 1024, 1000)
        srv.signal(signal.SIGKILL)
        assert kind(b.bulk_out, h, 0x01, b"\xee" * 1024, 1000) == "no_device"
        b.shutdown()
    with ServerProcess(f"msc:{img}") as srv:  # reconnect to the same image
        b = UsbipUsbBackend(srv.host, srv.port)
        _info, h = open_configured(b)
        for tag, (lba, data) in enumerate(blocks.items(), 1):
            got, st = bot_command(b, h, _read10(lba, 4), data_in=len(data), tag=tag,
                                  timeout_ms=2000)
            assert got == data and st == (tag, 0, 0)
        b.shutdown()


def test_hid_keyboard_reports_over_interrupt_in():
    kbd = HidKeyboard("hi")
    with usbip_backend(kbd) as (_server, b):
        _info, h = open_configured(b)
        b.control_out(h, 0x21, 0x0A, 0, 0, b"", 500)  # SET_IDLE(0): NAK when done
        reports = [b.interrupt_in(h, 0x81, 8, 500) for _ in range(4)]
        assert [r[2] for r in reports] == [0x0B, 0, 0x0C, 0]  # h, release, i, release
        assert kind(b.interrupt_in, h, 0x81, 8, 100) == "timeout"
        hid = b.control_in(h, 0x81, 0x06, 0x2200, 0, 256, 500)  # report descriptor
        assert hid[:2] == b"\x05\x01"


def test_import_selects_the_first_configuration_like_linux():
    with usbip_backend(EchoDevice()) as (server, b):
        assert server.model("1-1").configuration == 0  # nothing imported yet
        info = b.devices()[0]
        assert server.model("1-1").configuration == 1
        assert b.get_configuration(b.open(info.id)) == 1


def test_usb_host_semantics_over_usbip_with_hotplug():
    """The wasi_usb host module on this backend: list, open, transfers, hotplug."""
    from wasi_hw.host import UsbHost

    with usbip_backend(EchoDevice(), HidKeyboard()) as (server, b):
        host, g = UsbHost(b, max_transfer=4096), GuestMem()
        devs = g.region(16)
        assert host.list_devices(make_filter(), devs) == 2
        first = struct.unpack("<I", devs.read()[:4])[0]
        h = host.open(first)
        host.claim_interface(h, 0)
        assert host.control_transfer(h, 0x40, SET_BUFFER, 0, 0, g.region(3, b"abc"), 100) == 3
        buf = g.region(8)
        assert host.control_transfer(h, 0xC0, GET_BUFFER, 0, 0, buf, 100) == 3
        assert buf.read()[:3] == b"abc"
        assert host.bulk_transfer(h, 0x01, g.region(4, b"ping"), 100) == 4
        assert host.bulk_transfer(h, 0x81, buf, 100) == 4 and buf.read()[:4] == b"ping"
        assert kind(host.bulk_transfer, h, 0x81, buf, 50) == "timeout"
        assert kind(host.control_transfer, h, 0xC0, STALL, 0, 0, g.region(1), 100) == "pipe"
        events = g.region(64)
        host.hotplug_poll(events)  # drain the initial arrivals, if any
        server.disconnect("1-1")
        assert kind(host.bulk_transfer, h, 0x81, buf, 100) == "no_device"
        n = host.hotplug_poll(events)
        raw = events.read()
        kinds = [raw[i * 8] for i in range(n)]  # $hotplug_event: kind u8 @0, device u32 @4
        assert 1 in kinds and 0 in kinds  # left (old import) + arrived (re-imported)


def test_isochronous_packets_keep_their_lengths_and_statuses():
    with usbip_backend(IsoSource()) as (server, b):
        _info, h = open_configured(b)
        got = b.iso_transfer(h, 0x81, None, [8, 8, 8, 8], 500)
        assert got == [(b"\x00" * 3, "success"), (b"\x01" * 8, "success"), (b"", "success"),
                       (b"", "pipe")]
        assert b.iso_transfer(h, 0x02, b"abcdef", [4, 2], 500) == [(4, "success"), (2, "success")]
        assert server.model("1-1").received == [b"abcd", b"ef"]


@pytest.mark.parametrize("errno_name, expected", [
    ("EPIPE", "pipe"), ("ENODEV", "no_device"), ("ESHUTDOWN", "no_device"),
    ("ETIMEDOUT", "timeout"), ("EOVERFLOW", "overflow"), ("EPROTO", "io"),
    ("EILSEQ", "io"), ("EREMOTEIO", "io"), ("ECONNRESET", "interrupted"),
    ("EINVAL", "invalid_param"), (None, "other"),
])
def test_ret_submit_status_maps_to_usb_errno_kind(echo, monkeypatch, errno_name, expected):
    from wasi_hw.host import _usbip_proto as proto
    from wasi_hw.host import _usbip_server

    status = -proto.ERRNO[errno_name] if errno_name else -9999
    real_step = _usbip_server._Session._step

    def step(self, urb):  # the device answers bulk IN with the status under test
        if urb.cmd.ep == 1 and urb.cmd.direction == proto.DIR_IN:
            return proto.RetSubmit(urb.cmd.seqnum, status, 0)
        return real_step(self, urb)

    monkeypatch.setattr(_usbip_server._Session, "_step", step)
    _server, b, h = echo
    assert kind(b.bulk_in, h, 0x81, 64, 500) == expected
    assert b.control_in(h, 0xC0, GET_QUEUED, 0, 0, 2, 500) == b"\0\0"  # still in step


def test_reply_longer_than_requested_is_overflow(echo, monkeypatch):
    from wasi_hw.host import _usbip_proto as proto
    from wasi_hw.host import _usbip_server

    real_step = _usbip_server._Session._step

    def step(self, urb):  # a device that sends 16 bytes for an 8-byte request
        if urb.cmd.ep == 1 and urb.cmd.direction == proto.DIR_IN:
            return proto.RetSubmit(urb.cmd.seqnum, 0, 16, bytes(16))
        return real_step(self, urb)

    monkeypatch.setattr(_usbip_server._Session, "_step", step)
    _server, b, h = echo
    assert kind(b.bulk_in, h, 0x81, 8, 500) == "overflow"
    assert b.control_in(h, 0xC0, GET_QUEUED, 0, 0, 2, 500) == b"\0\0"
