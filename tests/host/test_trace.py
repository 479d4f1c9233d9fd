"""Recording backends and the trace file format (host/_trace.py)."""

from __future__ import annotations

import io

import cbor2
import pytest

from wasi_hw import HwError, UserError
from wasi_hw.host import (
    RecordingI2cBackend,
    RecordingUsbBackend,
    SimI2cBackend,
    SimUsbBackend,
    TraceWriter,
    VirtualClock,
    read_trace,
)
from wasi_hw.host._i2c_backend import Read, Write
from wasi_hw.host._trace import format_record, recording, traced
from wasi_hw.host.devices import Bme280
from wasi_hw.host.usbdevices import EchoDevice


def _sim_i2c() -> SimI2cBackend:
    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", 0x76, Bme280())
    return sim


def _record_i2c(path):
    sim = _sim_i2c()
    clock = VirtualClock()
    with TraceWriter(path, meta={"purpose": "test"}, clock=clock.now_ns) as writer:
        rec = RecordingI2cBackend(sim, writer)
        chip = rec.transaction("i2c-1", 0x76, False, [Write(b"\xd0"), Read(1)])
        clock.sleep_ns(1000)
        with pytest.raises(HwError) as nack:
            rec.transaction("i2c-1", 0x50, False, [Write(b"\x00")])
        rec.delay_ns(2_000_000)
        calib = rec.transaction("i2c-1", 0x76, False, [Write(b"\x88"), Read(26)])
        rec.close()
    return chip, nack.value, calib


def test_i2c_recording_is_transparent_and_complete(tmp_path):
    path = tmp_path / "t.cbor"
    chip, nack, calib = _record_i2c(path)
    assert chip == [b"\x60"]  # the BME280's chip id came through unchanged
    assert nack.kind == "nack_address"
    # the same requests straight to a fresh sim give the same answers
    assert calib == _sim_i2c().transaction("i2c-1", 0x76, False, [Write(b"\x88"), Read(26)])

    trace = read_trace(path)
    h = trace.header
    assert (h["format"], h["version"]) == ("wasi-hw-trace", 1)
    assert h["backends"] == {"i2c": {"name": "sim", "buses": ["i2c-1"]}}
    assert h["meta"] == {"purpose": "test"}
    assert h["created"].endswith("Z")
    ops = [r["op"] for r in trace.records]
    assert ops == ["i2c.transaction", "i2c.transaction", "i2c.delay", "i2c.transaction",
                   "i2c.close"]
    first, second, delay, third, _ = trace.records
    assert first["bus"] == "i2c-1" and first["address"] == 0x76 and first["ten_bit"] is False
    assert first["ops"] == [{"write": b"\xd0"}, {"read": 1}]
    assert first["result"] == [b"\x60"]
    assert second["error"]["kind"] == "nack_address" and "result" not in second
    assert "0x50" in second["error"]["message"]
    assert delay["ns"] == 2_000_000
    assert third["result"] == [calib[0]]
    # timestamps come from the writer's clock, relative to its start
    assert first["t_ns"] == 0 and second["t_ns"] == 1000
    assert [r["t_ns"] for r in trace.records] == sorted(r["t_ns"] for r in trace.records)


def test_file_is_a_cbor_sequence_of_maps(tmp_path):
    path = tmp_path / "t.cbor"
    _record_i2c(path)
    stream = io.BytesIO(path.read_bytes())
    items = []
    while stream.tell() < len(stream.getbuffer()):
        items.append(cbor2.load(stream))
    assert items[0]["format"] == "wasi-hw-trace"
    assert len(items) == 6 and all(isinstance(i, dict) for i in items)


def test_writer_flushes_each_record_and_truncated_file_reads(tmp_path):
    path = tmp_path / "t.cbor"
    writer = TraceWriter(path)
    rec = RecordingI2cBackend(_sim_i2c(), writer)
    rec.transaction("i2c-1", 0x76, False, [Write(b"\xd0"), Read(1)])
    rec.delay_ns(5)
    assert len(read_trace(path).records) == 2  # readable while still open
    writer.close()
    data = path.read_bytes()
    cut = read_trace(data[:-3])
    assert cut.truncated and len(cut.records) == 1
    assert not read_trace(data).truncated


def test_meta_must_be_cbor(tmp_path):
    with pytest.raises(ValueError, match="not CBOR-encodable"):
        TraceWriter(tmp_path / "t.cbor", meta={"x": object()})
    assert not (tmp_path / "t.cbor").exists()


def test_empty_writer_still_writes_a_header(tmp_path):
    path = tmp_path / "t.cbor"
    TraceWriter(path).close()
    trace = read_trace(path)
    assert trace.records == [] and trace.header["backends"] == {}


def test_backend_declared_after_header_is_merged(tmp_path):
    path = tmp_path / "t.cbor"
    with TraceWriter(path) as writer:
        i2c = RecordingI2cBackend(_sim_i2c(), writer)
        i2c.delay_ns(1)
        RecordingUsbBackend(SimUsbBackend([EchoDevice()]), writer)
    trace = read_trace(path)
    assert trace.header["backends"]["usb"] == {"name": "sim"}
    assert [r["op"] for r in trace.records] == ["i2c.delay"]


