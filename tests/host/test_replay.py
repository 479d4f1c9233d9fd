"""Replay backends (host/_replay.py): serve a trace back, detect divergence."""

from __future__ import annotations

import logging

import cbor2
import pytest

from wasi_hw import HwError
from wasi_hw.host import (
    RecordingI2cBackend,
    RecordingUsbBackend,
    ReplayDivergence,
    ReplayI2cBackend,
    ReplayUsbBackend,
    SimI2cBackend,
    SimUsbBackend,
    TraceWriter,
    read_trace,
)
from wasi_hw.host._i2c_backend import Read, Write
from wasi_hw.host.devices import Bme280
from wasi_hw.host.usbdevices import EchoDevice

CHIP_ID = [Write(b"\xd0"), Read(1)]
CALIB = [Write(b"\x88"), Read(26)]


def _session(backend):
    """A fixed little I2C conversation; returns what each step gave (result or kind)."""
    out = []
    for addr, ops in ((0x76, CHIP_ID), (0x50, [Write(b"\x00")]), (0x76, CALIB)):
        try:
            out.append(backend.transaction("i2c-1", addr, False, ops))
        except HwError as err:
            out.append(err.kind)
    backend.delay_ns(2_000_000)
    return out


@pytest.fixture
def i2c_trace(tmp_path):
    sim = SimI2cBackend(["i2c-1", "i2c-3"])
    sim.attach("i2c-1", 0x76, Bme280(temperature_c=31.0))
    path = tmp_path / "i2c.cbor"
    with TraceWriter(path) as writer:
        rec = RecordingI2cBackend(sim, writer)
        recorded = _session(rec)
        rec.close()
    return path, recorded


def test_replay_gives_the_recorded_answers(i2c_trace):
    path, recorded = i2c_trace
    replay = ReplayI2cBackend(path)
    assert replay.name == "replay" and replay.buses() == ["i2c-1", "i2c-3"]
    assert _session(replay) == recorded
    assert recorded[0] == [b"\x60"] and recorded[1] == "nack_address"
    assert replay.clock.now_ns() >= 2_000_000  # delays (and wire time) advance its clock
    replay.close()
    replay.done()
    assert replay.remaining == 0 and replay.divergence is None


def test_recorded_error_message_is_replayed(i2c_trace):
    replay = ReplayI2cBackend(read_trace(i2c_trace[0]))
    replay.transaction("i2c-1", 0x76, False, CHIP_ID)
    with pytest.raises(HwError) as err:
        replay.transaction("i2c-1", 0x50, False, [Write(b"\x00")])
    assert err.value.kind == "nack_address" and "0x50" in err.value.message
    assert not isinstance(err.value, ReplayDivergence)


@pytest.mark.parametrize(
    "request_, shown",
    [
        (("i2c-1", 0x76, False, [Write(b"\xd1"), Read(1)]), "write [D1], read 1"),
        (("i2c-1", 0x77, False, CHIP_ID), "i2c-1 0x77: write [D0], read 1"),
        (("i2c-3", 0x76, False, CHIP_ID), "i2c-3 0x76"),
        (("i2c-1", 0x76, True, CHIP_ID), "i2c-1 0x076"),
        (("i2c-1", 0x76, False, [Write(b"\xd0"), Read(2)]), "read 2"),
    ],
)
def test_first_differing_request_diverges_showing_both_sides(i2c_trace, request_, shown, caplog):
    replay = ReplayI2cBackend(i2c_trace[0])
    with caplog.at_level(logging.ERROR, logger="wasi_hw.replay"):
        with pytest.raises(ReplayDivergence) as err:
            replay.transaction(*request_)
    d = err.value
    assert d.kind == "other"  # what the driver's errno becomes
    assert d.index == 1 and d.recorded["ops"] == [{"write": b"\xd0"}, {"read": 1}]
    msg = str(d)
    assert "replay diverged at record 1" in msg
    assert "recorded `i2c  i2c-1 0x76: write [D0], read 1`" in msg
    assert shown in msg.split("requested")[1]
    assert "result" not in msg  # the recorded answer is not leaked into the request side
    assert any("replay diverged" in r.getMessage() for r in caplog.records)  # loud
    # sticky: the replay cannot resynchronise
    with pytest.raises(ReplayDivergence):
        replay.transaction("i2c-1", 0x76, False, CHIP_ID)
    assert replay.divergence is d


