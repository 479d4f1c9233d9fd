"""UsbHost: wasi_usb semantics over a backend — handle tables, direction, quotas, hotplug."""

import struct

import pytest

from wasi_hw import HwError
from wasi_hw._bindings import _wasi_usb as abi
from wasi_hw.host import SimUsbBackend, UsbHost
from wasi_hw.host.usbdevices import EchoDevice, HidKeyboard, MassStorage

from usb_testing import GuestMem, kind, make_filter

F = abi.FilterFlags


@pytest.fixture
def env():
    backend = SimUsbBackend([EchoDevice(), HidKeyboard("ab")])
    return backend, UsbHost(backend, max_transfer=4096), GuestMem()


def listed(host, g, flt=None, n=8):
    region = g.region(4 * n)
    total = host.list_devices(flt or make_filter(), region)
    return total, list(struct.unpack(f"<{min(total, n)}I", region.read()[: 4 * min(total, n)]))


def open_echo(host, g):
    _, devs = listed(
        host, g, make_filter(F.VENDOR_ID | F.PRODUCT_ID, vendor_id=0x1209, product_id=1)
    )
    h = host.open(devs[0])
    host.claim_interface(h, 0)
    return h


def test_list_filters_and_truncation(env):
    _, host, g = env
    total, devs = listed(host, g)
    assert total == 2 and len(set(devs)) == 2
    assert listed(host, g)[1] == devs  # stable handles
    assert listed(host, g, make_filter(F.PRODUCT_ID, product_id=2))[0] == 1
    assert listed(host, g, make_filter(F.CLASS, class_=3))[0] == 1  # interface class HID
    assert listed(host, g, make_filter(F.SERIAL, serial=b"ECHO0001"))[0] == 1
    assert listed(host, g, make_filter(F.SERIAL, serial=b"nope"))[0] == 0
    total, devs = listed(host, g, n=1)
    assert total == 2 and len(devs) == 1
    assert (
        kind(host.list_devices, make_filter(F.SERIAL, serial=b"\xff"), g.region(4))
        == "invalid_param"
    )


def test_visible_predicate_hides_devices():
    backend = SimUsbBackend([EchoDevice(), HidKeyboard()])
    host = UsbHost(backend, visible=lambda d: d.product_id == 2)
    g = GuestMem()
    total, devs = listed(host, g)
    assert total == 1 and host.device_identity(devs[0]).product_id == 2


def test_hotplug_of_an_ungranted_device_is_invisible():
    backend = SimUsbBackend([HidKeyboard()])
    host = UsbHost(backend, visible=lambda d: d.product_id == 2)   # the grant: HID only
    g = GuestMem()
    events = g.region(8 * 4)
    assert host.hotplug_poll(events) == 0                          # baseline
    echo = backend.attach(EchoDevice(serial="NOT-GRANTED"))
    assert host.hotplug_poll(events) == 0                          # arrival not seen
    assert listed(host, g)[0] == 1                                 # nor listed
    backend.detach(echo)
    assert host.hotplug_poll(events) == 0                          # nor its departure
    backend.attach(HidKeyboard(serial="K2"))
    assert host.hotplug_poll(events) == 1                          # a granted one is
    ev = abi.HotplugEvent.unpack(events.read())
    assert ev.kind == abi.HotplugKind.ARRIVED and host.device_identity(ev.device).serial == "K2"


def test_device_info_descriptors_port_path(env):
    backend, host, g = env
    _, devs = listed(host, g)
    info = host.device_info(devs[0])
    assert isinstance(info, abi.DeviceInfo)
    assert (info.vendor_id, info.product_id, info.speed, info.port_depth) == (
        0x1209,
        1,
        abi.Speed.FULL,
        1,
    )
    buf = g.region(4)
    assert host.port_path(devs[1], buf) == 1 and buf.read()[0] == 2
    buf = g.region(64)
    assert host.device_descriptor(devs[0], buf) == 18
    assert buf.read()[:18] == backend.devices()[0].device_descriptor
    small = g.region(9)
    total = host.config_descriptor(devs[0], 0, small)
    assert total == 39 and small.read() == backend.devices()[0].config_descriptors[0][:9]
    assert kind(host.config_descriptor, devs[0], 1, small) == "not_found"


