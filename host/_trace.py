"""Bus traces: record every backend operation to a CBOR file, read it back.

A trace is what crossed the backend boundary (`I2cBackend`, `UsbBackend`) during a run:
each request with its data and what came back. `RecordingI2cBackend` / `RecordingUsbBackend`
wrap any backend and append to a `TraceWriter`; `wasi_hw.host.ReplayI2cBackend` /
`ReplayUsbBackend` serve a trace back to a driver; ``wasi-hw trace show`` lists one.

File format, version 1 (anyone can produce it, e.g. a logger on a Raspberry Pi)
-------------------------------------------------------------------------------
A CBOR sequence (RFC 8742): CBOR data items back to back, no framing. Every item is a map
with text keys. Byte data are CBOR byte strings; integers are plain integers.

1. The **header**, first item::

     {"format": "wasi-hw-trace", "version": 1,
      "created": "2026-11-22T04:00:00Z",                 # UTC wall clock, RFC 3339
      "backends": {"i2c": {"name": "smbus2", "buses": ["i2c-1"]},   # what was recorded
                   "usb": {"name": "pyusb"}},
      "meta": {...}}                                      # free-form (command line, host)

2. One **record** per backend operation, in the order they happened. Common keys:
   ``"op"`` (text, below), ``"t_ns"`` (monotonic nanoseconds since the trace started, from
   the writer's clock), ``"dur_ns"`` (time the operation took). A failed operation has
   ``"error": {"kind": K, "message": M}`` — ``K`` an ``i2c_errno`` / ``usb_errno`` case
   name — instead of ``"result"``.

   I2C (`I2cBackend`):

   - ``{"op": "i2c.transaction", "bus": "i2c-1", "address": 118, "ten_bit": false,
     "ops": [{"write": h'F7'}, {"read": 8}], "result": [h'5A6B7C...']}`` — one
     transaction as the backend got it: on the wire START, address+W, the ``write`` bytes,
     repeated START, address+R, ``read`` bytes clocked in, STOP. ``result`` holds one byte
     string per ``read`` op, in order.
   - ``{"op": "i2c.delay", "ns": 2000000}`` — the driver waited.
   - ``{"op": "i2c.close"}``.

   USB (`UsbBackend`): ``"op"`` is ``"usb."`` + the backend method name, ``"args"`` a map
   of its parameters by name, ``"result"`` its return value::

     {"op": "usb.control_in", "args": {"handle": 1, "request_type": 128, "request": 6,
      "value": 256, "index": 0, "length": 18, "timeout_ms": 1000}, "result": h'1201...'}

   Methods: ``devices`` (result: list of device maps — the `UsbDeviceInfo` fields, with
   ``port_path`` a list and ``config_descriptors`` a list of byte strings), ``open``
   (``device_id``; result: a handle number — handles are numbered 1, 2, … by the recorder
   and appear as ``handle`` in later args), ``close``, ``string_descriptor``,
   ``get_configuration``, ``set_configuration``, ``claim_interface``, ``release_interface``,
   ``set_alt_setting``, ``detach_kernel_driver``, ``control_in`` / ``control_out``
   (``data``), ``bulk_in`` / ``bulk_out``, ``interrupt_in`` / ``interrupt_out``,
   ``iso_transfer`` (result: list of ``[bytes-or-count, status-kind]``), ``clear_halt``,
   ``reset_device``, ``shutdown``; argument names as in the `UsbBackend` contract.

   A ``{"op": "backend", "bus_kind": "i2c", "name": ..., "buses": [...]}`` record declares
   a backend wrapped after the header was written; `read_trace` merges it into the header.

Readers ignore keys they do not know; a writer must not change the meaning of these.
A trace cut short (a crash mid-write) reads up to its last complete record.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import inspect
import io
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

import cbor2

from wasi_hw import HwError, UserError

from ._i2c_backend import I2cBackend, Op, Read, Write
from ._usb_backend import UsbBackend, UsbDeviceInfo

__all__ = [
    "FORMAT",
    "VERSION",
    "Trace",
    "TraceWriter",
    "read_trace",
    "RecordingI2cBackend",
    "RecordingUsbBackend",
    "recording",
    "traced",
    "format_record",
    "format_request",
    "format_outcome",
]

FORMAT = "wasi-hw-trace"
VERSION = 1


# --------------------------------------------------------------------------- writing


class TraceWriter:
    """Appends a trace to a file (path or binary file object), one flushed record at a time.

    The header goes out with the first record (or at `close`), so backends wrapped before
    then are listed in it. Thread-safe. ``clock`` gives the timestamps (default
    ``time.monotonic_ns``; pass a `VirtualClock`'s ``now_ns`` for simulated time);
    ``created`` overrides the header's creation time (reproducible files).
    """

    def __init__(
        self,
        dest: str | os.PathLike | BinaryIO,
        *,
        meta: dict[str, Any] | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
        created: str | None = None,
    ) -> None:
        try:
            cbor2.dumps(meta or {})
        except (cbor2.CBOREncodeError, TypeError, ValueError) as err:
            raise ValueError(f"trace meta is not CBOR-encodable: {err}") from None
        if isinstance(dest, (str, os.PathLike)):
            self._file: BinaryIO = open(dest, "wb")
            self._owned = True
        else:
            self._file, self._owned = dest, False
        self._clock = clock
        self._t0 = clock()
        self._lock = threading.Lock()
        self._header: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "created": created
            or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "backends": {},
            "meta": dict(meta or {}),
        }
        self._header_written = False
        self._closed = False
        self.records = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def now_ns(self) -> int:
        """Nanoseconds since the trace started."""
        return self._clock() - self._t0

    def declare(self, bus_kind: str, name: str, buses: Sequence[str] | None = None) -> None:
        """Note a recorded backend (``bus_kind`` "i2c" or "usb") in the header."""
        info: dict[str, Any] = {"name": name}
        if buses is not None:
            info["buses"] = list(buses)
        with self._lock:
            if not self._header_written:
                self._header["backends"][bus_kind] = info
            else:
                self._write({"op": "backend", "bus_kind": bus_kind, **info})

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (a map with ``op``; ``t_ns`` is added if absent)."""
        record.setdefault("t_ns", self.now_ns())
        with self._lock:
            self._write(record)
            self.records += 1

    def _write(self, item: dict[str, Any]) -> None:
        if self._closed:
            raise ValueError("trace writer is closed")
        if not self._header_written:
            self._header_written = True
            cbor2.dump(self._header, self._file)
        cbor2.dump(item, self._file)
        self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if not self._header_written:
                self._header_written = True
                cbor2.dump(self._header, self._file)
            self._closed = True
            if self._owned:
                self._file.close()
            else:
                self._file.flush()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- reading


@dataclass
class Trace:
    """A trace read back: its header and its records (maps, as in the module docstring)."""

    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    source: str = "<trace>"
    truncated: bool = False  # the file ended inside a record

    def of(self, prefix: str) -> list[tuple[int, dict[str, Any]]]:
        """(index, record) for the records whose op starts with ``prefix`` ("i2c.")."""
        return [(i, r) for i, r in enumerate(self.records) if r["op"].startswith(prefix)]


def read_trace(src: str | os.PathLike | bytes | BinaryIO) -> Trace:
    """Read and check a trace. Malformed input raises `wasi_hw.UserError` naming the
    file, the record number and what is wrong."""
    if isinstance(src, (bytes, bytearray)):
        name, data = "<bytes>", bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        name = os.fspath(src)
        try:
            data = Path(src).read_bytes()
        except OSError as err:
            raise UserError(f"{name}: cannot read trace: {err.strerror or err}") from None
    else:
        name, data = getattr(src, "name", "<stream>"), src.read()
    stream = io.BytesIO(data)
    items: list[Any] = []
    truncated = False
    while stream.tell() < len(data):
        pos = stream.tell()
        try:
            items.append(cbor2.load(stream))
        except (cbor2.CBORDecodeEOF, EOFError):
            truncated = True
            break
        except (cbor2.CBORDecodeError, ValueError) as err:
            raise UserError(f"{name}: not a CBOR trace (byte {pos}: {err})") from None
    if not items:
        raise UserError(f"{name}: empty file, not a wasi-hw trace")
    header = items[0]
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{name}: not a wasi-hw trace (no {FORMAT!r} header)")
    if header.get("version") != VERSION:
        raise UserError(
            f"{name}: trace format version {header.get('version')!r} is not supported "
            f"(this wasi-hw reads version {VERSION})"
        )
    header.setdefault("backends", {})
    trace = Trace(header, [], name, truncated)
    for n, rec in enumerate(items[1:], 1):
        _check_record(name, n, rec)
        if rec["op"] == "backend":
            info = {k: v for k, v in rec.items() if k in ("name", "buses")}
            header["backends"].setdefault(rec.get("bus_kind", "?"), info)
            continue
        trace.records.append(rec)
    return trace


# The shape of each I2C record: key → required type.
_I2C_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "i2c.transaction": {"bus": str, "address": int, "ten_bit": bool, "ops": list},
    "i2c.delay": {"ns": int},
    "i2c.close": {},
}


