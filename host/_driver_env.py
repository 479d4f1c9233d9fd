"""`DriverEnv`: the semantics of ``witx/wasi_driver.witx`` for one driver instance.

- ``report(data)``: ``data`` must be exactly one well-formed CBOR item (cbor2, nesting
  depth ≤ 32, no trailing bytes) of at most ``max_report`` bytes — else ``invalid_argument``
  / ``no_mem``. The item must also be one the kernel can route and print: no value sharing
  that makes it larger than its encoding (tags 28/29: a list that contains itself, or
  repeats a shared part), no integer beyond 4000 decimal digits — else ``invalid_argument``.
  Rate-limited like ``log`` (``report_burst``, ``report_rate``; beyond it ``no_mem``,
  counted in ``dropped_reports``). The decoded item goes to ``report_sink(item)``.
- ``log(level, message)``: to ``log_sink(level_name, message)`` (``"error"`` … ``"trace"``);
  control characters (newlines, terminal escapes) are shown as ``\\xNN`` so a driver cannot
  forge log lines or drive the terminal; messages longer than ``max_log`` characters are cut
  with a marker. Rate-limited by a
  token bucket on ``clock`` (``log_burst`` messages, refilled at ``log_rate`` per second):
  beyond it ``no_mem`` and the message is dropped (counted in ``dropped_logs``).
- ``config_get(key, buf)``: copies the UTF-8 value of ``key`` into ``buf`` and returns its
  length; ``not_found`` for an unknown key, ``too_large`` (nothing written) when it does
  not fit. Every key asked for is noted in ``config_read`` (key → whether it was set), so a
  front end can name keys given but never read, and keys read but never given.
- ``inbox(buf)``: takes the newest message given to `deliver` (CBOR bytes) into ``buf``;
  returns its length, 0 when empty; ``too_large`` leaves it in the inbox.
- ``now_ns()``: ``clock.now_ns()`` (virtual time under simulation).
- Grants between drivers (``grant``, ``revoke``, ``granted_len``, ``granted_read``,
  ``granted_write``): the spec's argument rules are checked here (``rights`` not empty →
  else ``invalid_argument``), then the call goes to ``sharing``, a `Sharing` the kernel
  hands in — the kernel's grant table, which checks its policy and every access, audits
  denials and copies between the two drivers' memories. The host never sees another
  driver's memory. Without a ``sharing`` (a driver run alone) every grant call is
  ``access``. `close_all()` (the instance stops) calls ``sharing.close()``: every grant the
  instance gave or received ends.
"""

from __future__ import annotations

import fractions
import io
import re
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import cbor2

from wasi_hw import HwError

from ._clock import Clock, RealClock

__all__ = ["DriverEnv", "Sharing"]

_LEVELS = ("error", "warn", "info", "debug", "trace")
# C0 controls (but tab), DEL and C1 controls → visible escapes
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0))}


def _seeks_back() -> bool:
    """Whether this cbor2 rewinds a seekable stream to the end of the decoded item when it
    read ahead (cbor2 ≥ 5.6 does). If not, reading byte by byte keeps ``tell()`` exact."""
    fp = io.BytesIO(b"\x01\x02")
    try:
        cbor2.CBORDecoder(fp).decode()
    except Exception:  # noqa: BLE001 — any surprise: take the slow, exact way
        return False
    return fp.tell() == 1


_READ_SIZE = 4096 if _seeks_back() else 1


# The fast path of `decode_cbor_item`: ``[item, secret]`` through `cbor2.loads` (one C call,
# ≈ 0.6 µs instead of ≈ 1.5 µs for a decoder over a stream). `loads` ignores trailing bytes, so
# the data is framed as a 2-element array whose second element is a byte string the guest
# cannot know: it decodes back to ``secret`` only when ``data`` was exactly one item.
_SECRET = os.urandom(16)
_TAIL = b"\x50" + _SECRET          # byte string of 16 bytes


def decode_cbor_item(data: bytes, *, max_depth: int = 32) -> Any:
    """Exactly one CBOR data item that can be routed and printed (module docstring), or
    ``HwError("invalid_argument")``."""
    try:
        framed = cbor2.loads(b"\x82" + data + _TAIL, max_depth=max_depth + 1)
    except Exception:  # noqa: BLE001 — any failure: the exact path names it
        framed = None
    if type(framed) is list and len(framed) == 2 and framed[1] == _SECRET:
        item = framed[0]
    else:
        item = _decode_exactly(data, max_depth)
    if type(item) not in _FLAT and _TAG.search(data) is not None:
        _check_routable(item, len(data))     # without such a tag: no sharing, no bignum
    return item


