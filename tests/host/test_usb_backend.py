"""The backend contract's records: UsbDeviceInfo and the configuration-descriptor parser."""

import pytest

from wasi_hw.host._usb_backend import ConfigLayout, UsbBackend, UsbDeviceInfo
from wasi_hw.host.usbdevices import (
    BULK,
    INTERRUPT,
    Configuration,
    DeviceDescriptor,
    Endpoint,
    HidKeyboard,
    Interface,
)


def _info(**kw):
    m = HidKeyboard()
    args = dict(bus_number=1, address=5, port_path=(1, 3), speed="full", serial="K",
                device_descriptor=m.device_descriptor, config_descriptors=m.config_descriptors)
    args.update(kw)
    return UsbDeviceInfo.from_descriptors("x", **args)


def test_identity_decoded_from_device_descriptor():
    info = _info()
    assert (info.vendor_id, info.product_id, info.device_class, info.num_configurations) == (
        0x1209, 2, 0, 1)
    assert info.port_path == (1, 3)


@pytest.mark.parametrize("bad", [dict(device_descriptor=b"\x12\x01"),
                                 dict(device_descriptor=b"\x12\x02" + bytes(16)),
                                 dict(speed="warp")])
def test_bad_records_rejected(bad):
    with pytest.raises(ValueError):
        _info(**bad)


def test_layout_alt_settings_and_extra_descriptors():
    cfg = Configuration(
        2,
        (
            Interface(
                0, 3, 1, 1, (Endpoint(0x81, INTERRUPT, 8, 10),), extra=b"\x09\x21" + bytes(7)
            ),
            Interface(1, 0xFF, 0, 0, ()),
            Interface(
                1, 0xFF, 0, 0, (Endpoint(0x02, BULK, 64), Endpoint(0x83, BULK, 64)), alt_setting=1
            ),
        ),
    )
    layout = ConfigLayout.parse(cfg.to_bytes())
    assert layout.value == 2 and layout.interface_numbers == {0, 1}
    assert layout.endpoint(0x81).interface == 0
    assert layout.endpoint(0x02) is None  # only in alt setting 1
    ep = layout.endpoint(0x02, {1: 1})
    assert (ep.interface, ep.alt_setting, ep.transfer_type, ep.max_packet_size) == (
        1,
        1,
        "bulk",
        64,
    )
    info = _info(config_descriptors=(cfg.to_bytes(),),
                 device_descriptor=DeviceDescriptor(1, 2).to_bytes(1))
    assert info.config_layout(2) == layout and info.config_layout(1) is None


@pytest.mark.parametrize("raw", [
    b"\x09\x04" + bytes(7),                                               # not a configuration
    b"\x09\x02\x14\x00\x01\x01\x00\x80\x32" + b"\x09\x04" + bytes(7),   # shorter than wTotalLength
    b"\x09\x02\x12\x00\x01\x01\x00\x80\x32" + b"\x40\x04" + bytes(7),   # a descriptor overruns
])
def test_malformed_configuration_rejected(raw):
    with pytest.raises(ValueError):
        ConfigLayout.parse(raw)


def test_contract_is_complete_abstract_interface():
    with pytest.raises(TypeError):
        UsbBackend()  # abstract: a backend must implement every operation
