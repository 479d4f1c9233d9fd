"""`PyusbUsbBackend`: real USB devices through pyusb and libusb-1.0.

The only module that imports ``usb`` (pyusb). The libusb backend is passed to pyusb
explicitly: ``libusb_package.get_libusb1_backend()`` (the wheel's bundled libusb), else the
system's libusb-1.0; pyusb keeps the first libusb it loads for the whole process.

Enumeration (``devices()``) reads what libusb caches (on Linux: sysfs), without opening
devices, except once per attachment to read the serial-number string (a device that cannot
be opened, e.g. for lack of permission, gets ``serial=None``). Descriptors are rebuilt
byte-exactly from libusb's parsed copy (fields + ``extra`` blocks). Device ids are
``"<bus>-<port.path>@<address>"``: a re-plugged device gets a new address, hence a new id.

What goes on the wire is libusb's: ``control_in``/``control_out`` → one control transfer
(``libusb_control_transfer``); bulk/interrupt → ``libusb_bulk_transfer`` /
``libusb_interrupt_transfer`` by the endpoint's descriptor type; ``clear_halt`` →
CLEAR_FEATURE(ENDPOINT_HALT); ``reset_device`` → a port reset after which libusb restores
the configuration. Kernel drivers are detached only when asked (`detach_kernel_driver`;
the kernel's guard checks the grant first).

Errors, mapped once here (`_mapped`): pyusb raises ``USBError`` with libusb's errno —

    EPIPE→pipe  ETIMEDOUT/USBTimeoutError→timeout  ENODEV→no_device  EBUSY→busy
    EACCES/EPERM→access  EOVERFLOW→overflow  EINTR→interrupted  ENOENT→not_found
    EIO→io  EINVAL→invalid_param  ENOMEM→no_mem  ENOSYS/NotImplementedError→not_supported
    anything else→other;  pyusb's ValueError (unknown endpoint/configuration)→not_found.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

import usb.core
import usb.util

from wasi_hw import HwError

from ._usb_backend import SPEEDS, UsbBackend, UsbDeviceInfo

__all__ = ["PyusbUsbBackend", "ERRNO_KINDS"]

#: errno (as pyusb reports libusb's errors) → ``$usb_errno`` case name.
ERRNO_KINDS = {
    errno.EPIPE: "pipe",
    errno.ETIMEDOUT: "timeout",
    errno.ENODEV: "no_device",
    errno.EBUSY: "busy",
    errno.EACCES: "access",
    errno.EPERM: "access",
    errno.EOVERFLOW: "overflow",
    errno.EINTR: "interrupted",
    errno.ENOENT: "not_found",
    errno.EIO: "io",
    errno.EINVAL: "invalid_param",
    errno.ENOMEM: "no_mem",
    errno.ENOSYS: "not_supported",
}


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Turn pyusb/libusb failures into `HwError` with a ``$usb_errno`` kind."""
    try:
        yield
    except HwError:
        raise
    except usb.core.USBTimeoutError as err:
        raise HwError("timeout", f"{what}: {err.strerror or err}") from None
    except usb.core.USBError as err:
        kind = ERRNO_KINDS.get(err.errno, "other")
        raise HwError(kind, f"{what}: {err.strerror or err}") from None
    except NotImplementedError as err:
        raise HwError("not_supported", f"{what}: {err}") from None
    except ValueError as err:
        raise HwError("not_found", f"{what}: {err}") from None


def _libusb_backend() -> Any:
    """libusb-package's bundled libusb if loadable, else the system's libusb-1.0."""
    be = None
    try:
        import libusb_package

        be = libusb_package.get_libusb1_backend()
    except (ImportError, OSError):
        be = None
    if be is None:
        import usb.backend.libusb1

        be = usb.backend.libusb1.get_backend()
    if be is None:
        raise HwError("not_supported", "no libusb-1.0 found (pip install libusb-package, "
                                       "or apt-get install libusb-1.0-0)")
    return be


