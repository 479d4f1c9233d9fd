"""NackAfter: NACKs mid-transfer, wraps a real model, limited failures."""

from __future__ import annotations

import pytest

from wasi_hw import HwError
from wasi_hw.host import Read, SimI2cBackend, Write
from wasi_hw.host.devices import Bme280, NackAfter


def test_nack_after_n_bytes_then_recovers():
    sim = SimI2cBackend()
    bme = Bme280()
    dev = sim.attach("i2c-1", 0x76, NackAfter(2, bme, times=1))
    with pytest.raises(HwError) as e:
        sim.transaction("i2c-1", 0x76, False, [Write(b"\xf4\x25\xf2\x01")])
    assert e.value.kind == "nack_data"
    assert bme.ctrl_meas == 0x25 and bme.ctrl_hum == 0  # the two ACKed bytes took effect
    assert dev.failures == 1
    sim.transaction("i2c-1", 0x76, False, [Write(b"\xf2\x01")])
    assert sim.transaction("i2c-1", 0x76, False, [Write(b"\xd0"), Read(1)]) == [b"\x60"]


def test_always_failing_standalone():
    sim = SimI2cBackend()
    sim.attach("i2c-1", 0x10, NackAfter(0))
    for _ in range(3):
        with pytest.raises(HwError) as e:
            sim.transaction("i2c-1", 0x10, False, [Write(b"\x00")])
        assert e.value.kind == "nack_data"
    assert sim.transaction("i2c-1", 0x10, False, [Read(2)]) == [b"\xff\xff"]
