"""Helpers for IMC tests: the `imc_client.wat` driver operated through its memory."""

from __future__ import annotations

import dataclasses
import struct

from wasi_hw._bindings._wasi_imc import ERRNO
from wasi_hw.kernel._manifest import ImcPolicy

from kernel_testing import manifest

KIND = {v: k for k, v in ERRNO.items()}


def imc_manifest(name: str, max_transfer: int = 8192, **imc) -> object:
    """A test manifest with ``[imc]`` = `imc` (the echo provider's serve buffer is 4104 bytes:
    within ``max_transfer``, the largest region a module may hand over)."""
    return dataclasses.replace(manifest(name, max_transfer=max_transfer), imc=ImcPolicy(**imc))


class Client:
    """Drives `imc_client.wat` (one operation per ``poll``); results are errno kind names."""

    def __init__(self, slot) -> None:
        self.slot = slot

    @property
    def mem(self):
        return self.slot.instance.mem

    def _run(self, op: int, name: str, data: bytes = b"", cap: int = 4096,
             timeout_ms: int = 0, handle: int = 0, length: int | None = None) -> str:
        m = self.mem
        m.write(0, name.encode())
        m.write(64, struct.pack("<IIII", len(name.encode()),
                                   len(data) if length is None else length, cap, timeout_ms))
        m.write(80, struct.pack("<I", handle))
        m.write(200, bytes([op, 1]))
        m.write(4096, data)
        return KIND[self.slot.instance.call("poll")]

    def call(self, service: str, data: bytes, cap: int = 4096, timeout_ms: int = 0,
             length: int | None = None):
        kind = self._run(0, service, data, cap, timeout_ms, length=length)
        n = struct.unpack("<I", self.mem.read(84, 4))[0]
        return kind, (self.mem.read(16384, n) if kind == "success" else None)

    def publish(self, topic: str, data: bytes) -> str:
        return self._run(1, topic, data)

    def subscribe(self, topic: str):
        kind = self._run(2, topic)
        return kind, struct.unpack("<I", self.mem.read(84, 4))[0]

    def receive(self, handle: int, cap: int = 4096):
        kind = self._run(3, "", cap=cap, handle=handle)
        n = struct.unpack("<I", self.mem.read(84, 4))[0]
        return kind, (self.mem.read(16384, n) if kind == "success" else None)

    def offer(self, service: str) -> str:
        return self._run(4, service)
