"""Test helpers for the USB host side: real guest memory for `UsbHost` calls, a minimal
Bulk-Only Transport initiator over any `UsbBackend`, a lifted ``Filter``, and `IsoSource`,
a model with isochronous endpoints.

`GuestMem` — a wasmtime `Memory` wrapped in the project's real `GuestMemory`; ``region(n)``
allocates a fresh `GuestRegion` (bump allocator), ``out(region)`` reads it back.
`bot_command(backend, handle, cb, ...)` — one CBW / data / CSW exchange.
`kind(fn, *args)` — the error kind of the `HwError` that ``fn(*args)`` must raise.
"""

from __future__ import annotations

import struct

import pytest
import wasmtime

from wasi_hw import HwError
from wasi_hw._memory import GuestMemory
from wasi_hw.host.usbdevices import (
    ISOCHRONOUS,
    Configuration,
    DeviceDescriptor,
    Endpoint,
    Interface,
    Stall,
    UsbDeviceModel,
)

__all__ = ["GuestMem", "bot_command", "make_filter", "IsoSource", "kind"]


def kind(fn, *args) -> str:
    with pytest.raises(HwError) as err:
        fn(*args)
    return err.value.kind


class GuestMem:
    def __init__(self, pages: int = 4, max_copy: int = 1 << 20) -> None:
        self.store = wasmtime.Store()
        self.memory = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(pages, None)))
        self.mem = GuestMemory(self.memory, self.store, max_copy=max_copy)
        self._next = 16

    def region(self, n: int, fill: bytes = b""):
        ptr = self._next
        self._next = (self._next + n + 7) & ~7
        r = self.mem.region(ptr, n)
        r.write(bytes(n))
        if fill:
            r.write(fill)
        return r


def make_filter(flags: int = 0, *, class_: int = 0, vendor_id: int = 0, product_id: int = 0,
                serial: bytes = b""):
    """A lifted ``Filter`` record (the generated dataclass)."""
    from wasi_hw._bindings._wasi_usb import Filter, FilterFlags

    return Filter(flags=FilterFlags(flags), class_=class_, vendor_id=vendor_id,
                  product_id=product_id, serial=serial)


def bot_command(backend, handle, cb: bytes, *, tag: int = 1, data_in: int = 0,
                data_out: bytes = b"", ep_out: int = 0x01, ep_in: int = 0x82,
                timeout_ms: int = 200):
    """Run one BOT command; returns ``(data, (tag, residue, status))``."""
    length = data_in or len(data_out)
    flags = 0x80 if data_in else 0
    cbw = struct.pack("<IIIBBB", 0x43425355, tag, length, flags, 0, len(cb)) + cb.ljust(16, b"\0")
    assert backend.bulk_out(handle, ep_out, cbw, timeout_ms) == 31
    data = b""
    if data_in:
        data = backend.bulk_in(handle, ep_in, data_in, timeout_ms)
    elif data_out:
        assert backend.bulk_out(handle, ep_out, data_out, timeout_ms) == len(data_out)
    csw = backend.bulk_in(handle, ep_in, 13, timeout_ms)
    sig, rtag, residue, status = struct.unpack("<IIIB", csw)
    assert sig == 0x53425355
    return data, (rtag, residue, status)



class IsoSource(UsbDeviceModel):
    """Isochronous IN endpoint 0x81 sending scripted packets (3 bytes, 8 bytes, none, then
    STALL) and isochronous OUT endpoint 0x02 recording the packets it gets."""

    def __init__(self):
        super().__init__(
            DeviceDescriptor(0x1209, 0x00F0),
            [
                Configuration(
                    1,
                    (
                        Interface(
                            0,
                            0xFF,
                            0,
                            0,
                            (Endpoint(0x81, ISOCHRONOUS, 8, 1), Endpoint(0x02, ISOCHRONOUS, 8, 1)),
                        ),
                    ),
                )
            ],
        )
        self.script = [b"\x00" * 3, b"\x01" * 8, None]
        self.received = []

    def in_(self, endpoint, max_len):
        if not self.script:
            raise Stall()
        return self.script.pop(0)

    def out(self, endpoint, data):
        self.received.append(data)
        return len(data)
