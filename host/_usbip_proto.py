"""USB/IP wire format (protocol 0x0111), shared by `UsbipServer` and `UsbipUsbBackend`.

Layouts follow the kernel's Documentation/usb/usbip_protocol.rst. Every header field is
big-endian; the 8-byte SETUP packet and the transfer buffers travel verbatim.

Operation phase (one request per TCP connection, 8-byte header ``version u16, code u16,
status u32``):

- ``OP_REQ_DEVLIST`` → ``OP_REP_DEVLIST``: ``u32 count``, then per device a 312-byte
  ``usbip_usb_device`` (path[256], busid[32], busnum, devnum, speed (u32 each), idVendor,
  idProduct, bcdDevice (u16), class, subclass, protocol, bConfigurationValue,
  bNumConfigurations, bNumInterfaces (u8)) followed by 4 bytes ``class, subclass,
  protocol, pad`` per interface.
- ``OP_REQ_IMPORT`` + busid[32] → ``OP_REP_IMPORT`` (status 0 + one ``usbip_usb_device``
  without interfaces, or status != 0 alone). The connection then carries URBs.

URB phase: a 48-byte header — basic ``command, seqnum, devid, direction, ep`` (u32 each)
and a 28-byte union:

- ``CMD_SUBMIT``: ``transfer_flags u32, transfer_buffer_length s32, start_frame s32,
  number_of_packets s32, interval s32, setup[8]``; OUT data follows.
- ``RET_SUBMIT``: ``status s32, actual_length s32, start_frame, number_of_packets,
  error_count`` + 8 pad bytes; IN data (actual_length bytes) follows. The server sets
  devid/direction/ep to 0, so the receiver knows the direction from its own record.
- ``CMD_UNLINK``: ``unlink_seqnum u32`` + 24 pad; ``RET_UNLINK``: ``status s32`` + 24 pad,
  carrying the CMD_UNLINK's own seqnum. Status ``-ECONNRESET``: the URB was unlinked
  and will get no RET_SUBMIT; ``0``: it had already completed.
- Isochronous URBs add ``number_of_packets`` 16-byte descriptors (offset, length,
  actual_length, status) after the data.

Why by hand and not PyPI ``usbip`` 0.7.0 (evaluated): its wire helpers are fused with its
own device framework and a synchronous client — ``client_submit`` blocks on ``recv``
with no timeout, never sends CMD_UNLINK and does not match seqnums; ``write_ret_unlink``
always answers status 0 (the kernel expects ``-ECONNRESET`` for a URB it unlinked);
``read_cmd`` trusts ``transfer_buffer_length`` (a peer can make it buffer 2 GiB) and
turns a short read into silently truncated data; the device record hard-codes
bConfigurationValue/bNumConfigurations and a vhci sysfs path. The format itself is a
few ``struct`` layouts, kept here once for both ends.

Errors: a peer that breaks the format raises `ProtocolError`; a closed connection
raises `ConnectionClosed` (both `OSError`s, so socket failures and these are handled
together by the callers).
"""

from __future__ import annotations

import dataclasses
import socket
import struct

__all__ = [
    "VERSION", "OP_REQ_DEVLIST", "OP_REP_DEVLIST", "OP_REQ_IMPORT", "OP_REP_IMPORT",
    "CMD_SUBMIT", "CMD_UNLINK", "RET_SUBMIT", "RET_UNLINK", "DIR_OUT", "DIR_IN",
    "URB_SHORT_NOT_OK", "URB_ISO_ASAP", "URB_DIR_IN", "SPEED", "speed_name", "ERRNO",
    "MAX_TRANSFER", "MAX_ISO_PACKETS", "OP_HEADER_SIZE", "HEADER_SIZE", "BUSID_SIZE",
    "ProtocolError", "ConnectionClosed", "ExportedDevice", "Submit", "Unlink", "RetSubmit",
    "RetUnlink", "recv_exact", "pack_op", "unpack_op", "pack_devlist_reply",
    "read_devlist_reply", "pack_import_request", "pack_import_reply", "read_import_reply",
    "pack_submit", "pack_unlink", "pack_ret_submit", "pack_ret_unlink", "read_command",
    "read_return",
]

