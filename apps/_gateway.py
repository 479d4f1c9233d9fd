"""The REST gateway: module services over HTTP, for curl and ordinary web tools.

`Gateway(hub, host="127.0.0.1", port=0, timeout_ms=1000)` serves, on a stdlib
`ThreadingHTTPServer`:

- ``POST /services/<name>``: the body (at most `MAX_BODY` bytes) is the request; the reply
  comes back as ``200`` with ``application/octet-stream`` (CBOR by convention). The call is
  made as caller ``gateway`` through the kernel's `ImcHub.call_bytes` — a provider in this
  process's kernel first, else over NATS — so the provider's ``[imc] callers`` decides whether
  REST callers are allowed. ``?timeout_ms=N`` (1..60000) bounds the wait.
- ``GET /services``: JSON ``{"services": {name: where}}``: this process's services
  ("local") and, with a NATS link, those other kernels announce (`NatsBridge.services`).

Errors are JSON ``{"error": kind, "message": …}`` with a status per kind (`STATUS`):
unavailable 503, timeout 504, access 403, too_large / no_mem 413, provider_failed 502,
invalid_argument 400, unknown path 404, other 500. It binds to loopback unless told otherwise.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wasi_hw import HwError

__all__ = ["Gateway", "STATUS", "MAX_BODY", "CALLER"]

STATUS = {"unavailable": 503, "timeout": 504, "access": 403, "too_large": 413, "no_mem": 413,
          "provider_failed": 502, "invalid_argument": 400, "not_found": 404, "other": 500}
MAX_BODY = 64 * 1024
CALLER = "gateway"


class Gateway:
    """An HTTP server in front of one `ImcHub` (see the module docstring)."""

    def __init__(self, hub: Any, *, host: str = "127.0.0.1", port: int = 0,
                 timeout_ms: int = 1000) -> None:
        self.hub = hub
        self.timeout_ms = timeout_ms
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "wasi-hw-gateway"
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:   # quiet: the kernel audits denials
                pass

            def do_GET(self) -> None:   # noqa: N802 (http.server's naming)
                if urlsplit(self.path).path.rstrip("/") == "/services":
                    self._json(200, {"services": gateway.services()})
                else:
                    self._error("not_found", f"no such resource: {self.path}")

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                prefix = "/services/"
                if not url.path.startswith(prefix) or len(url.path) == len(prefix):
                    self._error("not_found", f"no such resource: {self.path}")
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    self._error("invalid_argument", "bad Content-Length")
                    return
                if length < 0 or length > MAX_BODY:
                    self._error("too_large", f"request body above {MAX_BODY} bytes")
                    self.close_connection = True
                    return
                body = self.rfile.read(length)
                try:
                    timeout = gateway._timeout(parse_qs(url.query))
                    reply = gateway.hub.call_bytes(CALLER, url.path[len(prefix):], body, timeout)
                except HwError as err:
                    self._error(err.kind, err.message or str(err))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _json(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, kind: str, message: str) -> None:
                self._json(STATUS.get(kind, 500), {"error": kind, "message": message})

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]

    def _timeout(self, query: dict) -> float:
        raw = query.get("timeout_ms", [str(self.timeout_ms)])[0]
        try:
            ms = int(raw)
        except ValueError:
            raise HwError("invalid_argument", f"timeout_ms={raw!r} is not a number") from None
        if not 1 <= ms <= 60_000:
            raise HwError("invalid_argument", f"timeout_ms={ms} is out of range (1..60000)")
        return ms / 1000

    def services(self) -> dict[str, str]:
        found = {name: "local" for name in self.hub.services()}
        remote = getattr(self.hub, "remote", None)
        if remote is not None and hasattr(remote, "services"):
            for name in remote.services():
                found.setdefault(name, "remote")
        return found

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> "Gateway":
        """Serve on a daemon thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown() if self._thread is not None else None
        self.httpd.server_close()
