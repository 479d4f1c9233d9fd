"""`UsbipUsbBackend`: the `UsbBackend` contract over USB/IP (protocol 0x0111, TCP).

What goes on the wire:

- `devices()` opens a short connection, sends OP_REQ_DEVLIST and reads OP_REP_DEVLIST.
  Each exported bus id not yet imported is imported on its own connection
  (OP_REQ_IMPORT), which then stays open as that device's channel; its descriptors are
  read once through it (GET_DESCRIPTOR device 18 B, each configuration 9 B then
  wTotalLength, string 0 and iSerialNumber); an unconfigured device then gets
  SET_CONFIGURATION of its first configuration, as Linux gives a device without a driver.
  A device id names one import, so a device that goes away and comes back (server
  restarted, re-exported) gets a new id.
- Every transfer is one CMD_SUBMIT (ep 0 with an 8-byte SETUP for control transfers)
  answered by one RET_SUBMIT. Requests with no USB/IP operation of their own are
  standard control requests: GET/SET_CONFIGURATION, SET_INTERFACE, CLEAR_FEATURE
  (ENDPOINT_HALT), and for `reset_device` the hub-class SET_FEATURE(PORT_RESET) that
  Linux's usbip-host turns into a device reset (followed by SET_CONFIGURATION and
  SET_INTERFACE to restore the configuration and alternate settings, as libusb does).
  Claiming interfaces is bookkeeping in this client: USB/IP has no claim operation.
- An isochronous transfer is one CMD_SUBMIT with a descriptor (offset, length) per packet;
  the RET_SUBMIT carries each packet's actual length and status, IN data packed.
- A transfer not answered within its timeout is cancelled with CMD_UNLINK; the client
  then waits (bounded by `unlink_grace`) for RET_UNLINK, taking a RET_SUBMIT that crossed
  the unlink as the transfer's real result, and otherwise raises ``timeout``. The
  connection stays in step, so the next transfer works.

Errors are mapped once, in `_status_error` (RET_SUBMIT status → ``$usb_errno`` kind) and
`_Link._fail` (any socket/protocol failure → ``no_device``, after which the import is
dead and the device leaves `devices()` until the server exports it again). Every socket
operation has a timeout, so a server that dies or hangs never blocks the caller longer
than the transfer timeout plus `io_timeout`.
"""

from __future__ import annotations

import itertools
import logging
import select
import socket
import threading
from collections.abc import Hashable

from wasi_hw import HwError

from . import _usbip_proto as proto
from ._usb_backend import UsbBackend, UsbDeviceInfo

__all__ = ["UsbipUsbBackend"]

_log = logging.getLogger(__name__)
_E = proto.ERRNO
# RET_SUBMIT status (negative Linux errno) → $usb_errno kind. The one mapping.
_STATUS_KINDS = {
    -_E["EPIPE"]: "pipe",
    -_E["ENODEV"]: "no_device",
    -_E["ESHUTDOWN"]: "no_device",
    -_E["ETIMEDOUT"]: "timeout",
    -_E["EOVERFLOW"]: "overflow",
    -_E["ECONNRESET"]: "interrupted",
    -_E["ENOENT"]: "interrupted",
    -_E["EPROTO"]: "io",
    -_E["EILSEQ"]: "io",
    -_E["EIO"]: "io",
    -_E["EREMOTEIO"]: "io",
    -_E["EINVAL"]: "invalid_param",
}

# Standard requests (USB 2.0 §9.4).
_GET_DESCRIPTOR, _GET_CONFIGURATION, _SET_CONFIGURATION = 0x06, 0x08, 0x09
_SET_INTERFACE, _CLEAR_FEATURE, _SET_FEATURE = 0x0B, 0x01, 0x03
_DT_DEVICE, _DT_CONFIG, _DT_STRING = 1, 2, 3
_PORT_RESET = 4  # hub class port feature selector
_DESCRIPTOR_TIMEOUT_MS = 2000


def _status_error(status: int, what: str) -> HwError:
    kind = _STATUS_KINDS.get(status, "other")
    return HwError(kind, f"{what}: USB/IP status {status}")


class _Waiter:
    """One URB in flight: its direction and, once answered, its RET_SUBMIT."""

    __slots__ = ("direction", "event", "reply")

    def __init__(self, direction: int) -> None:
        self.direction = direction
        self.event = threading.Event()
        self.reply: proto.RetSubmit | proto.RetUnlink | None = None


