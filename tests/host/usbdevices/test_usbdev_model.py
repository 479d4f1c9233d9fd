"""The device-model base: standard requests, endpoint checks and halts
(host/usbdevices/_model.py)."""

import struct

import pytest

from wasi_hw.host.usbdevices import (
    BULK,
    Configuration,
    DeviceDescriptor,
    EchoDevice,
    Endpoint,
    Interface,
    Setup,
    Stall,
    UsbDeviceModel,
)


def ctl(model, rt, req, value=0, index=0, length=0, data=b""):
    return model.handle_control(Setup(rt, req, value, index, length), data)


def configured(model=None):
    m = model or EchoDevice()
    ctl(m, 0x00, 9, 1)
    return m


def test_setup_roundtrip_and_fields():
    s = Setup.from_bytes(bytes.fromhex("a1fe00000000 0100".replace(" ", "")))
    assert (s.request_type, s.request, s.value, s.index, s.length) == (0xA1, 0xFE, 0, 0, 1)
    assert s.is_in and s.kind == "class" and s.recipient == "interface"
    assert s.to_bytes() == bytes.fromhex("a1fe000000000100")
    with pytest.raises(ValueError):
        Setup.from_bytes(b"\0" * 7)


def test_device_descriptor_fields_and_truncation():
    m = EchoDevice()
    d = ctl(m, 0x80, 6, 0x0100, 0, 64)
    assert len(d) == 18 and d[0] == 18 and d[1] == 1
    assert struct.unpack_from("<HH", d, 8) == (0x1209, 0x0001)
    assert d[17] == 1  # one configuration
    assert ctl(m, 0x80, 6, 0x0100, 0, 8) == d[:8]


def test_config_descriptor_total_length_and_layout():
    m = EchoDevice()
    head = ctl(m, 0x80, 6, 0x0200, 0, 9)
    total = struct.unpack_from("<H", head, 2)[0]
    full = ctl(m, 0x80, 6, 0x0200, 0, 255)
    assert len(full) == total == 9 + 9 + 3 * 7
    assert full[4] == 1 and full[5] == 1  # one interface, configuration value 1
    with pytest.raises(Stall):
        ctl(m, 0x80, 6, 0x0201, 0, 255)  # no second configuration


def test_strings_langids_and_missing():
    m = EchoDevice(serial="XY12")
    assert ctl(m, 0x80, 6, 0x0300, 0, 255) == bytes((4, 3, 0x09, 0x04))
    s = ctl(m, 0x80, 6, 0x0303, 0x0409, 255)
    assert s[0] == len(s) and s[2:].decode("utf-16-le") == "XY12"
    assert m.serial == "XY12"
    with pytest.raises(Stall):
        ctl(m, 0x80, 6, 0x0309, 0x0409, 255)
    with pytest.raises(Stall):
        ctl(m, 0x80, 6, 0x0301, 0x0407, 255)  # a language the device does not declare


def test_configuration_and_interface_requests():
    m = EchoDevice()
    assert ctl(m, 0x80, 8, length=1) == b"\0"
    with pytest.raises(Stall):
        ctl(m, 0x00, 9, 7)
    with pytest.raises(Stall):
        ctl(m, 0x81, 10, 0, 0, 1)  # GET_INTERFACE while unconfigured
    ctl(m, 0x00, 9, 1)
    assert ctl(m, 0x80, 8, length=1) == b"\x01"
    assert ctl(m, 0x81, 10, 0, 0, 1) == b"\0"
    ctl(m, 0x01, 11, 0, 0)
    with pytest.raises(Stall):
        ctl(m, 0x01, 11, 1, 0)  # no alternate setting 1
    with pytest.raises(Stall):
        ctl(m, 0x01, 11, 0, 5)  # no interface 5


def test_get_status_and_endpoint_halt_features():
    m = configured()
    assert ctl(m, 0x80, 0, length=2) == b"\0\0"
    assert ctl(m, 0x82, 0, 0, 0x81, 2) == b"\0\0"
    ctl(m, 0x02, 3, 0, 0x81)  # SET_FEATURE(ENDPOINT_HALT)
    assert ctl(m, 0x82, 0, 0, 0x81, 2) == b"\x01\0"
    with pytest.raises(Stall):
        m.handle_in(0x81, 64)
    ctl(m, 0x02, 1, 0, 0x81)  # CLEAR_FEATURE(ENDPOINT_HALT)
    assert ctl(m, 0x82, 0, 0, 0x81, 2) == b"\0\0"
    assert m.handle_in(0x81, 64) is None
    with pytest.raises(Stall):
        ctl(m, 0x82, 0, 0, 0x85, 2)  # no such endpoint
    ctl(m, 0x00, 3, 1)  # remote wakeup
    assert ctl(m, 0x80, 0, length=2) == b"\x02\0"


def test_endpoint_checks_direction_unconfigured_unknown():
    m = EchoDevice()
    with pytest.raises(Stall):
        m.handle_out(0x01, b"x")  # unconfigured
    configured(m)
    with pytest.raises(Stall):
        m.handle_in(0x01, 8)  # OUT endpoint asked for IN
    with pytest.raises(Stall):
        m.handle_out(0x81, b"x")
    with pytest.raises(Stall):
        m.handle_out(0x03, b"x")


class _Bad(UsbDeviceModel):
    def __init__(self):
        super().__init__(
            DeviceDescriptor(0x1209, 0x00FF),
            [
                Configuration(
                    1,
                    (
                        Interface(
                            0, 0xFF, 0, 0, (Endpoint(0x81, BULK, 64), Endpoint(0x02, BULK, 64))
                        ),
                    ),
                )
            ],
        )

    def in_(self, endpoint, max_len):
        return b"x" * (max_len + 1)

    def out(self, endpoint, data):
        raise Stall()


def test_hook_stall_halts_endpoint_and_oversized_in_is_rejected():
    m = configured(_Bad())
    with pytest.raises(ValueError):
        m.handle_in(0x81, 4)
    with pytest.raises(Stall):
        m.handle_out(0x02, b"abc")
    assert m.is_halted(0x02)
    with pytest.raises(Stall):  # class/vendor request the model does not handle
        ctl(m, 0xC0, 1, 0, 0, 4)


def test_reset_returns_to_default_state():
    m = configured()
    ctl(m, 0x00, 5, 9)
    m.handle_out(0x01, b"abc")
    m.halt(0x81)
    m.handle_reset()
    assert m.configuration == 0 and m.address == 0 and not m.is_halted(0x81)
    configured(m)
    assert m.handle_in(0x81, 64) is None  # echo queue cleared by the reset hook


def test_control_out_length_must_match_wlength():
    m = EchoDevice()
    with pytest.raises(Stall):
        ctl(m, 0x40, 1, 0, 0, 4, b"ab")
