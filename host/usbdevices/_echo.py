"""`EchoDevice`: a vendor-specific loopback device (pid.codes test VID:PID 1209:0001).

Full speed, one configuration (value 1), interface 0 class 0xFF/0/0 with
  EP 0x01 bulk OUT (64), EP 0x81 bulk IN (64), EP 0x82 interrupt IN (8, interval 1).

Vendor requests (recipient device):
  0x40/0x01 SET_BUFFER  — OUT data stage (<= 256 bytes) replaces the stored buffer;
                          longer → STALL.
  0xC0/0x02 GET_BUFFER  — IN: the stored buffer (truncated to wLength).
  0xC0/0x03 or 0x40/0x03 STALL — always STALLs (for fault tests).
  0xC0/0x04 GET_QUEUED  — IN: 2 bytes LE, bytes waiting in the bulk echo queue.
Bulk: bytes written to 0x01 are queued (up to 4096; beyond that the device NAKs) and come
back in order from 0x81; an IN with nothing queued NAKs (→ timeout on the host).
Interrupt 0x82: each IN returns a 4-byte little-endian counter that starts at 0 and
increments per report (never NAKs). Strings: 1 "wasi-hw", 2 "Echo", 3 serial "ECHO0001".
"""

from __future__ import annotations

import struct

from ._model import (
    BULK,
    INTERRUPT,
    Configuration,
    DeviceDescriptor,
    Endpoint,
    Interface,
    Setup,
    Stall,
    UsbDeviceModel,
)

__all__ = ["EchoDevice"]

SET_BUFFER, GET_BUFFER, STALL_REQUEST, GET_QUEUED = 0x01, 0x02, 0x03, 0x04
_MAX_BUFFER = 256
_MAX_QUEUE = 4096


class EchoDevice(UsbDeviceModel):
    """The loopback device; see the module docstring for its behaviour."""

    VENDOR_ID, PRODUCT_ID = 0x1209, 0x0001

    def __init__(self, serial: str = "ECHO0001") -> None:
        iface = Interface(0, 0xFF, 0, 0, (
            Endpoint(0x01, BULK, 64),
            Endpoint(0x81, BULK, 64),
            Endpoint(0x82, INTERRUPT, 8, interval=1),
        ))
        super().__init__(
            DeviceDescriptor(self.VENDOR_ID, self.PRODUCT_ID, bcd_device=0x0100,
                             manufacturer=1, product=2, serial_number=3),
            [Configuration(1, (iface,))],
            {1: "wasi-hw", 2: "Echo", 3: serial},
        )
        self.buffer = b""
        self._queue = bytearray()
        self._counter = 0

    def control(self, setup: Setup, data_out: bytes) -> bytes:
        if setup.kind != "vendor" or setup.recipient != "device":
            raise Stall()
        if setup.request == SET_BUFFER and not setup.is_in:
            if len(data_out) > _MAX_BUFFER:
                raise Stall()
            self.buffer = data_out
            return b""
        if setup.request == GET_BUFFER and setup.is_in:
            return self.buffer
        if setup.request == GET_QUEUED and setup.is_in:
            return struct.pack("<H", len(self._queue))
        raise Stall()  # STALL_REQUEST and anything unknown

    def out(self, endpoint: int, data: bytes) -> int:
        n = min(len(data), _MAX_QUEUE - len(self._queue))
        self._queue += data[:n]
        return n

    def in_(self, endpoint: int, max_len: int) -> bytes | None:
        if endpoint == 0x82:
            report = struct.pack("<I", self._counter & 0xFFFFFFFF)[:max_len]
            self._counter += 1
            return report
        if not self._queue:
            return None
        data = bytes(self._queue[:max_len])
        del self._queue[:max_len]
        return data

    def reset(self) -> None:
        self._queue.clear()
        self._counter = 0
