"""Reference SHT3x driver on simulated hardware: wire sequence, retries, CRC check, and
the conversion equal to the datasheet formula evaluated in float32 (numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from wasi_hw import HwError
from wasi_hw.apps.reference import DriverError, Sht3xDriver
from wasi_hw.host import Read, SimI2cBackend, Write
from wasi_hw.host.devices import Sht3x, crc8


def setup(repeatability="high", **env):
    sim = SimI2cBackend()
    chip = sim.attach("i2c-1", 0x44, Sht3x(**env))
    drv = Sht3xDriver(sim, repeatability=repeatability)
    drv.init()
    return sim, chip, drv


def ops(sim):
    return [o for _, _, _, o, _ in sim.history]


def datasheet_f32(st: int, srh: int) -> tuple[float, float]:
    """SHT3x-DIS §4.13 in float32, evaluated as the Rust driver writes it."""
    t = np.float32(-45.0) + np.float32(175.0) * np.float32(st) / np.float32(65535.0)
    rh = np.float32(100.0) * np.float32(srh) / np.float32(65535.0)
    return float(t), float(rh)


def test_crc8_datasheet_example():
    assert crc8(b"\xbe\xef") == 0x92
    assert crc8(b"\x00\x00") == 0x81


@pytest.mark.parametrize("t,rh", [(24.3, 52.7), (-40.0, 0.0), (125.0, 100.0), (0.0, 33.3)])
def test_readings(t, rh):
    sim, chip, drv = setup(temperature_c=t, humidity_pct=rh)
    reading = drv.poll()
    raw = sim.history[-1][-1][0]
    st, srh = raw[0] << 8 | raw[1], raw[3] << 8 | raw[4]
    want_t, want_rh = datasheet_f32(st, srh)
    assert reading == {"temperature_c": want_t, "humidity_pct": want_rh}
    assert reading["temperature_c"] == pytest.approx(t, abs=175 / 65535)
    assert reading["humidity_pct"] == pytest.approx(rh, abs=100 / 65535)


def test_conversion_bit_exact_over_the_range():
    from wasi_hw.host.devices import f32
    for raw in range(0, 65536, 97):
        t, rh = datasheet_f32(raw, raw)
        assert f32(-45.0 + f32(f32(175.0 * raw) / 65535.0)) == t
        assert f32(f32(100.0 * raw) / 65535.0) == rh


@pytest.mark.parametrize("rep,cmd,wait", [("high", b"\x24\x00", 15_000_000),
                                          ("medium", b"\x24\x0b", 6_000_000),
                                          ("low", b"\x24\x16", 4_000_000)])
def test_wire_sequence_and_timing(rep, cmd, wait):
    sim, chip, drv = setup(rep)
    assert ops(sim) == []  # init: no bus traffic
    t0 = sim.clock.now_ns()
    drv.poll()
    assert ops(sim) == [(Write(cmd),), (Read(6),)]
    assert sim.clock.now_ns() - t0 >= wait
    assert chip.commands == [int.from_bytes(cmd, "big")]


def test_not_ready_is_retried_then_an_error():
    class Slow(Sht3x):
        extra_ns = 2_500_000

        def _command(self, cmd):
            ok = super()._command(cmd)
            if self._pending:
                self._pending = (self._pending[0] + self.extra_ns, self._pending[1])
            return ok

    sim = SimI2cBackend()
    chip = sim.attach("i2c-1", 0x44, Slow())
    drv = Sht3xDriver(sim)
    drv.poll()
    reads = [r for _, _, _, o, r in sim.history if o == (Read(6),)]
    assert reads[:-1] == ["nack_address"] * (len(reads) - 1) and len(reads) >= 2
    chip.extra_ns = 1_000_000_000
    with pytest.raises(DriverError, match="5 retries"):
        drv.poll()
    assert sum(o == (Read(6),) for o in ops(sim)) == len(reads) + 6


def test_other_errors_are_not_retried():
    sim, chip, drv = setup()
    sim.fail_next("i2c-1", "arbitration_loss")
    with pytest.raises(HwError) as e:
        drv.poll()
    assert e.value.kind == "arbitration_loss"


def test_crc_mismatch_is_an_error():
    class Corrupt(Sht3x):
        def sample(self):
            data = bytearray(super().sample())
            data[5] ^= 0x01
            return bytes(data)

    sim = SimI2cBackend()
    sim.attach("i2c-1", 0x44, Corrupt())
    with pytest.raises(DriverError, match="humidity CRC"):
        Sht3xDriver(sim).poll()


def test_bad_repeatability():
    with pytest.raises(ValueError):
        Sht3xDriver(SimI2cBackend(), repeatability="ultra")
