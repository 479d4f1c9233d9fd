"""Smbus2I2cBackend without a kernel: the errno table, the I2C_RDWR messages and the SMBus
fallback choices, against a stand-in for smbus2.SMBus (the real ABI is covered by
test_smbus2_umockdev.py)."""

from __future__ import annotations

import errno

import pytest

import wasi_hw.host._smbus2_i2c as mod
from wasi_hw import HwError
from wasi_hw.host import I2cBackend, Read, Smbus2I2cBackend, Write

I2C, TEN = 0x1, 0x2
QUICK, RB, WB, RBD, WBD, RWD, WWD = 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000
RIB, WIB = 0x04000000, 0x08000000
SMBUS_ALL = QUICK | RB | WB | RBD | WBD | RWD | WWD | RIB | WIB


class FakeSMBus:
    """Records calls; answers reads with 0xA0, 0xA1, …; raises ``fail`` when set."""

    instances: list[FakeSMBus] = []
    funcs_for_next = I2C
    open_error: OSError | None = None

    def __init__(self, path):
        if FakeSMBus.open_error:
            raise FakeSMBus.open_error
        self.path, self.funcs, self.calls, self.fail, self.address = (
            path,
            FakeSMBus.funcs_for_next,
            [],
            None,
            None,
        )
        FakeSMBus.instances.append(self)

    def _call(self, name, address, *args):
        self.calls.append((name, address, *args))
        if self.fail:
            raise self.fail
        self.address = address

    def i2c_rdwr(self, *msgs):
        self.calls.append(("rdwr", [(m.addr, m.flags, m.len, bytes(m)) for m in msgs]))
        if self.fail:
            raise self.fail
        for m in msgs:
            if m.flags & 1:
                for i in range(m.len):
                    m.buf[i] = bytes([0xA0 + i])

    def write_quick(self, a): self._call("quick", a)
    def read_byte(self, a):
        self._call("read_byte", a)
        return 0xA0

    def write_byte(self, a, v): self._call("write_byte", a, v)
    def read_byte_data(self, a, r):
        self._call("read_byte_data", a, r)
        return 0xA0

    def write_byte_data(self, a, r, v): self._call("write_byte_data", a, r, v)
    def read_word_data(self, a, r):
        self._call("read_word_data", a, r)
        return 0xA1A0

    def write_word_data(self, a, r, v): self._call("write_word_data", a, r, v)

    def read_i2c_block_data(self, a, r, n):
        self._call("read_i2c_block", a, r, n)
        return [0xA0 + i for i in range(n)]

    def write_i2c_block_data(self, a, r, d): self._call("write_i2c_block", a, r, list(d))
    def close(self): self.calls.append(("close",))


@pytest.fixture
def fake(monkeypatch):
    FakeSMBus.instances = []
    FakeSMBus.funcs_for_next = I2C
    FakeSMBus.open_error = None
    monkeypatch.setattr(mod, "SMBus", FakeSMBus)

    def make(funcs=I2C):
        FakeSMBus.funcs_for_next = funcs
        return Smbus2I2cBackend(["i2c-1"])
    return make


def test_contract_and_names(fake):
    b = fake()
    assert isinstance(b, I2cBackend) and b.name == "smbus2" and b.buses() == ["i2c-1"]
    for name in ("i2c-2", "spi-0", "../i2c-1"):
        with pytest.raises(HwError) as e:
            b.transaction(name, 0x10, False, [Read(1)])
        assert e.value.kind == "no_such_bus"


def test_bad_input_is_refused_before_io(fake):
    b = fake()
    for address, ten, ops in (
        (0x10, False, ["read"]),
        (0x80, False, [Read(1)]),
        (0x400, True, [Read(1)]),
    ):
        with pytest.raises(HwError) as e:
            b.transaction("i2c-1", address, ten, ops)
        assert e.value.kind == "invalid_argument"
    assert FakeSMBus.instances == []


