"""Reference BME280 driver on simulated hardware: wire sequence, readings equal to the
datasheet's floating-point compensation (§8.1, written out here independently)."""

from __future__ import annotations

import pytest

from wasi_hw import HwError
from wasi_hw.apps.reference import Bme280Driver, DriverError, measurement_time_us
from wasi_hw.host import Read, SimI2cBackend, Write
from wasi_hw.host.devices import Bme280, Bme280Calibration, NackAfter, bme280_compensate, f32


def datasheet_float(cal, adc_t, adc_p, adc_h):
    """BME280 datasheet §8.1 (double precision)."""
    v1 = (adc_t / 16384.0 - cal.T1 / 1024.0) * cal.T2
    v2 = (adc_t / 131072.0 - cal.T1 / 8192.0) * (adc_t / 131072.0 - cal.T1 / 8192.0) * cal.T3
    t_fine = v1 + v2
    v1 = t_fine / 2.0 - 64000.0
    v2 = v1 * v1 * cal.P6 / 32768.0
    v2 = v2 + v1 * cal.P5 * 2.0
    v2 = v2 / 4.0 + cal.P4 * 65536.0
    v1 = (cal.P3 * v1 * v1 / 524288.0 + cal.P2 * v1) / 524288.0
    v1 = (1.0 + v1 / 32768.0) * cal.P1
    p = 1048576.0 - adc_p
    p = (p - v2 / 4096.0) * 6250.0 / v1
    p = p + (cal.P9 * p * p / 2147483648.0 + p * cal.P8 / 32768.0 + cal.P7) / 16.0
    h = t_fine - 76800.0
    h = (adc_h - (cal.H4 * 64.0 + cal.H5 / 16384.0 * h)) * (
        cal.H2 / 65536.0 * (1.0 + cal.H6 / 67108864.0 * h * (1.0 + cal.H3 / 67108864.0 * h)))
    h = min(max(h * (1.0 - cal.H1 * h / 524288.0), 0.0), 100.0)
    return t_fine / 5120.0, p, h


def wire_init(status_reads=1):
    return ([(Write(b"\xd0"), Read(1)), (Write(b"\xe0\xb6"),)]
            + [(Write(b"\xf3"), Read(1))] * status_reads
            + [(Write(b"\x88"), Read(26)), (Write(b"\xe1"), Read(7))])


WIRE_POLL = [
    (Write(b"\xf2\x01"),),
    (Write(b"\xf4\x25"),),
    (Write(b"\xf3"), Read(1)),
    (Write(b"\xf7"), Read(8)),
]


def setup(**env):
    sim = SimI2cBackend()
    chip = sim.attach("i2c-1", 0x77, Bme280(**env))
    drv = Bme280Driver(sim, "i2c-1", 0x77)
    drv.init()
    return sim, chip, drv


@pytest.mark.parametrize("env", [
    dict(temperature_c=22.5, pressure_pa=101_325.0, humidity_pct=45.0),
    dict(temperature_c=-12.3, pressure_pa=85_000.0, humidity_pct=5.0),
    dict(temperature_c=41.0, pressure_pa=108_000.0, humidity_pct=97.5),
])
def test_readings_match_datasheet_float_formulas(env):
    sim, chip, drv = setup(**env)
    reading = drv.poll()
    d = sim.history[-1][-1][0]
    adc_p, adc_t, adc_h = (
        d[0] << 12 | d[1] << 4 | d[2] >> 4,
        d[3] << 12 | d[4] << 4 | d[5] >> 4,
        d[6] << 8 | d[7],
    )
    t, p, h = datasheet_float(drv.calibration, adc_t, adc_p, adc_h)
    assert reading["temperature_c"] == f32(
        reading["temperature_c"]
    )  # single precision, as reported
    assert reading["temperature_c"] == pytest.approx(t, abs=0.01)
    assert reading["pressure_pa"] == pytest.approx(p, abs=1.0)
    assert reading["humidity_pct"] == pytest.approx(h, abs=0.05)
    # and the chip's air comes back, to the ×1 oversampling resolution (16 bit)
    assert reading["temperature_c"] == pytest.approx(env["temperature_c"], abs=0.1)
    assert reading["pressure_pa"] == pytest.approx(env["pressure_pa"], abs=20)
    assert reading["humidity_pct"] == pytest.approx(env["humidity_pct"], abs=0.1)
    assert set(reading) == {"temperature_c", "pressure_pa", "humidity_pct"}


