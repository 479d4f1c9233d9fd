"""PyusbUsbBackend's error mapping and descriptor rebuilding (no device needed); the
device conversation itself runs in test_pyusb_umockdev.py."""

import errno

import pytest
import usb.core

from wasi_hw import HwError
from wasi_hw.host import PyusbUsbBackend
from wasi_hw.host._pyusb_usb import ERRNO_KINDS, _config_descriptor, _device_descriptor, _mapped


@pytest.mark.parametrize("code,kind", [
    (errno.EPIPE, "pipe"), (errno.ETIMEDOUT, "timeout"), (errno.ENODEV, "no_device"),
    (errno.EBUSY, "busy"), (errno.EACCES, "access"), (errno.EOVERFLOW, "overflow"),
    (errno.EINTR, "interrupted"), (errno.ENOENT, "not_found"), (errno.EIO, "io"),
    (errno.EINVAL, "invalid_param"), (errno.ENOMEM, "no_mem"), (errno.ENOSYS, "not_supported"),
    (None, "other"), (errno.EXDEV, "other"),
])
def test_usberror_errno_to_kind(code, kind):
    with pytest.raises(HwError) as e, _mapped("op"):
        raise usb.core.USBError("boom", None, code)
    assert e.value.kind == kind and e.value.message.startswith("op: ")


@pytest.mark.parametrize("exc,kind", [
    (usb.core.USBTimeoutError("t", -7, errno.ETIMEDOUT), "timeout"),
    (NotImplementedError("nope"), "not_supported"),
    (ValueError("Invalid endpoint address 0x85"), "not_found"),
])
def test_other_pyusb_failures(exc, kind):
    with pytest.raises(HwError) as e, _mapped("op"):
        raise exc
    assert e.value.kind == kind


def test_mapping_table_only_names_spec_kinds():
    from wasi_hw.host._usb_backend import USB_ERRNO_KINDS

    assert set(ERRNO_KINDS.values()) <= USB_ERRNO_KINDS


def test_backend_loads_libusb_and_enumerates_without_error():
    b = PyusbUsbBackend()
    assert b.name == "pyusb"
    assert isinstance(b.devices(), list)  # this machine may have no USB at all
    with pytest.raises(HwError) as e:
        b.open("9-9@99")
    assert e.value.kind == "no_device"


class _Obj:
    def __init__(self, children=(), **kw):
        self.__dict__.update(kw)
        self._children = list(children)

    def __iter__(self):
        return iter(self._children)


def test_descriptors_rebuilt_byte_exact():
    from wasi_hw.host.usbdevices import HidKeyboard

    m = HidKeyboard()
    d = m.device_descriptor
    dev = _Obj(bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0, bDeviceProtocol=0,
               bMaxPacketSize0=64, idVendor=0x1209, idProduct=2, bcdDevice=0x0100,
               iManufacturer=1, iProduct=2, iSerialNumber=3, bNumConfigurations=1)
    assert _device_descriptor(dev) == d
    cfg_bytes = m.config_descriptors[0]
    ep = _Obj(bLength=7, bEndpointAddress=0x81, bmAttributes=3, wMaxPacketSize=8, bInterval=10,
              extra_descriptors=[])
    intf = _Obj([ep], bInterfaceNumber=0, bAlternateSetting=0, bNumEndpoints=1,
                bInterfaceClass=3, bInterfaceSubClass=1, bInterfaceProtocol=1, iInterface=0,
                extra_descriptors=list(m.hid_descriptor))
    cfg = _Obj([intf], bNumInterfaces=1, bConfigurationValue=1, iConfiguration=0,
               bmAttributes=0xA0, bMaxPower=50, extra_descriptors=[])
    assert _config_descriptor(cfg) == cfg_bytes


def test_falls_back_to_system_libusb(monkeypatch):
    import libusb_package
    import usb.backend.libusb1

    from wasi_hw.host._pyusb_usb import _libusb_backend

    monkeypatch.setattr(libusb_package, "get_libusb1_backend", lambda: None)
    calls = []
    real = usb.backend.libusb1.get_backend

    def system(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(usb.backend.libusb1, "get_backend", system)
    assert _libusb_backend() is not None and calls == [1]
    monkeypatch.setattr(usb.backend.libusb1, "get_backend", lambda *a, **kw: None)
    with pytest.raises(HwError) as e:
        _libusb_backend()
    assert e.value.kind == "not_supported" and "libusb" in e.value.message