def _device_descriptor(d: Any) -> bytes:
    return bytes((18, 1)) + d.bcdUSB.to_bytes(2, "little") + bytes(
        (d.bDeviceClass, d.bDeviceSubClass, d.bDeviceProtocol, d.bMaxPacketSize0)) + b"".join(
        v.to_bytes(2, "little") for v in (d.idVendor, d.idProduct, d.bcdDevice)) + bytes(
        (d.iManufacturer, d.iProduct, d.iSerialNumber, d.bNumConfigurations))


def _config_descriptor(cfg: Any) -> bytes:
    body = bytearray(bytes(cfg.extra_descriptors or ()))
    for intf in cfg:
        body += bytes((9, 4, intf.bInterfaceNumber, intf.bAlternateSetting, intf.bNumEndpoints,
                       intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol,
                       intf.iInterface))
        body += bytes(intf.extra_descriptors or ())
        for ep in intf:
            body += bytes((ep.bLength, 5, ep.bEndpointAddress, ep.bmAttributes)) + \
                ep.wMaxPacketSize.to_bytes(2, "little") + bytes((ep.bInterval,))
            body += bytes(max(0, ep.bLength - 7))  # audio endpoints' bRefresh/bSynchAddress
            body += bytes(ep.extra_descriptors or ())
    total = 9 + len(body)
    return bytes((9, 2)) + total.to_bytes(2, "little") + bytes(
        (cfg.bNumInterfaces, cfg.bConfigurationValue, cfg.iConfiguration, cfg.bmAttributes,
         cfg.bMaxPower)) + bytes(body)


@dataclass(eq=False)
class _Handle:
    device_id: str
    dev: Any  # usb.core.Device
    claimed: set[int] = field(default_factory=set)