VERSION = 0x0111
OP_REQ_DEVLIST, OP_REP_DEVLIST = 0x8005, 0x0005
OP_REQ_IMPORT, OP_REP_IMPORT = 0x8003, 0x0003
CMD_SUBMIT, CMD_UNLINK, RET_SUBMIT, RET_UNLINK = 1, 2, 3, 4
DIR_OUT, DIR_IN = 0, 1
URB_SHORT_NOT_OK = 0x0001
URB_ISO_ASAP = 0x0002
URB_DIR_IN = 0x0200

#: The kernel's `enum usb_device_speed`, by our speed names.
SPEED = {"unknown": 0, "low": 1, "full": 2, "high": 3, "super": 5, "super_plus": 6}
_SPEED_NAMES = {v: k for k, v in SPEED.items()} | {4: "high"}  # 4: wireless, 480 Mb/s class


def speed_name(value: int) -> str:
    """A wire speed value → our ``$speed`` case name (``"unknown"`` if unknown)."""
    return _SPEED_NAMES.get(value, "unknown")


#: Linux errno values as they travel in `status` fields (the wire uses Linux numbers
#: whatever the host OS).
ERRNO = {
    "ENOENT": 2, "EIO": 5, "ENODEV": 19, "EINVAL": 22, "EPIPE": 32, "EPROTO": 71,
    "EOVERFLOW": 75, "EILSEQ": 84, "ECONNRESET": 104, "ESHUTDOWN": 108,
    "ETIMEDOUT": 110, "EINPROGRESS": 115, "EREMOTEIO": 121,
}

#: Largest transfer_buffer_length / actual_length either end accepts (a bound on what a
#: peer can make us buffer). Linux mass storage uses at most 240 sectors × 512 B per URB
#: by default; usbfs caps URBs at 16 MiB.
MAX_TRANSFER = 16 << 20
#: Most isochronous packets per URB we accept.
MAX_ISO_PACKETS = 1024

OP_HEADER_SIZE = 8
HEADER_SIZE = 48
BUSID_SIZE = 32

_OP = struct.Struct(">HHI")
_COUNT = struct.Struct(">I")
_DEVICE = struct.Struct(">256s32sIIIHHHBBBBBB")
_IFACE = struct.Struct(">BBBx")
_BASIC = struct.Struct(">IIIII")
_CMD_SUBMIT = struct.Struct(">Iiiii8s")
_RET_SUBMIT = struct.Struct(">iiiii8x")
_CMD_UNLINK = struct.Struct(">I24x")
_RET_UNLINK = struct.Struct(">i24x")
_ISO = struct.Struct(">IIIi")
assert _DEVICE.size == 312 and _BASIC.size + _CMD_SUBMIT.size == HEADER_SIZE


class ProtocolError(OSError):
    """The peer sent something that is not USB/IP 0x0111."""


class ConnectionClosed(OSError):
    """The peer closed the connection (or it broke) in the middle of a message."""


@dataclasses.dataclass(frozen=True)
class ExportedDevice:
    """One ``usbip_usb_device`` record (+ its interface triples in a devlist)."""

    busid: str
    path: str
    busnum: int
    devnum: int
    speed: int  # kernel `usb_device_speed`
    vendor_id: int
    product_id: int
    bcd_device: int
    device_class: int
    device_subclass: int
    device_protocol: int
    configuration_value: int
    num_configurations: int
    interfaces: tuple[tuple[int, int, int], ...] = ()
    #: bNumInterfaces; None: ``len(interfaces)`` (an import reply carries no interfaces)
    num_interfaces: int | None = None

    def __post_init__(self) -> None:
        if self.num_interfaces is None:
            object.__setattr__(self, "num_interfaces", len(self.interfaces))

    def _pack(self) -> bytes:
        nif = self.num_interfaces
        return _DEVICE.pack(
            _cstr(self.path, 256), _cstr(self.busid, BUSID_SIZE), self.busnum, self.devnum,
            self.speed, self.vendor_id, self.product_id, self.bcd_device, self.device_class,
            self.device_subclass, self.device_protocol, self.configuration_value,
            self.num_configurations, nif)

    @classmethod
    def _unpack(cls, raw: bytes) -> tuple[ExportedDevice, int]:
        (path, busid, busnum, devnum, speed, vid, pid, bcd, dcls, dsub, dproto, cfg, ncfg,
         nif) = _DEVICE.unpack(raw)
        dev = cls(busid=_uncstr(busid), path=_uncstr(path), busnum=busnum, devnum=devnum,
                  speed=speed, vendor_id=vid, product_id=pid, bcd_device=bcd,
                  device_class=dcls, device_subclass=dsub, device_protocol=dproto,
                  configuration_value=cfg, num_configurations=ncfg, num_interfaces=nif)
        return dev, nif


