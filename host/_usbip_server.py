"""`UsbipServer`: exports virtual USB device models (`UsbDeviceModel`) over USB/IP 0x0111.

Listens on TCP (default 127.0.0.1:3240); one thread accepts, one thread per connection
serves it. Works with Linux's ``usbip list -r`` / ``usbip attach`` (vhci-hcd) and with
`UsbipUsbBackend`.

What goes on the wire:

- OP_REQ_DEVLIST → every model, as bus ids ``1-1``, ``1-2``, … (bus 1, devnum 2, 3, …,
  path ``/sys/devices/platform/wasi-hw/usb1/<busid>``), its speed, ids, active
  configuration value and the interfaces (class triples, alt setting 0) of its active
  configuration, or of its first one while unconfigured.
- OP_REQ_IMPORT of a bus id → status 0 + the record, then the connection carries that
  device's URBs until it closes. A device is imported by one connection at a time
  (status 2, "busy", otherwise; 4 for an unknown bus id). When the connection ends the
  model gets a bus reset, as an unplugged device would.
- CMD_SUBMIT on ep 0 → `handle_control` with the SETUP packet (a hub-class
  SET_FEATURE(PORT_RESET), which Linux's usbip-host treats as "reset the device", →
  `handle_reset`). Bulk/interrupt OUT → `handle_out`, offered again until every byte is
  accepted; IN → `handle_in` for ``transfer_buffer_length`` bytes. A NAK (IN: None, OUT:
  fewer bytes accepted) leaves the URB pending; pending URBs are retried in order per
  endpoint every few milliseconds until they complete or are unlinked.
- Isochronous URBs: one `handle_in` / `handle_out` call per packet descriptor, never
  retried (a NAK is a zero-length packet); each descriptor gets its actual length and
  status (``-EPIPE`` on `Stall`, ``-EOVERFLOW`` when the model returns too much); IN data
  goes back packed (the packets' actual bytes back to back), descriptors after it, URB
  status 0 with ``error_count`` failed packets. Descriptors outside the buffer → ``-EINVAL``.
- RET_SUBMIT status: 0, or ``-EPIPE`` on `Stall`, ``-EPROTO`` if the model fails
  (a model exception never ends the server).
- CMD_UNLINK of a pending URB → it is dropped and RET_UNLINK carries ``-ECONNRESET``
  (no RET_SUBMIT follows); of an already completed one → status 0.

A peer that breaks the protocol only loses its own connection.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from . import _usbip_proto as proto
from .usbdevices._model import ISOCHRONOUS, Setup, Stall, UsbDeviceModel

__all__ = ["UsbipServer"]

_log = logging.getLogger(__name__)
_E = proto.ERRNO
_ST_OK, _ST_BUSY, _ST_NODEV = 0, 2, 4
_RETRY_MIN, _RETRY_MAX = 0.001, 0.02  # pending-URB retry interval bounds (s)
_PORT_RESET = (0x23, 0x03, 4)  # hub class, SET_FEATURE, PORT_RESET


@dataclass
class _Export:
    busid: str
    devnum: int
    model: UsbDeviceModel
    owner: object | None = None  # the connection that imported it

    def record(self, with_interfaces: bool = True) -> proto.ExportedDevice:
        m = self.model
        cfg = m.active_configuration() or m.configurations[0]
        ifaces = tuple((i.interface_class, i.subclass, i.protocol)
                       for i in cfg.interfaces if i.alt_setting == 0)
        d = m.device
        return proto.ExportedDevice(
            busid=self.busid, path=f"/sys/devices/platform/wasi-hw/usb1/{self.busid}",
            busnum=1, devnum=self.devnum, speed=proto.SPEED.get(m.speed, 0),
            vendor_id=d.vendor_id, product_id=d.product_id, bcd_device=d.bcd_device,
            device_class=d.device_class, device_subclass=d.subclass,
            device_protocol=d.protocol, configuration_value=m.configuration,
            num_configurations=len(m.configurations),
            interfaces=ifaces if with_interfaces else (), num_interfaces=len(ifaces))


class _Urb:
    """A CMD_SUBMIT being served: how much of it is done."""

    __slots__ = ("cmd", "done")

    def __init__(self, cmd: proto.Submit) -> None:
        self.cmd = cmd
        self.done = 0  # OUT bytes accepted so far


class UsbipServer:
    """Serve ``devices`` on ``host:port`` (port 0: pick a free one; see `address`).

    Use as a context manager, or `start()` / `stop()`. `busids` lists what is exported,
    in order; `disconnect(busid)` drops the current import (an unplug, for tests).
    """

    def __init__(self, devices: Sequence[UsbDeviceModel], host: str = "127.0.0.1",
                 port: int = 3240) -> None:
        if not devices:
            raise ValueError("UsbipServer needs at least one device")
        self._exports = {f"1-{i + 1}": _Export(f"1-{i + 1}", i + 2, m)
                         for i, m in enumerate(devices)}
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: dict[socket.socket, str | None] = {}  # connection → imported busid
        self._stopping = threading.Event()

    @property
    def busids(self) -> list[str]:
        return list(self._exports)

    def model(self, busid: str) -> UsbDeviceModel:
        return self._exports[busid].model

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("the server is not running")
        return self._listener.getsockname()[:2]

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> UsbipServer:
        if self._listener is not None:
            raise RuntimeError("already started")
        self._listener = socket.create_server((self._host, self._port))
        self._stopping.clear()
        self._spawn(self._accept_loop, "usbip-accept")
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and join the threads."""
        self._stopping.set()
        if self._listener is not None:
            _shutdown(self._listener)  # wakes the blocked accept()
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            _shutdown(conn)
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()
        self._listener = None

    def __enter__(self) -> UsbipServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def disconnect(self, busid: str) -> bool:
        """Drop the connection importing ``busid`` (the device is unplugged from the
        client's view and can be imported again). False if it was not imported."""
        with self._lock:
            conns = [c for c, b in self._conns.items() if b == busid]
        for conn in conns:
            _shutdown(conn)
        return bool(conns)

    def _spawn(self, target, name: str, *args) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None  # started
        while not self._stopping.is_set():
            try:
                conn, peer = listener.accept()
            except OSError:
                return  # listener closed by stop()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns[conn] = None
            self._spawn(self._serve, f"usbip {peer[0]}:{peer[1]}", conn)

    # -- one connection ------------------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        export = None
        try:
            conn.settimeout(10.0)  # the operation phase must arrive promptly
            export = self._handshake(conn)
            if export is not None:
                _log.info("usbip: %s imported", export.busid)
                _Session(conn, export.model, self._stopping).run()
        except (OSError, ValueError) as err:
            _log.info("usbip: connection ended: %s", err)
        finally:
            _shutdown(conn)
            conn.close()
            with self._lock:
                self._conns.pop(conn, None)
                if export is not None:
                    export.owner = None
            if export is not None:
                try:
                    export.model.handle_reset()  # unplugged
                except Exception:  # noqa: BLE001 - a model bug must not kill the server
                    _log.exception("usbip: %s reset failed", export.busid)

    def _handshake(self, conn: socket.socket) -> _Export | None:
        version, code, _status = proto.unpack_op(proto.recv_exact(conn, proto.OP_HEADER_SIZE))
        if code == proto.OP_REQ_DEVLIST:
            with self._lock:
                records = [e.record() for e in self._exports.values()]
            conn.sendall(proto.pack_devlist_reply(records))
            return None
        if code != proto.OP_REQ_IMPORT:
            raise proto.ProtocolError(f"unexpected op 0x{code:04x} (version 0x{version:04x})")
        raw = proto.recv_exact(conn, proto.BUSID_SIZE)
        busid = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
        with self._lock:
            export = self._exports.get(busid)
            status = _ST_NODEV if export is None else _ST_BUSY if export.owner else _ST_OK
            if export is not None and status == _ST_OK:
                export.owner = conn
                self._conns[conn] = busid
        if status != _ST_OK:
            conn.sendall(proto.pack_import_reply(None, status))
            return None
        assert export is not None  # status is _ST_OK
        conn.sendall(proto.pack_import_reply(export.record(with_interfaces=False)))
        return export


