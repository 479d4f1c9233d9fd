"""The virtual USB device model: descriptors, standard requests, endpoint hooks.

One model object is one USB device as seen from the bus. Every transport — the in-process
`SimUsbBackend`, the USB/IP server, the umockdev usbfs handler — drives a model through the
same four entry points and nothing else:

``handle_control(setup, data_out) -> bytes``
    One control transfer on endpoint 0. ``setup`` is the 8-byte SETUP packet (`Setup`);
    ``data_out`` the OUT data stage (``len == setup.length`` for OUT, ``b""`` for IN).
    Returns the IN data stage, at most ``setup.length`` bytes (``b""`` for OUT). Raises
    `Stall` when the device STALLs the request (a protocol stall: the next SETUP clears it).
    Standard requests (type 0) are answered here, identically for every model:
    GET_DESCRIPTOR (device, configuration, string; anything else goes to `control`),
    SET_ADDRESS, SET/GET_CONFIGURATION, SET/GET_INTERFACE, GET_STATUS,
    SET/CLEAR_FEATURE(ENDPOINT_HALT) and CLEAR/SET_FEATURE(DEVICE_REMOTE_WAKEUP).
    Class and vendor requests go to the `control` hook.

``handle_out(endpoint, data) -> int``
    One OUT transfer's data to a bulk/interrupt OUT endpoint of the active configuration.
    Returns how many bytes the device accepted now (0 … len(data)); the transport offers
    the rest again later (a NAK) until its timeout, then reports ``timeout``.

``handle_in(endpoint, max_len) -> bytes | None``
    Asks an IN endpoint for up to ``max_len`` bytes. ``None`` is a NAK (no data yet): the
    transport asks again until its timeout and then reports ``timeout``. A return shorter
    than ``max_len`` is a short packet and ends the transfer. Never more than ``max_len``.

``handle_reset()``
    A bus reset: the device returns to the default state (address 0, unconfigured, all
    halts cleared) and the model's `reset` hook runs.

`handle_out`/`handle_in` raise `Stall` when the endpoint is halted, is not an endpoint of
the active configuration and alternate settings, has the wrong direction, or the device is
unconfigured. A hook that raises `Stall` halts its endpoint until CLEAR_FEATURE
(ENDPOINT_HALT) (`halt_cleared` hook) or a bus reset. All entry points are serialised
by one lock per model, so transports may call them from any thread.

Subclasses describe themselves with `DeviceDescriptor` / `Configuration` / `Interface` /
`Endpoint` and override the hooks `control`, `out`, `in_`, `reset`, and optionally
`configured`, `interface_selected`, `halt_cleared`.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Stall",
    "Setup",
    "Endpoint",
    "Interface",
    "Configuration",
    "DeviceDescriptor",
    "UsbDeviceModel",
    "BULK",
    "INTERRUPT",
    "ISOCHRONOUS",
]

# bmAttributes transfer types
ISOCHRONOUS, BULK, INTERRUPT = 1, 2, 3

# standard requests
_GET_STATUS, _CLEAR_FEATURE, _SET_FEATURE, _SET_ADDRESS = 0, 1, 3, 5
_GET_DESCRIPTOR, _GET_CONFIGURATION, _SET_CONFIGURATION = 6, 8, 9
_GET_INTERFACE, _SET_INTERFACE = 10, 11
_DT_DEVICE, _DT_CONFIG, _DT_STRING = 1, 2, 3
_FEATURE_ENDPOINT_HALT, _FEATURE_REMOTE_WAKEUP = 0, 1


class Stall(Exception):
    """Raised by a model or hook: the device answers the request or transfer with STALL."""


@dataclass(frozen=True, slots=True)
class Setup:
    """A SETUP packet: bmRequestType, bRequest, wValue, wIndex, wLength."""

    request_type: int
    request: int
    value: int
    index: int
    length: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> Setup:
        if len(raw) != 8:
            raise ValueError(f"a SETUP packet is 8 bytes, got {len(raw)}")
        return cls(*struct.unpack("<BBHHH", raw))

    def to_bytes(self) -> bytes:
        return struct.pack("<BBHHH", self.request_type, self.request, self.value,
                           self.index, self.length)

    @property
    def is_in(self) -> bool:
        """Data stage direction is device-to-host (bit 7)."""
        return bool(self.request_type & 0x80)

    @property
    def kind(self) -> str:
        """``"standard"``, ``"class"``, ``"vendor"`` or ``"reserved"`` (bits 6..5)."""
        return ("standard", "class", "vendor", "reserved")[(self.request_type >> 5) & 3]

    @property
    def recipient(self) -> str:
        """``"device"``, ``"interface"``, ``"endpoint"``, ``"other"`` (bits 4..0)."""
        r = self.request_type & 0x1F
        return ("device", "interface", "endpoint", "other")[r] if r < 4 else "other"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An endpoint descriptor. ``address`` carries the direction in bit 7."""

    address: int
    transfer_type: int  # BULK / INTERRUPT / ISOCHRONOUS
    max_packet_size: int
    interval: int = 0
    extra: bytes = b""  # class-specific descriptors following it

    @property
    def is_in(self) -> bool:
        return bool(self.address & 0x80)

    def to_bytes(self) -> bytes:
        return struct.pack("<BBBBHB", 7, 5, self.address, self.transfer_type,
                           self.max_packet_size, self.interval) + self.extra