class _Link:
    """One imported device: its TCP connection, a reader thread that routes each reply to
    the transfer waiting for its seqnum, and the interfaces claimed on it. Transfers from
    several threads may be in flight at once (as with libusb)."""

    def __init__(self, sock: socket.socket, exported: proto.ExportedDevice, *,
                 io_timeout: float, unlink_grace: float) -> None:
        self.sock = sock
        self.exported = exported
        self.devid = (exported.busnum << 16) | exported.devnum
        self.io_timeout = io_timeout
        self.unlink_grace = unlink_grace
        self.dead: str | None = None
        self.info: UsbDeviceInfo = None  # type: ignore[assignment]  # read right after connecting
        self.claims: dict[int, object] = {}  # interface → owning handle
        self.alt_settings: dict[int, int] = {}  # interface → alt selected through us
        self._lock = threading.Lock()  # seqnums, waiters, sending
        self._seq = itertools.count(1)
        self._waiters: dict[int, _Waiter] = {}
        sock.settimeout(io_timeout)
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name=f"usbip-client {exported.busid}")
        self._reader.start()

    # -- connection state ----------------------------------------------------------------
    def _fail(self, err: BaseException | str, *, lost: bool = True) -> HwError:
        """The connection is unusable from now on: close it, wake every waiter, report
        ``no_device``. The one place socket and protocol failures are mapped."""
        with self._lock:
            if self.dead is None:
                self.dead = (f"USB/IP connection to {self.exported.busid} lost: {err}"
                             if lost else str(err))
            waiters = list(self._waiters.values())
            self._waiters.clear()
        self._close_socket()
        for w in waiters:
            w.event.set()
        return HwError("no_device", self.dead)

    def _close_socket(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self, why: str | None = None) -> None:
        """End the import (idempotent); later calls on it raise ``no_device``."""
        self._fail(why or f"USB/IP import of {self.exported.busid} closed", lost=False)

    def _direction_of(self, seqnum: int) -> int | None:
        with self._lock:
            w = self._waiters.get(seqnum)
        return None if w is None else w.direction

    def _read_loop(self) -> None:
        try:
            while self.dead is None:
                readable, _, _ = select.select([self.sock], [], [], 0.25)
                if not readable:
                    continue
                reply = proto.read_return(self.sock, self._direction_of)
                with self._lock:
                    w = self._waiters.pop(reply.seqnum, None)
                if w is not None:  # else: the answer to a URB already given up on
                    w.reply = reply
                    w.event.set()
        except (OSError, ValueError) as err:
            self._fail(err)

    # -- one URB -----------------------------------------------------------------------
    def _send(self, seq: int, waiter: _Waiter, message: bytes) -> None:
        with self._lock:
            if self.dead is not None:
                raise HwError("no_device", self.dead)
            self._waiters[seq] = waiter
            try:
                self.sock.sendall(message)
            except OSError as err:
                failure = err
            else:
                return
        raise self._fail(failure)

    def submit(self, direction: int, ep: int, setup: bytes, data: bytes, length: int,
               timeout_ms: int, what: str, iso: list | None = None) -> proto.RetSubmit:
        """Send one CMD_SUBMIT and wait for its RET_SUBMIT, unlinking it at the timeout.
        Returns a reply with status 0; raises `HwError` otherwise."""
        with self._lock:
            seq = next(self._seq)
        flags = proto.URB_DIR_IN if direction == proto.DIR_IN else 0
        if iso is not None:
            flags |= proto.URB_ISO_ASAP
        waiter = _Waiter(direction)
        self._send(seq, waiter, proto.pack_submit(proto.Submit(
            seq, self.devid, direction, ep, flags, length, setup,
            data if direction == proto.DIR_OUT else b"", interval=1 if iso else 0, iso=iso)))
        if not waiter.event.wait(timeout_ms / 1000):
            self._unlink(seq, waiter, direction, ep)
        reply = waiter.reply
        if reply is None:
            raise HwError("no_device", self.dead or "connection lost")
        if isinstance(reply, proto.RetUnlink):
            raise HwError("timeout", f"{what}: no answer within {timeout_ms} ms")
        if reply.status != 0:
            raise _status_error(reply.status, what)
        if direction == proto.DIR_IN and reply.actual > length:
            raise HwError("overflow", f"{what}: device sent {reply.actual} of {length} bytes")
        return reply

    def _unlink(self, seq: int, waiter: _Waiter, direction: int, ep: int) -> None:
        """CMD_UNLINK ``seq``. Afterwards ``waiter.reply`` is its RET_SUBMIT if that
        crossed the unlink, else the RET_UNLINK; no answer within the grace → dead."""
        with self._lock:
            useq = next(self._seq)
        unlinked = _Waiter(direction)
        self._send(useq, unlinked, proto.pack_unlink(useq, self.devid, direction, ep, seq))
        if not unlinked.event.wait(self.unlink_grace):
            raise self._fail(f"no RET_UNLINK within {self.unlink_grace:g} s")
        with self._lock:
            if self._waiters.pop(seq, None) is not None:  # not answered: it was unlinked
                waiter.reply = unlinked.reply
        if waiter.reply is None and self.dead is not None:
            raise HwError("no_device", self.dead)

    # -- control helpers -----------------------------------------------------------------
    def control_in(self, rt: int, req: int, value: int, index: int, length: int,
                   timeout_ms: int, what: str = "control IN") -> bytes:
        setup = _setup(rt, req, value, index, length)
        return self.submit(proto.DIR_IN, 0, setup, b"", length, timeout_ms, what).data

    def control_out(self, rt: int, req: int, value: int, index: int, data: bytes,
                    timeout_ms: int, what: str = "control OUT") -> int:
        setup = _setup(rt, req, value, index, len(data))
        return self.submit(proto.DIR_OUT, 0, setup, data, len(data), timeout_ms, what).actual