def _check_record(name: str, n: int, rec: Any) -> None:
    def bad(why: str) -> UserError:
        return UserError(f"{name}: record {n}: {why}")

    if not isinstance(rec, dict) or not isinstance(rec.get("op"), str):
        raise bad("not a map with a text 'op'")
    op = rec["op"]
    if not isinstance(rec.get("t_ns", 0), int):
        raise bad("'t_ns' is not an integer")
    if op == "backend":
        return
    if "error" in rec:
        err = rec["error"]
        if not isinstance(err, dict) or not isinstance(err.get("kind"), str):
            raise bad(f"{op}: 'error' must be a map with a text 'kind'")
    if op in _I2C_KEYS:
        for key, typ in _I2C_KEYS[op].items():
            if not isinstance(rec.get(key), typ):
                raise bad(f"{op}: '{key}' missing or not {getattr(typ, '__name__', typ)}")
        if op == "i2c.transaction":
            try:
                ops = _ops_from_cbor(rec["ops"])
            except (TypeError, ValueError, KeyError) as err:
                raise bad(f"i2c.transaction: bad 'ops': {err}") from None
            if "error" not in rec:
                res = rec.get("result")
                reads = [o.length for o in ops if isinstance(o, Read)]
                if not isinstance(res, list) or [len(r) if isinstance(r, bytes) else None
                                                 for r in res] != reads:
                    raise bad(f"i2c.transaction: 'result' must be {len(reads)} byte "
                              f"strings of lengths {reads}")
    elif op.startswith("usb."):
        method = op[4:]
        if method not in _USB_METHODS:
            raise bad(f"unknown USB operation {method!r}")
        args = rec.get("args", {})
        if not isinstance(args, dict) or set(args) != set(_USB_METHODS[method]):
            raise bad(f"{op}: 'args' must have exactly {list(_USB_METHODS[method])}")
        if "error" not in rec and "result" not in rec and method != "shutdown":
            raise bad(f"{op}: neither 'result' nor 'error'")
    elif not op.startswith(("i2c.", "usb.")):
        raise bad(f"unknown operation {op!r}")
    # unknown i2c.* ops from a newer writer are kept; replay reports them if reached