def test_one_rdwr_per_transaction(fake):
    b = fake()
    out = b.transaction("i2c-1", 0x76, False, [Write(b"\xf7"), Read(3), Write(b""), Read(1)])
    assert out == [b"\xa0\xa1\xa2", b"\xa0"]
    smbus = FakeSMBus.instances[0]
    assert smbus.path == "/dev/i2c-1"
    assert smbus.calls == [("rdwr", [(0x76, 0, 1, b"\xf7"), (0x76, 1, 3, b"\x00\x00\x00"),
                                     (0x76, 0, 0, b""), (0x76, 1, 1, b"\x00")])]
    b.transaction("i2c-1", 0x76, False, [Read(1)])
    assert len(FakeSMBus.instances) == 1  # opened once


def test_ten_bit(fake):
    with pytest.raises(HwError) as e:
        fake(I2C).transaction("i2c-1", 0x2A5, True, [Read(1)])
    assert e.value.kind == "not_supported"
    b = fake(I2C | TEN)
    b.transaction("i2c-1", 0x2A5, True, [Write(b"\x01")])
    assert FakeSMBus.instances[-1].calls[-1] == ("rdwr", [(0x2A5, 0x10, 1, b"\x01")])


def test_i2c_dev_limits(fake):
    b = fake()
    for ops in ([Read(1)] * 43, [Read(8193)], [Write(bytes(8193))]):
        with pytest.raises(HwError) as e:
            b.transaction("i2c-1", 0x10, False, ops)
        assert e.value.kind == "not_supported"


@pytest.mark.parametrize(
    "ops,funcs,call,result",
    [
        ([Write(b"")], SMBUS_ALL, ("quick", 0x10), []),
        ([Read(1)], SMBUS_ALL, ("read_byte", 0x10), [b"\xa0"]),
        ([Write(b"\x05")], SMBUS_ALL, ("write_byte", 0x10, 5), []),
        ([Write(b"\x05\x06")], SMBUS_ALL, ("write_byte_data", 0x10, 5, 6), []),
        ([Write(b"\x05\x06")], WIB, ("write_i2c_block", 0x10, 5, [6]), []),
        ([Write(b"\x05\x06\x07")], SMBUS_ALL, ("write_i2c_block", 0x10, 5, [6, 7]), []),
        ([Write(b"\x05\x06\x07")], WWD, ("write_word_data", 0x10, 5, 0x0706), []),
        ([Write(b"\x05"), Read(1)], SMBUS_ALL, ("read_byte_data", 0x10, 5), [b"\xa0"]),
        ([Write(b"\x05"), Read(1)], RIB, ("read_i2c_block", 0x10, 5, 1), [b"\xa0"]),
        ([Write(b"\x05"), Read(2)], SMBUS_ALL, ("read_i2c_block", 0x10, 5, 2), [b"\xa0\xa1"]),
        ([Write(b"\x05"), Read(2)], RWD, ("read_word_data", 0x10, 5), [b"\xa0\xa1"]),
        (
            [Write(b"\x05"), Read(32)],
            SMBUS_ALL,
            ("read_i2c_block", 0x10, 5, 32),
            [bytes(range(0xA0, 0xC0))],
        ),
    ],
)
def test_smbus_fallback(fake, ops, funcs, call, result):
    b = fake(funcs)
    assert b.transaction("i2c-1", 0x10, False, ops) == result
    assert FakeSMBus.instances[-1].calls == [call]


@pytest.mark.parametrize("ops,funcs", [
    ([Read(2)], SMBUS_ALL),
    ([Write(b"\x05\x06"), Read(1)], SMBUS_ALL),
    ([Write(b"\x05"), Read(33)], SMBUS_ALL),
    ([Write(b"\x05"), Read(0)], SMBUS_ALL),
    ([Write(bytes(34))], SMBUS_ALL),
    ([Write(b"\x05"), Read(1), Write(b"")], SMBUS_ALL),
    ([Write(b"")], SMBUS_ALL & ~QUICK),
    ([Write(b"\x05"), Read(4)], SMBUS_ALL & ~RIB),
])
def test_smbus_cannot_express(fake, ops, funcs):
    b = fake(funcs)
    with pytest.raises(HwError) as e:
        b.transaction("i2c-1", 0x10, False, ops)
    assert e.value.kind == "not_supported"
    assert FakeSMBus.instances[-1].calls == []
    with pytest.raises(HwError) as e:
        b.transaction("i2c-1", 0x10, True, [Write(b"\x01")])
    assert e.value.kind == "not_supported"