@dataclasses.dataclass
class Submit:
    """A CMD_SUBMIT: ``data`` is the OUT payload (b"" for IN); ``length`` the buffer size."""

    seqnum: int
    devid: int
    direction: int
    ep: int
    flags: int
    length: int
    setup: bytes = bytes(8)
    data: bytes = b""
    interval: int = 0
    start_frame: int = 0
    iso: list[tuple[int, int, int, int]] | None = None  # (offset, length, actual, status)


@dataclasses.dataclass(frozen=True)
class Unlink:
    """A CMD_UNLINK of the URB with seqnum ``target``."""

    seqnum: int
    devid: int
    direction: int
    ep: int
    target: int


@dataclasses.dataclass
class RetSubmit:
    seqnum: int
    status: int
    actual: int
    data: bytes = b""
    start_frame: int = 0
    error_count: int = 0
    iso: list[tuple[int, int, int, int]] | None = None


@dataclasses.dataclass(frozen=True)
class RetUnlink:
    seqnum: int
    status: int


def _cstr(text: str, size: int) -> bytes:
    raw = text.encode()
    if len(raw) >= size:
        raise ValueError(f"{text!r} does not fit in {size} bytes")
    return raw


def _uncstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes or raise `ConnectionClosed` (socket timeouts propagate)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionClosed(f"connection closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


# ---- operation phase -------------------------------------------------------------------

def pack_op(code: int, status: int = 0) -> bytes:
    return _OP.pack(VERSION, code, status)


def unpack_op(raw: bytes) -> tuple[int, int, int]:
    """(version, code, status) of an 8-byte operation header."""
    return _OP.unpack(raw)


def _expect_op(sock: socket.socket, code: int) -> int:
    version, got, status = unpack_op(recv_exact(sock, OP_HEADER_SIZE))
    if got != code:
        raise ProtocolError(f"expected op 0x{code:04x}, got 0x{got:04x}")
    if version != VERSION:
        raise ProtocolError(f"unsupported USB/IP version 0x{version:04x}")
    return status


def pack_devlist_reply(devices: list[ExportedDevice]) -> bytes:
    out = [pack_op(OP_REP_DEVLIST), _COUNT.pack(len(devices))]
    for dev in devices:
        out.append(dev._pack())
        out.extend(_IFACE.pack(*t) for t in dev.interfaces)
    return b"".join(out)


def read_devlist_reply(sock: socket.socket) -> list[ExportedDevice]:
    status = _expect_op(sock, OP_REP_DEVLIST)
    if status:
        raise ProtocolError(f"devlist refused (status {status})")
    (count,) = _COUNT.unpack(recv_exact(sock, 4))
    if count > 1024:
        raise ProtocolError(f"implausible device count {count}")
    devices = []
    for _ in range(count):
        dev, nif = ExportedDevice._unpack(recv_exact(sock, _DEVICE.size))
        raw = recv_exact(sock, nif * _IFACE.size)
        ifaces = tuple(_IFACE.unpack_from(raw, i * _IFACE.size) for i in range(nif))
        devices.append(dataclasses.replace(dev, interfaces=ifaces))
    return devices


def pack_import_request(busid: str) -> bytes:
    return pack_op(OP_REQ_IMPORT) + _cstr(busid, BUSID_SIZE).ljust(BUSID_SIZE, b"\0")


def pack_import_reply(device: ExportedDevice | None, status: int = 1) -> bytes:
    """OP_REP_IMPORT: the device record, or ``status`` (non-zero) alone when refused."""
    if device is None:
        return pack_op(OP_REP_IMPORT, status or 1)
    return pack_op(OP_REP_IMPORT) + device._pack()


def read_import_reply(sock: socket.socket) -> ExportedDevice | None:
    """The imported device, or None when the server refused the import."""
    if _expect_op(sock, OP_REP_IMPORT):
        return None
    dev, _nif = ExportedDevice._unpack(recv_exact(sock, _DEVICE.size))
    return dev


# ---- URB phase -------------------------------------------------------------------------

def _pack_iso(iso) -> bytes:
    return b"".join(_ISO.pack(*p) for p in iso)


def _read_iso(sock: socket.socket, count: int) -> list[tuple[int, int, int, int]]:
    if not 0 <= count <= MAX_ISO_PACKETS:
        raise ProtocolError(f"bad number_of_packets {count}")
    raw = recv_exact(sock, count * _ISO.size)
    return [_ISO.unpack_from(raw, i * _ISO.size) for i in range(count)]


def pack_submit(s: Submit) -> bytes:
    npk = len(s.iso) if s.iso is not None else 0
    head = _BASIC.pack(CMD_SUBMIT, s.seqnum, s.devid, s.direction, s.ep) + _CMD_SUBMIT.pack(
        s.flags, s.length, s.start_frame, npk, s.interval, bytes(s.setup).ljust(8, b"\0"))
    body = s.data if s.direction == DIR_OUT else b""
    return head + body + (_pack_iso(s.iso) if s.iso is not None else b"")


def pack_unlink(seqnum: int, devid: int, direction: int, ep: int, target: int) -> bytes:
    return _BASIC.pack(CMD_UNLINK, seqnum, devid, direction, ep) + _CMD_UNLINK.pack(target)


def pack_ret_submit(r: RetSubmit, direction: int) -> bytes:
    npk = len(r.iso) if r.iso is not None else 0
    head = _BASIC.pack(RET_SUBMIT, r.seqnum, 0, 0, 0) + _RET_SUBMIT.pack(
        r.status, r.actual, r.start_frame, npk, r.error_count)
    body = r.data if direction == DIR_IN else b""
    return head + body + (_pack_iso(r.iso) if r.iso is not None else b"")


def pack_ret_unlink(seqnum: int, status: int) -> bytes:
    return _BASIC.pack(RET_UNLINK, seqnum, 0, 0, 0) + _RET_UNLINK.pack(status)


def read_command(sock: socket.socket, *, is_iso=lambda ep, direction: False) -> Submit | Unlink:
    """Read one CMD_SUBMIT (with its OUT data and iso descriptors) or CMD_UNLINK.

    ``is_iso(ep, direction)`` says whether an endpoint is isochronous: only then do
    descriptors follow (the kernel leaves number_of_packets unreliable otherwise).
    """
    raw = recv_exact(sock, HEADER_SIZE)
    command, seqnum, devid, direction, ep = _BASIC.unpack_from(raw)
    if direction not in (DIR_OUT, DIR_IN) or ep > 15:
        raise ProtocolError(f"bad direction {direction} / endpoint {ep}")
    if command == CMD_UNLINK:
        (target,) = _CMD_UNLINK.unpack_from(raw, _BASIC.size)
        return Unlink(seqnum, devid, direction, ep, target)
    if command != CMD_SUBMIT:
        raise ProtocolError(f"unexpected command {command}")
    flags, length, start, npk, interval, setup = _CMD_SUBMIT.unpack_from(raw, _BASIC.size)
    if not 0 <= length <= MAX_TRANSFER:
        raise ProtocolError(f"transfer_buffer_length {length} out of range")
    data = recv_exact(sock, length) if direction == DIR_OUT and length else b""
    iso = _read_iso(sock, npk) if npk > 0 and is_iso(ep, direction) else None
    return Submit(seqnum, devid, direction, ep, flags, length, setup, data, interval, start, iso)


def read_return(sock: socket.socket, direction_of) -> RetSubmit | RetUnlink:
    """Read one RET_SUBMIT (with IN data and iso descriptors) or RET_UNLINK.

    ``direction_of(seqnum)`` gives the direction of the URB the reply is for, or None if
    it is unknown (then no data may follow: a reply with data is a `ProtocolError`).
    """
    raw = recv_exact(sock, HEADER_SIZE)
    command, seqnum, _devid, _direction, _ep = _BASIC.unpack_from(raw)
    if command == RET_UNLINK:
        (status,) = _RET_UNLINK.unpack_from(raw, _BASIC.size)
        return RetUnlink(seqnum, status)
    if command != RET_SUBMIT:
        raise ProtocolError(f"unexpected reply command {command}")
    status, actual, start, npk, errs = _RET_SUBMIT.unpack_from(raw, _BASIC.size)
    if not 0 <= actual <= MAX_TRANSFER:
        raise ProtocolError(f"actual_length {actual} out of range")
    direction = direction_of(seqnum)
    data = b""
    if actual and direction == DIR_IN:
        data = recv_exact(sock, actual)
    elif actual and direction is None:
        raise ProtocolError(f"RET_SUBMIT for unknown seqnum {seqnum}")
    iso = _read_iso(sock, npk) if npk > 0 else None
    return RetSubmit(seqnum, status, actual, data, start, errs, iso)
