"""Reference SHT3x driver on simulated hardware: wire sequence, CRC check, conversion
against the datasheet formulas."""

from __future__ import annotations

import pytest

from wasi_hw.host import Read, SimI2cBackend, Write
from wasi_hw.host.devices import Sht3x
from wasi_hw.reference import DriverError, Sht3xDriver, crc8


def setup(**env):
    sim = SimI2cBackend()
    chip = sim.attach("i2c-1", 0x44, Sht3x(**env))
    drv = Sht3xDriver(sim)
    drv.init()
    return sim, chip, drv


def test_crc8_datasheet_example():
    assert crc8(b"\xbe\xef") == 0x92
    assert crc8(b"\x00\x00") == 0x81


@pytest.mark.parametrize("t,rh", [(24.3, 52.7), (-40.0, 0.0), (125.0, 100.0), (0.0, 33.3)])
def test_readings(t, rh):
    sim, chip, drv = setup(temperature_c=t, humidity_pct=rh)
    reading = drv.poll()
    raw = sim.history[-1][-1][0]
    st, srh = raw[0] << 8 | raw[1], raw[3] << 8 | raw[4]
    assert reading == {"temperature_c": -45 + 175 * st / (2**16 - 1), "humidity_pct": 100 * srh / (2**16 - 1)}
    assert reading["temperature_c"] == pytest.approx(t, abs=175 / 65535)
    assert reading["humidity_pct"] == pytest.approx(rh, abs=100 / 65535)


def test_wire_sequence_and_timing():
    sim, chip, drv = setup()
    assert [ops for _, _, _, ops, _ in sim.history] == [(Write(b"\x30\xa2"),)]
    sim.history.clear()
    t0 = sim.clock.now_ns()
    drv.poll()
    assert [ops for _, _, _, ops, _ in sim.history] == [(Write(b"\x24\x00"),), (Read(6),)]
    assert sim.clock.now_ns() - t0 >= 15_000_000
    assert chip.commands == [0x30A2, 0x2400]


def test_crc_mismatch_is_an_error():
    class Corrupt(Sht3x):
        def sample(self):
            data = bytearray(super().sample())
            data[5] ^= 0x01
            return bytes(data)

    sim = SimI2cBackend()
    sim.attach("i2c-1", 0x44, Corrupt())
    drv = Sht3xDriver(sim)
    drv.init()
    with pytest.raises(DriverError, match="humidity CRC"):
        drv.poll()
