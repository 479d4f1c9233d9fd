"""SimI2cBackend: the wire as device models see it, NACKs, stretching, faults, timing."""

from __future__ import annotations

import pytest

from wasi_hw import HwError
from wasi_hw.host import I2cBackend, Read, SimI2cBackend, VirtualClock, Write
from wasi_hw.host.devices import I2cDevice


class Probe(I2cDevice):
    """Records what the bus did; NACKs bytes listed in ``nack``; stretches on read."""

    def __init__(self, nack=(), stretch_ns=0) -> None:
        super().__init__()
        self.events = []
        self.nack = set(nack)
        self.stretch_ns = stretch_ns

    def start(self, read):
        self.events.append(("start", read))
        return True

    def write(self, byte):
        self.events.append(("w", byte))
        return byte not in self.nack

    def read(self, last):
        self.stretch(self.stretch_ns)
        self.events.append(("r", last))
        return 0x40 + len(self.events)

    def stop(self):
        self.events.append(("stop",))


def test_is_a_backend():
    assert isinstance(SimI2cBackend(), I2cBackend)
    assert SimI2cBackend(["a", "b"]).buses() == ["a", "b"]


def test_device_sees_the_wire():
    sim = SimI2cBackend()
    dev = sim.attach("i2c-1", 0x20, Probe())
    out = sim.transaction("i2c-1", 0x20, False, [Write(b"\x01\x02"), Read(2), Write(b""), Read(1)])
    assert dev.events == [("start", False), ("w", 1), ("w", 2), ("start", True), ("r", False),
                          ("r", True), ("start", False), ("start", True), ("r", True), ("stop",)]
    assert out == [bytes([0x45, 0x46]), bytes([0x49])]


def test_absent_address_nacks():
    sim = SimI2cBackend()
    with pytest.raises(HwError) as e:
        sim.transaction("i2c-1", 0x33, False, [Write(b"")])
    assert e.value.kind == "nack_address"
    with pytest.raises(HwError) as e:
        sim.transaction("i2c-7", 0x33, False, [Write(b"")])
    assert e.value.kind == "no_such_bus"


def test_data_nack_stops_transaction():
    sim = SimI2cBackend()
    dev = sim.attach("i2c-1", 0x20, Probe(nack={2}))
    with pytest.raises(HwError) as e:
        sim.transaction("i2c-1", 0x20, False, [Write(b"\x01\x02\x03"), Read(1)])
    assert e.value.kind == "nack_data"
    assert dev.events == [("start", False), ("w", 1), ("w", 2), ("stop",)]
    assert sim.history[-1][-1] == "nack_data"


def test_ten_bit_and_seven_bit_are_distinct():
    sim = SimI2cBackend()
    sim.attach("i2c-1", 0x20, Probe(), ten_bit=True)
    with pytest.raises(HwError):
        sim.transaction("i2c-1", 0x20, False, [Read(1)])
    assert sim.transaction("i2c-1", 0x20, True, [Read(1)])
    with pytest.raises(ValueError):
        sim.attach("i2c-1", 0x80, Probe())
    with pytest.raises(ValueError):
        sim.attach("i2c-1", 0x20, Probe(), ten_bit=True)


def test_clock_stretching_and_limit():
    clock = VirtualClock()
    sim = SimI2cBackend(clock=clock, bus_hz=None, stretch_limit_ns=1_000_000)
    sim.attach("i2c-1", 0x20, Probe(stretch_ns=400_000))
    sim.transaction("i2c-1", 0x20, False, [Read(2)])
    assert clock.now_ns() == 800_000
    sim.attach("i2c-1", 0x21, Probe(stretch_ns=2_000_000))
    with pytest.raises(HwError) as e:
        sim.transaction("i2c-1", 0x21, False, [Read(1)])
    assert e.value.kind == "timeout"


def test_wire_time_at_bus_speed():
    sim = SimI2cBackend(bus_hz=100_000)
    sim.attach("i2c-1", 0x20, Probe())
    sim.transaction("i2c-1", 0x20, False, [Write(b"\x01"), Read(2)])
    # 2 address bytes + 3 data bytes = 45 clocks, + START/STOP 2 = 47 clocks at 10 µs
    assert sim.clock.now_ns() == 470_000


def test_injected_faults_and_delay():
    sim = SimI2cBackend()
    dev = sim.attach("i2c-1", 0x20, Probe())
    sim.fail_next("i2c-1", "arbitration_loss", 2)
    for _ in range(2):
        with pytest.raises(HwError) as e:
            sim.transaction("i2c-1", 0x20, False, [Read(1)])
        assert e.value.kind == "arbitration_loss"
    assert dev.events == []
    sim.transaction("i2c-1", 0x20, False, [Read(1)])
    t = sim.clock.now_ns()
    sim.delay_ns(1234)
    assert sim.clock.now_ns() == t + 1234


def test_closed_backend_refuses():
    sim = SimI2cBackend()
    sim.close()
    with pytest.raises(HwError) as e:
        sim.transaction("i2c-1", 0x20, False, [Read(1)])
    assert e.value.kind == "other"
