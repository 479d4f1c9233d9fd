"""SHT3x model: commands, no-stretch NACK, stretching, CRC, status, reset, periodic mode."""

from __future__ import annotations

import pytest

from wasi_hw import HwError
from wasi_hw.host import Read, SimI2cBackend, Write
from wasi_hw.host.devices import Sht3x
from wasi_hw.host.devices import crc8 as sht3x_crc

A = 0x44


def crc8(data: bytes) -> int:  # datasheet §4.12, written out independently
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc << 1 ^ 0x31 if crc & 0x80 else crc << 1) & 0xFF
    return crc


@pytest.fixture
def sim():
    sim = SimI2cBackend()
    sim.attach("i2c-1", A, Sht3x(temperature_c=24.3, humidity_pct=52.7))
    return sim


def cmd(sim, c):
    sim.transaction("i2c-1", A, False, [Write(c.to_bytes(2, "big"))])


def read(sim, n):
    return sim.transaction("i2c-1", A, False, [Read(n)])[0]


def nack(sim, fn, *args):
    with pytest.raises(HwError) as e:
        fn(sim, *args)
    return e.value.kind


def convert(data):
    for i in (0, 3):
        assert crc8(data[i:i + 2]) == data[i + 2]
    st, srh = int.from_bytes(data[0:2], "big"), int.from_bytes(data[3:5], "big")
    return -45 + 175 * st / 65535, 100 * srh / 65535


def test_crc_reference():
    assert sht3x_crc(b"\xbe\xef") == 0x92 == crc8(b"\xbe\xef")


def test_single_shot_without_stretching(sim):
    cmd(sim, 0x2400)
    assert nack(sim, read, 6) == "nack_address"  # not ready yet
    assert nack(sim, cmd, 0x2400) == "nack_address"  # busy measuring
    sim.delay_ns(15_000_000)
    t, rh = convert(read(sim, 6))
    assert t == pytest.approx(24.3, abs=0.01) and rh == pytest.approx(52.7, abs=0.01)
    assert nack(sim, read, 6) == "nack_address"  # the result is read once


def test_single_shot_with_stretching(sim):
    cmd(sim, 0x2C10)
    t0 = sim.clock.now_ns()
    t, _ = convert(read(sim, 6))
    assert sim.clock.now_ns() - t0 >= 4_000_000 - 1_000_000  # held SCL until ready
    assert t == pytest.approx(24.3, abs=0.01)


def test_partial_read_discards_result(sim):
    cmd(sim, 0x240B)
    sim.delay_ns(6_000_000)
    assert len(read(sim, 3)) == 3
    assert nack(sim, read, 3) == "nack_address"


def test_status_clear_heater_reset(sim):
    cmd(sim, 0xF32D)
    s = read(sim, 3)
    assert s[:2] == b"\x80\x10" and s[2] == crc8(s[:2])
    cmd(sim, 0x3041)
    cmd(sim, 0x306D)
    cmd(sim, 0xF32D)
    assert read(sim, 2) == b"\x20\x00"
    cmd(sim, 0x30A2)
    assert nack(sim, cmd, 0xF32D) == "nack_address"  # resetting
    sim.delay_ns(1_500_000)
    cmd(sim, 0xF32D)
    assert read(sim, 2) == b"\x80\x10"


def test_unknown_command_nacked_and_flagged(sim):
    assert nack(sim, cmd, 0x1234) == "nack_data"
    cmd(sim, 0xF32D)
    assert read(sim, 2)[1] & 0x02


def test_periodic_mode_fetch_and_break(sim):
    cmd(sim, 0x2130)  # 1 mps, high repeatability
    assert nack(sim, cmd, 0x2400) == "nack_data"  # only fetch/break/… during periodic mode
    cmd(sim, 0xE000)
    assert nack(sim, read, 6) == "nack_address"  # no data yet
    sim.delay_ns(20_000_000)
    cmd(sim, 0xE000)
    convert(read(sim, 6))
    cmd(sim, 0xE000)
    assert nack(sim, read, 6) == "nack_address"  # already fetched
    sim.device("i2c-1", A).temperature_c = -10.0
    sim.delay_ns(1_000_000_000)
    cmd(sim, 0xE000)
    assert convert(read(sim, 6))[0] == pytest.approx(-10.0, abs=0.01)
    cmd(sim, 0x3093)
    sim.delay_ns(1_000_000)
    cmd(sim, 0x2400)
