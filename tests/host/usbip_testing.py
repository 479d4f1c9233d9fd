"""Test helpers for USB/IP: a server on a free port with a connected client, a server in a
separate process (so it can be killed or frozen), and a minimal Bulk-Only Transport
initiator for mass-storage tests.

`usbip_backend(*models)` — context manager yielding ``(server, backend)``: an in-process
`UsbipServer` on 127.0.0.1:<free port> and a `UsbipUsbBackend` connected to it. Any
test (e.g. the integration tests running compiled drivers) can use it to run the same
code over USB/IP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import sys
import threading

from wasi_hw.host._usbip_server import UsbipServer
from wasi_hw.host._usbip_usb import UsbipUsbBackend

__all__ = ["usbip_backend", "ServerProcess", "Bot", "open_configured"]


@contextlib.contextmanager
def usbip_backend(*models, **backend_options):
    with UsbipServer(list(models), port=0) as server:
        backend = UsbipUsbBackend(*server.address, **backend_options)
        try:
            yield server, backend
        finally:
            backend.shutdown()


def open_configured(backend, index: int = 0, interface: int = 0):
    """Open device ``index`` of ``backend.devices()``, select configuration 1, claim
    ``interface``; returns ``(info, handle)``."""
    info = backend.devices()[index]
    handle = backend.open(info.id)
    backend.set_configuration(handle, 1)
    backend.claim_interface(handle, interface)
    return info, handle


class ServerProcess:
    """``wasi-hw usbip serve`` in a child process (killable); `port` once it listens."""

    def __init__(self, *device_specs: str, port: int = 0, extra: tuple[str, ...] = ()) -> None:
        args = [sys.executable, "-m", "wasi_hw._cli", "usbip", "serve", "--port", str(port)]
        for spec in device_specs:
            args += ["--device", spec]
        self.proc = subprocess.Popen(args + list(extra), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        first = self._readline(timeout=20)
        if not first.startswith("serving USB/IP on "):
            self.kill()
            raise RuntimeError(f"server did not start: {first!r} {self.proc.stderr.read()}")
        self.lines.append(first)
        self.host, _, port_text = first.split()[3].rpartition(":")
        self.port = int(port_text)
        for _ in device_specs:
            self.lines.append(self._readline(timeout=5))

    def _readline(self, timeout: float) -> str:
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return out[0] if out else ""

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


class Bot:
    """A Bulk-Only Transport initiator over a `UsbBackend` handle (EP 0x01 OUT, 0x82 IN)."""

    def __init__(self, backend, handle, ep_out: int = 0x01, ep_in: int = 0x82) -> None:
        self.b, self.h, self.ep_out, self.ep_in = backend, handle, ep_out, ep_in
        self.tag = 0

    def cbw(self, cb: bytes, length: int, data_in: bool) -> int:
        self.tag += 1
        raw = struct.pack("<IIIBBB", 0x43425355, self.tag, length, 0x80 if data_in else 0, 0,
                          len(cb)) + cb.ljust(16, b"\0")
        assert self.b.bulk_out(self.h, self.ep_out, raw, 1000) == 31
        return self.tag

    def csw(self, tag: int) -> tuple[int, int]:
        raw = self.b.bulk_in(self.h, self.ep_in, 13, 1000)
        sig, got_tag, residue, status = struct.unpack("<IIIB", raw)
        assert (sig, got_tag) == (0x53425355, tag)
        return status, residue

    def command_in(self, cb: bytes, length: int) -> tuple[bytes, int]:
        tag = self.cbw(cb, length, True)
        data = b""
        while len(data) < length:
            chunk = self.b.bulk_in(self.h, self.ep_in, length - len(data), 1000)
            data += chunk
            if len(chunk) % 512 or not chunk:
                break
        status, _ = self.csw(tag)
        return data, status

    def command_out(self, cb: bytes, data: bytes) -> int:
        tag = self.cbw(cb, len(data), False)
        if data:
            assert self.b.bulk_out(self.h, self.ep_out, data, 2000) == len(data)
        return self.csw(tag)[0]

    def read10(self, lba: int, blocks: int) -> bytes:
        data, status = self.command_in(struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0),
                                       blocks * 512)
        assert status == 0
        return data

    def write10(self, lba: int, data: bytes) -> int:
        return self.command_out(struct.pack(">BBIBHB", 0x2A, 0, lba, 0, len(data) // 512, 0),
                                data)