# --------------------------------------------------------------------------- encoding


def _ops_to_cbor(ops: Sequence[Op]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for op in ops:
        if isinstance(op, Read):
            out.append({"read": op.length})
        elif isinstance(op, Write):
            out.append({"write": bytes(op.data)})
        else:
            raise TypeError(f"not an I2C operation: {op!r}")
    return out


def _ops_from_cbor(items: list[Any]) -> list[Op]:
    ops: list[Op] = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError(f"operation {item!r} is not a one-key map")
        if "read" in item:
            if not isinstance(item["read"], int):
                raise ValueError("'read' length is not an integer")
            ops.append(Read(item["read"]))
        elif "write" in item:
            if not isinstance(item["write"], bytes):
                raise ValueError("'write' data is not a byte string")
            ops.append(Write(item["write"]))
        else:
            raise ValueError(f"unknown operation {next(iter(item))!r}")
    return ops


def _error_map(err: BaseException) -> dict[str, str]:
    if isinstance(err, HwError):
        return {"kind": err.kind, "message": err.message}
    return {"kind": "other", "message": f"{type(err).__name__}: {err}"}


def _timed(writer: TraceWriter, rec: dict[str, Any], call: Callable[..., Any],
           *args: Any, **kw: Any) -> Any:
    """``call(*args, **kw)`` with its duration put in ``rec["dur_ns"]`` (``rec["t_ns"]`` is
    its start). When it raises, ``rec`` gets the mapped ``"error"`` and is written before
    the exception goes on; otherwise the caller adds ``"result"`` and writes ``rec``."""
    try:
        result = call(*args, **kw)
    except BaseException as err:
        rec["dur_ns"] = writer.now_ns() - rec["t_ns"]
        rec["error"] = _error_map(err)
        writer.write(rec)
        raise
    rec["dur_ns"] = writer.now_ns() - rec["t_ns"]
    return result


def _device_to_cbor(info: UsbDeviceInfo) -> dict[str, Any]:
    out = {f.name: getattr(info, f.name) for f in fields(UsbDeviceInfo)}
    out["port_path"] = list(info.port_path)
    out["config_descriptors"] = list(info.config_descriptors)
    return out


def _device_from_cbor(item: dict[str, Any]) -> UsbDeviceInfo:
    kw = {f.name: item[f.name] for f in fields(UsbDeviceInfo)}
    kw["port_path"] = tuple(kw["port_path"])
    kw["config_descriptors"] = tuple(kw["config_descriptors"])
    return UsbDeviceInfo(**kw)


# Parameter names of every UsbBackend method a trace records, from the contract itself.
_USB_METHODS: dict[str, tuple[str, ...]] = {
    name: tuple(p for p in inspect.signature(getattr(UsbBackend, name)).parameters if p != "self")
    for name in (
        "devices", "open", "close", "string_descriptor", "get_configuration",
        "set_configuration", "claim_interface", "release_interface", "set_alt_setting",
        "detach_kernel_driver", "control_in", "control_out", "bulk_in", "bulk_out",
        "interrupt_in", "interrupt_out", "iso_transfer", "clear_halt", "reset_device",
        "shutdown",
    )
}  # fmt: skip


class _UsbForwarder(UsbBackend):
    """Every `UsbBackend` method as ``self._call(method, args_by_name)`` — written once for
    the recording and the replaying backend."""

    def _call(self, method: str, args: dict[str, Any]) -> Any:
        raise NotImplementedError

    def devices(self):
        return self._call("devices", {})

    def open(self, device_id):
        return self._call("open", {"device_id": device_id})

    def close(self, handle):
        return self._call("close", {"handle": handle})

    def string_descriptor(self, handle, index, langid):
        return self._call("string_descriptor", {"handle": handle, "index": index, "langid": langid})

    def get_configuration(self, handle):
        return self._call("get_configuration", {"handle": handle})

    def set_configuration(self, handle, value):
        return self._call("set_configuration", {"handle": handle, "value": value})

    def claim_interface(self, handle, interface):
        return self._call("claim_interface", {"handle": handle, "interface": interface})

    def release_interface(self, handle, interface):
        return self._call("release_interface", {"handle": handle, "interface": interface})

    def set_alt_setting(self, handle, interface, alt_setting):
        return self._call("set_alt_setting",
                          {"handle": handle, "interface": interface, "alt_setting": alt_setting})

    def detach_kernel_driver(self, handle, interface):
        return self._call("detach_kernel_driver", {"handle": handle, "interface": interface})

    def control_in(self, handle, request_type, request, value, index, length, timeout_ms):
        return self._call("control_in", {
            "handle": handle, "request_type": request_type, "request": request, "value": value,
            "index": index, "length": length, "timeout_ms": timeout_ms})

    def control_out(self, handle, request_type, request, value, index, data, timeout_ms):
        return self._call("control_out", {
            "handle": handle, "request_type": request_type, "request": request, "value": value,
            "index": index, "data": bytes(data), "timeout_ms": timeout_ms})

    def bulk_in(self, handle, endpoint, length, timeout_ms):
        return self._call("bulk_in", {"handle": handle, "endpoint": endpoint, "length": length,
                                      "timeout_ms": timeout_ms})

    def bulk_out(self, handle, endpoint, data, timeout_ms):
        return self._call("bulk_out", {"handle": handle, "endpoint": endpoint,
                                       "data": bytes(data), "timeout_ms": timeout_ms})

    def interrupt_in(self, handle, endpoint, length, timeout_ms):
        return self._call("interrupt_in", {"handle": handle, "endpoint": endpoint,
                                           "length": length, "timeout_ms": timeout_ms})

    def interrupt_out(self, handle, endpoint, data, timeout_ms):
        return self._call("interrupt_out", {"handle": handle, "endpoint": endpoint,
                                            "data": bytes(data), "timeout_ms": timeout_ms})

    def iso_transfer(self, handle, endpoint, data, packet_lengths, timeout_ms):
        return self._call("iso_transfer", {
            "handle": handle, "endpoint": endpoint,
            "data": None if data is None else bytes(data),
            "packet_lengths": list(packet_lengths), "timeout_ms": timeout_ms})

    def clear_halt(self, handle, endpoint):
        return self._call("clear_halt", {"handle": handle, "endpoint": endpoint})

    def reset_device(self, handle):
        return self._call("reset_device", {"handle": handle})

    def shutdown(self):
        return self._call("shutdown", {})


def _usb_result_to_cbor(method: str, result: Any) -> Any:
    if method == "devices":
        return [_device_to_cbor(d) for d in result]
    if method == "iso_transfer":
        return [[payload, status] for payload, status in result]
    return result


def _usb_result_from_cbor(method: str, result: Any) -> Any:
    if method == "devices":
        return [_device_from_cbor(d) for d in result]
    if method == "iso_transfer":
        return [(payload, status) for payload, status in result]
    return result


# --------------------------------------------------------------------------- recording


class RecordingI2cBackend:
    """An `I2cBackend` that forwards to ``inner`` and records every operation (transparent:
    results and exceptions pass through unchanged)."""

    def __init__(self, inner: I2cBackend, writer: TraceWriter) -> None:
        self.inner = inner
        self.writer = writer
        self.name = inner.name
        writer.declare("i2c", inner.name, inner.buses())

    def buses(self) -> list[str]:
        return self.inner.buses()

    def transaction(self, bus: str, address: int, ten_bit: bool, ops: Sequence[Op]) -> list[bytes]:
        rec: dict[str, Any] = {"op": "i2c.transaction", "t_ns": self.writer.now_ns(),
                               "bus": bus, "address": address, "ten_bit": bool(ten_bit),
                               "ops": _ops_to_cbor(ops)}
        result = _timed(self.writer, rec, self.inner.transaction, bus, address, ten_bit, ops)
        rec["result"] = [bytes(r) for r in result]
        self.writer.write(rec)
        return result

    def delay_ns(self, ns: int) -> None:
        t = self.writer.now_ns()
        self.inner.delay_ns(ns)
        self.writer.write({"op": "i2c.delay", "t_ns": t, "ns": int(ns),
                           "dur_ns": self.writer.now_ns() - t})

    def close(self) -> None:
        if not self.writer.closed:
            self.writer.write({"op": "i2c.close"})
        self.inner.close()

    def __getattr__(self, attr: str) -> Any:  # backend-specific extras (attach, clock, …)
        return getattr(self.inner, attr)


class RecordingUsbBackend(_UsbForwarder):
    """A `UsbBackend` that forwards to ``inner`` and records every call; the inner
    backend's handles are numbered 1, 2, … in the trace."""

    def __init__(self, inner: UsbBackend, writer: TraceWriter) -> None:
        self.inner = inner
        self.writer = writer
        self.name = inner.name
        self._handles: dict[int, Hashable] = {}
        writer.declare("usb", inner.name)

    def _call(self, method: str, args: dict[str, Any]) -> Any:
        inner_args = args
        if "handle" in args:  # a number we gave out → the inner backend's handle
            inner_args = {**args, "handle": self._handles.get(args["handle"], args["handle"])}
        if method in ("close", "shutdown") and self.writer.closed:  # teardown after the trace
            return getattr(self.inner, method)(**inner_args)
        rec: dict[str, Any] = {"op": f"usb.{method}", "t_ns": self.writer.now_ns(),
                               "args": args}
        result = _timed(self.writer, rec, getattr(self.inner, method), **inner_args)
        if method == "open":
            number = len(self._handles) + 1
            self._handles[number] = result
            result = number
        rec["result"] = _usb_result_to_cbor(method, result)
        self.writer.write(rec)
        return result

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


# --------------------------------------------------------------------------- hook

class _Session:
    """What `traced` does while a ``wasi-hw trace`` command runs something: ``wrap``
    returns the backend to use instead of the one built; ``backends`` lists them."""

    def __init__(self) -> None:
        self.backends: list = []

    def wrap(self, backend: Any) -> Any:
        raise NotImplementedError


class _RecordSession(_Session):
    def __init__(self, writer: TraceWriter) -> None:
        super().__init__()
        self.writer = writer

    def wrap(self, backend: Any) -> Any:
        if isinstance(backend, (RecordingI2cBackend, RecordingUsbBackend)):
            return backend
        if isinstance(backend, UsbBackend):
            rec: Any = RecordingUsbBackend(backend, self.writer)
        elif isinstance(backend, I2cBackend):
            rec = RecordingI2cBackend(backend, self.writer)
        else:
            raise TypeError(f"cannot record {type(backend).__name__}: not an I2C or USB backend")
        self.backends.append(rec)
        return rec


_SESSION: contextvars.ContextVar[_Session | None] = contextvars.ContextVar(
    "wasi_hw_trace_session", default=None
)


@contextlib.contextmanager
def _session(session: _Session) -> Iterator[_Session]:
    token = _SESSION.set(session)
    try:
        yield session
    finally:
        _SESSION.reset(token)


@contextlib.contextmanager
def recording(writer: TraceWriter) -> Iterator[list]:
    """While active, `traced` wraps backends in recorders writing to ``writer``. Yields
    the list of backends wrapped so far (``wasi-hw trace record`` uses it)."""
    with _session(_RecordSession(writer)) as session:
        yield session.backends


def traced(backend: Any) -> Any:
    """The hook for code that builds backends (``wasi-hw run``): call it on every I2C and
    USB backend before use. Returns ``backend`` itself normally; while ``wasi-hw trace
    record`` runs, a recorder around it; while ``wasi-hw trace replay`` runs, a replay
    backend instead of it. ``None`` passes through; a bus table (``{name: backend}`` or
    ``{name: (backend, bus)}``) comes back with each distinct backend wrapped once."""
    session = _SESSION.get()
    if backend is None or session is None:
        return backend
    if isinstance(backend, Mapping):  # I2cHost's bus table: name → backend / (backend, bus)
        done: dict[int, Any] = {}

        def one(b: Any) -> Any:
            if id(b) not in done:
                done[id(b)] = session.wrap(b)
            return done[id(b)]

        return {name: (one(t[0]), t[1]) if isinstance(t, tuple) else one(t)
                for name, t in backend.items()}
    return session.wrap(backend)


# --------------------------------------------------------------------------- listing


def _hex(data: bytes, limit: int = 32) -> str:
    text = data[:limit].hex(" ").upper()
    return text + (f" … ({len(data)} bytes)" if len(data) > limit else "")


def _describe(value: Any) -> str:
    if isinstance(value, bytes):
        return f"[{_hex(value)}]"
    if isinstance(value, list):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_describe(v)}" for k, v in value.items()) + "}"
    return repr(value)