def _setup(rt: int, req: int, value: int, index: int, length: int) -> bytes:
    return bytes([rt & 0xFF, req & 0xFF]) + (value & 0xFFFF).to_bytes(2, "little") + (
        (index & 0xFFFF).to_bytes(2, "little") + (length & 0xFFFF).to_bytes(2, "little"))


class _Handle:
    """An open device: the link it uses and the interfaces it claimed."""

    __slots__ = ("link", "claimed", "__weakref__")

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.claimed: set[int] = set()


def _port_path(busid: str) -> tuple[int, ...]:
    """"1-1.2" → (1, 2): the port numbers after the bus number."""
    try:
        return tuple(int(p) for p in busid.split("-", 1)[1].split("."))
    except (IndexError, ValueError):
        return ()


class UsbipUsbBackend(UsbBackend):
    """USB devices exported by a USB/IP server at ``host:port`` (e.g. `UsbipServer`,
    Linux ``usbipd``). ``io_timeout`` bounds connecting and the arrival of any message
    once started; ``unlink_grace`` how long a cancelled transfer may take to confirm."""

    name = "usbip"

    def __init__(self, host: str = "127.0.0.1", port: int = 3240, *,
                 io_timeout: float = 3.0, unlink_grace: float = 1.0) -> None:
        self.host = host
        self.port = port
        self.io_timeout = io_timeout
        self.unlink_grace = unlink_grace
        self._lock = threading.Lock()
        self._links: dict[str, _Link] = {}  # busid → live import
        self._by_id: dict[str, _Link] = {}  # device id → import (dead ones too)
        self._attach = itertools.count(1)
        self._handles: set[_Handle] = set()
        self._reachable = True

    def __repr__(self) -> str:
        return f"UsbipUsbBackend({self.host!r}, {self.port})"

    # -- connections -------------------------------------------------------------------
    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.io_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def exports(self) -> list[proto.ExportedDevice]:
        """The server's export list (OP_REQ_DEVLIST), without importing anything;
        ``no_device`` if the server cannot be reached or answers out of protocol."""
        try:
            with self._connect() as sock:
                sock.sendall(proto.pack_op(proto.OP_REQ_DEVLIST))
                return proto.read_devlist_reply(sock)
        except OSError as err:
            raise HwError("no_device", f"USB/IP server {self.host}:{self.port}: {err}") from None

    def _devlist(self) -> list[proto.ExportedDevice] | None:
        """`exports`, or None if the server cannot be reached (logged once per outage)."""
        try:
            devices = self.exports()
        except HwError as err:
            if self._reachable:
                _log.warning("%s", err)
            self._reachable = False
            return None
        self._reachable = True
        return devices

    def _import(self, busid: str) -> _Link | None:
        """Import ``busid`` and read its descriptors; None if refused or it failed."""
        try:
            sock = self._connect()
        except OSError:
            return None
        try:
            sock.sendall(proto.pack_import_request(busid))
            exported = proto.read_import_reply(sock)
        except (OSError, ValueError):
            sock.close()
            return None
        if exported is None:  # refused: imported by someone else, or gone
            sock.close()
            return None
        link = _Link(sock, exported, io_timeout=self.io_timeout, unlink_grace=self.unlink_grace)
        try:
            link.info = self._read_info(link, f"usbip:{self.host}:{self.port}:{busid}#"
                                        f"{next(self._attach)}")
        except (HwError, ValueError):
            link.close()
            return None
        return link

    def _read_info(self, link: _Link, device_id: str) -> UsbDeviceInfo:
        t = _DESCRIPTOR_TIMEOUT_MS
        dd = link.control_in(0x80, _GET_DESCRIPTOR, _DT_DEVICE << 8, 0, 18, t, "device descriptor")
        if len(dd) < 18:
            raise ValueError("short device descriptor")
        configs = []
        for i in range(dd[17]):
            head = link.control_in(0x80, _GET_DESCRIPTOR, (_DT_CONFIG << 8) | i, 0, 9, t,
                                   "configuration descriptor")
            if len(head) < 9:
                raise ValueError("short configuration descriptor")
            total = int.from_bytes(head[2:4], "little")
            configs.append(link.control_in(0x80, _GET_DESCRIPTOR, (_DT_CONFIG << 8) | i, 0,
                                           total, t, "configuration descriptor"))
        serial = None
        if dd[16]:
            try:
                serial = self._string(link, dd[16], 0)
            except HwError:
                serial = None
        # like Linux for a device without a driver: select the first configuration
        if configs and len(configs[0]) >= 9:
            current = link.control_in(0x80, _GET_CONFIGURATION, 0, 0, 1, t, "GET_CONFIGURATION")
            if current == b"\0":
                link.control_out(0x00, _SET_CONFIGURATION, configs[0][5], 0, b"", t,
                                 "SET_CONFIGURATION")
        ex = link.exported
        return UsbDeviceInfo.from_descriptors(
            device_id, bus_number=ex.busnum & 0xFF, address=ex.devnum & 0xFF,
            port_path=_port_path(ex.busid), speed=proto.speed_name(ex.speed),
            serial=serial, device_descriptor=dd, config_descriptors=tuple(configs))

    @staticmethod
    def _string(link: _Link, index: int, langid: int) -> str:
        t = _DESCRIPTOR_TIMEOUT_MS
        if langid == 0:
            langs = link.control_in(0x80, _GET_DESCRIPTOR, _DT_STRING << 8, 0, 255, t,
                                    "string descriptor 0")
            if len(langs) < 4:
                raise HwError("not_found", "the device has no string languages")
            langid = int.from_bytes(langs[2:4], "little")
        raw = link.control_in(0x80, _GET_DESCRIPTOR, (_DT_STRING << 8) | index, langid, 255,
                              t, f"string descriptor {index}")
        if len(raw) < 2 or raw[1] != _DT_STRING:
            raise HwError("io", f"string descriptor {index}: malformed reply")
        return raw[2:min(raw[0], len(raw))].decode("utf-16-le", "replace")

    # -- enumeration -----------------------------------------------------------------------
    def devices(self) -> list[UsbDeviceInfo]:
        """Imports stay attached while their connection lives (a server closes it when
        the device goes); new exports are imported; an unreachable server adds nothing."""
        exported = self._devlist()
        with self._lock:
            for busid, old in list(self._links.items()):
                if old.dead is not None:
                    del self._links[busid]
            busids = {d.busid for d in exported or ()}
            for busid in sorted(busids - self._links.keys()):
                link = self._import(busid)
                if link is not None:
                    self._links[busid] = link
                    self._by_id[link.info.id] = link
            return [link.info for link in self._links.values()]

    # -- handles ---------------------------------------------------------------------------
    def _link_of(self, device_id: str) -> _Link:
        with self._lock:
            link = self._by_id.get(device_id)
        if link is None or link.dead is not None:
            raise HwError("no_device", f"{device_id} is not attached")
        return link

    def open(self, device_id: str) -> Hashable:
        handle = _Handle(self._link_of(device_id))
        with self._lock:
            self._handles.add(handle)
        return handle

    def _h(self, handle: Hashable) -> _Link:
        if not isinstance(handle, _Handle) or handle not in self._handles:
            raise HwError("invalid_param", "not a handle of this backend")
        link = handle.link
        if link.dead is not None:
            raise HwError("no_device", link.dead)
        return link

    def close(self, handle: Hashable) -> None:
        with self._lock:
            if handle not in self._handles:
                return
            self._handles.discard(handle)
            for iface in handle.claimed:
                handle.link.claims.pop(iface, None)
            handle.claimed.clear()

    def string_descriptor(self, handle: Hashable, index: int, langid: int) -> str:
        if index == 0:
            raise HwError("invalid_param", "string index 0 is the language table")
        return self._string(self._h(handle), index, langid)

    def get_configuration(self, handle: Hashable) -> int:
        data = self._h(handle).control_in(0x80, _GET_CONFIGURATION, 0, 0, 1,
                                          _DESCRIPTOR_TIMEOUT_MS, "GET_CONFIGURATION")
        if len(data) != 1:
            raise HwError("io", "GET_CONFIGURATION: no data")
        return data[0]

    def set_configuration(self, handle: Hashable, value: int) -> None:
        link = self._h(handle)
        if value and link.info.config_layout(value) is None:
            raise HwError("not_found", f"no configuration {value}")
        if link.claims:
            raise HwError("busy", f"interfaces {sorted(link.claims)} are claimed")
        link.control_out(0x00, _SET_CONFIGURATION, value, 0, b"", _DESCRIPTOR_TIMEOUT_MS,
                         "SET_CONFIGURATION")
        link.alt_settings.clear()

    def claim_interface(self, handle: Hashable, interface: int) -> None:
        link = self._h(handle)
        assert isinstance(handle, _Handle)  # _h checked it
        cfg = link.info.config_layout(self.get_configuration(handle))
        if cfg is None or interface not in cfg.interface_numbers:
            raise HwError("not_found", f"interface {interface} is not in the active configuration")
        with self._lock:
            owner = link.claims.get(interface)
            if owner is not None and owner is not handle:
                raise HwError("busy", f"interface {interface} is claimed by another handle")
            link.claims[interface] = handle
            handle.claimed.add(interface)

    def release_interface(self, handle: Hashable, interface: int) -> None:
        link = self._h(handle)
        assert isinstance(handle, _Handle)  # _h checked it
        with self._lock:
            if interface not in handle.claimed:
                raise HwError("not_found", f"interface {interface} is not claimed")
            handle.claimed.discard(interface)
            link.claims.pop(interface, None)

    def set_alt_setting(self, handle: Hashable, interface: int, alt_setting: int) -> None:
        link = self._h(handle)
        assert isinstance(handle, _Handle)  # _h checked it
        if interface not in handle.claimed:
            raise HwError("not_found", f"interface {interface} is not claimed")
        cfg = link.info.config_layout(self.get_configuration(handle))
        if cfg is None or (interface, alt_setting) not in cfg.interfaces:
            raise HwError("not_found", f"interface {interface} has no alt setting {alt_setting}")
        link.control_out(0x01, _SET_INTERFACE, alt_setting, interface, b"",
                         _DESCRIPTOR_TIMEOUT_MS, "SET_INTERFACE")
        link.alt_settings[interface] = alt_setting

    def detach_kernel_driver(self, handle: Hashable, interface: int) -> None:
        self._h(handle)
        raise HwError("not_found", "no kernel driver is bound to a USB/IP import of this client")

    # -- transfers -----------------------------------------------------------------------
    def control_in(self, handle, request_type, request, value, index, length, timeout_ms):
        return self._h(handle).control_in(request_type, request, value, index, length, timeout_ms)

    def control_out(self, handle, request_type, request, value, index, data, timeout_ms):
        return self._h(handle).control_out(request_type, request, value, index, bytes(data),
                                            timeout_ms)

    def _in(self, handle, endpoint: int, length: int, timeout_ms: int, what: str) -> bytes:
        return self._h(handle).submit(proto.DIR_IN, endpoint & 0x0F, bytes(8), b"", length,
                                      timeout_ms, f"{what} IN 0x{endpoint:02x}").data

    def _out(self, handle, endpoint: int, data: bytes, timeout_ms: int, what: str) -> int:
        return self._h(handle).submit(proto.DIR_OUT, endpoint & 0x0F, bytes(8), bytes(data),
                                      len(data), timeout_ms, f"{what} OUT 0x{endpoint:02x}").actual

    def bulk_in(self, handle, endpoint, length, timeout_ms):
        return self._in(handle, endpoint, length, timeout_ms, "bulk")

    def bulk_out(self, handle, endpoint, data, timeout_ms):
        return self._out(handle, endpoint, data, timeout_ms, "bulk")

    def interrupt_in(self, handle, endpoint, length, timeout_ms):
        return self._in(handle, endpoint, length, timeout_ms, "interrupt")

    def interrupt_out(self, handle, endpoint, data, timeout_ms):
        return self._out(handle, endpoint, data, timeout_ms, "interrupt")

    def iso_transfer(self, handle, endpoint, data, packet_lengths, timeout_ms):
        """One isochronous URB: a descriptor per packet; IN data comes back packed and is
        split by each packet's actual length."""
        lengths = list(packet_lengths)
        offsets = [sum(lengths[:i]) for i in range(len(lengths))]
        total = sum(lengths)
        direction = proto.DIR_IN if endpoint & 0x80 else proto.DIR_OUT
        payload = b""
        if direction == proto.DIR_OUT:
            payload = bytes(data or b"")[:total].ljust(total, b"\0")
        reply = self._h(handle).submit(
            direction,
            endpoint & 0x0F,
            bytes(8),
            payload,
            total,
            timeout_ms,
            f"isochronous 0x{endpoint:02x}",
            iso=[(o, n, 0, 0) for o, n in zip(offsets, lengths, strict=True)],
        )
        got = reply.iso or []
        if len(got) != len(lengths):
            raise HwError("io", f"isochronous 0x{endpoint:02x}: {len(got)} packet results "
                                f"for {len(lengths)} packets")
        results: list[tuple[bytes | int, str]] = []
        pos = 0
        for (_offset, length, actual, status) in got:
            kind = "success" if status == 0 else _STATUS_KINDS.get(status, "other")
            if actual > length:
                raise HwError("overflow", f"isochronous packet of {actual} > {length} bytes")
            if direction == proto.DIR_IN:
                results.append((reply.data[pos:pos + actual], kind))
                pos += actual
            else:
                results.append((actual, kind))
        return results

    def clear_halt(self, handle, endpoint):
        self._h(handle).control_out(0x02, _CLEAR_FEATURE, 0, endpoint, b"",
                                    _DESCRIPTOR_TIMEOUT_MS, "CLEAR_FEATURE(ENDPOINT_HALT)")

    def reset_device(self, handle):
        link = self._h(handle)
        config = self.get_configuration(handle)
        port = (_port_path(link.exported.busid) or (1,))[-1]
        link.control_out(0x23, _SET_FEATURE, _PORT_RESET, port, b"", _DESCRIPTOR_TIMEOUT_MS,
                         "port reset")
        dd = link.control_in(0x80, _GET_DESCRIPTOR, _DT_DEVICE << 8, 0, 18,
                             _DESCRIPTOR_TIMEOUT_MS, "device descriptor")
        if dd != link.info.device_descriptor:
            raise _retire(link, "the device re-enumerated as a different device")
        if config:
            link.control_out(0x00, _SET_CONFIGURATION, config, 0, b"", _DESCRIPTOR_TIMEOUT_MS,
                             "SET_CONFIGURATION")
        for interface, alt in link.alt_settings.items():
            if alt:
                link.control_out(0x01, _SET_INTERFACE, alt, interface, b"",
                                 _DESCRIPTOR_TIMEOUT_MS, "SET_INTERFACE")

    def shutdown(self) -> None:
        with self._lock:
            for link in self._links.values():
                link.close()
            self._links.clear()
            self._handles.clear()


def _retire(link: _Link, why: str) -> HwError:
    """End ``link`` for good (its handles then get ``no_device``); the error to raise."""
    link.close(why)
    return HwError("not_found", why)