def test_delay_mismatch_and_order_diverge(i2c_trace):
    replay = ReplayI2cBackend(i2c_trace[0])
    with pytest.raises(
        ReplayDivergence, match=r"recorded `i2c  i2c-1 0x76.*requested `i2c  delay 1 ms`"
    ):
        replay.delay_ns(1_000_000)
    replay = ReplayI2cBackend(i2c_trace[0])
    _session_prefix = [(0x76, CHIP_ID), (0x50, [Write(b"\x00")]), (0x76, CALIB)]
    for addr, ops in _session_prefix:
        try:
            replay.transaction("i2c-1", addr, False, ops)
        except HwError:
            pass
    with pytest.raises(ReplayDivergence, match="recorded `i2c  delay 2 ms`"):
        replay.delay_ns(3_000_000)


def test_running_past_the_end_and_leftovers(i2c_trace):
    replay = ReplayI2cBackend(i2c_trace[0])
    with pytest.raises(ReplayDivergence) as err:
        replay.done()  # nothing replayed yet
    assert err.value.requested is None
    assert err.value.message.startswith("replay ended early: record 1 of ")
    assert err.value.message.endswith("was never requested: `i2c  i2c-1 0x76: write [D0], read 1`")
    replay = ReplayI2cBackend(i2c_trace[0])
    _session(replay)
    replay.done()  # the trailing close is teardown, not required
    with pytest.raises(ReplayDivergence, match="record 5 .*recorded `i2c  close`"):
        replay.transaction("i2c-1", 0x76, False, CHIP_ID)  # the bus was closed here
    replay = ReplayI2cBackend(i2c_trace[0])
    _session(replay)
    replay.close()
    with pytest.raises(ReplayDivergence, match="record 6 .*recorded end of trace"):
        replay.transaction("i2c-1", 0x76, False, CHIP_ID)


def test_close_never_diverges(i2c_trace):
    replay = ReplayI2cBackend(i2c_trace[0])
    replay.close()  # not what is next, but teardown is accepted
    assert replay.remaining == 5
    assert replay.transaction("i2c-1", 0x76, False, CHIP_ID) == [b"\x60"]


def test_hand_written_trace_as_documented(tmp_path):
    """A trace produced by other tools (e.g. a logger on a Raspberry Pi) per the docs."""
    items = [
        {"format": "wasi-hw-trace", "version": 1, "created": "2026-11-20T10:00:00Z",
         "backends": {"i2c": {"name": "smbus2", "buses": ["i2c-1"]}}, "meta": {"host": "pi"}},
        {"op": "i2c.transaction", "t_ns": 0, "bus": "i2c-1", "address": 0x44,
         "ten_bit": False, "ops": [{"write": b"\x24\x00"}], "result": []},
        {"op": "i2c.delay", "t_ns": 10, "ns": 15_000_000},
        {"op": "i2c.transaction", "t_ns": 20, "bus": "i2c-1", "address": 0x44,
         "ten_bit": False, "ops": [{"read": 6}], "result": [b"\x66\x66\x93\x80\x00\xa2"],
         "future_key": "ignored"},
        {"op": "i2c.transaction", "t_ns": 30, "bus": "i2c-1", "address": 0x44,
         "ten_bit": False, "ops": [{"read": 6}], "error": {"kind": "nack_address"}},
    ]
    path = tmp_path / "pi.cbor"
    path.write_bytes(b"".join(cbor2.dumps(i) for i in items))
    replay = ReplayI2cBackend(path)
    assert replay.buses() == ["i2c-1"] and replay.recorded_backend == "smbus2"
    assert replay.transaction("i2c-1", 0x44, False, [Write(b"\x24\x00")]) == []
    replay.delay_ns(15_000_000)
    assert replay.transaction("i2c-1", 0x44, False, [Read(6)]) == [b"\x66\x66\x93\x80\x00\xa2"]
    with pytest.raises(HwError) as err:
        replay.transaction("i2c-1", 0x44, False, [Read(6)])
    assert err.value.kind == "nack_address"
    replay.done()


# --------------------------------------------------------------------------- USB


def _usb_session(usb):
    (dev,) = usb.devices()
    h = usb.open(dev.id)
    out = [dev.vendor_id, usb.string_descriptor(h, 2, 0)]
    usb.claim_interface(h, 0)
    out.append(usb.bulk_out(h, 0x01, b"hello", 100))
    out.append(usb.bulk_in(h, 0x81, 64, 100))
    try:
        usb.bulk_in(h, 0x81, 64, 3)
    except HwError as err:
        out.append(err.kind)
    out.append(usb.interrupt_in(h, 0x82, 8, 100))
    usb.close(h)
    return out


@pytest.fixture
def usb_trace(tmp_path):
    path = tmp_path / "usb.cbor"
    with TraceWriter(path) as writer:
        recorded = _usb_session(RecordingUsbBackend(SimUsbBackend([EchoDevice()]), writer))
    return path, recorded


def test_usb_replay_round_trip(usb_trace):
    path, recorded = usb_trace
    replay = ReplayUsbBackend(path)
    assert _usb_session(replay) == recorded
    assert recorded[1:5] == ["Echo", 5, b"hello", "timeout"]
    replay.shutdown()
    replay.done()


