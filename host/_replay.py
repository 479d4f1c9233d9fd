"""Replay backends: serve a recorded trace (`wasi_hw.host._trace`) back to a driver.

`ReplayI2cBackend(trace)` and `ReplayUsbBackend(trace)` are backends that touch no hardware:
each request must equal the next recorded request of its bus kind ("i2c." / "usb."
records, in order); it then gets the recorded outcome — the result data, or the recorded
error kind raised as `wasi_hw.HwError` — so a driver behaves exactly as it did on the
recorded hardware. What must match: I2C transactions (bus, address, address width, every
operation with its write data and read length) and delays (nanoseconds); USB calls (method
and every argument, handles by their trace number). Closing handles, ``close()`` and
``shutdown()`` consume a matching record when one is next and are otherwise accepted, so
teardown order is not a divergence. USB ``devices()`` returns the most recent recorded
enumeration: a ``usb.devices`` record next in line is consumed by it, and skipped (taken as
the current snapshot) by any other request — hotplug polling frequency may differ.

The first request that differs raises `ReplayDivergence` (an `HwError` of kind ``other``,
which is what the driver sees as its errno), showing both sides::

    replay diverged at record 7: recorded `i2c i2c-1 0x76: write [F7], read 8`;
    requested `i2c i2c-1 0x76: write [FA], read 3`

It is logged at ERROR on the ``wasi_hw.replay`` logger (stderr by default) and kept in
``.divergence``; every later request raises it again (a replay cannot resynchronise).
Running past the end of the trace is a divergence too. `done()` raises one if recorded
requests were left unconsumed (embedded-hal-mock's rule: the script must be used up).

`replaying(trace)` makes `wasi_hw.host._trace.traced` substitute replay backends for the
ones a run builds (``wasi-hw trace replay TRACE -- run ...``); the built ones are closed
unused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from wasi_hw import HwError

from ._clock import VirtualClock
from ._i2c_backend import I2cBackend, Op
from ._trace import (
    Trace,
    _device_from_cbor,
    _ops_to_cbor,
    _Session,
    _session,
    _usb_result_from_cbor,
    _UsbForwarder,
    format_record,
    read_trace,
)
from ._usb_backend import UsbBackend

__all__ = ["ReplayDivergence", "ReplayI2cBackend", "ReplayUsbBackend", "replaying"]

_log = logging.getLogger("wasi_hw.replay")
_TEARDOWN = ("i2c.close", "usb.close", "usb.shutdown")


class ReplayDivergence(HwError):
    """A replayed driver asked for something other than what was recorded.

    ``index`` is the record number (1-based, as ``wasi-hw trace show`` numbers them),
    ``recorded`` the record expected there (None past the end), ``requested`` the request
    made, in the same record shape (None: the run ended with records left over).
    """

    def __init__(self, index: int, recorded: dict[str, Any] | None,
                 requested: dict[str, Any] | None, source: str = "") -> None:
        self.index = index
        self.recorded = recorded
        self.requested = requested
        self.source = source
        want = f"`{format_record(_request_only(recorded))}`" if recorded else "end of trace"
        where = f" of {source}" if source else ""
        if requested is None:
            text = f"replay ended early: record {index}{where} was never requested: {want}"
        else:
            text = (f"replay diverged at record {index}{where}: recorded {want}; "
                    f"requested `{format_record(requested)}`")
        super().__init__("other", text)


def _request_only(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("result", "error", "t_ns", "dur_ns")}


def _load(trace: Trace | str | os.PathLike | bytes) -> Trace:
    return trace if isinstance(trace, Trace) else read_trace(trace)


class _Cursor:
    """The records of one bus kind and the position in them; the divergence rule."""

    def __init__(self, trace: Trace, prefix: str) -> None:
        self.trace = trace
        self.items = trace.of(prefix)
        self.pos = 0
        self.divergence: ReplayDivergence | None = None
        self.lock = threading.RLock()

    def peek(self) -> tuple[int, dict[str, Any]] | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def diverge(self, recorded: tuple[int, dict[str, Any]] | None, requested: dict) -> NoReturn:
        index = recorded[0] + 1 if recorded else len(self.trace.records) + 1
        self.divergence = ReplayDivergence(index, recorded[1] if recorded else None,
                                           requested, self.trace.source)
        _log.error("%s", self.divergence.message)
        raise self.divergence

    def check(self) -> None:
        if self.divergence is not None:
            d = self.divergence
            raise ReplayDivergence(d.index, d.recorded, d.requested, d.source)

    def take(self, requested: dict[str, Any], same) -> dict[str, Any]:
        """Consume the next record if ``same(record)``; else diverge."""
        self.check()
        nxt = self.peek()
        if nxt is None or nxt[1]["op"] != requested["op"] or not same(nxt[1]):
            self.diverge(nxt, requested)
        self.pos += 1
        return nxt[1]

    def teardown(self, requested: dict[str, Any], same) -> dict[str, Any] | None:
        """Consume a matching teardown record if it is next; never diverge."""
        nxt = self.peek()
        if self.divergence is None and nxt and nxt[1]["op"] == requested["op"] and same(nxt[1]):
            self.pos += 1
            return nxt[1]
        return None

    def done(self) -> None:
        self.check()
        rest = [(i, r) for i, r in self.items[self.pos:] if r["op"] not in _TEARDOWN
                and r["op"] != "usb.devices"]
        if rest:
            i, rec = rest[0]
            self.divergence = ReplayDivergence(i + 1, rec, None, self.trace.source)
            raise self.divergence


def _outcome(rec: dict[str, Any]) -> Any:
    if "error" in rec:
        err = rec["error"]
        raise HwError(err["kind"], err.get("message") or "")
    return rec.get("result")


class _ReplayState:
    """What both replay backends report about their progress."""

    _cur: _Cursor

    @property
    def divergence(self) -> ReplayDivergence | None:
        """The divergence met, if any (every later request raises it again)."""
        return self._cur.divergence

    @property
    def replayed(self) -> int:
        """Records of this bus kind consumed so far."""
        return self._cur.pos

    @property
    def remaining(self) -> int:
        """Records of this bus kind not yet consumed."""
        return len(self._cur.items) - self._cur.pos

    def done(self) -> None:
        """Raise `ReplayDivergence` if recorded requests were left unreplayed (teardown
        and enumeration records excepted)."""
        with self._cur.lock:
            self._cur.done()


class ReplayI2cBackend(_ReplayState):
    """An `I2cBackend` serving a trace's I2C records (see the module docstring).

    ``clock`` is a `VirtualClock` advanced by each replayed delay and by each transaction's
    recorded duration, so time-dependent logic sees the recorded timeline.
    """

    name = "replay"

    def __init__(self, trace: Trace | str | os.PathLike | bytes) -> None:
        self.trace = _load(trace)
        self._cur = _Cursor(self.trace, "i2c.")
        self.clock = VirtualClock()
        info = self.trace.header.get("backends", {}).get("i2c", {})
        buses = info.get("buses")
        if not isinstance(buses, list):
            buses = sorted({r["bus"] for _, r in self._cur.items if "bus" in r})
        self._buses = list(buses)
        self.recorded_backend = info.get("name", "?")

    def buses(self) -> list[str]:
        return list(self._buses)

    def transaction(self, bus: str, address: int, ten_bit: bool, ops: Sequence[Op]) -> list[bytes]:
        req = {"op": "i2c.transaction", "bus": bus, "address": address,
               "ten_bit": bool(ten_bit), "ops": _ops_to_cbor(ops)}
        with self._cur.lock:
            rec = self._cur.take(req, lambda r: all(r.get(k) == req[k] for k in req))
        self.clock.sleep_ns(max(0, int(rec.get("dur_ns", 0))))
        return list(_outcome(rec))

    def delay_ns(self, ns: int) -> None:
        req = {"op": "i2c.delay", "ns": int(ns)}
        with self._cur.lock:
            self._cur.take(req, lambda r: r.get("ns") == req["ns"])
        self.clock.sleep_ns(int(ns))

    def close(self) -> None:
        with self._cur.lock:
            self._cur.teardown({"op": "i2c.close"}, lambda r: True)



class ReplayUsbBackend(_ReplayState, _UsbForwarder):
    """A `UsbBackend` serving a trace's USB records (see the module docstring); handles
    are the trace's handle numbers."""

    name = "replay"

    def __init__(self, trace: Trace | str | os.PathLike | bytes) -> None:
        self.trace = _load(trace)
        self._cur = _Cursor(self.trace, "usb.")
        self._snapshot: list = []
        self.recorded_backend = (
            self.trace.header.get("backends", {}).get("usb", {}).get("name", "?")
        )

    def _skip_snapshots(self) -> None:
        while (nxt := self._cur.peek()) and nxt[1]["op"] == "usb.devices":
            if "result" in nxt[1]:
                self._snapshot = [_device_from_cbor(d) for d in nxt[1]["result"]]
            self._cur.pos += 1

    def _call(self, method: str, args: dict[str, Any]) -> Any:
        req = {"op": f"usb.{method}", "args": args}
        with self._cur.lock:
            self._cur.check()
            if method == "devices":
                nxt = self._cur.peek()
                if nxt and nxt[1]["op"] == "usb.devices":
                    self._cur.pos += 1
                    self._snapshot = _usb_result_from_cbor("devices", _outcome(nxt[1]))
                return list(self._snapshot)
            self._skip_snapshots()
            same = lambda r: r.get("args") == args  # noqa: E731
            if method in ("close", "shutdown"):
                rec = self._cur.teardown(req, same)
                return None if rec is None else _usb_result_from_cbor(method, _outcome(rec))
            rec = self._cur.take(req, same)
        return _usb_result_from_cbor(method, _outcome(rec))

class _ReplaySession(_Session):
    def __init__(self, trace: Trace) -> None:
        super().__init__()
        self.trace = trace

    def wrap(self, backend: Any) -> Any:
        if isinstance(backend, (ReplayI2cBackend, ReplayUsbBackend)):
            return backend
        if isinstance(backend, UsbBackend):
            replay: Any = ReplayUsbBackend(self.trace)
            backend.shutdown()
        elif isinstance(backend, I2cBackend):
            replay = ReplayI2cBackend(self.trace)
            backend.close()
        else:
            raise TypeError(f"cannot replay into {type(backend).__name__}: "
                            "not an I2C or USB backend")
        self.backends.append(replay)
        return replay


@contextlib.contextmanager
def replaying(trace: Trace | str | os.PathLike | bytes) -> Iterator[list]:
    """While active, `traced` replaces every backend with a replay of ``trace``. Yields
    the list of replay backends made so far."""
    with _session(_ReplaySession(_load(trace))) as session:
        yield session.backends