def format_request(rec: dict[str, Any]) -> str:
    """The request part of a record, one line (``i2c-1 0x76: write [F7], read 8``)."""
    op = rec.get("op", "?")
    if op == "i2c.transaction":
        width = 3 if rec.get("ten_bit") else 2
        parts = []
        for o in rec.get("ops", []):
            if "write" in o:
                parts.append(f"write [{_hex(o['write'])}]")
            elif "read" in o:
                parts.append(f"read {o['read']}")
        return f"{rec.get('bus')} 0x{rec.get('address', 0):0{width}x}: " + ", ".join(parts)
    if op == "i2c.delay":
        return f"delay {rec.get('ns', 0) / 1e6:g} ms"
    if op.startswith("usb."):
        args = rec.get("args", {})
        return f"{op[4:]}(" + ", ".join(f"{k}={_describe(v)}" for k, v in args.items()) + ")"
    return op.partition(".")[2] or op


def format_outcome(rec: dict[str, Any]) -> str:
    """The outcome part of a record: ``-> [..]`` or ``!! kind: message``."""
    if "error" in rec:
        err = rec["error"]
        msg = err.get("message") or ""
        return f"!! {err.get('kind')}" + (f": {msg}" if msg else "")
    if "result" not in rec or rec["result"] is None:
        return ""
    if rec.get("op") == "usb.devices":
        return "-> " + ", ".join(
            f"{d.get('id')} {d.get('vendor_id', 0):04x}:{d.get('product_id', 0):04x}"
            for d in rec["result"]
        ) if rec["result"] else "-> (none)"
    return "-> " + _describe(rec["result"])


def format_record(rec: dict[str, Any]) -> str:
    """One readable line for a record (used by ``trace show`` and divergence messages)."""
    kind = rec.get("op", "?").split(".")[0]
    outcome = format_outcome(rec)
    return f"{kind:4} {format_request(rec)}" + (f"  {outcome}" if outcome else "")
