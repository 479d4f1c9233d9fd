"""`SimUsbBackend`: virtual USB devices (`UsbDeviceModel`s) in-process, with hotplug.

`attach(model)` plugs a model into the next free root port of the simulated bus: the
backend enumerates it like a host controller would (bus reset, SET_ADDRESS, descriptors
and the serial string read through GET_DESCRIPTOR, SET_CONFIGURATION of the first
configuration, as Linux does for a device without a driver). `detach(id)` unplugs it:
its open handles then fail with ``no_device``. Every attachment gets a fresh id
(``"sim:<n>"``) and address, so `UsbHost` sees a re-plug as left + arrived.

Wire behaviour (the `UsbBackend` contract): control transfers go to
``model.handle_control`` (STALL → ``pipe``). An IN transfer asks ``model.handle_in`` for
up to the requested length, re-asking every millisecond (one USB frame) while the model
NAKs; past the timeout → ``timeout``. An OUT transfer offers the data to
``model.handle_out`` until all is accepted, waiting a frame after each partial accept;
past the timeout → ``timeout``. Time is the backend's `Clock` (default: a fresh
`VirtualClock`, so timeouts cost no real time); `attach` makes it the model's
``clock_ns`` too, so timed device behaviour (a keyboard's idle rate) follows the same time.

Host-side rules modelled after Linux usbfs/libusb: one claimer per interface (``busy``),
no SET_CONFIGURATION while interfaces are claimed (``busy``), SET_INTERFACE only on a
claimed interface, ``reset_device`` restores the configuration and alternate settings.
There are no kernel drivers: `detach_kernel_driver` is ``not_found``. Isochronous
transfers run one packet per frame (see `iso_transfer`).

Fault injection: ``fail_next(kind, count=1)`` makes the next transfers fail with
``HwError(kind)`` before reaching the model.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from wasi_hw import HwError

from ._clock import Clock, VirtualClock
from ._usb_backend import UsbBackend, UsbDeviceInfo
from .usbdevices._model import Setup, Stall, UsbDeviceModel

__all__ = ["SimUsbBackend"]

_FRAME_NS = 1_000_000


@dataclass
class _Attached:
    model: UsbDeviceModel
    info: UsbDeviceInfo
    claims: dict[int, Hashable] = field(default_factory=dict)  # interface -> handle
    present: bool = True


@dataclass
class _Open:
    dev: _Attached
    claimed: set[int] = field(default_factory=set)


class SimUsbBackend(UsbBackend):
    """Simulated USB bus; see the module docstring."""

    name = "sim"

    def __init__(self, models: Iterable[UsbDeviceModel] = (), *, clock: Clock | None = None,
                 bus_number: int = 1) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.bus_number = bus_number
        self._lock = threading.RLock()
        self._attached: dict[str, _Attached] = {}
        self._handles: dict[Hashable, _Open] = {}
        self._ids = itertools.count(1)
        self._handle_ids = itertools.count(1)
        self._next_address = 1
        self._faults: list[str] = []
        for m in models:
            self.attach(m)

    # -- hotplug ---------------------------------------------------------------------------
    def attach(self, model: UsbDeviceModel, *, port: int | None = None) -> str:
        """Plug ``model`` in (enumerating it); returns the new device id."""
        with self._lock:
            if any(a.model is model for a in self._attached.values()):
                raise ValueError("this model is already attached")
            used = {a.info.port_path[0] for a in self._attached.values()}
            if port is None:
                port = next(p for p in itertools.count(1) if p not in used)
            elif port in used:
                raise ValueError(f"port {port} is occupied")
            self._next_address = self._next_address % 127 + 1
            address = self._next_address
            model.clock_ns = self.clock.now_ns  # the bus's time is the device's time
            model.handle_reset()
            model.handle_control(Setup(0x00, 5, address, 0, 0))
            dev = model.handle_control(Setup(0x80, 6, 0x0100, 0, 18))
            configs = []
            for i in range(dev[17]):
                head = model.handle_control(Setup(0x80, 6, 0x0200 | i, 0, 9))
                total = int.from_bytes(head[2:4], "little")
                configs.append(model.handle_control(Setup(0x80, 6, 0x0200 | i, 0, total)))
            serial = None
            if dev[16]:
                try:
                    serial = _decode_string(
                        model.handle_control(
                            Setup(
                                0x80,
                                6,
                                0x0300 | dev[16],
                                model.langids[0] if model.langids else 0,
                                255,
                            )
                        )
                    )
                except Stall:
                    serial = None
            if configs:
                model.handle_control(Setup(0x00, 9, configs[0][5], 0, 0))
            dev_id = f"sim:{next(self._ids)}"
            info = UsbDeviceInfo.from_descriptors(
                dev_id, bus_number=self.bus_number, address=address, port_path=(port,),
                speed=model.speed, serial=serial, device_descriptor=dev,
                config_descriptors=tuple(configs))
            self._attached[dev_id] = _Attached(model, info)
            return dev_id

    def detach(self, device: str | UsbDeviceModel) -> None:
        """Unplug a device by id or model; its handles then fail with ``no_device``."""
        with self._lock:
            for dev_id, a in list(self._attached.items()):
                if dev_id == device or a.model is device:
                    a.present = False
                    del self._attached[dev_id]
                    return
            raise KeyError(f"no attached device {device!r}")

    def fail_next(self, kind: str, count: int = 1) -> None:
        """Make the next ``count`` transfers fail with ``HwError(kind)``."""
        with self._lock:
            self._faults.extend([kind] * count)

    def model(self, device_id: str) -> UsbDeviceModel:
        """The model attached as ``device_id``."""
        return self._attached[device_id].model

    # -- enumeration and handles -----------------------------------------------------------
    def devices(self) -> list[UsbDeviceInfo]:
        with self._lock:
            return [a.info for a in self._attached.values()]

    def open(self, device_id: str) -> Hashable:
        with self._lock:
            dev = self._attached.get(device_id)
            if dev is None:
                raise HwError("no_device", f"no device {device_id!r} attached")
            h = next(self._handle_ids)
            self._handles[h] = _Open(dev)
            return h

    def close(self, handle: Hashable) -> None:
        with self._lock:
            o = self._handles.pop(handle, None)
            if o is not None:
                for i in o.claimed:
                    o.dev.claims.pop(i, None)

    def _get(self, handle: Hashable) -> _Open:
        o = self._handles.get(handle)
        if o is None:
            raise HwError("not_found", f"no open sim handle {handle!r}")
        if not o.dev.present:
            raise HwError("no_device", "the device was unplugged")
        return o

    def _control(self, o: _Open, setup: Setup, data: bytes = b"") -> bytes:
        try:
            return o.dev.model.handle_control(setup, data)
        except Stall:
            raise HwError("pipe", f"control request 0x{setup.request_type:02x}/"
                                  f"0x{setup.request:02x} stalled") from None

    def string_descriptor(self, handle: Hashable, index: int, langid: int) -> str:
        with self._lock:
            o = self._get(handle)
            if langid == 0:
                langs = self._control(o, Setup(0x80, 6, 0x0300, 0, 255))
                if len(langs) < 4:
                    raise HwError("not_found", "the device declares no string languages")
                langid = int.from_bytes(langs[2:4], "little")
            return _decode_string(self._control(o, Setup(0x80, 6, 0x0300 | index, langid, 255)))

    def get_configuration(self, handle: Hashable) -> int:
        with self._lock:
            return self._control(self._get(handle), Setup(0x80, 8, 0, 0, 1))[0]

    def set_configuration(self, handle: Hashable, value: int) -> None:
        with self._lock:
            o = self._get(handle)
            if o.dev.claims:
                raise HwError("busy", "interfaces are claimed")
            if value and not any(c[5] == value for c in o.dev.info.config_descriptors):
                raise HwError("not_found", f"no configuration {value}")
            self._control(o, Setup(0x00, 9, value, 0, 0))

    def _interfaces(self, o: _Open) -> set[int]:
        cfg = o.dev.model.active_configuration()
        return set(cfg.interface_numbers) if cfg else set()

    def claim_interface(self, handle: Hashable, interface: int) -> None:
        with self._lock:
            o = self._get(handle)
            if interface not in self._interfaces(o):
                raise HwError("not_found", f"no interface {interface} in the active configuration")
            owner = o.dev.claims.get(interface)
            if owner is not None and owner != handle:
                raise HwError("busy", f"interface {interface} is claimed by another handle")
            o.dev.claims[interface] = handle
            o.claimed.add(interface)

    def release_interface(self, handle: Hashable, interface: int) -> None:
        with self._lock:
            o = self._get(handle)
            if interface not in o.claimed:
                raise HwError("not_found", f"interface {interface} is not claimed")
            o.claimed.discard(interface)
            o.dev.claims.pop(interface, None)

    def set_alt_setting(self, handle: Hashable, interface: int, alt_setting: int) -> None:
        with self._lock:
            o = self._get(handle)
            if interface not in o.claimed:
                raise HwError("not_found", f"interface {interface} is not claimed")
            cfg = o.dev.model.active_configuration()
            if cfg is None or cfg.interface(interface, alt_setting) is None:
                raise HwError(
                    "not_found", f"interface {interface} has no alternate setting {alt_setting}"
                )
            self._control(o, Setup(0x01, 11, alt_setting, interface, 0))

    def detach_kernel_driver(self, handle: Hashable, interface: int) -> None:
        with self._lock:
            self._get(handle)
            raise HwError("not_found", "no kernel driver is bound (simulated bus)")

    # -- transfers ---------------------------------------------------------------------------
    def _fault(self) -> None:
        if self._faults:
            kind = self._faults.pop(0)
            raise HwError(kind, "injected fault")

    def control_in(self, handle, request_type, request, value, index, length, timeout_ms) -> bytes:
        with self._lock:
            o = self._get(handle)
            self._fault()
            return self._control(o, Setup(request_type, request, value, index, length))

    def control_out(self, handle, request_type, request, value, index, data, timeout_ms) -> int:
        with self._lock:
            o = self._get(handle)
            self._fault()
            self._control(o, Setup(request_type, request, value, index, len(data)), bytes(data))
            return len(data)

    def _in(self, handle: Hashable, endpoint: int, length: int, timeout_ms: int) -> bytes:
        deadline = self.clock.now_ns() + timeout_ms * 1_000_000
        while True:
            with self._lock:
                o = self._get(handle)
                self._fault()
                try:
                    data = o.dev.model.handle_in(endpoint, length)
                except Stall:
                    raise HwError("pipe", f"endpoint 0x{endpoint:02x} stalled") from None
                except ValueError as err:
                    raise HwError("overflow", str(err)) from None
            if data is not None:
                return data
            if self.clock.now_ns() >= deadline:
                raise HwError(
                    "timeout", f"no data on endpoint 0x{endpoint:02x} within {timeout_ms} ms"
                )
            self.clock.sleep_ns(_FRAME_NS)

    def _out(self, handle: Hashable, endpoint: int, data: bytes, timeout_ms: int) -> int:
        deadline = self.clock.now_ns() + timeout_ms * 1_000_000
        data = bytes(data)
        sent = 0
        while True:
            with self._lock:
                o = self._get(handle)
                self._fault()
                try:
                    n = o.dev.model.handle_out(endpoint, data[sent:])
                except Stall:
                    raise HwError("pipe", f"endpoint 0x{endpoint:02x} stalled") from None
            sent += n
            if sent >= len(data):
                return sent
            if self.clock.now_ns() >= deadline:
                raise HwError(
                    "timeout",
                    f"endpoint 0x{endpoint:02x} took {sent} of {len(data)} bytes "
                    f"within {timeout_ms} ms",
                )
            if n == 0:
                self.clock.sleep_ns(_FRAME_NS)

    bulk_in = interrupt_in = _in
    bulk_out = interrupt_out = _out

    def iso_transfer(self, handle, endpoint, data, packet_lengths, timeout_ms):
        """One frame per packet: IN asks ``handle_in`` once (a NAK is a zero-length
        packet — isochronous endpoints never retry), OUT offers each packet's slice once."""
        results: list[tuple[bytes | int, str]] = []
        offset = 0
        for length in packet_lengths:
            with self._lock:
                o = self._get(handle)
                self._fault()
                try:
                    if endpoint & 0x80:
                        got = o.dev.model.handle_in(endpoint, length)
                        results.append((got or b"", "success"))
                    else:
                        chunk = (data or b"")[offset:offset + length]
                        results.append((o.dev.model.handle_out(endpoint, chunk), "success"))
                except Stall:
                    results.append((b"" if endpoint & 0x80 else 0, "pipe"))
                except ValueError:
                    results.append((b"" if endpoint & 0x80 else 0, "overflow"))
            offset += length
            self.clock.sleep_ns(_FRAME_NS)
        return results

    def clear_halt(self, handle: Hashable, endpoint: int) -> None:
        with self._lock:
            self._control(self._get(handle), Setup(0x02, 1, 0, endpoint, 0))

    def reset_device(self, handle: Hashable) -> None:
        with self._lock:
            o = self._get(handle)
            m = o.dev.model
            config = m.configuration
            alts = {i: m.alt_setting(i) for i in self._interfaces(o)}
            m.handle_reset()
            m.handle_control(Setup(0x00, 5, o.dev.info.address, 0, 0))
            if config:
                m.handle_control(Setup(0x00, 9, config, 0, 0))
                for i, alt in alts.items():
                    if alt:
                        m.handle_control(Setup(0x01, 11, alt, i, 0))


def _decode_string(desc: bytes) -> str:
    if len(desc) < 2 or desc[1] != 3:
        raise HwError("io", "malformed string descriptor")
    return desc[2:desc[0]].decode("utf-16-le", errors="replace")