def test_forged_stale_and_cross_table_handles(env):
    backend, host, g = env
    _, devs = listed(host, g)
    h = host.open(devs[0])
    assert kind(host.open, 999) == "bad_handle"
    assert kind(host.get_configuration, devs[0]) == "bad_handle"  # a $device is not a handle
    assert kind(host.device_info, h) == "bad_handle"  # and vice versa
    host.close(h)
    assert kind(host.close, h) == "bad_handle"
    backend.detach(backend.devices()[0].id)
    listed(host, g)
    assert kind(host.device_info, devs[0]) == "bad_handle"  # stale after it left


def test_open_handle_quota():
    backend = SimUsbBackend([EchoDevice()])
    host = UsbHost(backend, max_handles=2)
    g = GuestMem()
    dev = listed(host, g)[1][0]
    host.open(dev), host.open(dev)
    assert kind(host.open, dev) == "no_mem"


def test_strings_utf8_and_truncation(env):
    _, host, g = env
    h = open_echo(host, g)
    buf = g.region(32)
    n = host.string_descriptor(h, 1, 0, buf)
    assert buf.read()[:n] == b"wasi-hw"
    buf = g.region(3)
    assert host.string_descriptor(h, 1, 0x0409, buf) == 3 and buf.read() == b"was"
    assert kind(host.string_descriptor, h, 0, 0, buf) == "invalid_param"
    assert kind(host.string_descriptor, h, 9, 0, buf) == "pipe"


def test_utf8_cut_on_char_boundary():
    from wasi_hw.host._usb import _utf8_cut

    assert _utf8_cut("aé".encode(), 2) == 1


def test_control_direction_from_request_type(env):
    _, host, g = env
    h = open_echo(host, g)
    out = g.region(5, b"hello")
    assert host.control_transfer(h, 0x40, 1, 0, 0, out, 0) == 5
    inbuf = g.region(64, b"\xEE" * 64)
    assert host.control_transfer(h, 0xC0, 2, 0, 0, inbuf, 100) == 5
    assert inbuf.read()[:6] == b"hello\xEE"  # only the bytes read were written
    assert kind(host.control_transfer, h, 0xC0, 3, 0, 0, g.region(1), 100) == "pipe"


def test_bulk_interrupt_rules(env):
    _, host, g = env
    h = open_echo(host, g)
    assert host.bulk_transfer(h, 0x01, g.region(4, b"ping"), 100) == 4
    buf = g.region(64)
    assert host.bulk_transfer(h, 0x81, buf, 100) == 4 and buf.read()[:4] == b"ping"
    assert kind(host.bulk_transfer, h, 0x81, buf, 20) == "timeout"
    assert host.interrupt_transfer(h, 0x82, g.region(8), 10) == 4
    assert kind(host.bulk_transfer, h, 0x82, buf, 10) == "invalid_param"  # interrupt endpoint
    assert kind(host.interrupt_transfer, h, 0x01, buf, 10) == "invalid_param"
    assert kind(host.bulk_transfer, h, 0x85, buf, 10) == "not_found"
    assert kind(host.bulk_transfer, h, 0x00, buf, 10) == "invalid_param"
    assert kind(host.bulk_transfer, h, 0x81, g.region(0), 10) == "invalid_param"
    host.release_interface(h, 0)
    assert kind(host.bulk_transfer, h, 0x01, g.region(1), 10) == "not_found"  # unclaimed


def test_quota_checked_before_io(env):
    backend, host, g = env
    h = open_echo(host, g)
    backend.fail_next("io")  # would fire if the backend were reached
    assert kind(host.bulk_transfer, h, 0x01, g.region(4097), 10) == "no_mem"
    assert kind(host.control_transfer, h, 0x40, 1, 0, 0, g.region(4097), 10) == "no_mem"
    assert kind(host.bulk_transfer, h, 0x01, g.region(1), 10) == "io"