def test_usb_devices_is_a_snapshot_not_a_request(usb_trace):
    replay = ReplayUsbBackend(usb_trace[0])
    first = replay.devices()
    assert replay.devices() == first  # polling again gives the current snapshot
    assert first[0].vendor_id == 0x1209 and first[0].config_descriptors
    replay2 = ReplayUsbBackend(usb_trace[0])
    h = replay2.open(first[0].id)  # the enumeration record is skipped as a snapshot
    assert h == 1 and replay2.devices() == first


def test_usb_divergence_shows_both_sides(usb_trace):
    replay = ReplayUsbBackend(usb_trace[0])
    (dev,) = replay.devices()
    h = replay.open(dev.id)
    with pytest.raises(ReplayDivergence) as err:
        replay.string_descriptor(h, 3, 0)
    msg = str(err.value)
    assert "recorded `usb  string_descriptor(handle=1, index=2, langid=0)`" in msg
    assert "requested `usb  string_descriptor(handle=1, index=3, langid=0)`" in msg
    with pytest.raises(ReplayDivergence):
        replay.string_descriptor(h, 2, 0)


# --------------------------------------------------------------------------- through I2cHost


def test_i2c_host_over_recorder_and_replay(tmp_path):
    """The spec layer on top: what a driver sees is the same recorded and replayed, and a
    divergence reaches it as the errno kind ``other``."""
    from wasi_hw.host import I2cHost

    from i2c_testing import SEVEN, Region

    def drive(backend):
        host = I2cHost(backend)
        bus = host.open("i2c-1")
        chip, calib = Region(1), Region(26)
        host.write_read(bus, 0x76, SEVEN, b"\xd0", chip)
        host.delay_ns(2_000_000)
        host.write_read(bus, 0x76, SEVEN, b"\x88", calib)
        try:
            host.write(bus, 0x50, SEVEN, b"\x01")
            kind = None
        except HwError as err:
            kind = err.kind
        host.close(bus)
        return chip.read(), calib.read(), kind

    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", 0x76, Bme280())
    path = tmp_path / "host.cbor"
    with TraceWriter(path) as writer:
        recorded = drive(RecordingI2cBackend(sim, writer))
    assert recorded[0] == b"\x60" and recorded[2] == "nack_address"
    replay = ReplayI2cBackend(path)
    assert drive(replay) == recorded
    replay.done()

    host = I2cHost(ReplayI2cBackend(path))
    bus = host.open("i2c-1")
    with pytest.raises(HwError) as err:
        host.write_read(bus, 0x77, SEVEN, b"\xd0", Region(1))
    assert err.value.kind == "other" and "replay diverged at record 1" in err.value.message


def test_usb_host_over_recorder_and_replay(tmp_path):
    """`UsbHost` (the spec layer) driving the echo device: recorded, then replayed."""
    from wasi_hw.host import UsbHost

    from usb_testing import GuestMem, make_filter

    def drive(backend):
        host = UsbHost(backend)
        g = GuestMem()
        ids = g.region(16)
        assert host.list_devices(make_filter(), ids) == 1
        device = int.from_bytes(ids.read()[:4], "little")
        h = host.open(device)
        name = g.region(16)
        n = host.string_descriptor(h, 2, 0, name)
        host.claim_interface(h, 0)
        out = g.region(5, b"hello")
        host.bulk_transfer(h, 0x01, out, 100)
        back = g.region(64)
        got = host.bulk_transfer(h, 0x81, back, 100)
        host.close(h)
        return name.read()[:n], back.read()[:got]

    path = tmp_path / "usbhost.cbor"
    with TraceWriter(path) as writer:
        recorded = drive(RecordingUsbBackend(SimUsbBackend([EchoDevice()]), writer))
    assert recorded == (b"Echo", b"hello")
    replay = ReplayUsbBackend(path)
    assert drive(replay) == recorded
    replay.done()


def test_replaying_substitutes_the_built_backends(i2c_trace, usb_trace):
    from wasi_hw.host._replay import replaying
    from wasi_hw.host._trace import traced

    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", 0x76, Bme280())
    usb = SimUsbBackend([EchoDevice()])
    assert traced(sim) is sim
    with replaying(i2c_trace[0]) as replays:
        i2c = traced(sim)
        assert isinstance(i2c, ReplayI2cBackend) and replays == [i2c]
        assert isinstance(traced(usb), ReplayUsbBackend)
        assert traced(i2c) is i2c
    with pytest.raises(HwError, match="closed"):  # the built backend was closed unused
        sim.transaction("i2c-1", 0x76, False, CHIP_ID)
    assert _session(i2c) == i2c_trace[1]
