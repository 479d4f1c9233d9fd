"""The HID boot keyboard (host/usbdevices/_keyboard.py)."""

import struct

import pytest

from wasi_hw.host.usbdevices import (
    BOOT_KEYBOARD_REPORT_DESCRIPTOR,
    HidKeyboard,
    Setup,
    Stall,
    text_to_reports,
)


class Clock:
    def __init__(self):
        self.t = 0

    def __call__(self):
        return self.t


def kbd(keys="", **kw):
    m = HidKeyboard(keys, **kw)
    m.handle_control(Setup(0, 9, 1, 0, 0))
    return m


def test_interface_is_boot_keyboard_with_hid_descriptor():
    cfg = HidKeyboard().config_descriptors[0]
    iface = cfg[9:18]
    assert iface[1] == 4 and tuple(iface[5:8]) == (3, 1, 1)
    hid = cfg[18:27]
    assert hid[1] == 0x21 and struct.unpack_from("<H", hid, 7)[0] == len(
        BOOT_KEYBOARD_REPORT_DESCRIPTOR
    )
    ep = cfg[27:34]
    assert ep[1] == 5 and ep[2] == 0x81 and ep[3] == 3 and ep[4] == 8


def test_report_descriptor_and_hid_descriptor_via_get_descriptor():
    m = kbd()
    assert m.handle_control(Setup(0x81, 6, 0x2200, 0, 255)) == BOOT_KEYBOARD_REPORT_DESCRIPTOR
    assert len(BOOT_KEYBOARD_REPORT_DESCRIPTOR) == 63
    assert m.handle_control(Setup(0x81, 6, 0x2100, 0, 9)) == m.hid_descriptor
    with pytest.raises(Stall):
        m.handle_control(Setup(0x81, 6, 0x2200, 1, 255))  # no interface 1


def test_text_to_reports():
    assert text_to_reports("aA!\n") == [
        bytes((0, 0, 0x04, 0, 0, 0, 0, 0)), bytes(8),
        bytes((2, 0, 0x04, 0, 0, 0, 0, 0)), bytes(8),
        bytes((2, 0, 0x1E, 0, 0, 0, 0, 0)), bytes(8),
        bytes((0, 0, 0x28, 0, 0, 0, 0, 0)), bytes(8),
    ]
    with pytest.raises(ValueError):
        text_to_reports("é")


def test_script_plays_then_naks_with_idle_zero():
    m = kbd("hi")
    m.handle_control(Setup(0x21, 0x0A, 0, 0, 0))  # SET_IDLE(0)
    got = [m.handle_in(0x81, 8) for _ in range(4)]
    assert got == text_to_reports("hi")
    assert m.handle_in(0x81, 8) is None
    assert m.remaining == 0


def test_idle_rate_repeats_last_report():
    clock = Clock()
    m = kbd(reports=[bytes((0, 0, 5, 0, 0, 0, 0, 0))], clock_ns=clock)
    m.handle_control(Setup(0x21, 0x0A, 2 << 8, 0, 0))  # 8 ms
    assert m.handle_control(Setup(0xA1, 0x02, 0, 0, 1)) == b"\x02"
    first = m.handle_in(0x81, 8)
    clock.t += 4_000_000
    assert m.handle_in(0x81, 8) is None
    clock.t += 4_000_000
    assert m.handle_in(0x81, 8) == first


def test_protocol_report_and_leds():
    m = kbd("a")
    assert m.handle_control(Setup(0xA1, 0x03, 0, 0, 1)) == b"\x01"
    m.handle_control(Setup(0x21, 0x0B, 0, 0, 0))
    assert m.handle_control(Setup(0xA1, 0x03, 0, 0, 1)) == b"\x00"
    with pytest.raises(Stall):
        m.handle_control(Setup(0x21, 0x0B, 2, 0, 0))
    assert m.handle_control(Setup(0xA1, 0x01, 0x0100, 0, 8)) == bytes(8)
    sent = m.handle_in(0x81, 8)
    assert m.handle_control(Setup(0xA1, 0x01, 0x0100, 0, 8)) == sent  # GET_REPORT(input)
    m.handle_control(Setup(0x21, 0x09, 0x0200, 0, 1), b"\x02")  # SET_REPORT(output): caps lock
    assert m.leds == 2
    assert m.handle_control(Setup(0xA1, 0x01, 0x0200, 0, 1)) == b"\x02"
    with pytest.raises(Stall):
        m.handle_control(Setup(0xC0, 0x01, 0, 0, 1))  # vendor request


def test_bad_script_rejected():
    with pytest.raises(ValueError):
        HidKeyboard(reports=[b"\0" * 7])
