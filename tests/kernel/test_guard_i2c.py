"""The I2C guard over a real `I2cHost` and a simulated BME280: buses, addresses, register
ranges (a write's first byte is the register pointer), quotas and delays."""

from __future__ import annotations

import pytest

from wasi_hw import HwError
from wasi_hw._bindings._wasi_i2c import AddressMode, Operation, OpKind
from wasi_hw.host import I2cHost, SimI2cBackend
from wasi_hw.host.devices import Bme280
from wasi_hw.kernel import AuditLog
from wasi_hw.kernel._guard import I2cGuard
from wasi_hw.kernel._manifest import I2cGrant, Limits, Manifest, RegisterRange

from test_guard_usb import Buf

SEVEN = AddressMode.SEVEN_BIT
CHIP_ID, CTRL_MEAS, CALIB = 0xD0, 0xF4, 0x88


def make(registers=(), **limits):
    sim = SimI2cBackend(["i2c-1", "i2c-2"])
    sim.attach("i2c-1", 0x76, Bme280())
    m = Manifest(name="drv", wasm=None,
                 i2c=(I2cGrant("i2c-1", frozenset({0x76}), registers=tuple(registers)),),
                 limits=Limits(**limits))
    audit = AuditLog()
    guard = I2cGuard(I2cHost(sim), m, audit)
    return guard, audit, sim


def kind(fn, *args):
    with pytest.raises(HwError) as info:
        fn(*args)
    return info.value.kind


def test_ungranted_bus_is_denied_and_audited():
    guard, audit, _ = make()
    assert kind(guard.open, "i2c-2") == "access"
    assert audit.entries[0]["asked"] == {"bus": "i2c-2"}
    assert "granted: i2c-1" in audit.entries[0]["why"]


def test_granted_address_reads_chip_id():
    guard, audit, _ = make()
    bus = guard.open("i2c-1")
    out = Buf(1)
    guard.write_read(bus, 0x76, SEVEN, bytes([CHIP_ID]), out)
    assert out.data == bytearray([0x60])
    assert kind(guard.write_read, bus, 0x77, SEVEN, bytes([CHIP_ID]), Buf(1)) == "access"
    assert kind(guard.read, bus, 0x76, AddressMode.TEN_BIT, Buf(1)) == "access"
    assert [e["why"] for e in audit.entries][1] == "10-bit addressing is not granted on i2c-1"


def test_open_handle_quota():
    guard, audit, _ = make(open_handles=2)
    guard.open("i2c-1"), guard.open("i2c-1")
    assert kind(guard.open, "i2c-1") == "no_mem"


def test_transfer_quota_checked_before_copying():
    guard, _, _ = make(max_transfer=8)
    bus = guard.open("i2c-1")
    ops = [Operation(OpKind.WRITE, Buf(data=bytes([CALIB]))), Operation(OpKind.READ, Buf(26))]
    assert kind(guard.transaction, bus, 0x76, SEVEN, ops) == "no_mem"


READ_ONLY_CALIB = RegisterRange(0x88, 0xA1, read=True, write=False)
CTRL_RW = RegisterRange(0xF2, 0xF5, read=True, write=True)
ID_R = RegisterRange(0xD0, 0xD0, read=True, write=False)


def test_register_ranges():
    guard, audit, sim = make(registers=(READ_ONLY_CALIB, CTRL_RW, ID_R))
    bus = guard.open("i2c-1")
    # allowed: read calibration, write ctrl_meas, read chip id
    guard.write_read(bus, 0x76, SEVEN, bytes([CALIB]), Buf(26))
    guard.write(bus, 0x76, SEVEN, bytes([CTRL_MEAS, 0x27]))
    guard.write_read(bus, 0x76, SEVEN, bytes([CHIP_ID]), Buf(1))
    # denied: writing calibration (read-only), reading past the range, writing outside ranges
    assert kind(guard.write, bus, 0x76, SEVEN, bytes([CALIB, 0])) == "access"
    assert kind(guard.write_read, bus, 0x76, SEVEN, bytes([0xA0]), Buf(4)) == "access"
    assert kind(guard.write, bus, 0x76, SEVEN, bytes([0xE0, 0xB6])) == "access"   # soft reset
    assert [e["asked"].get("register") for e in audit.entries] == [0x88, 0xA2, 0xE0]
    assert "writing register 0xe0 is not granted" in audit.entries[2]["why"]
    # the denied soft reset never reached the chip
    assert not [h for h in sim.history if h[3] and getattr(h[3][0], "data", b"")[:1] == b"\xe0"]


def test_register_pointer_does_not_carry_across_transactions():
    # the bus is not held between calls: another driver may move the pointer, so a read in a
    # later call has an unknown pointer (set it in the same transaction: write_read)
    guard, audit, _ = make(registers=(ID_R, CTRL_RW))
    bus = guard.open("i2c-1")
    guard.write(bus, 0x76, SEVEN, bytes([CHIP_ID]))     # pointer only
    assert kind(guard.read, bus, 0x76, SEVEN, Buf(1)) == "access"
    assert "without a known register pointer" in audit.entries[-1]["why"]


def test_read_without_pointer_is_denied_under_register_grant():
    guard, audit, _ = make(registers=(ID_R,))
    bus = guard.open("i2c-1")
    assert kind(guard.read, bus, 0x76, SEVEN, Buf(1)) == "access"
    assert "without a known register pointer" in audit.entries[0]["why"]


def test_delay_bounded_by_deadline():
    guard, _, sim = make(deadline_ms=10)
    guard.begin_call()
    t0 = sim.clock.now_ns()
    guard.delay_ns(5_000_000)
    assert kind(guard.delay_ns, 11_000_000) == "invalid_argument"
    guard.delay_ns(4_000_000)
    # the delays of one call add up: 5 + 4 ms used, 2 more would pass the 10 ms deadline
    assert kind(guard.delay_ns, 2_000_000) == "invalid_argument"
    assert sim.clock.now_ns() - t0 >= 9_000_000
    guard.begin_call()                      # the next call into the guest starts afresh
    guard.delay_ns(9_000_000)


def test_write_pairs_check_every_register():
    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", 0x76, Bme280())
    grant = I2cGrant("i2c-1", frozenset({0x76}), registers=(CTRL_RW,), write_pairs=True)
    audit = AuditLog()
    guard = I2cGuard(I2cHost(sim), Manifest(name="d", wasm=None, i2c=(grant,)), audit)
    bus = guard.open("i2c-1")
    guard.write(bus, 0x76, SEVEN, bytes([0xF2, 0x01, 0xF5, 0x00]))      # ctrl_hum + config
    # auto-increment would read this as registers 0xf2..0xf4; as pairs it writes 0xe0 (reset)
    assert kind(guard.write, bus, 0x76, SEVEN, bytes([0xF2, 0x01, 0xE0, 0xB6])) == "access"
    assert audit.entries[0]["asked"]["register"] == 0xE0
