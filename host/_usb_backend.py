"""The USB backend contract: what every USB backend (sim, pyusb, USB/IP, replay) provides.

A backend does I/O and nothing else. `UsbHost` holds the spec's semantics (handle tables,
grants' data, quotas, direction checks) once and calls a backend through exactly this
interface, so the same driver behaves identically on every backend.

Devices
    `devices()` enumerates what is attached now as `UsbDeviceInfo` records. A device's
    ``id`` is an opaque string unique per *attachment*: a device that leaves and comes back
    gets a new id (sim: a counter; pyusb: bus, port path and address, which the kernel
    renumbers on re-enumeration). Hotplug is derived from this: `UsbHost` diffs successive
    `devices()` snapshots, so a backend needs no event machinery of its own.

Handles
    `open(id)` returns an opaque backend handle (any hashable object) passed to every other
    call; `close(handle)` releases its claimed interfaces and never raises for a device that
    has gone. After the device leaves, every call on its handles raises ``no_device``.

Transfers — what goes on the wire
    ``control_in`` / ``control_out``: one control transfer, SETUP = (request_type, request,
    value, index, wLength) with wLength = ``length`` (IN) or ``len(data)`` (OUT); bit 7 of
    request_type must match the method (the host checks it before calling).
    ``bulk_in`` / ``interrupt_in``: read up to ``length`` bytes from IN endpoint
    ``endpoint`` (bit 7 set); the transfer ends at the first short packet or when
    ``length`` bytes arrived; returns exactly the bytes read (a short read is not an error).
    ``bulk_out`` / ``interrupt_out``: write ``data`` to OUT endpoint ``endpoint`` (bit 7
    clear), a zero-length packet if ``data`` is empty; returns the bytes written.
    ``timeout_ms`` is always >= 1 (the host resolves the spec's 0 to the grant's default).
    A device that NAKs past the timeout raises ``timeout``.

Errors
    Every failure raises `wasi_hw.HwError` whose ``kind`` is a ``$usb_errno`` case name of
    ``witx/wasi_usb.witx``: ``io``, ``invalid_param``, ``access``, ``no_device``,
    ``not_found``, ``busy``, ``timeout``, ``overflow``, ``pipe``, ``interrupted``,
    ``no_mem``, ``not_supported``, ``other``. Each backend maps its library's failures to
    these kinds in one place; no other exception type may escape a backend method.

Speeds are the ``$speed`` case names: ``unknown``, ``low``, ``full``, ``high``, ``super``,
``super_plus``.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = [
    "UsbBackend", "UsbDeviceInfo", "ConfigLayout", "EndpointLayout", "SPEEDS", "USB_ERRNO_KINDS",
]

#: ``$speed`` case names, in enum order.
SPEEDS = ("unknown", "low", "full", "high", "super", "super_plus")

#: ``$usb_errno`` case names a backend may raise (``success``, ``fault`` and ``bad_handle``
#: belong to the host and the guest-memory layer).
USB_ERRNO_KINDS = frozenset(
    {
        "io", "invalid_param", "access", "no_device", "not_found", "busy", "timeout",
        "overflow", "pipe", "interrupted", "no_mem", "not_supported", "other",
    }
)


@dataclass(frozen=True, slots=True)
class UsbDeviceInfo:
    """One attached device as enumerated: where it sits and what it is.

    ``device_descriptor`` is the 18-byte standard device descriptor;
    ``config_descriptors`` holds each configuration's full descriptor (wTotalLength bytes),
    by configuration index. Identity fields repeat what the descriptor says, decoded.
    ``serial`` is the iSerialNumber string (None when the device has none or it could not
    be read without opening the device) — the kernel's guard matches grants on it.
    """

    id: str
    bus_number: int
    address: int
    port_path: tuple[int, ...]
    speed: str
    vendor_id: int
    product_id: int
    device_class: int
    device_subclass: int
    device_protocol: int
    num_configurations: int
    serial: str | None
    device_descriptor: bytes
    config_descriptors: tuple[bytes, ...]

    @classmethod
    def from_descriptors(
        cls,
        id: str,
        *,
        bus_number: int,
        address: int,
        port_path: tuple[int, ...],
        speed: str,
        serial: str | None,
        device_descriptor: bytes,
        config_descriptors: tuple[bytes, ...],
    ) -> UsbDeviceInfo:
        """Build the record, decoding the identity fields from the device descriptor."""
        d = device_descriptor
        if len(d) < 18 or d[1] != 1:
            raise ValueError("not an 18-byte device descriptor")
        if speed not in SPEEDS:
            raise ValueError(f"unknown speed {speed!r}")
        return cls(
            id=id,
            bus_number=bus_number,
            address=address,
            port_path=tuple(port_path),
            speed=speed,
            vendor_id=int.from_bytes(d[8:10], "little"),
            product_id=int.from_bytes(d[10:12], "little"),
            device_class=d[4],
            device_subclass=d[5],
            device_protocol=d[6],
            num_configurations=d[17],
            serial=serial,
            device_descriptor=bytes(d[:18]),
            config_descriptors=tuple(bytes(c) for c in config_descriptors),
        )

    def config_layout(self, config_value: int) -> ConfigLayout | None:
        """The parsed configuration whose bConfigurationValue is ``config_value``."""
        for cfg in self.config_descriptors:
            if len(cfg) >= 9 and cfg[5] == config_value:
                return ConfigLayout.parse(cfg)
        return None


@dataclass(frozen=True, slots=True)
class EndpointLayout:
    """One endpoint as a configuration descriptor declares it."""

    address: int  # bit 7: IN
    transfer_type: str  # "control" | "isochronous" | "bulk" | "interrupt"
    max_packet_size: int
    interface: int
    alt_setting: int


@dataclass(frozen=True, slots=True)
class ConfigLayout:
    """A configuration descriptor parsed: its value and the endpoints of every
    (interface, alternate setting)."""

    value: int
    interfaces: dict[tuple[int, int], tuple[EndpointLayout, ...]]

    @classmethod
    def parse(cls, cfg: bytes) -> ConfigLayout:
        """Parse a full configuration descriptor; `ValueError` if malformed."""
        if len(cfg) < 9 or cfg[1] != 2 or cfg[0] < 9:
            raise ValueError("not a configuration descriptor")
        total = int.from_bytes(cfg[2:4], "little")
        if total > len(cfg):
            raise ValueError(f"configuration is {len(cfg)} bytes, wTotalLength says {total}")
        found: dict[tuple[int, int], list[EndpointLayout]] = {}
        key = None
        pos = cfg[0]
        while pos + 2 <= total:
            length, dtype = cfg[pos], cfg[pos + 1]
            if length < 2 or pos + length > total:
                raise ValueError(f"descriptor at offset {pos} overruns the configuration")
            if dtype == 4 and length >= 9:
                key = (cfg[pos + 2], cfg[pos + 3])
                found.setdefault(key, [])
            elif dtype == 5 and length >= 7 and key is not None:
                found[key].append(EndpointLayout(
                    address=cfg[pos + 2],
                    transfer_type=("control", "isochronous", "bulk", "interrupt")[cfg[pos + 3] & 3],
                    max_packet_size=int.from_bytes(cfg[pos + 4:pos + 6], "little") & 0x7FF,
                    interface=key[0], alt_setting=key[1]))
            pos += length
        return cls(cfg[5], {k: tuple(v) for k, v in found.items()})

    @property
    def interface_numbers(self) -> frozenset[int]:
        return frozenset(k[0] for k in self.interfaces)

    def endpoint(
        self, address: int, alt_settings: dict[int, int] | None = None
    ) -> EndpointLayout | None:
        """The endpoint with ``address`` under the given alternate settings (interface →
        alt; absent means 0). None when the active settings have no such endpoint."""
        alts = alt_settings or {}
        for (num, alt), eps in self.interfaces.items():
            if alts.get(num, 0) != alt:
                continue
            for ep in eps:
                if ep.address == address:
                    return ep
        return None


class UsbBackend(abc.ABC):
    """A source of USB devices. See the module docstring for the full contract."""

    #: Short backend name for logs and traces: ``"sim"``, ``"pyusb"``, ``"usbip"``, ...
    name: str = "usb"

    # -- enumeration -------------------------------------------------------------------
    @abc.abstractmethod
    def devices(self) -> list[UsbDeviceInfo]:
        """The devices attached now (never raises for an empty bus)."""

    # -- handles -----------------------------------------------------------------------
    @abc.abstractmethod
    def open(self, device_id: str) -> Hashable:
        """Open the device; ``no_device`` if ``device_id`` is not attached (any more)."""

    @abc.abstractmethod
    def close(self, handle: Hashable) -> None:
        """Release the handle's interfaces and forget it. Never raises for a gone device."""

    @abc.abstractmethod
    def string_descriptor(self, handle: Hashable, index: int, langid: int) -> str:
        """String descriptor ``index`` (>= 1) in ``langid``, decoded from UTF-16LE.
        ``langid`` 0 means the device's first language (from string descriptor 0).
        ``not_found``/``pipe`` when the device has no such string."""

    @abc.abstractmethod
    def get_configuration(self, handle: Hashable) -> int:
        """The active bConfigurationValue (0: unconfigured)."""

    @abc.abstractmethod
    def set_configuration(self, handle: Hashable, value: int) -> None:
        """SET_CONFIGURATION(value); ``not_found`` for a value no configuration has,
        ``busy`` while interfaces are claimed (libusb's rule)."""

    @abc.abstractmethod
    def claim_interface(self, handle: Hashable, interface: int) -> None:
        """Claim ``interface`` of the active configuration for this handle;
        ``not_found`` if absent, ``busy`` if claimed through another handle or bound to
        a kernel driver."""

    @abc.abstractmethod
    def release_interface(self, handle: Hashable, interface: int) -> None:
        """Release a claimed interface; ``not_found`` if this handle has not claimed it."""

    @abc.abstractmethod
    def set_alt_setting(self, handle: Hashable, interface: int, alt_setting: int) -> None:
        """SET_INTERFACE(interface, alt_setting) on a claimed interface; ``not_found`` if
        the interface is not claimed or has no such alternate setting."""

    @abc.abstractmethod
    def detach_kernel_driver(self, handle: Hashable, interface: int) -> None:
        """Unbind the kernel driver from ``interface``; ``not_found`` if none is bound,
        ``not_supported`` where the platform has no kernel drivers."""

    # -- transfers ---------------------------------------------------------------------
    @abc.abstractmethod
    def control_in(
        self, handle: Hashable, request_type: int, request: int, value: int, index: int,
        length: int, timeout_ms: int,
    ) -> bytes:
        """Control transfer with a device-to-host data stage; returns the bytes read
        (<= length). ``pipe`` when the device stalls the request."""

    @abc.abstractmethod
    def control_out(
        self, handle: Hashable, request_type: int, request: int, value: int, index: int,
        data: bytes, timeout_ms: int,
    ) -> int:
        """Control transfer with a host-to-device data stage (or none if ``data`` is
        empty); returns the bytes written. ``pipe`` on stall."""

    @abc.abstractmethod
    def bulk_in(self, handle: Hashable, endpoint: int, length: int, timeout_ms: int) -> bytes:
        """Bulk IN of up to ``length`` bytes; ``pipe`` if the endpoint is halted."""

    @abc.abstractmethod
    def bulk_out(self, handle: Hashable, endpoint: int, data: bytes, timeout_ms: int) -> int:
        """Bulk OUT of ``data``; returns bytes written; ``pipe`` if halted."""

    @abc.abstractmethod
    def interrupt_in(self, handle: Hashable, endpoint: int, length: int, timeout_ms: int) -> bytes:
        """Interrupt IN, as `bulk_in`."""

    @abc.abstractmethod
    def interrupt_out(self, handle: Hashable, endpoint: int, data: bytes, timeout_ms: int) -> int:
        """Interrupt OUT, as `bulk_out`."""

    def iso_transfer(
        self, handle: Hashable, endpoint: int, data: bytes | None, packet_lengths: list[int],
        timeout_ms: int,
    ) -> list[tuple[bytes | int, str]]:
        """Isochronous transfer: per packet (IN: bytes read, OUT: bytes written; status
        kind, ``"success"`` when fine). Backends without isochronous support keep this
        default, which raises ``not_supported``."""
        from wasi_hw import HwError

        raise HwError("not_supported", f"{self.name} backend has no isochronous transfers")

    @abc.abstractmethod
    def clear_halt(self, handle: Hashable, endpoint: int) -> None:
        """CLEAR_FEATURE(ENDPOINT_HALT) on ``endpoint``, resetting its data toggle."""

    @abc.abstractmethod
    def reset_device(self, handle: Hashable) -> None:
        """Port-reset the device. The handle stays usable: configuration is restored
        (libusb semantics), claimed interfaces stay claimed. ``not_found`` if the device
        re-enumerated as something else (the handle is then dead)."""

    def shutdown(self) -> None:  # noqa: B027 — an optional hook: the default does nothing
        """Release everything the backend holds (threads, sockets, libusb context).
        The default does nothing."""
