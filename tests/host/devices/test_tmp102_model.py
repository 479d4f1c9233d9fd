"""TMP102 model: pointer register, formats (datasheet tables), conversions, shutdown, alert."""

from __future__ import annotations

import pytest

from wasi_hw import HwError
from wasi_hw.host import Read, SimI2cBackend, Write
from wasi_hw.host.devices import Tmp102

A = 0x48


@pytest.fixture
def sim():
    sim = SimI2cBackend()
    sim.attach("i2c-1", A, Tmp102(temperature_c=25.0))
    return sim


def reg(sim, p):
    return int.from_bytes(
        sim.transaction("i2c-1", A, False, [Write(bytes([p])), Read(2)])[0], "big"
    )


def setreg(sim, p, value):
    sim.transaction("i2c-1", A, False, [Write(bytes([p]) + value.to_bytes(2, "big"))])


def test_power_up(sim):
    assert reg(sim, 0) == 0  # first conversion not done
    assert reg(sim, 1) == 0x60A0
    assert reg(sim, 2) == 0x4B00 and reg(sim, 3) == 0x5000
    sim.delay_ns(26_000_000)
    assert reg(sim, 0) == 0x1900  # 25 °C


@pytest.mark.parametrize("celsius,twelve,thirteen", [
    (127.9375, 0x7FF0, 0x3FF9), (100, 0x6400, 0x3201), (0.0625, 0x0010, 0x0009),
    (0, 0x0000, 0x0001), (-0.25, 0xFFC0, 0xFFE1), (-25, 0xE700, 0xF381), (-55, 0xC900, 0xE481),
    (150, 0x7FF0, 0x4B01)])
def test_formats_match_datasheet_tables(sim, celsius, twelve, thirteen):
    dev = sim.device("i2c-1", A)
    dev.temperature_c = celsius
    sim.delay_ns(250_000_000)
    assert reg(sim, 0) == twelve
    setreg(sim, 1, 0x60B0)  # EM
    sim.delay_ns(250_000_000)
    assert reg(sim, 0) == thirteen


def test_pointer_persists_and_read_repeats(sim):
    sim.transaction("i2c-1", A, False, [Write(b"\x03")])
    assert sim.transaction("i2c-1", A, False, [Read(4)])[0] == b"\x50\x00\x50\x00"


def test_bad_pointer_nacked(sim):
    with pytest.raises(HwError) as e:
        sim.transaction("i2c-1", A, False, [Write(b"\x04")])
    assert e.value.kind == "nack_data"


def test_conversion_rate(sim):
    dev = sim.device("i2c-1", A)
    sim.delay_ns(26_000_000 + 4 * 250_000_000)
    reg(sim, 0)
    assert dev.conversions == 5  # 4 Hz
    setreg(sim, 1, 0x6020)  # CR=00: 0.25 Hz, from the conversion already scheduled on
    sim.delay_ns(4_300_000_000)
    reg(sim, 0)
    assert dev.conversions == 7


def test_shutdown_one_shot(sim):
    dev = sim.device("i2c-1", A)
    setreg(sim, 1, 0x61A0)  # SD
    sim.delay_ns(100_000_000)
    n = dev.conversions
    dev.temperature_c = 40.0
    sim.delay_ns(1_000_000_000)
    assert dev.conversions == n  # no conversions while shut down
    setreg(sim, 1, 0xE1A0)  # OS: one shot
    assert reg(sim, 1) & 0x8000 == 0  # converting
    sim.delay_ns(26_000_000)
    assert reg(sim, 1) & 0x8000
    assert reg(sim, 0) == 0x2800


def test_comparator_alert_with_fault_queue(sim):
    dev = sim.device("i2c-1", A)
    setreg(sim, 3, 0x1E00)  # THIGH 30 °C
    setreg(sim, 2, 0x1C00)  # TLOW 28 °C
    setreg(sim, 1, 0x68A0)  # F=01: 2 faults, POL=0 (active low)
    sim.delay_ns(100_000_000)
    assert reg(sim, 1) & 0x20 and dev.alert
    dev.temperature_c = 31.0
    sim.delay_ns(250_000_000)
    assert dev.alert  # one fault is not enough
    sim.delay_ns(250_000_000)
    assert not dev.alert and not reg(sim, 1) & 0x20
    dev.temperature_c = 29.0  # between thresholds: stays active
    sim.delay_ns(1_000_000_000)
    assert not dev.alert
    dev.temperature_c = 27.0
    sim.delay_ns(500_000_000)
    assert dev.alert


def test_interrupt_mode_cleared_by_read(sim):
    dev = sim.device("i2c-1", A)
    setreg(sim, 3, 0x1E00)  # THIGH 30 °C
    setreg(sim, 2, 0x1C00)  # TLOW 28 °C
    setreg(sim, 1, 0x66A0)  # TM=1, POL=1 (active high)
    dev.temperature_c = 35.0
    sim.delay_ns(300_000_000)
    assert dev.alert
    reg(sim, 0)
    assert not dev.alert
    sim.delay_ns(1_000_000_000)
    assert not dev.alert  # next alert only below TLOW
