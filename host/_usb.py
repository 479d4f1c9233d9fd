"""`UsbHost`: the semantics of ``witx/wasi_usb.witx``, once, over any `UsbBackend`.

One `UsbHost` per driver instance implements the generated ``WasiUsb`` protocol on lifted
parameters (buffers are `GuestRegion`s, the filter a lifted ``Filter`` record) and holds
that driver's handle tables:

- ``$device`` handles name listed devices (stable per attachment: listing the same device
  again gives the same handle); ``$device_handle`` handles name opened devices. Both come
  from one counter, so a value is never valid in both tables; an unknown, forged or
  stale value (a device the host saw leave, a closed handle) is ``bad_handle``.
- Only devices the ``visible`` predicate accepts (the kernel passes the driver's grants)
  are listed or reported in hotplug events.
- Hotplug: the host diffs the backend's `devices()` at every `list_devices` /
  `hotplug_poll` against its last snapshot (the first call sets the baseline; every
  visible device gets a ``$device`` handle) and queues
  ``arrived`` (with a fresh ``$device`` handle) / ``left`` (the old handle, now stale)
  events per driver, at most ``max_events`` (oldest dropped).

Transfers: direction comes from bit 7 of ``request_type`` (control) or of the endpoint
(bulk/interrupt/iso). IN writes only the bytes read into the guest buffer and returns
their count; OUT reads the guest buffer and returns the bytes written. The endpoint must
be in the active configuration's current alternate settings (``not_found``), of the
called transfer type (``invalid_param``) and in an interface this handle claimed
(``not_found``). Every length is checked against ``max_transfer`` (``no_mem``) before the
host reads or allocates anything; control transfers are also limited by wLength
(``invalid_param`` above 65535). ``timeout`` 0 means ``default_timeout_ms``.
The endpoint checks pass once per (handle, transfer type, endpoint) and are remembered until
the handle's configuration, alternate settings or claims change, so a repeated transfer costs
a quota check, the backend call and, for IN, one copy of the bytes the backend returned
straight into guest memory (no intermediate buffer).
Isochronous: packet *i* occupies its own slot of ``packets[i].length`` bytes in ``data``
(a short packet is not compacted), and each packet's actual length and status are
written back to the packet table.

For the kernel's guard (which wraps this object with the driver's grants):
`device_identity(device)` / `handle_identity(handle)` give the `UsbDeviceInfo`
(vid, pid, serial) behind a handle, `endpoint_interface(handle, endpoint)` the interface
an endpoint belongs to. `close_all()` closes every handle when the driver stops.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from wasi_hw import GuestRegion, HwError
from wasi_hw import wasi_usb_bindings as _abi

from ._usb_backend import SPEEDS, ConfigLayout, UsbBackend, UsbDeviceInfo

__all__ = ["UsbHost"]

_F = _abi.FilterFlags
_EVENT, _PACKET = _abi.HotplugEvent, _abi.IsoPacket


@dataclass
class _Opened:
    device_id: str
    info: UsbDeviceInfo
    backend_handle: Hashable
    configuration: int = 0
    alt: dict[int, int] = field(default_factory=dict)
    claimed: set[int] = field(default_factory=set)
    layout: ConfigLayout | None = None
    # (transfer kind, endpoint) pairs that passed `_endpoint` under the current configuration,
    # alternate settings and claims; cleared whenever one of those changes
    ready: set[tuple[str, int]] = field(default_factory=set)


class UsbHost:
    """Implements ``WasiUsb`` for one driver instance; see the module docstring."""

    def __init__(
        self,
        backend: UsbBackend,
        *,
        visible: Callable[[UsbDeviceInfo], bool] | None = None,
        max_transfer: int = 1 << 20,
        max_handles: int = 16,
        max_events: int = 64,
        default_timeout_ms: int = 1000,
        clock: Any = None,
    ) -> None:
        # ``clock`` is accepted for symmetry with `I2cHost`; USB timing is the backend's.
        self.backend = backend
        self._visible = visible or (lambda info: True)
        self.max_transfer = max_transfer
        self.max_handles = max_handles
        self.default_timeout_ms = default_timeout_ms
        self._next = 1
        self._listed: dict[int, UsbDeviceInfo] = {}  # $device -> info
        self._by_id: dict[str, int] = {}  # device id -> $device
        self._open: dict[int, _Opened] = {}  # $device_handle -> state
        self._snapshot: dict[str, UsbDeviceInfo] | None = None  # None: no baseline yet
        self._events: deque[tuple[str, int]] = deque(maxlen=max_events)
        #: (handle, endpoint) → (backend handle, backend ``bulk_in``/``bulk_out``, is IN) for
        #: every bulk endpoint whose checks passed under the handle's current configuration,
        #: alternate settings and claims; emptied whenever any of those (or the handles)
        #: change. The kernel's fused bulk path (`kernel/_usb_fast.py`) reads it.
        self.bulk_plans: dict[tuple[int, int], tuple[Hashable, Callable[..., Any], bool]] = {}

    # -- handle tables ----------------------------------------------------------------------
    def _new_handle(self) -> int:
        h = self._next
        self._next += 1
        return h

    def _device_handle(self, info: UsbDeviceInfo) -> int:
        h = self._by_id.get(info.id)
        if h is None:
            h = self._by_id[info.id] = self._new_handle()
            self._listed[h] = info
        return h

    def _device(self, device: int) -> UsbDeviceInfo:
        info = self._listed.get(device)
        if info is None:
            raise HwError("bad_handle", f"{device} is not a listed device of this driver")
        return info

    def _handle(self, handle: int) -> _Opened:
        o = self._open.get(handle)
        if o is None:
            raise HwError("bad_handle", f"{handle} is not an open device handle of this driver")
        return o

    def _refresh(self) -> list[UsbDeviceInfo]:
        """Enumerate, queue hotplug events against the last snapshot, return visible devices."""
        now = [d for d in self.backend.devices() if self._visible(d)]
        current = {d.id: d for d in now}
        for dev_id in list(self._by_id.keys() - current.keys()):
            h = self._by_id.pop(dev_id)
            self._listed.pop(h, None)
            if self._snapshot is not None:
                self._events.append(("left", h))
        for d in now:
            known = d.id in self._by_id
            h = self._device_handle(d)
            if not known and self._snapshot is not None:
                self._events.append(("arrived", h))
        self._snapshot = current
        return now

    # -- for the kernel's guard ----------------------------------------------------------------
    def device_identity(self, device: int) -> UsbDeviceInfo:
        """The device behind a listed ``$device`` handle (``bad_handle`` if none)."""
        return self._device(device)

    def handle_identity(self, handle: int) -> UsbDeviceInfo:
        """The device behind an open ``$device_handle`` (``bad_handle`` if none)."""
        return self._handle(handle).info

    def endpoint_interface(self, handle: int, endpoint: int) -> int | None:
        """The interface ``endpoint`` belongs to under the handle's active configuration and
        alternate settings; None if the configuration has no such endpoint."""
        o = self._handle(handle)
        ep = o.layout.endpoint(endpoint, o.alt) if o.layout else None
        return ep.interface if ep else None

    def close_all(self) -> None:
        """Close every open handle (driver stopped); never raises."""
        self.bulk_plans.clear()
        for h in list(self._open):
            o = self._open.pop(h)
            try:
                self.backend.close(o.backend_handle)
            except HwError:
                pass

    # -- enumeration -------------------------------------------------------------------------
    def list_devices(self, filter: _abi.Filter, devices: GuestRegion) -> int:
        flags = _F(filter.flags)
        serial = None
        if flags & _F.SERIAL:
            raw = filter.serial
            try:
                serial = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else str(raw)
            except UnicodeDecodeError:
                raise HwError("invalid_param", "filter serial is not UTF-8") from None
        matches = []
        for d in self._refresh():
            if flags & _F.VENDOR_ID and d.vendor_id != filter.vendor_id:
                continue
            if flags & _F.PRODUCT_ID and d.product_id != filter.product_id:
                continue
            if flags & _F.CLASS and filter.class_ != d.device_class and not any(
                    _iface_class(cfg, filter.class_) for cfg in d.config_descriptors):
                continue
            if serial is not None and d.serial != serial:
                continue
            matches.append(self._device_handle(d))
        room = len(devices) // 4
        out = matches[:room]
        if out:
            devices.write(struct.pack(f"<{len(out)}I", *out))
        return len(matches)

    def device_info(self, device: int) -> _abi.DeviceInfo:
        d = self._device(device)
        return _abi.DeviceInfo(
            bus_number=d.bus_number, address=d.address, speed=_abi.Speed(SPEEDS.index(d.speed)),
            class_=d.device_class, vendor_id=d.vendor_id, product_id=d.product_id,
            subclass=d.device_subclass, protocol=d.device_protocol,
            num_configurations=d.num_configurations, port_depth=len(d.port_path))

    def port_path(self, device: int, buf: GuestRegion) -> int:
        path = bytes(self._device(device).port_path)
        buf.write(path[: len(buf)])
        return len(path)

    def device_descriptor(self, device: int, buf: GuestRegion) -> int:
        desc = self._device(device).device_descriptor
        n = min(len(desc), len(buf))
        buf.write(desc[:n])
        return n

    def config_descriptor(self, device: int, index: int, buf: GuestRegion) -> int:
        d = self._device(device)
        if index >= len(d.config_descriptors):
            raise HwError(
                "not_found",
                f"the device has {len(d.config_descriptors)} configuration(s), no index {index}",
            )
        cfg = d.config_descriptors[index]
        buf.write(cfg[: len(buf)])
        return len(cfg)

    # -- open / close --------------------------------------------------------------------------
    def open(self, device: int) -> int:
        d = self._device(device)
        if len(self._open) >= self.max_handles:
            raise HwError("no_mem", f"driver already holds {self.max_handles} open handles")
        bh = self.backend.open(d.id)
        o = _Opened(d.id, d, bh)
        try:
            self._set_active(o, self.backend.get_configuration(bh))
        except HwError:
            self.backend.close(bh)
            raise
        h = self._new_handle()
        self._open[h] = o
        return h

    def close(self, handle: int) -> None:
        o = self._handle(handle)
        self.bulk_plans.clear()
        del self._open[handle]
        self.backend.close(o.backend_handle)

    @staticmethod
    def _set_active(o: _Opened, value: int) -> None:
        o.ready.clear()
        o.configuration = value
        o.alt.clear()
        o.layout = _layout(o.info, value) if value else None

    # -- strings, configuration, interfaces ----------------------------------------------------
    def string_descriptor(self, handle: int, index: int, langid: int, buf: GuestRegion) -> int:
        o = self._handle(handle)
        if index == 0:
            raise HwError("invalid_param", "string index 0 is the language table, not a string")
        text = self.backend.string_descriptor(o.backend_handle, index, langid).encode("utf-8")
        n = len(text) if len(text) <= len(buf) else _utf8_cut(text, len(buf))
        buf.write(text[:n])
        return n

    def get_configuration(self, handle: int) -> int:
        o = self._handle(handle)
        value = self.backend.get_configuration(o.backend_handle)
        if value != o.configuration:
            self.bulk_plans.clear()
            self._set_active(o, value)
        return value

    def set_configuration(self, handle: int, value: int) -> None:
        o = self._handle(handle)
        if value and _layout(o.info, value) is None:
            raise HwError("not_found", f"the device has no configuration {value}")
        if o.claimed:
            raise HwError("busy", f"interfaces {sorted(o.claimed)} are claimed; release them first")
        self.backend.set_configuration(o.backend_handle, value)
        self.bulk_plans.clear()
        self._set_active(o, value)

    def _interface(self, o: _Opened, interface: int) -> None:
        if o.layout is None:
            raise HwError("not_found", "the device is not configured")
        if interface not in o.layout.interface_numbers:
            raise HwError(
                "not_found", f"configuration {o.configuration} has no interface {interface}"
            )

    def claim_interface(self, handle: int, interface: int) -> None:
        o = self._handle(handle)
        self._interface(o, interface)
        self.backend.claim_interface(o.backend_handle, interface)
        o.claimed.add(interface)

    def release_interface(self, handle: int, interface: int) -> None:
        o = self._handle(handle)
        if interface not in o.claimed:
            raise HwError("not_found", f"interface {interface} is not claimed by this handle")
        self.backend.release_interface(o.backend_handle, interface)
        self.bulk_plans.clear()
        o.ready.clear()
        o.claimed.discard(interface)
        o.alt.pop(interface, None)

    def set_alt_setting(self, handle: int, interface: int, alt_setting: int) -> None:
        o = self._handle(handle)
        if interface not in o.claimed:
            raise HwError("not_found", f"interface {interface} is not claimed by this handle")
        if o.layout is None or (interface, alt_setting) not in o.layout.interfaces:
            raise HwError(
                "not_found", f"interface {interface} has no alternate setting {alt_setting}"
            )
        self.backend.set_alt_setting(o.backend_handle, interface, alt_setting)
        self.bulk_plans.clear()
        o.ready.clear()
        o.alt[interface] = alt_setting

    def detach_kernel_driver(self, handle: int, interface: int) -> None:
        o = self._handle(handle)
        self._interface(o, interface)
        self.backend.detach_kernel_driver(o.backend_handle, interface)

    # -- transfers ---------------------------------------------------------------------------------
    def _timeout(self, timeout: int) -> int:
        return timeout if timeout else self.default_timeout_ms

    def _quota(self, n: int) -> None:
        if n > self.max_transfer:
            raise HwError("no_mem", f"transfer of {n} bytes exceeds the driver's quota of "
                                    f"{self.max_transfer} bytes")

    def control_transfer(self, handle: int, request_type: int, request: int, value: int,
                         index: int, data: GuestRegion, timeout: int) -> int:
        o = self._handle(handle)
        n = len(data)
        if n > 0xFFFF:
            raise HwError(
                "invalid_param", f"control data stage of {n} bytes exceeds wLength's 65535"
            )
        self._quota(n)
        if request_type & 0x80:
            got = self.backend.control_in(o.backend_handle, request_type, request, value, index,
                                          n, self._timeout(timeout))
            return self._deliver(data, got)
        return self.backend.control_out(o.backend_handle, request_type, request, value, index,
                                        data.read(), self._timeout(timeout))

    def _endpoint(self, o: _Opened, endpoint: int, kind: str) -> None:
        if endpoint & 0x70 or endpoint & 0x0F == 0:
            raise HwError("invalid_param", f"0x{endpoint:02x} is not a data endpoint address")
        ep = o.layout.endpoint(endpoint, o.alt) if o.layout else None
        if ep is None:
            raise HwError("not_found", f"no endpoint 0x{endpoint:02x} in the active configuration")
        if ep.transfer_type != kind:
            raise HwError(
                "invalid_param", f"endpoint 0x{endpoint:02x} is {ep.transfer_type}, not {kind}"
            )
        if ep.interface not in o.claimed:
            raise HwError("not_found", f"endpoint 0x{endpoint:02x} belongs to interface "
                                       f"{ep.interface}, which this handle has not claimed")

    def _transfer(self, kind: str, handle: int, endpoint: int, data: GuestRegion,
                  timeout: int) -> int:
        o = self._handle(handle)
        if (kind, endpoint) not in o.ready:
            self._endpoint(o, endpoint, kind)
            o.ready.add((kind, endpoint))
        n = len(data)
        self._quota(n)
        if endpoint & 0x80:
            if n == 0:
                raise HwError("invalid_param", "an IN transfer needs a non-empty buffer")
            read = self.backend.bulk_in if kind == "bulk" else self.backend.interrupt_in
            return self._deliver(data, read(o.backend_handle, endpoint, n, self._timeout(timeout)))
        write = self.backend.bulk_out if kind == "bulk" else self.backend.interrupt_out
        return write(o.backend_handle, endpoint, data.read(), self._timeout(timeout))

    @staticmethod
    def _deliver(region: GuestRegion, got: bytes) -> int:
        if len(got) > len(region):
            raise HwError(
                "overflow", f"the device sent {len(got)} bytes for a {len(region)}-byte buffer"
            )
        if got:
            region.write(got)
        return len(got)

    def bulk_transfer(self, handle: int, endpoint: int, data: GuestRegion, timeout: int) -> int:
        # the hot path: `_transfer("bulk", ...)` with the per-call lookups inlined
        o = self._open.get(handle)
        if o is None:
            o = self._handle(handle)                 # raises bad_handle
        if ("bulk", endpoint) not in o.ready:
            self._endpoint(o, endpoint, "bulk")
            o.ready.add(("bulk", endpoint))
        if (handle, endpoint) not in self.bulk_plans:
            b = self.backend
            self.bulk_plans[(handle, endpoint)] = (
                (o.backend_handle, b.bulk_in, True) if endpoint & 0x80
                else (o.backend_handle, b.bulk_out, False))
        n = len(data)
        if n > self.max_transfer:
            self._quota(n)
        if endpoint & 0x80:
            if n == 0:
                raise HwError("invalid_param", "an IN transfer needs a non-empty buffer")
            got = self.backend.bulk_in(o.backend_handle, endpoint, n,
                                       timeout or self.default_timeout_ms)
            m = len(got)
            if m > n:
                raise HwError("overflow", f"the device sent {m} bytes for a {n}-byte buffer")
            if m:
                data.write(got)
            return m
        return self.backend.bulk_out(o.backend_handle, endpoint, data.read(),
                                     timeout or self.default_timeout_ms)

    def interrupt_transfer(
        self, handle: int, endpoint: int, data: GuestRegion, timeout: int
    ) -> int:
        return self._transfer("interrupt", handle, endpoint, data, timeout)

    def iso_transfer(self, handle: int, endpoint: int, data: GuestRegion, packets: GuestRegion,
                     timeout: int) -> int:
        o = self._handle(handle)
        self._endpoint(o, endpoint, "isochronous")
        n = len(data)
        self._quota(n)
        count = len(packets) // _PACKET.SIZE
        raw = packets.read()
        lengths = [struct.unpack_from("<I", raw, i * _PACKET.SIZE)[0] for i in range(count)]
        if sum(lengths) > n:
            raise HwError(
                "invalid_param", f"packet lengths total {sum(lengths)} > buffer of {n} bytes"
            )
        out_data = data.read() if not endpoint & 0x80 else None
        results = self.backend.iso_transfer(o.backend_handle, endpoint, out_data, lengths,
                                            self._timeout(timeout))
        total, offset, table = 0, 0, bytearray()
        for length, (got, status) in zip(lengths, results, strict=True):
            if isinstance(got, bytes | bytearray):
                got = bytes(got[:length])
                data.write(got, offset)  # packets stay at their slots: no scrambling
                actual = len(got)
            else:
                actual = min(int(got), length)
            total += actual
            offset += length
            code = _abi.ERRNO.get(status, _abi.ERRNO["other"])
            table += _PACKET(length, actual, _abi.UsbErrno(code)).pack()
        packets.write(bytes(table))
        return total

    def clear_halt(self, handle: int, endpoint: int) -> None:
        o = self._handle(handle)
        self._endpoint_known(o, endpoint)
        self.backend.clear_halt(o.backend_handle, endpoint)

    def _endpoint_known(self, o: _Opened, endpoint: int) -> None:
        if not (o.layout and o.layout.endpoint(endpoint, o.alt)):
            raise HwError("not_found", f"no endpoint 0x{endpoint:02x} in the active configuration")

    def reset_device(self, handle: int) -> None:
        o = self._handle(handle)
        self.backend.reset_device(o.backend_handle)

    # -- hotplug -----------------------------------------------------------------------------------
    def hotplug_poll(self, events: GuestRegion) -> int:
        self._refresh()
        out = bytearray()
        for _ in range(min(len(events) // _EVENT.SIZE, len(self._events))):
            kind, dev = self._events.popleft()
            out += _EVENT(_abi.HotplugKind.ARRIVED if kind == "arrived" else _abi.HotplugKind.LEFT,
                          dev).pack()
        if out:
            events.write(bytes(out))
        return len(out) // _EVENT.SIZE


def _layout(info: UsbDeviceInfo, value: int) -> ConfigLayout | None:
    """The parsed configuration ``value``; a malformed descriptor from the device is ``io``."""
    try:
        return info.config_layout(value)
    except ValueError as err:
        raise HwError("io", f"configuration {value} descriptor is malformed: {err}") from None


def _iface_class(cfg: bytes, cls: int) -> bool:
    """Does any interface of configuration descriptor ``cfg`` have class ``cls``?"""
    pos = 0
    while pos + 6 <= len(cfg) and cfg[pos] >= 2:
        if cfg[pos + 1] == 4 and cfg[pos] >= 9 and cfg[pos + 5] == cls:
            return True
        pos += cfg[pos]
    return False


def _utf8_cut(text: bytes, limit: int) -> int:
    """The longest prefix of UTF-8 ``text`` within ``limit`` bytes ending on a char boundary."""
    n = limit
    while n > 0 and (text[n] & 0xC0) == 0x80:
        n -= 1
    return n