def test_usb_recording(tmp_path):
    path = tmp_path / "u.cbor"
    sim = SimUsbBackend([EchoDevice(serial="S1")])
    with TraceWriter(path) as writer:
        usb = RecordingUsbBackend(sim, writer)
        (dev,) = usb.devices()
        h = usb.open(dev.id)
        assert h == 1  # handles are numbered in the trace
        assert usb.string_descriptor(h, 3, 0) == "S1"
        usb.claim_interface(h, 0)
        assert usb.bulk_out(h, 0x01, b"ping", 100) == 4
        assert usb.bulk_in(h, 0x81, 64, 100) == b"ping"
        with pytest.raises(HwError) as stall:
            usb.control_in(h, 0xC0, 0x7F, 0, 0, 8, 100)
        with pytest.raises(HwError) as timeout:
            usb.bulk_in(h, 0x81, 64, 5)
        usb.close(h)
    assert stall.value.kind == "pipe" and timeout.value.kind == "timeout"
    trace = read_trace(path)
    ops = [r["op"] for r in trace.records]
    assert ops == ["usb.devices", "usb.open", "usb.string_descriptor", "usb.claim_interface",
                   "usb.bulk_out", "usb.bulk_in", "usb.control_in", "usb.bulk_in", "usb.close"]
    devices, opened = trace.records[0], trace.records[1]
    assert devices["result"][0]["vendor_id"] == 0x1209
    assert devices["result"][0]["device_descriptor"] == dev.device_descriptor
    assert opened["args"] == {"device_id": dev.id} and opened["result"] == 1
    assert trace.records[4]["args"] == {"handle": 1, "endpoint": 1, "data": b"ping",
                                        "timeout_ms": 100}
    assert trace.records[5]["result"] == b"ping"
    assert trace.records[6]["error"]["kind"] == "pipe"
    assert trace.records[7]["error"]["kind"] == "timeout"


def test_traced_hook_wraps_only_while_recording(tmp_path):
    sim = _sim_i2c()
    assert traced(sim) is sim
    with TraceWriter(tmp_path / "t.cbor") as writer, recording(writer) as wrapped:
        i2c = traced(sim)
        usb = traced(SimUsbBackend())
        assert isinstance(i2c, RecordingI2cBackend) and isinstance(usb, RecordingUsbBackend)
        assert traced(i2c) is i2c  # never wrapped twice
        assert wrapped == [i2c, usb]
        with pytest.raises(TypeError):
            traced(object())
        assert traced(None) is None
        table = traced({"a": sim, "b": (sim, "i2c-1")})
        assert table["a"] is table["b"][0] and table["b"][1] == "i2c-1"
        assert isinstance(table["a"], RecordingI2cBackend) and len(wrapped) == 3
    assert traced(sim) is sim


@pytest.mark.parametrize(
    "items, message",
    [
        ([], "empty file"),
        ([{"format": "other"}], "not a wasi-hw trace"),
        ([{"format": "wasi-hw-trace", "version": 99}], "version 99 is not supported"),
        ([{"format": "wasi-hw-trace", "version": 1}, [1, 2]], "record 1: not a map"),
        ([{"format": "wasi-hw-trace", "version": 1}, {"op": "i2c.transaction", "bus": "i2c-1"}],
         "record 1: i2c.transaction: 'address' missing"),
        ([{"format": "wasi-hw-trace", "version": 1},
          {"op": "i2c.transaction", "bus": "b", "address": 1, "ten_bit": False,
           "ops": [{"read": 2}], "result": [b"\x00"]}],
         "record 1: i2c.transaction: 'result' must be 1 byte strings of lengths [2]"),
        ([{"format": "wasi-hw-trace", "version": 1},
          {"op": "i2c.transaction", "bus": "b", "address": 1, "ten_bit": False,
           "ops": [{"poke": 2}], "result": []}],
         "bad 'ops': unknown operation 'poke'"),
        ([{"format": "wasi-hw-trace", "version": 1}, {"op": "usb.bulk_in", "args": {}}],
         "record 1: usb.bulk_in: 'args' must have exactly"),
        ([{"format": "wasi-hw-trace", "version": 1}, {"op": "usb.frobnicate", "args": {}}],
         "unknown USB operation 'frobnicate'"),
        ([{"format": "wasi-hw-trace", "version": 1}, {"op": "i2c.delay", "ns": 1,
                                                      "error": "bad"}],
         "'error' must be a map"),
    ],
)
def test_malformed_traces_are_user_errors(tmp_path, items, message):
    path = tmp_path / "bad.cbor"
    path.write_bytes(b"".join(cbor2.dumps(i) for i in items))
    with pytest.raises(UserError) as err:
        read_trace(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_unreadable_and_non_cbor_files(tmp_path):
    with pytest.raises(UserError, match="cannot read trace"):
        read_trace(tmp_path / "missing.cbor")
    (tmp_path / "junk").write_bytes(b"\xff\xff\xff")
    with pytest.raises(UserError, match="not"):
        read_trace(tmp_path / "junk")


def test_format_record_lines():
    assert format_record({"op": "i2c.transaction", "bus": "i2c-1", "address": 0x76,
                          "ten_bit": False, "ops": [{"write": b"\xf7"}, {"read": 2}],
                          "result": [b"\x12\x34"]}) == \
        "i2c  i2c-1 0x76: write [F7], read 2  -> [[12 34]]"
    assert format_record({"op": "i2c.transaction", "bus": "i2c-1", "address": 0x50,
                          "ten_bit": False, "ops": [{"write": b""}],
                          "error": {"kind": "nack_address", "message": ""}}) == \
        "i2c  i2c-1 0x50: write []  !! nack_address"
    assert format_record({"op": "i2c.delay", "ns": 2_500_000}) == "i2c  delay 2.5 ms"
    assert format_record({"op": "usb.bulk_in", "args": {"handle": 1, "endpoint": 0x81},
                          "result": b"ok"}) == "usb  bulk_in(handle=1, endpoint=129)  -> [6F 6B]"
