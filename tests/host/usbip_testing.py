"""Test helpers for USB/IP: a server on a free port with a connected client, a server in a
separate process (so it can be killed or frozen).

`usbip_backend(*models)` — context manager yielding ``(server, backend)``: an in-process
`UsbipServer` on 127.0.0.1:<free port> and a `UsbipUsbBackend` connected to it. Any
test (e.g. the integration tests running compiled drivers) can use it to run the same
code over USB/IP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading

from wasi_hw.host._usbip_server import UsbipServer
from wasi_hw.host._usbip_usb import UsbipUsbBackend

__all__ = ["usbip_backend", "ServerProcess", "open_configured"]


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
        args = [sys.executable, "-m", "wasi_hw", "usbip", "serve", "--port", str(port)]
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