def _decode_exactly(data: bytes, max_depth: int) -> Any:
    fp = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(fp, read_size=_READ_SIZE, max_depth=max_depth).decode()
    except Exception as err:  # noqa: BLE001 — whatever cbor2 raises (or a semantic tag's
        # constructor): a report the host cannot decode is the guest's error, not a host bug
        raise HwError("invalid_argument", f"malformed CBOR: {type(err).__name__}: "
                                          f"{_cut(err)}") from None
    if fp.tell() != len(data):
        raise HwError("invalid_argument", f"{len(data) - fp.tell()} bytes after the CBOR item")
    return item


_FLAT = frozenset({float, str, bytes, bool, type(None)})
# where a tag that shares values (28, 29) or makes a bignum (2, 3) could start, in any of
# the encodings of its head (one byte, or 0xd8..0xdb and the number in 1, 2, 4 or 8 bytes)
_TAG = re.compile(rb"[\xc2\xc3]|\xd8[\x02\x03\x1c\x1d]|\xd9\x00[\x02\x03\x1c\x1d]"
                  rb"|\xda\x00{3}[\x02\x03\x1c\x1d]|\xdb\x00{7}[\x02\x03\x1c\x1d]")
_MAX_INT = 10 ** 4000        # str() refuses ints beyond 4300 digits


def _cut(err: BaseException) -> str:
    try:
        text = str(err)
    except Exception:  # noqa: BLE001
        return "?"
    return text if len(text) <= 200 else text[:200] + "…"


def _check_routable(item: Any, size: int) -> None:
    """Every node visited without deduplication: more nodes than encoded bytes means value
    sharing (tags 28/29) made the item larger than its encoding — a cycle never ends."""
    budget = size + 1
    stack = [item]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise HwError("invalid_argument", "the report shares values (CBOR tags 28/29): "
                                              "it contains itself or repeats a shared part")
        t = type(node)
        if t in _FLAT:
            continue
        if t is int:
            if not -_MAX_INT < node < _MAX_INT:
                raise HwError("invalid_argument", "an integer in the report has more than "
                                                  "4000 digits")
        elif t is list or t is tuple:
            stack.extend(node)
        elif t is dict:
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (set, frozenset)):
            stack.extend(node)
        elif isinstance(node, cbor2.CBORTag):
            stack.append(node.value)
        elif isinstance(node, fractions.Fraction):
            stack.extend((node.numerator, node.denominator))


class Sharing(Protocol):
    """Cross-driver memory grants for one driver instance (implemented by the kernel).

    Regions are `GuestRegion`s of the calling driver's memory. Failures raise `HwError`
    (``access``, ``bad_handle``, ``invalid_argument``, ``no_mem``) or `GuestFault`."""

    def grant(self, region: Any, grantee: str, *, read: bool, write: bool) -> int:
        """Share ``region`` with driver ``grantee``; the new grant's handle."""
        ...

    def revoke(self, handle: int) -> None:
        """End the grant ``handle`` (one this instance made) at once."""
        ...

    def granted_len(self, grantor: str) -> int:
        """Length of the region ``grantor`` granted to this driver."""
        ...

    def read(self, grantor: str, offset: int, buf: Any) -> None:
        """Copy ``len(buf)`` bytes at ``offset`` of ``grantor``'s grant into ``buf``."""
        ...

    def write(self, grantor: str, offset: int, data: Any) -> None:
        """Copy ``data`` into ``grantor``'s grant at ``offset``."""
        ...

    def close(self) -> None:
        """The instance stopped: end every grant it gave or received."""
        ...