class PyusbUsbBackend(UsbBackend):
    """USB devices on this machine via pyusb + libusb; see the module docstring."""

    name = "pyusb"

    def __init__(self, *, libusb_backend: Any = None) -> None:
        self._be = libusb_backend if libusb_backend is not None else _libusb_backend()
        self._found: dict[str, Any] = {}
        self._serials: dict[str, str | None] = {}

    # -- enumeration ----------------------------------------------------------------------
    def devices(self) -> list[UsbDeviceInfo]:
        with _mapped("enumerate"):
            found = list(usb.core.find(find_all=True, backend=self._be))
        infos, current = [], {}
        for dev in found:
            try:
                info = self._info(dev)
            except (usb.core.USBError, HwError, ValueError):
                continue  # vanished or unreadable while enumerating
            current[info.id] = dev
            infos.append(info)
        self._found = current
        self._serials = {k: v for k, v in self._serials.items() if k in current}
        return infos

    def _info(self, dev: Any) -> UsbDeviceInfo:
        ports = tuple(dev.port_numbers or ())
        dev_id = f"{dev.bus}-{'.'.join(map(str, ports)) or '0'}@{dev.address}"
        if dev_id not in self._serials:
            self._serials[dev_id] = self._read_serial(dev)
        speed = dev.speed if isinstance(dev.speed, int) and 0 <= dev.speed < len(SPEEDS) else 0
        return UsbDeviceInfo.from_descriptors(
            dev_id, bus_number=dev.bus, address=dev.address, port_path=ports,
            speed=SPEEDS[speed], serial=self._serials[dev_id],
            device_descriptor=_device_descriptor(dev),
            config_descriptors=tuple(_config_descriptor(c) for c in dev))

    @staticmethod
    def _read_serial(dev: Any) -> str | None:
        if not dev.iSerialNumber:
            return None
        try:
            return usb.util.get_string(dev, dev.iSerialNumber)
        except (usb.core.USBError, ValueError, NotImplementedError):
            return None
        finally:
            usb.util.dispose_resources(dev)

    # -- handles ----------------------------------------------------------------------------
    def open(self, device_id: str) -> Hashable:
        """A fresh pyusb `Device` (its own libusb handle) for the enumerated device, so two
        opens of one device claim interfaces independently, as two libusb handles do."""
        known = self._found.get(device_id)
        if known is None:
            self.devices()
            known = self._found.get(device_id)
        if known is None:
            raise HwError("no_device", f"no device {device_id!r} attached")
        bus, address, ports = known.bus, known.address, known.port_numbers
        with _mapped("open"):
            dev = usb.core.find(backend=self._be, custom_match=lambda d: (
                d.bus == bus and d.address == address and d.port_numbers == ports))
        if dev is None:
            raise HwError("no_device", f"device {device_id!r} is gone")
        return _Handle(device_id, dev)

    def close(self, handle: Hashable) -> None:
        h: _Handle = handle  # type: ignore[assignment]
        for i in list(h.claimed):
            with contextlib.suppress(usb.core.USBError, ValueError, NotImplementedError):
                usb.util.release_interface(h.dev, i)
        h.claimed.clear()
        with contextlib.suppress(usb.core.USBError, ValueError, NotImplementedError):
            usb.util.dispose_resources(h.dev)

    def string_descriptor(self, handle: Hashable, index: int, langid: int) -> str:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped(f"string {index}"):
            try:
                text = usb.util.get_string(h.dev, index, langid or None)
            except ValueError as err:  # "The device has no langid"
                raise HwError("not_found", f"string {index}: {err}") from None
        if text is None:
            raise HwError("not_found", f"string {index}: no such string")
        return text

    def get_configuration(self, handle: Hashable) -> int:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped("GET_CONFIGURATION"):
            return bytes(h.dev.ctrl_transfer(0x80, 8, 0, 0, 1))[0]

    def set_configuration(self, handle: Hashable, value: int) -> None:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped(f"SET_CONFIGURATION {value}"):
            h.dev.set_configuration(value)

    def claim_interface(self, handle: Hashable, interface: int) -> None:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped(f"claim interface {interface}"):
            usb.util.claim_interface(h.dev, interface)
        h.claimed.add(interface)

    def release_interface(self, handle: Hashable, interface: int) -> None:
        h: _Handle = handle  # type: ignore[assignment]
        if interface not in h.claimed:
            raise HwError("not_found", f"interface {interface} is not claimed")
        with _mapped(f"release interface {interface}"):
            usb.util.release_interface(h.dev, interface)
        h.claimed.discard(interface)

    def set_alt_setting(self, handle: Hashable, interface: int, alt_setting: int) -> None:
        h: _Handle = handle  # type: ignore[assignment]
        if interface not in h.claimed:
            raise HwError("not_found", f"interface {interface} is not claimed")
        with _mapped(f"SET_INTERFACE {interface}/{alt_setting}"):
            h.dev.set_interface_altsetting(interface, alt_setting)

    def detach_kernel_driver(self, handle: Hashable, interface: int) -> None:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped(f"detach kernel driver from interface {interface}"):
            h.dev.detach_kernel_driver(interface)

    # -- transfers ----------------------------------------------------------------------------
    def control_in(self, handle, request_type, request, value, index, length, timeout_ms) -> bytes:
        h: _Handle = handle
        with _mapped(f"control 0x{request_type:02x}/0x{request:02x}"):
            return bytes(
                h.dev.ctrl_transfer(request_type, request, value, index, length, timeout_ms)
            )

    def control_out(self, handle, request_type, request, value, index, data, timeout_ms) -> int:
        h: _Handle = handle
        with _mapped(f"control 0x{request_type:02x}/0x{request:02x}"):
            return int(
                h.dev.ctrl_transfer(request_type, request, value, index, bytes(data), timeout_ms)
            )

    def _read(self, handle: Hashable, endpoint: int, length: int, timeout_ms: int) -> bytes:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped(f"IN 0x{endpoint:02x}"):
            return bytes(h.dev.read(endpoint, length, timeout_ms))

    def _write(self, handle: Hashable, endpoint: int, data: bytes, timeout_ms: int) -> int:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped(f"OUT 0x{endpoint:02x}"):
            return int(h.dev.write(endpoint, bytes(data), timeout_ms))

    bulk_in = interrupt_in = _read
    bulk_out = interrupt_out = _write

    def clear_halt(self, handle: Hashable, endpoint: int) -> None:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped(f"clear halt 0x{endpoint:02x}"):
            h.dev.clear_halt(endpoint)

    def reset_device(self, handle: Hashable) -> None:
        h: _Handle = handle  # type: ignore[assignment]
        with _mapped("reset"):
            h.dev.reset()  # pyusb releases interfaces and closes the handle around the reset
            for i in sorted(h.claimed):
                usb.util.claim_interface(h.dev, i)
