"""The kernel's audit log: one JSON object per line for every denial and contract violation.

Contract: `AuditLog.record(driver, call, asked, why, outcome)` appends
``{"time": <unix seconds>, "driver", "call", "asked", "why", "outcome"}`` as one line to the
log file (if any, flushed per entry) and keeps the most recent `keep` entries in memory
(`entries`) for the CLI and tests. `asked` is a JSON-able dict describing the request
(bus, address, registers, device, ...). Thread-safe; never raises into the caller — an
unwritable log file is reported once on stderr and the in-memory log keeps working.

Bounded output, whatever a driver does:
- a token bucket per driver (``burst`` entries, refilled at ``rate`` per second): beyond it
  entries are dropped and counted (`dropped`, per driver), and the driver's next recorded
  entry carries ``"suppressed": <n>``; `record` then returns None;
- ``why`` is cut at 500 characters and each line at ``max_line`` bytes (``asked`` replaced
  by ``{"truncated": true}`` when it is the excess);
- the file: when it would grow past ``max_bytes`` it is rotated once (``<path>.1``, the
  previous ``.1`` replaced), so the log never takes more than twice ``max_bytes``; a stream
  handed in is not rotated — past ``max_bytes`` further lines are counted, not written.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["AuditLog"]


class AuditLog:
    def __init__(self, path: Path | str | None = None, *, keep: int = 1000,
                 stream: TextIO | None = None, max_bytes: int = 8 << 20, rate: float = 200.0,
                 burst: int = 1000, max_line: int = 4096) -> None:
        self.path = Path(path) if path is not None else None
        self.entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self._lock = threading.Lock()
        self._file: TextIO | None = stream
        self._owns_file = False
        self._broken = False
        self.max_bytes = max_bytes
        self.max_line = max_line
        self._rate = rate
        self._burst = burst
        self._buckets: dict[str, list[float]] = {}    # driver → [tokens, last refill]
        self.dropped: dict[str, int] = {}              # driver → entries dropped (rate)
        self._pending: dict[str, int] = {}            # dropped since the driver's last entry
        self.unwritten = 0                             # lines a full stream did not take
        self._written = 0
        if self.path is not None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
            self._owns_file = True
            self._written = self._file.tell()

    def _admit(self, driver: str) -> bool:
        now = time.monotonic()
        bucket = self._buckets.get(driver)
        if bucket is None:
            if len(self._buckets) > 4096:    # names come from manifests: bounded in practice
                self._buckets.clear()
            bucket = self._buckets[driver] = [float(self._burst), now]
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            self.dropped[driver] = self.dropped.get(driver, 0) + 1
            self._pending[driver] = self._pending.get(driver, 0) + 1
            return False
        bucket[0] = tokens - 1
        return True

    def record(self, driver: str, call: str, asked: dict[str, Any], why: str,
               outcome: str = "access") -> dict[str, Any] | None:
        why = str(why)
        if len(why) > 500:
            why = why[:500] + f"… [{len(why) - 500} more]"
        entry: dict[str, Any] = {"time": round(time.time(), 6), "driver": driver, "call": call,
                                 "asked": asked, "why": why, "outcome": outcome}
        with self._lock:
            if not self._admit(driver):
                return None
            pending = self._pending.pop(driver, 0)
            if pending:
                entry["suppressed"] = pending
            self.entries.append(entry)
            if self._file is not None and not self._broken:
                self._write(entry)
        return entry

    def _write(self, entry: dict[str, Any]) -> None:
        try:
            line = json.dumps(entry, default=repr)
            if len(line) > self.max_line:
                line = json.dumps({**entry, "asked": {"truncated": True}}, default=repr)
                line = line[:self.max_line]
            line += "\n"
            size = len(line.encode("utf-8", "replace"))
            if self._written + size > self.max_bytes:
                if not self._rotate():
                    self.unwritten += 1
                    return
            self._file.write(line)   # type: ignore[union-attr]
            self._file.flush()       # type: ignore[union-attr]
            self._written += size
        except (OSError, ValueError) as err:
            self._broken = True
            print(f"wasi-hw: audit log unwritable, keeping entries in memory: {err}",
                  file=sys.stderr)

    def _rotate(self) -> bool:
        """Start a fresh file (the full one becomes ``<path>.1``); False for a stream."""
        if not self._owns_file or self.path is None or self._file is None:
            return False
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._written = 0
        return True

    def for_driver(self, driver: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.entries if e["driver"] == driver]

    def close(self) -> None:
        with self._lock:
            if self._owns_file and self._file is not None:
                self._file.close()
            self._file = None