def test_control_wlength_limit():
    backend = SimUsbBackend([EchoDevice()])
    host = UsbHost(backend, max_transfer=1 << 20)
    g = GuestMem(pages=4)
    h = host.open(listed(host, g)[1][0])
    assert kind(host.control_transfer, h, 0xC0, 2, 0, 0, g.region(0x10000), 10) == "invalid_param"


def test_configuration_interfaces_alt_and_reset(env):
    backend, host, g = env
    h = open_echo(host, g)
    assert host.get_configuration(h) == 1
    assert kind(host.set_configuration, h, 1) == "busy"
    assert kind(host.set_configuration, h, 9) == "not_found"
    assert kind(host.claim_interface, h, 4) == "not_found"
    assert kind(host.set_alt_setting, h, 0, 1) == "not_found"
    host.set_alt_setting(h, 0, 0)
    assert host.endpoint_interface(h, 0x81) == 0 and host.endpoint_interface(h, 0x05) is None
    assert kind(host.detach_kernel_driver, h, 0) == "not_found"
    host.release_interface(h, 0)
    assert kind(host.release_interface, h, 0) == "not_found"
    host.set_configuration(h, 0)
    assert kind(host.claim_interface, h, 0) == "not_found"  # unconfigured
    host.set_configuration(h, 1)
    host.claim_interface(h, 0)
    host.interrupt_transfer(h, 0x82, g.region(4), 10)
    host.reset_device(h)
    buf = g.region(4)
    host.interrupt_transfer(h, 0x82, buf, 10)
    assert buf.read() == b"\0\0\0\0"


def test_clear_halt(env):
    _, host, g = env
    h = open_echo(host, g)
    host.control_transfer(h, 0x02, 3, 0, 0x81, g.region(0), 10)  # SET_FEATURE(HALT)
    assert kind(host.bulk_transfer, h, 0x81, g.region(8), 10) == "pipe"
    host.clear_halt(h, 0x81)
    assert kind(host.bulk_transfer, h, 0x81, g.region(8), 10) == "timeout"
    assert kind(host.clear_halt, h, 0x07) == "not_found"


def test_device_gone_mid_session(env):
    backend, host, g = env
    h = open_echo(host, g)
    backend.detach(backend.devices()[0].id)
    assert kind(host.bulk_transfer, h, 0x01, g.region(1), 10) == "no_device"
    host.close(h)


def test_hotplug_events(env, tmp_path):
    backend, host, g = env
    events = g.region(8 * 4)
    assert host.hotplug_poll(events) == 0  # baseline
    _, before = listed(host, g)
    backend.detach(backend.devices()[0].id)
    img = MassStorage.create_image(tmp_path / "d.img", 8)
    backend.attach(MassStorage(img))
    assert host.hotplug_poll(events) == 2
    ev = [abi.HotplugEvent.unpack(events.read(), i * 8) for i in range(2)]
    assert ev[0] == abi.HotplugEvent(abi.HotplugKind.LEFT, before[0])
    assert ev[1].kind == abi.HotplugKind.ARRIVED
    assert host.device_info(ev[1].device).product_id == 3
    assert host.hotplug_poll(events) == 0


def test_hotplug_respects_room_and_order(env):
    backend, host, g = env
    host.hotplug_poll(g.region(8))
    ids = [backend.attach(EchoDevice(serial=f"S{i}")) for i in range(3)]
    one = g.region(8)
    got = []
    for _ in range(3):
        assert host.hotplug_poll(one) == 1
        got.append(host.device_identity(abi.HotplugEvent.unpack(one.read()).device).serial)
    assert got == ["S0", "S1", "S2"] and len(ids) == 3


def test_iso_rejects_non_iso_endpoint(env):
    _, host, g = env
    h = open_echo(host, g)
    assert kind(host.iso_transfer, h, 0x81, g.region(8), g.region(12), 10) == "invalid_param"