class _Session:
    """The URB phase of one imported device: read commands, complete URBs, retry the
    pending ones. Only this thread writes to the socket."""

    def __init__(self, conn: socket.socket, model: UsbDeviceModel,
                 stopping: threading.Event) -> None:
        self.conn = conn
        self.model = model
        self.stopping = stopping
        self.pending: list[_Urb] = []

    def _is_iso(self, ep: int, direction: int) -> bool:
        addr = ep | (0x80 if direction == proto.DIR_IN else 0)
        e = self.model.endpoints().get(addr)
        return e is not None and e.transfer_type == ISOCHRONOUS

    def run(self) -> None:
        self.conn.settimeout(10.0)  # a started message must finish within this
        idle = _RETRY_MIN
        while not self.stopping.is_set():
            wait = idle if self.pending else 0.5
            readable, _, _ = select.select([self.conn], [], [], wait)
            if readable:
                cmd = proto.read_command(self.conn, is_iso=self._is_iso)
                if isinstance(cmd, proto.Unlink):
                    self._unlink(cmd)
                else:
                    self.pending.append(_Urb(cmd))
                idle = _RETRY_MIN
            progressed = self._progress()
            idle = _RETRY_MIN if progressed else min(idle * 2, _RETRY_MAX)

    def _unlink(self, cmd: proto.Unlink) -> None:
        for urb in self.pending:
            if urb.cmd.seqnum == cmd.target:
                self.pending.remove(urb)
                self.conn.sendall(proto.pack_ret_unlink(cmd.seqnum, -_E["ECONNRESET"]))
                return
        self.conn.sendall(proto.pack_ret_unlink(cmd.seqnum, 0))  # already completed

    def _progress(self) -> bool:
        """Try each pending URB once, oldest first, one at a time per endpoint.
        True if any completed."""
        blocked: set[tuple[int, int]] = set()
        completed = False
        for urb in list(self.pending):
            key = (urb.cmd.ep, urb.cmd.direction)
            if key in blocked:
                continue
            reply = self._step(urb)
            if reply is None:
                blocked.add(key)
                continue
            self.pending.remove(urb)
            self.conn.sendall(proto.pack_ret_submit(reply, urb.cmd.direction))
            completed = True
        return completed

    def _step(self, urb: _Urb) -> proto.RetSubmit | None:
        """Advance one URB; its RET_SUBMIT when finished, None while the device NAKs."""
        c = urb.cmd
        try:
            if c.iso is not None:
                return self._iso(c)
            if c.ep and self._is_iso(c.ep, c.direction):  # iso endpoint, no descriptors
                return proto.RetSubmit(c.seqnum, -_E["EINVAL"], 0)
            if c.ep == 0:
                return self._control(c)
            if c.direction == proto.DIR_OUT:
                n = self.model.handle_out(c.ep, c.data[urb.done:])
                urb.done += n
                if urb.done < len(c.data):
                    return None
                return proto.RetSubmit(c.seqnum, 0, urb.done)
            data = self.model.handle_in(c.ep | 0x80, c.length)
            if data is None:
                return None
            return proto.RetSubmit(c.seqnum, 0, len(data), data)
        except Stall:
            return proto.RetSubmit(c.seqnum, -_E["EPIPE"], urb.done)
        except Exception:  # noqa: BLE001 - a model bug answers EPROTO, never ends the server
            _log.exception("usbip: model %s failed", type(self.model).__name__)
            return proto.RetSubmit(c.seqnum, -_E["EPROTO"], 0)

    def _iso(self, c: proto.Submit) -> proto.RetSubmit:
        packets, data, failed = [], [], 0
        addr = c.ep | (0x80 if c.direction == proto.DIR_IN else 0)
        for offset, length, _actual, _status in c.iso or ():
            if offset + length > c.length:
                return proto.RetSubmit(c.seqnum, -_E["EINVAL"], 0, iso=c.iso)
            actual, status = 0, 0
            try:
                if c.direction == proto.DIR_IN:
                    got = self.model.handle_in(addr, length) or b""
                    data.append(got)
                    actual = len(got)
                else:
                    actual = self.model.handle_out(addr, c.data[offset:offset + length])
            except Stall:
                status = -_E["EPIPE"]
            except ValueError:  # the model broke the length contract
                status = -_E["EOVERFLOW"]
            failed += status != 0
            packets.append((offset, length, actual, status))
        return proto.RetSubmit(c.seqnum, 0, sum(p[2] for p in packets), b"".join(data),
                               error_count=failed, iso=packets)

    def _control(self, c: proto.Submit) -> proto.RetSubmit:
        setup = Setup.from_bytes(c.setup)
        if (setup.request_type, setup.request, setup.value) == _PORT_RESET:
            self.model.handle_reset()
            return proto.RetSubmit(c.seqnum, 0, 0)
        if setup.is_in:
            data = self.model.handle_control(setup, b"")[: c.length]
            return proto.RetSubmit(c.seqnum, 0, len(data), data)
        self.model.handle_control(setup, c.data)
        return proto.RetSubmit(c.seqnum, 0, len(c.data))


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
