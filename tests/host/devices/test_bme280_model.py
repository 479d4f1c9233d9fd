"""BME280 model: register map, NVM, timing, modes; raw values checked through the
datasheet compensation (the reference drivers' `bme280_compensate`, itself checked against
the datasheet's floating-point formulas in tests/reference)."""

from __future__ import annotations

import pytest

from wasi_hw.host import Read, SimI2cBackend, Write
from wasi_hw.host.devices import Bme280, Bme280Calibration, bme280_compensate

A = 0x76


def rd(sim, reg, n):
    return sim.transaction("i2c-1", A, False, [Write(bytes([reg])), Read(n)])[0]


def wr(sim, *pairs):
    sim.transaction("i2c-1", A, False, [Write(bytes(pairs))])


def calibration(sim):
    return Bme280Calibration.from_nvm(rd(sim, 0x88, 26), rd(sim, 0xE1, 7))


def compensate(cal, adc_t, adc_p, adc_h):
    t, p, h = bme280_compensate(cal, adc_t, adc_p, adc_h)
    return t / 100, p / 256, h / 1024


def raw(sim):
    d = rd(sim, 0xF7, 8)
    return (
        (d[3] << 12 | d[4] << 4 | d[5] >> 4),
        (d[0] << 12 | d[1] << 4 | d[2] >> 4),
        (d[6] << 8 | d[7]),
    )


@pytest.fixture
def sim():
    sim = SimI2cBackend()
    sim.attach("i2c-1", A, Bme280(temperature_c=18.25, pressure_pa=98_765.0, humidity_pct=61.0))
    return sim


def test_identity_and_nvm(sim):
    assert rd(sim, 0xD0, 1) == b"\x60"
    nvm = rd(sim, 0x88, 26)
    assert nvm[:6] == bytes.fromhex("706b436718fc")  # dig_T1 27504, T2 26435, T3 -1000
    assert rd(sim, 0xE1, 7) == bytes.fromhex("6a01001329031e")  # H2 362, H3 0, H4 313, H5 50, H6 30
    assert nvm[25] == 75  # H1
    assert calibration(sim) == Bme280Calibration()


def test_reset_values(sim):
    assert rd(sim, 0xF2, 4) == b"\x00\x01\x00\x00"  # im_update during the 2 ms NVM copy
    sim.delay_ns(2_000_000)
    assert rd(sim, 0xF3, 1) == b"\x00"
    assert rd(sim, 0xF7, 8) == b"\x80\x00\x00\x80\x00\x00\x80\x00"  # skipped


def test_forced_measurement_timing_and_values(sim):
    dev = sim.device("i2c-1", A)
    sim.delay_ns(2_000_000)
    wr(sim, 0xF2, 0x05, 0xF5, 0x00, 0xF4, (5 << 5) | (5 << 2) | 0b01)  # x16 all, forced
    # datasheet max: 1.25 + 2.3*16 + (2.3*16 + 0.575) * 2 ms
    t_max = 1_250_000 + 2_300_000 * 16 + 2 * (2_300_000 * 16 + 575_000)
    assert dev.measurement_time_ns() == t_max
    assert rd(sim, 0xF3, 1) == b"\x08"
    sim.delay_ns(t_max - 2_000_000)
    assert rd(sim, 0xF3, 1) == b"\x08"
    sim.delay_ns(2_000_000)
    assert rd(sim, 0xF3, 1) == b"\x00"
    assert rd(sim, 0xF4, 1)[0] & 3 == 0  # back to sleep
    t, p, h = compensate(calibration(sim), *raw(sim))
    assert t == pytest.approx(18.25, abs=0.01)
    assert p == pytest.approx(98_765.0, abs=1.0)
    assert h == pytest.approx(61.0, abs=0.05)
    assert dev.measurements == 1


def test_ctrl_hum_needs_ctrl_meas_write(sim):
    wr(sim, 0xF2, 0x01)
    wr(sim, 0xF4, 0)  # only now does osrs_h apply
    wr(sim, 0xF2, 0x00, 0xF4, 0b00100101)  # humidity skipped from here on
    sim.delay_ns(20_000_000)
    t, p, h = raw(sim)
    assert h == 0x8000 and t != 0x80000


def test_resolution_without_filter(sim):
    wr(sim, 0xF2, 1, 0xF4, 0b00100101)  # x1: 16 bit
    sim.delay_ns(20_000_000)
    t, p, _ = raw(sim)
    assert t & 0xF == 0 and p & 0xF == 0
    wr(sim, 0xF5, 0b100 << 2, 0xF4, (5 << 5) | (5 << 2) | 1)  # filter 16: 20 bit
    sim.delay_ns(100_000_000)
    assert compensate(calibration(sim), *raw(sim))[0] == pytest.approx(18.25, abs=0.01)


def test_normal_mode_tracks_environment(sim):
    dev = sim.device("i2c-1", A)
    wr(sim, 0xF2, 1, 0xF5, 0b000 << 5, 0xF4, 0b00100111)  # normal, t_sb 0.5 ms
    sim.delay_ns(20_000_000)
    first = dev.measurements
    assert first >= 1
    dev.temperature_c = 30.0
    sim.delay_ns(20_000_000)
    assert dev.measurements > first
    assert rd(sim, 0xF4, 1)[0] & 3 == 3
    t, _, _ = compensate(calibration(sim), *raw(sim))
    assert t == pytest.approx(30.0, abs=0.1)


def test_soft_reset(sim):
    wr(sim, 0xF2, 1, 0xF4, 0b00100111, 0xF5, 0xA0)
    wr(sim, 0xE0, 0xB6)
    assert rd(sim, 0xF2, 4) == b"\x00\x01\x00\x00"
    wr(sim, 0xE0, 0x00)  # any other value: no reset
    assert rd(sim, 0xD0, 1) == b"\x60"
