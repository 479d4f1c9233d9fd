"""Scripts of expected bus traffic, as traces a replay backend serves (embedded-hal-mock's
rule: each request must be the next expected one, and all must be used up).

I2C items (`wasi_hw.apps.testing.i2c`): ``write(addr, data)``, ``read(addr, data)`` (the bytes the
chip answers), ``write_read(addr, data, answer)``, ``transaction(addr, ops, answers)``; each
takes ``error="nack_address"`` (any ``i2c_errno`` case) to make the transaction fail instead,
and ``bus=`` to override the script's bus. USB items (`wasi_hw.apps.testing.usb`):
``call(method, result=…, error=…, **args)`` — one `UsbBackend` call with its arguments
(handles are numbered 1, 2, … in order of ``open``); ``devices(*models)`` — the enumeration
that answers ``devices()``, described by device models (ids ``sim:1``, ``sim:2``, …).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Iterable, Sequence

from wasi_hw.host import Read, Trace, Write, read_trace

__all__ = ["i2c", "usb", "i2c_trace", "usb_trace", "addresses"]


def _bytes(data: Any) -> bytes:
    return bytes(data) if not isinstance(data, int) else bytes([data])


def _item(address: int, ops: list[Any], answers: list[bytes], error: str | None,
          bus: str | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"op": "i2c.transaction", "address": int(address), "ten_bit": False,
                           "ops": ops, "_bus": bus}
    if error:
        rec["error"] = {"kind": error, "message": "scripted"}
    else:
        rec["result"] = answers
    return rec


def _write(address: int, data: Any, *, error: str | None = None, bus: str | None = None) -> dict:
    return _item(address, [{"write": _bytes(data)}], [], error, bus)


def _read(address: int, answer: Any, *, error: str | None = None, bus: str | None = None) -> dict:
    answer = _bytes(answer)
    return _item(address, [{"read": len(answer)}], [answer], error, bus)


def _write_read(address: int, data: Any, answer: Any, *, error: str | None = None,
                bus: str | None = None) -> dict:
    answer = _bytes(answer)
    return _item(address, [{"write": _bytes(data)}, {"read": len(answer)}], [answer], error, bus)


def _transaction(address: int, ops: Sequence[Any], answers: Sequence[Any] = (), *,
                 error: str | None = None, bus: str | None = None) -> dict:
    cbor_ops = []
    for op in ops:
        if isinstance(op, Write):
            cbor_ops.append({"write": bytes(op.data)})
        elif isinstance(op, Read):
            cbor_ops.append({"read": op.length})
        else:
            raise TypeError(f"not an I2C operation: {op!r} (use Read / Write)")
    return _item(address, cbor_ops, [_bytes(a) for a in answers], error, bus)


def _call(method: str, *, result: Any = None, error: str | None = None, **args: Any) -> dict:
    rec: dict[str, Any] = {"op": f"usb.{method}", "args": args}
    if error:
        rec["error"] = {"kind": error, "message": "scripted"}
    else:
        rec["result"] = result
    return rec


def _devices(*models: Any) -> dict:
    import io

    from wasi_hw.host import RecordingUsbBackend, SimUsbBackend, TraceWriter

    sink = io.BytesIO()
    writer = TraceWriter(sink)
    RecordingUsbBackend(SimUsbBackend(list(models)), writer).devices()
    writer.close()
    rec = read_trace(sink.getvalue()).records[0]
    return {"op": "usb.devices", "args": {}, "result": rec["result"]}


i2c = SimpleNamespace(write=_write, read=_read, write_read=_write_read,
                      transaction=_transaction)
usb = SimpleNamespace(call=_call, devices=_devices)


def _trace(records: list[dict], backends: dict) -> Trace:
    import cbor2

    # the trace file format, version 1 (documented in wasi_hw.host's _trace module)
    header = {"format": "wasi-hw-trace", "version": 1, "created": "1970-01-01T00:00:00Z",
              "backends": backends, "meta": {"script": True}}
    data = cbor2.dumps(header) + b"".join(cbor2.dumps(r) for r in records)
    return read_trace(data)            # the same checks as a recorded file


def i2c_trace(items: Iterable[dict], bus: str) -> Trace:
    records = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or item.get("op") != "i2c.transaction":
            raise TypeError(f"expect_i2c item {n}: {item!r} is not an I2C expectation "
                            "(use wasi_hw.apps.testing.i2c.write / read / write_read / transaction)")
        rec = {k: v for k, v in item.items() if k != "_bus"}
        rec["bus"] = item.get("_bus") or bus
        records.append(rec)
    buses = sorted({r["bus"] for r in records} | {bus})
    return _trace(records, {"i2c": {"name": "script", "buses": buses}})


def usb_trace(items: Iterable[dict]) -> Trace:
    records = list(items)
    for n, item in enumerate(records):
        if not isinstance(item, dict) or not str(item.get("op", "")).startswith("usb."):
            raise TypeError(f"expect_usb item {n}: {item!r} is not a USB expectation "
                            "(use wasi_hw.apps.testing.usb.call)")
    return _trace(records, {"usb": {"name": "script"}})


def addresses(trace: Trace | None) -> set[int]:
    """The I2C addresses a script or trace talks to (granted to an ad-hoc manifest)."""
    if trace is None:
        return set()
    return {r["address"] for _, r in trace.of("i2c.transaction")}
