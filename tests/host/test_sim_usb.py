"""SimUsbBackend: enumeration, hotplug, the usbfs-like host rules, transfers and timeouts."""

import pytest

from wasi_hw.host import RealClock, SimUsbBackend, VirtualClock
from wasi_hw.host.usbdevices import EchoDevice, HidKeyboard, MassStorage

from usb_testing import bot_command, kind


@pytest.fixture
def sim():
    return SimUsbBackend([EchoDevice()])


def opened(sim, index=0):
    h = sim.open(sim.devices()[index].id)
    sim.claim_interface(h, 0)
    return h


def test_enumeration_reads_descriptors_like_a_host():
    b = SimUsbBackend([EchoDevice(serial="S1"), HidKeyboard()])
    echo, kbd = b.devices()
    assert (echo.vendor_id, echo.product_id, echo.serial, echo.port_path) == (0x1209, 1, "S1", (1,))
    assert kbd.port_path == (2,) and kbd.address != echo.address
    assert echo.speed == "full" and echo.bus_number == 1 and echo.num_configurations == 1
    assert echo.config_layout(1).endpoint(0x82).transfer_type == "interrupt"
    assert b.model(echo.id).configuration == 1  # configured at enumeration, as Linux does


def test_hotplug_gives_fresh_ids_and_gone_handles_fail():
    b = SimUsbBackend()
    m = EchoDevice()
    first = b.attach(m)
    h = b.open(first)
    b.detach(first)
    assert b.devices() == []
    assert kind(b.get_configuration, h) == "no_device"
    b.close(h)  # closing a gone device is fine
    second = b.attach(m)
    assert second != first
    assert kind(b.open, first) == "no_device"
    with pytest.raises(KeyError):
        b.detach("sim:99")


def test_strings(sim):
    h = sim.open(sim.devices()[0].id)
    assert sim.string_descriptor(h, 2, 0) == "Echo"
    assert sim.string_descriptor(h, 1, 0x0409) == "wasi-hw"
    assert kind(sim.string_descriptor, h, 7, 0) == "pipe"


def test_configuration_and_claim_rules(sim):
    info = sim.devices()[0]
    a, b = sim.open(info.id), sim.open(info.id)
    assert sim.get_configuration(a) == 1
    sim.claim_interface(a, 0)
    assert kind(sim.claim_interface, b, 0) == "busy"
    assert kind(sim.set_configuration, b, 1) == "busy"
    assert kind(sim.claim_interface, a, 3) == "not_found"
    assert kind(sim.set_alt_setting, b, 0, 0) == "not_found"  # not claimed by b
    assert kind(sim.set_alt_setting, a, 0, 1) == "not_found"
    sim.set_alt_setting(a, 0, 0)
    assert kind(sim.release_interface, b, 0) == "not_found"
    sim.release_interface(a, 0)
    sim.claim_interface(b, 0)
    sim.close(b)  # releases
    sim.set_configuration(a, 0)
    assert sim.get_configuration(a) == 0
    assert kind(sim.set_configuration, a, 5) == "not_found"
    sim.set_configuration(a, 1)
    assert kind(sim.detach_kernel_driver, a, 0) == "not_found"


def test_control_transfers_and_stall(sim):
    h = opened(sim)
    assert sim.control_out(h, 0x40, 1, 0, 0, b"abc", 100) == 3
    assert sim.control_in(h, 0xC0, 2, 0, 0, 64, 100) == b"abc"
    assert kind(sim.control_in, h, 0xC0, 3, 0, 0, 4, 100) == "pipe"
    assert sim.control_in(h, 0xC0, 2, 0, 0, 2, 100) == b"ab"  # protocol stall cleared


def test_bulk_echo_timeout_then_next_transfer_works(sim):
    h = opened(sim)
    assert kind(sim.bulk_in, h, 0x81, 64, 50) == "timeout"
    assert sim.clock.now_ns() >= 50_000_000  # the wait happened on the virtual clock
    assert sim.bulk_out(h, 0x01, b"ping", 100) == 4
    assert sim.bulk_in(h, 0x81, 64, 100) == b"ping"
    assert sim.bulk_out(h, 0x01, b"", 100) == 0  # zero-length packet


