"""The kernel's audit log: one JSON object per line for every denial and contract violation.

Contract: `AuditLog.record(driver, call, asked, why, outcome)` appends
``{"time": <unix seconds>, "driver", "call", "asked", "why", "outcome"}`` as one line to the
log file (if any, flushed per entry) and keeps the most recent `keep` entries in memory
(`entries`) for the CLI and tests. `asked` is a JSON-able dict describing the request
(bus, address, registers, device, ...). Thread-safe; never raises into the caller — an
unwritable log file is reported once on stderr and the in-memory log keeps working.
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["AuditLog"]


class AuditLog:
    def __init__(self, path: Path | str | None = None, *, keep: int = 1000,
                 stream: TextIO | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        self._file: TextIO | None = stream
        self._owns_file = False
        self._broken = False
        if self.path is not None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self._owns_file = True

    def record(self, driver: str, call: str, asked: dict[str, Any], why: str,
               outcome: str = "access") -> dict[str, Any]:
        entry = {"time": round(time.time(), 6), "driver": driver, "call": call,
                 "asked": asked, "why": why, "outcome": outcome}
        with self._lock:
            self.entries.append(entry)
            if self._file is not None and not self._broken:
                try:
                    self._file.write(json.dumps(entry, default=repr) + "\n")
                    self._file.flush()
                except (OSError, ValueError) as err:
                    self._broken = True
                    print(f"wasi-hw: audit log unwritable, keeping entries in memory: {err}",
                          file=sys.stderr)
        return entry

    def for_driver(self, driver: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.entries if e["driver"] == driver]

    def close(self) -> None:
        with self._lock:
            if self._owns_file and self._file is not None:
                self._file.close()
            self._file = None