@dataclass(frozen=True, slots=True)
class Interface:
    """An interface descriptor (one alternate setting) with its endpoints.
    ``extra`` (class-specific descriptors, e.g. HID) sits before the endpoints."""

    number: int
    interface_class: int
    subclass: int
    protocol: int
    endpoints: tuple[Endpoint, ...] = ()
    alt_setting: int = 0
    string_index: int = 0
    extra: bytes = b""

    def to_bytes(self) -> bytes:
        head = struct.pack("<BBBBBBBBB", 9, 4, self.number, self.alt_setting,
                           len(self.endpoints), self.interface_class, self.subclass,
                           self.protocol, self.string_index)
        return head + self.extra + b"".join(e.to_bytes() for e in self.endpoints)


@dataclass(frozen=True, slots=True)
class Configuration:
    """A configuration: its bConfigurationValue and interfaces (all alt settings)."""

    value: int
    interfaces: tuple[Interface, ...]
    attributes: int = 0x80  # bus powered
    max_power_ma: int = 100
    string_index: int = 0

    @property
    def interface_numbers(self) -> tuple[int, ...]:
        return tuple(sorted({i.number for i in self.interfaces}))

    def to_bytes(self) -> bytes:
        body = b"".join(i.to_bytes() for i in self.interfaces)
        head = struct.pack("<BBHBBBBB", 9, 2, 9 + len(body), len(self.interface_numbers),
                           self.value, self.string_index, self.attributes,
                           min(self.max_power_ma // 2, 255))
        return head + body

    def interface(self, number: int, alt: int) -> Interface | None:
        for i in self.interfaces:
            if i.number == number and i.alt_setting == alt:
                return i
        return None


@dataclass(frozen=True, slots=True)
class DeviceDescriptor:
    """The standard device descriptor's fields (string fields are string indexes)."""

    vendor_id: int
    product_id: int
    bcd_device: int = 0x0100
    device_class: int = 0
    subclass: int = 0
    protocol: int = 0
    max_packet_size0: int = 64
    bcd_usb: int = 0x0200
    manufacturer: int = 0
    product: int = 0
    serial_number: int = 0

    def to_bytes(self, num_configurations: int) -> bytes:
        return struct.pack("<BBHBBBBHHHBBBB", 18, 1, self.bcd_usb, self.device_class,
                           self.subclass, self.protocol, self.max_packet_size0,
                           self.vendor_id, self.product_id, self.bcd_device,
                           self.manufacturer, self.product, self.serial_number,
                           num_configurations)


@dataclass
class _State:
    address: int = 0
    configuration: int = 0
    alt: dict[int, int] = field(default_factory=dict)
    halted: set[int] = field(default_factory=set)
    remote_wakeup: bool = False


class UsbDeviceModel:
    """Base class of virtual USB devices; see the module docstring for the contract.

    ``speed`` is a ``$speed`` case name; ``langids`` the LANGIDs string descriptor 0
    lists; ``strings`` maps string index → text (served in every language).

    ``touched`` records every endpoint address a transfer reached (0 for control requests,
    and the endpoint an endpoint-recipient request names): what tests' oracles compare
    with the grants."""

    speed: str = "full"
    self_powered: bool = False
    #: The device's time source (monotonic ns). In-process transports replace it with
    #: their bus clock (`SimUsbBackend` with its `Clock`), so timed behaviour follows
    #: simulated time; over USB/IP and umockdev it is real time.
    clock_ns: Callable[[], int] = staticmethod(time.monotonic_ns)

    def __init__(
        self,
        device: DeviceDescriptor,
        configurations: Sequence[Configuration],
        strings: Mapping[int, str] | None = None,
        langids: Sequence[int] = (0x0409,),
    ) -> None:
        if not configurations:
            raise ValueError("a device needs at least one configuration")
        self.device = device
        self.configurations = tuple(configurations)
        self.strings = dict(strings or {})
        self.langids = tuple(langids)
        self.device_descriptor = device.to_bytes(len(self.configurations))
        self.config_descriptors = tuple(c.to_bytes() for c in self.configurations)
        self._lock = threading.RLock()
        self._state = _State()
        self.touched: set[int] = set()

    # -- identity ----------------------------------------------------------------------
    @property
    def serial(self) -> str | None:
        """The serial-number string, or None if the device has none."""
        return self.strings.get(self.device.serial_number) if self.device.serial_number else None

    def string(self, index: int) -> str | None:
        """String ``index`` (>= 1), None if absent."""
        return self.strings.get(index)

    @property
    def address(self) -> int:
        return self._state.address

    @property
    def configuration(self) -> int:
        """Active bConfigurationValue (0: unconfigured)."""
        return self._state.configuration

    def alt_setting(self, interface: int) -> int:
        return self._state.alt.get(interface, 0)

    def active_configuration(self) -> Configuration | None:
        for c in self.configurations:
            if c.value == self._state.configuration:
                return c
        return None

    def endpoints(self) -> dict[int, Endpoint]:
        """Endpoints of the active configuration's current alt settings, by address."""
        cfg = self.active_configuration()
        if cfg is None:
            return {}
        out: dict[int, Endpoint] = {}
        for num in cfg.interface_numbers:
            iface = cfg.interface(num, self.alt_setting(num))
            if iface is not None:
                for ep in iface.endpoints:
                    out[ep.address] = ep
        return out

    def endpoint_interface(self, endpoint: int) -> int | None:
        """Interface number owning ``endpoint`` in the active configuration."""
        cfg = self.active_configuration()
        if cfg is None:
            return None
        for iface in cfg.interfaces:
            if any(e.address == endpoint for e in iface.endpoints):
                return iface.number
        return None

    def is_halted(self, endpoint: int) -> bool:
        return endpoint in self._state.halted

    def halt(self, endpoint: int) -> None:
        """Set ENDPOINT_HALT on ``endpoint`` (models use it, e.g. BOT on a bad CBW)."""
        with self._lock:
            self._state.halted.add(endpoint)

    # -- transport entry points ---------------------------------------------------------
    def handle_control(self, setup: Setup, data_out: bytes = b"") -> bytes:
        with self._lock:
            self.touched.add(0)
            if setup.request_type & 0x1F == 2:        # recipient: an endpoint
                self.touched.add(setup.index & 0xFF)
            if not setup.is_in and len(data_out) != setup.length:
                raise Stall()
            if setup.kind == "standard":
                reply = self._standard(setup)
                if reply is None:  # not a standard request the base answers
                    reply = self.control(setup, data_out)
            else:
                reply = self.control(setup, data_out)
            if not setup.is_in:
                return b""
            return bytes(reply or b"")[: setup.length]

    def handle_out(self, endpoint: int, data: bytes) -> int:
        with self._lock:
            self.touched.add(endpoint)
            self._check_endpoint(endpoint, want_in=False)
            try:
                n = self.out(endpoint, bytes(data))
            except Stall:
                self._state.halted.add(endpoint)
                raise
            if not 0 <= n <= len(data):
                raise ValueError(f"{type(self).__name__}.out returned {n} for {len(data)} bytes")
            return n

    def handle_in(self, endpoint: int, max_len: int) -> bytes | None:
        with self._lock:
            self.touched.add(endpoint)
            self._check_endpoint(endpoint, want_in=True)
            try:
                data = self.in_(endpoint, max_len)
            except Stall:
                self._state.halted.add(endpoint)
                raise
            if data is not None and len(data) > max_len:
                raise ValueError(f"{type(self).__name__}.in_ returned {len(data)} > {max_len}")
            return None if data is None else bytes(data)

    def handle_reset(self) -> None:
        with self._lock:
            self._state = _State()
            self.reset()

    # -- hooks (override) -----------------------------------------------------------------
    def control(self, setup: Setup, data_out: bytes) -> bytes:
        """Class/vendor requests (and standard ones the base does not answer, such as a
        class descriptor via GET_DESCRIPTOR). Return the IN data; raise `Stall` to refuse."""
        raise Stall()

    def out(self, endpoint: int, data: bytes) -> int:
        """Data for an OUT endpoint; return how many bytes were accepted."""
        raise Stall()

    def in_(self, endpoint: int, max_len: int) -> bytes | None:
        """Data from an IN endpoint (<= max_len bytes), or None to NAK."""
        raise Stall()

    def reset(self) -> None:
        """Called after a bus reset returned the device to its default state."""

    def configured(self, value: int) -> None:
        """Called after SET_CONFIGURATION(value) (0: deconfigured)."""

    def interface_selected(self, interface: int, alt_setting: int) -> None:
        """Called after SET_INTERFACE."""

    def halt_cleared(self, endpoint: int) -> None:
        """Called after CLEAR_FEATURE(ENDPOINT_HALT) on ``endpoint``."""

    # -- internals ------------------------------------------------------------------------
    def _check_endpoint(self, endpoint: int, *, want_in: bool) -> None:
        ep = self.endpoints().get(endpoint)
        if ep is None or ep.is_in != want_in or endpoint in self._state.halted:
            raise Stall()

    def _string_descriptor(self, index: int, langid: int) -> bytes:
        if index == 0:
            body = b"".join(struct.pack("<H", lang) for lang in self.langids)
        else:
            text = self.strings.get(index)
            if text is None or (self.langids and langid not in self.langids):
                raise Stall()
            body = text.encode("utf-16-le")
        if len(body) > 253:
            body = body[:252]
        return bytes((2 + len(body), _DT_STRING)) + body

    def _standard(self, s: Setup) -> bytes | None:
        st = self._state
        rec = s.recipient
        if s.request == _GET_DESCRIPTOR and s.is_in and rec == "device":
            dtype, index = s.value >> 8, s.value & 0xFF
            if dtype == _DT_DEVICE:
                return self.device_descriptor
            if dtype == _DT_CONFIG:
                if index >= len(self.config_descriptors):
                    raise Stall()
                return self.config_descriptors[index]
            if dtype == _DT_STRING:
                return self._string_descriptor(index, s.index)
            return None  # qualifier, BOS, ...: the hook decides (default: stall)
        if s.request == _SET_ADDRESS and not s.is_in and rec == "device":
            if s.value > 127:
                raise Stall()
            st.address = s.value
            return b""
        if s.request == _GET_CONFIGURATION and s.is_in and rec == "device":
            return bytes((st.configuration,))
        if s.request == _SET_CONFIGURATION and not s.is_in and rec == "device":
            value = s.value & 0xFF
            if value and not any(c.value == value for c in self.configurations):
                raise Stall()
            st.configuration = value
            st.alt.clear()
            st.halted.clear()
            self.configured(value)
            return b""
        if s.request == _GET_INTERFACE and s.is_in and rec == "interface":
            cfg = self.active_configuration()
            if cfg is None or s.index not in cfg.interface_numbers:
                raise Stall()
            return bytes((self.alt_setting(s.index),))
        if s.request == _SET_INTERFACE and not s.is_in and rec == "interface":
            cfg = self.active_configuration()
            if cfg is None or cfg.interface(s.index & 0xFF, s.value) is None:
                raise Stall()
            old = cfg.interface(s.index & 0xFF, self.alt_setting(s.index & 0xFF))
            for ep in old.endpoints if old else ():
                st.halted.discard(ep.address)
            st.alt[s.index & 0xFF] = s.value
            self.interface_selected(s.index & 0xFF, s.value)
            return b""
        if s.request == _GET_STATUS and s.is_in:
            if rec == "device":
                return struct.pack("<H", int(self.self_powered) | (int(st.remote_wakeup) << 1))
            if rec == "interface":
                cfg = self.active_configuration()
                if cfg is None or s.index not in cfg.interface_numbers:
                    raise Stall()
                return b"\0\0"
            if rec == "endpoint":
                ep_addr = s.index & 0xFF
                if ep_addr & 0x7F and ep_addr not in self.endpoints():
                    raise Stall()
                return struct.pack("<H", int(ep_addr in st.halted))
            raise Stall()
        if s.request in (_CLEAR_FEATURE, _SET_FEATURE) and not s.is_in:
            setting = s.request == _SET_FEATURE
            if rec == "endpoint" and s.value == _FEATURE_ENDPOINT_HALT:
                ep_addr = s.index & 0xFF
                if ep_addr & 0x7F == 0:
                    return b""
                if ep_addr not in self.endpoints():
                    raise Stall()
                if setting:
                    st.halted.add(ep_addr)
                else:
                    st.halted.discard(ep_addr)
                    self.halt_cleared(ep_addr)
                return b""
            if rec == "device" and s.value == _FEATURE_REMOTE_WAKEUP:
                st.remote_wakeup = setting
                return b""
            raise Stall()
        if s.request in (_GET_DESCRIPTOR,):
            return None  # e.g. HID report descriptor via the interface: the hook answers
        raise Stall()