def test_integer_and_float_compensation_agree_across_range():
    cal = Bme280Calibration()
    for adc_t in range(400_000, 600_001, 20_000):
        for adc_p in range(250_000, 450_001, 50_000):
            for adc_h in (20_000, 30_000, 40_000):
                ti, pi, hi = bme280_compensate(cal, adc_t, adc_p, adc_h)
                tf, pf, hf = datasheet_float(cal, adc_t, adc_p, adc_h)
                assert ti / 100 == pytest.approx(tf, abs=0.01)
                assert pi / 256 == pytest.approx(pf, abs=1.0)
                assert hi / 1024 == pytest.approx(hf, abs=0.05)


def ops(sim):
    return [ops for _, _, _, ops, _ in sim.history]


def test_wire_sequence():
    sim, chip, drv = setup()
    assert ops(sim) == wire_init()
    sim.history.clear()
    t0 = sim.clock.now_ns()
    drv.poll()
    assert ops(sim) == WIRE_POLL
    assert sim.clock.now_ns() - t0 >= 9_300_000
    assert chip.measurements == 1 and chip.mode == 0


def test_oversampling_settings_and_skipped_quantities():
    sim = SimI2cBackend()
    sim.attach("i2c-1", 0x76, Bme280(temperature_c=25.0, pressure_pa=90_000.0))
    drv = Bme280Driver(sim, osrs_t=2, osrs_p=16, osrs_h=0)
    drv.init()
    sim.history.clear()
    t0 = sim.clock.now_ns()
    reading = drv.poll()
    assert ops(sim)[:2] == [(Write(b"\xf2\x00"),), (Write(b"\xf4\x55"),)]
    assert sim.clock.now_ns() - t0 >= measurement_time_us(2, 16, 0) * 1000 == 43_225_000
    assert set(reading) == {"temperature_c", "pressure_pa"}
    assert reading["pressure_pa"] == pytest.approx(90_000.0, abs=2)
    with pytest.raises(ValueError):
        Bme280Driver(sim, osrs_t=3)
    with pytest.raises(ValueError):
        Bme280Driver(sim, osrs_t=0)


def test_waits_while_measuring():
    sim, chip, drv = setup()
    orig = chip.measurement_time_ns
    chip.measurement_time_ns = lambda: orig() + 2_500_000  # a slow part
    drv.poll()
    status = [res[0][0] for _, _, _, o, res in sim.history if o == (Write(b"\xf3"), Read(1))]
    # 2.5 ms late, polled every 1 ms (+ the bus time of each poll): busy, busy, done
    assert [s & 0x08 for s in status[-3:]] == [0x08, 0x08, 0]


def test_stuck_busy_is_an_error_not_a_hang():
    sim, chip, drv = setup()
    chip.measurement_time_ns = lambda: 10_000_000_000
    with pytest.raises(DriverError, match="still set"):
        drv.poll()


def test_reset_waits_for_nvm_copy():
    sim = SimI2cBackend()
    chip = Bme280()
    sim.attach("i2c-1", 0x76, chip)
    orig = chip._power_on
    chip._power_on = lambda now: (orig(now), setattr(chip, "_nvm_busy_until", now + 4_200_000))
    Bme280Driver(sim).init()
    assert ops(sim) == wire_init(
        status_reads=3
    )  # busy at ~2.6 and ~3.9 ms (with bus time), clear at ~5.2 ms


def test_wrong_chip_and_bus_errors():
    sim = SimI2cBackend()
    sim.attach("i2c-1", 0x76, Bme280(chip_id=0x58))  # a BMP280
    with pytest.raises(DriverError, match="0x58"):
        Bme280Driver(sim).init()
    with pytest.raises(HwError) as e:
        Bme280Driver(sim, address=0x77).init()
    assert e.value.kind == "nack_address"
    sim.attach("i2c-1", 0x77, NackAfter(1, Bme280(), times=1))
    with pytest.raises(HwError) as e:
        Bme280Driver(sim, address=0x77).init()  # the reset's second byte is NACKed
    assert e.value.kind == "nack_data"
    with pytest.raises(DriverError):
        Bme280Driver(sim, address=0x77).poll()