def test_iso_packets_keep_their_slots():
    from usb_testing import IsoSource

    host = UsbHost(SimUsbBackend([IsoSource()]))
    g = GuestMem()
    h = host.open(listed(host, g)[1][0])
    host.claim_interface(h, 0)
    data = g.region(32, b"\xEE" * 32)
    packets = g.region(48, b"".join(struct.pack("<III", 8, 99, 99) for _ in range(4)))
    assert host.iso_transfer(h, 0x81, data, packets, 10) == 11
    table = [abi.IsoPacket.unpack(packets.read(), 12 * i) for i in range(4)]
    assert [(p.length, p.actual_length, p.status) for p in table] == [
        (8, 3, abi.UsbErrno.SUCCESS), (8, 8, abi.UsbErrno.SUCCESS), (8, 0, abi.UsbErrno.SUCCESS),
        (8, 0, abi.UsbErrno.PIPE)]
    # a short packet is not compacted: packet 1 starts at offset 8, untouched bytes stay
    assert data.read()[:16] == b"\x00" * 3 + b"\xEE" * 5 + b"\x01" * 8
    too_long = g.region(12, struct.pack("<III", 64, 0, 0))
    assert kind(host.iso_transfer, h, 0x81, g.region(8), too_long, 10) == "invalid_param"
    assert kind(UsbHost(SimUsbBackend()).iso_transfer, 1, 0x81, data, packets, 10) == "bad_handle"


def test_close_all(env):
    backend, host, g = env
    h = open_echo(host, g)
    host.close_all()
    assert kind(host.get_configuration, h) == "bad_handle"
    # the interface was released in the backend: another driver's host can claim it
    other = UsbHost(backend)
    open_echo(other, g)


def test_through_generated_shim(env):
    """The raw import path: guest integers in, errno out, results lowered to memory."""
    _, host, g = env
    failures = []

    def fail(exc, name):
        failures.append((name, getattr(exc, "kind", None)))
        return abi.ERRNO.get(getattr(exc, "kind", "other"), abi.ERRNO["other"])

    calls = abi.bind(host, g.mem, fail)
    flt = g.region(16, struct.pack("<BBHH2xII", 0, 0, 0, 0, 0, 0))
    devs, ret = g.region(16), g.region(4)
    assert calls["list_devices"](flt.ptr, devs.ptr, 4, ret.ptr) == 0
    assert struct.unpack("<I", ret.read())[0] == 2
    dev = struct.unpack_from("<I", devs.read())[0]
    info = g.region(12)
    assert calls["device_info"](dev, info.ptr) == 0
    assert abi.DeviceInfo.unpack(info.read()).vendor_id == 0x1209
    assert calls["open"](12345, ret.ptr) == abi.ERRNO["bad_handle"]
    assert failures == [("open", "bad_handle")]


class _Garbled(SimUsbBackend):
    """A backend whose device reports a truncated configuration descriptor."""

    def devices(self):
        import dataclasses

        return [dataclasses.replace(d, config_descriptors=(d.config_descriptors[0][:20],))
                for d in super().devices()]


def test_malformed_descriptor_from_device_is_io():
    host = UsbHost(_Garbled([EchoDevice()]))
    g = GuestMem()
    assert kind(host.open, listed(host, g)[1][0]) == "io"


def test_raw_calls_with_arbitrary_integers_fail_only_with_spec_kinds():
    """Whatever integers a guest passes, the host raises only HwError kinds of $usb_errno."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    backend = SimUsbBackend([EchoDevice(), HidKeyboard("x")])
    host = UsbHost(backend, max_transfer=4096, default_timeout_ms=5)
    g = GuestMem(pages=1)
    seen = []

    def fail(exc, name):
        assert isinstance(exc, HwError), f"{name} raised {exc!r}"
        assert exc.kind in abi.ERRNO, exc.kind
        seen.append(exc.kind)
        return abi.ERRNO[exc.kind]

    calls = abi.bind(host, g.mem, fail)
    # a few real handles so that calls get past the handle check
    real = g.region(64)
    host.list_devices(make_filter(), real)
    opened = host.open(struct.unpack_from("<I", real.read())[0])
    ints = st.one_of(
        st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, 2, opened, 0x81, 16, 64])
    )

    @settings(max_examples=400, deadline=None)
    @given(st.sampled_from(sorted(abi.IMPORTS)), st.lists(ints, min_size=9, max_size=9))
    def run(name, args):
        n = len(abi.IMPORTS[name][0])
        calls[name](*args[:n])

    run()
    assert {"bad_handle", "fault"} <= set(seen)