@pytest.mark.parametrize("code,ops,kind", [
    (errno.ENXIO, [Write(b"\x01")], "nack_address"),
    (errno.ENODEV, [Read(1)], "nack_address"),
    (errno.EREMOTEIO, [Read(2)], "nack_address"),
    (errno.EREMOTEIO, [Write(b"")], "nack_address"),
    (errno.EREMOTEIO, [Write(b"\x01"), Read(1)], "nack_unknown"),
    (errno.ETIMEDOUT, [Read(1)], "timeout"),
    (errno.EBUSY, [Read(1)], "timeout"),
    (errno.EAGAIN, [Read(1)], "arbitration_loss"),
    (errno.EOPNOTSUPP, [Read(1)], "not_supported"),
    (errno.ENOSYS, [Read(1)], "not_supported"),
    (errno.EBADMSG, [Read(1)], "bus"),
    (errno.EPROTO, [Read(1)], "bus"),
    (errno.EOVERFLOW, [Read(1)], "overrun"),
    (errno.EINVAL, [Read(1)], "invalid_argument"),
    (errno.EACCES, [Read(1)], "access"),
    (errno.EPERM, [Read(1)], "access"),
    (errno.EIO, [Read(1)], "other"),
    (errno.ESHUTDOWN, [Read(1)], "other"),
])
def test_errno_table(fake, code, ops, kind):
    b = fake(I2C)
    b.transaction("i2c-1", 0x10, False, [Write(b"")])
    FakeSMBus.instances[-1].fail = OSError(code, "boom")
    with pytest.raises(HwError) as e:
        b.transaction("i2c-1", 0x10, False, ops)
    assert e.value.kind == kind


def test_ebusy_from_i2c_slave_is_access(fake):
    b = fake(SMBUS_ALL)
    FakeSMBus.instances.clear()
    b.funcs("i2c-1")
    FakeSMBus.instances[-1].fail = OSError(errno.EBUSY, "Device or resource busy")
    with pytest.raises(HwError) as e:
        b.transaction("i2c-1", 0x10, False, [Read(1)])
    assert e.value.kind == "access"


@pytest.mark.parametrize("code,kind", [(errno.ENOENT, "no_such_bus"), (errno.EACCES, "access"),
                                       (errno.EPERM, "access"), (errno.EIO, "other")])
def test_open_errors(fake, code, kind):
    FakeSMBus.open_error = OSError(code, "nope")
    with pytest.raises(HwError) as e:
        Smbus2I2cBackend().transaction("i2c-1", 0x10, False, [Read(1)])
    assert e.value.kind == kind


def test_close_and_delay(fake):
    b = fake()
    b.transaction("i2c-1", 0x10, False, [Read(1)])
    b.close()
    assert FakeSMBus.instances[0].calls[-1] == ("close",)
    b.delay_ns(1000)  # real clock: returns


def test_linux_bus_listing(tmp_path):
    dev, sys_ = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for n in (10, 2, 1):
        (dev / f"i2c-{n}").touch()
    (dev / "i2c-foo").touch()
    (sys_ / "class/i2c-dev/i2c-2").mkdir(parents=True)
    (sys_ / "class/i2c-dev/i2c-2/name").write_text("SMBus stub driver\n")
    (sys_ / "class/i2c-adapter/i2c-10").mkdir(parents=True)
    (sys_ / "class/i2c-adapter/i2c-10/name").write_text("bcm2835 (i2c@7e804000)\n")
    assert mod.linux_i2c_buses(str(dev), str(sys_)) == [
        ("i2c-1", str(dev / "i2c-1"), ""),
        ("i2c-2", str(dev / "i2c-2"), "SMBus stub driver"),
        ("i2c-10", str(dev / "i2c-10"), "bcm2835 (i2c@7e804000)"),
    ]
    assert Smbus2I2cBackend(dev_dir=str(dev)).buses() == ["i2c-1", "i2c-2", "i2c-10"]