class DriverEnv:
    """Report, log, configuration, inbox and time for one driver (see the module docstring)."""

    def __init__(
        self,
        *,
        config: Mapping[str, str | bytes] | None = None,
        report_sink: Callable[[Any], None] | None = None,
        log_sink: Callable[[str, str], None] | None = None,
        clock: Clock | None = None,
        max_report: int = 4096,
        max_log: int = 1024,
        log_burst: int = 50,
        report_burst: int = 200,
        report_rate: float = 2000.0,
        log_rate: float = 20.0,
        sharing: Sharing | None = None,
    ) -> None:
        self._config: dict[str, bytes] = {}
        self.config_read: dict[str, bool] = {}
        for key, value in (config or {}).items():
            if not isinstance(value, (str, bytes)):
                raise TypeError(f"configuration value of {key!r} must be str or bytes, not {type(value).__name__}")
            self._config[str(key)] = value if isinstance(value, bytes) else value.encode()
        self._report_sink = report_sink or (lambda item: None)
        self._log_sink = log_sink or (lambda level, message: None)
        self.clock = clock or RealClock()
        self._max_report = max_report
        self._max_log = max_log
        self._burst = log_burst
        self._rate = log_rate
        self._tokens = float(log_burst)
        self._refilled = self.clock.now_ns()
        self._sharing = sharing
        self._inbox: bytes | None = None
        self._lock = threading.Lock()
        self.dropped_logs = 0
        self._report_burst = report_burst
        self._report_rate = report_rate
        self._report_tokens = float(report_burst)
        self._report_refilled = self._refilled
        self.dropped_reports = 0

    def report(self, data: bytes) -> None:
        if len(data) > self._max_report:
            raise HwError("no_mem", f"report of {len(data)} bytes exceeds the quota of {self._max_report}")
        tokens = self._report_tokens - 1      # the clock is read only when the bucket is dry
        if tokens < 0:
            now = self.clock.now_ns()
            tokens = min(self._report_burst, self._report_tokens
                         + (now - self._report_refilled) * self._report_rate / 1e9) - 1
            self._report_refilled = now
            if tokens < 0:
                self._report_tokens = tokens + 1
                self.dropped_reports += 1
                raise HwError("no_mem", "report rate quota exceeded")
        self._report_tokens = tokens
        self._report_sink(decode_cbor_item(bytes(data)))

    def log(self, level: int, message: str) -> None:
        level = int(level)
        if not 0 <= level < len(_LEVELS):
            raise HwError("invalid_argument", f"log level {level} out of range")
        now = self.clock.now_ns()
        with self._lock:
            self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate / 1e9)
            self._refilled = now
            if self._tokens < 1:
                self.dropped_logs += 1
                raise HwError("no_mem", "log rate quota exceeded")
            self._tokens -= 1
        if len(message) > self._max_log:
            message = message[: self._max_log] + f"… [{len(message) - self._max_log} more]"
        message = message.translate(_CONTROLS)
        self._log_sink(_LEVELS[level], message)

    def config_get(self, key: str, buf: Any) -> int:
        value = self._config.get(key)
        if len(self.config_read) < 256:
            self.config_read[key[:64]] = value is not None
        if value is None:
            raise HwError("not_found", f"no configuration key {key!r}")
        if len(value) > len(buf):
            raise HwError("too_large", f"value of {key!r} is {len(value)} bytes, buffer {len(buf)}")
        if value:
            buf.write(value)
        return len(value)

    def deliver(self, message: Any) -> None:
        """Put a message into the inbox (CBOR bytes, or any item, encoded here); newest wins."""
        data = message if isinstance(message, bytes) else cbor2.dumps(message)
        with self._lock:
            self._inbox = data

    def inbox(self, buf: Any) -> int:
        with self._lock:
            data = self._inbox
            if data is None:
                return 0
            if len(data) > len(buf):
                raise HwError("too_large", f"inbox message is {len(data)} bytes, buffer {len(buf)}")
            self._inbox = None
        buf.write(data)
        return len(data)

    def now_ns(self) -> int:
        return self.clock.now_ns()

    # -- grants between drivers (delegated to the kernel's `Sharing`) ---------------------

    def _share(self, call: str) -> Sharing:
        if self._sharing is None:
            raise HwError("access", f"{call}: no other drivers to share memory with "
                                    "(this driver runs without a kernel grant table)")
        return self._sharing

    def grant(self, region: Any, grantee: str, rights: int) -> int:
        rights = int(rights)
        if not rights & 3:
            raise HwError("invalid_argument", "grant rights must include read or write")
        return self._share("grant").grant(region, grantee, read=bool(rights & 1),
                                          write=bool(rights & 2))

    def revoke(self, grant: int) -> None:
        self._share("revoke").revoke(int(grant))

    def granted_len(self, grantor: str) -> int:
        return self._share("granted_len").granted_len(grantor)

    def granted_read(self, grantor: str, offset: int, buf: Any) -> None:
        self._share("granted_read").read(grantor, int(offset), buf)

    def granted_write(self, grantor: str, offset: int, data: Any) -> None:
        self._share("granted_write").write(grantor, int(offset), data)

    def close_all(self) -> None:
        """The instance stops: every grant it gave or received ends (idempotent)."""
        sharing, self._sharing = self._sharing, None
        if sharing is not None:
            sharing.close()
