"""The vendor-specific echo device (host/usbdevices/_echo.py)."""

import struct

import pytest

from wasi_hw.host.usbdevices import EchoDevice, Setup, Stall


def dev():
    m = EchoDevice()
    m.handle_control(Setup(0, 9, 1, 0, 0))
    return m


def test_vendor_buffer_roundtrip_and_limit():
    m = dev()
    m.handle_control(Setup(0x40, 0x01, 0, 0, 5), b"hello")
    assert m.handle_control(Setup(0xC0, 0x02, 0, 0, 64)) == b"hello"
    assert m.handle_control(Setup(0xC0, 0x02, 0, 0, 2)) == b"he"
    with pytest.raises(Stall):
        m.handle_control(Setup(0x40, 0x01, 0, 0, 257), b"x" * 257)
    assert m.buffer == b"hello"


@pytest.mark.parametrize("rt", [0x40, 0xC0])
def test_stall_request(rt):
    with pytest.raises(Stall):
        dev().handle_control(Setup(rt, 0x03, 0, 0, 0 if rt == 0x40 else 4))


def test_bulk_echo_order_chunks_and_nak():
    m = dev()
    assert m.handle_in(0x81, 64) is None
    assert m.handle_out(0x01, b"abcdef") == 6
    assert m.handle_control(Setup(0xC0, 0x04, 0, 0, 2)) == struct.pack("<H", 6)
    assert m.handle_in(0x81, 4) == b"abcd"
    assert m.handle_in(0x81, 64) == b"ef"
    assert m.handle_in(0x81, 64) is None


def test_bulk_queue_backpressure():
    m = dev()
    assert m.handle_out(0x01, b"a" * 5000) == 4096
    assert m.handle_out(0x01, b"b") == 0
    m.handle_in(0x81, 10)
    assert m.handle_out(0x01, b"bbbbbbbbbbbb") == 10


def test_interrupt_counter():
    m = dev()
    got = [struct.unpack("<I", m.handle_in(0x82, 8))[0] for _ in range(3)]
    assert got == [0, 1, 2]
    assert m.handle_in(0x82, 2) == b"\x03\x00"