def test_out_backpressure_times_out(sim):
    h = opened(sim)
    assert sim.bulk_out(h, 0x01, b"x" * 4096, 100) == 4096
    assert kind(sim.bulk_out, h, 0x01, b"y", 20) == "timeout"


def test_halt_and_clear_halt(sim):
    h = opened(sim)
    sim.control_out(h, 0x02, 3, 0, 0x81, b"", 100)  # SET_FEATURE(ENDPOINT_HALT)
    assert kind(sim.bulk_in, h, 0x81, 8, 10) == "pipe"
    sim.clear_halt(h, 0x81)
    assert kind(sim.bulk_in, h, 0x81, 8, 10) == "timeout"


def test_interrupt_counter_and_reset_restores_configuration(sim):
    h = opened(sim)
    assert sim.interrupt_in(h, 0x82, 8, 10) == b"\0\0\0\0"
    assert sim.interrupt_in(h, 0x82, 8, 10) == b"\1\0\0\0"
    sim.reset_device(h)
    assert sim.get_configuration(h) == 1
    assert sim.interrupt_in(h, 0x82, 8, 10) == b"\0\0\0\0"  # the device really reset


def test_injected_faults(sim):
    h = opened(sim)
    sim.fail_next("io", 2)
    assert kind(sim.bulk_out, h, 0x01, b"a", 10) == "io"
    assert kind(sim.control_in, h, 0xC0, 2, 0, 0, 1, 10) == "io"
    assert sim.bulk_out(h, 0x01, b"a", 10) == 1


def test_iso_packets_one_per_frame():
    from usb_testing import IsoSource

    b = SimUsbBackend([IsoSource()])
    h = opened(b)
    got = b.iso_transfer(h, 0x81, None, [8, 8, 8, 8], 10)
    assert got == [(b"\x00" * 3, "success"), (b"\x01" * 8, "success"), (b"", "success"),
                   (b"", "pipe")]
    assert b.iso_transfer(h, 0x02, b"abcdef", [4, 2], 10) == [(4, "success"), (2, "success")]
    assert b.model(b.devices()[0].id).received == [b"abcd", b"ef"]


def test_keyboard_idle_on_shared_clock():
    clock = VirtualClock()
    b = SimUsbBackend(clock=clock)
    b.attach(HidKeyboard("a"))  # the bus gives the model its clock
    h = opened(b)
    reports = [b.interrupt_in(h, 0x81, 8, 10) for _ in range(2)]
    assert reports[0][2] == 0x04 and reports[1] == bytes(8)
    # idle 500 ms: nothing within 100 ms, the repeat arrives once the idle period passed
    assert kind(b.interrupt_in, h, 0x81, 8, 100) == "timeout"
    assert b.interrupt_in(h, 0x81, 8, 1000) == bytes(8)


def test_mass_storage_over_sim(tmp_path):
    img = MassStorage.create_image(tmp_path / "d.img", 16)
    b = SimUsbBackend([MassStorage(img)])
    h = opened(b)
    data, st = bot_command(b, h, bytes((0x25,) + (0,) * 9), data_in=8)
    assert data == (15).to_bytes(4, "big") + (512).to_bytes(4, "big") and st[2] == 0
    _, st = bot_command(b, h, bytes((0x2A, 0, 0, 0, 0, 1, 0, 0, 1, 0)), data_out=b"Z" * 512, tag=2)
    assert st == (2, 0, 0)
    data, st = bot_command(b, h, bytes((0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0)), data_in=512, tag=3)
    assert data == b"Z" * 512 and st == (3, 0, 0)


@pytest.mark.timing  # a timeout measured on the real clock
def test_real_clock_timeout_is_bounded():
    b = SimUsbBackend([EchoDevice()], clock=RealClock())
    h = opened(b)
    import time
    t = time.monotonic()
    assert kind(b.bulk_in, h, 0x81, 8, 30) == "timeout"
    assert 0.025 < time.monotonic() - t < 1.0
