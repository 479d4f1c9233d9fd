"""Log lines fit for a terminal and for systemd's journal.

Contract: `LogStyle.detect(stream)` decides once per process how the CLI writes its event
lines: under systemd (``JOURNAL_STREAM`` names the device and inode of `stream`) every line
starts with a syslog priority prefix ``<N>`` (sd-daemon(3): journald stores it as the
entry's level and strips it); colour is never used (there is none to strip, on a terminal
either). `line(level, text)` makes exactly one line of `text` — embedded newlines and other
control characters are escaped (``\\n``), so one event is one journal entry.
Levels: ``error`` 3, ``warn``/``warning`` 4, ``notice`` 5, ``info`` 6, ``debug`` and
``trace`` 7 (unknown names: 6).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import TextIO

__all__ = ["LogStyle", "PRIORITIES", "under_journal"]

PRIORITIES = {"emerg": 0, "alert": 1, "crit": 2, "error": 3, "err": 3, "warn": 4,
              "warning": 4, "notice": 5, "info": 6, "debug": 7, "trace": 7}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def under_journal(stream: TextIO | None = None) -> bool:
    """True when `stream` (default stderr) is connected to the journal (``JOURNAL_STREAM``)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    stream = stream or sys.stderr
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def _escape(text: str) -> str:
    return _CONTROL.sub(lambda m: {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(
        m.group(), f"\\x{ord(m.group()):02x}"), text)


@dataclass(frozen=True)
class LogStyle:
    journal: bool = False

    @classmethod
    def detect(cls, stream: TextIO | None = None) -> "LogStyle":
        return cls(journal=under_journal(stream))

    def line(self, level: str, text: str) -> str:
        body = _escape(text)
        if self.journal:
            return f"<{PRIORITIES.get(level.lower(), 6)}>{body}"
        return body
