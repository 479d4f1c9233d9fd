"""I2cHost and DriverEnv behind the generated shims over a real wasmtime linear memory:
raw integers in, errnos and memory contents out (the path a driver's import takes)."""

from __future__ import annotations

import struct

import cbor2
import pytest
import wasmtime

from wasi_hw import HwError
from wasi_hw._bindings import _wasi_driver, _wasi_i2c
from wasi_hw._memory import GuestMemory
from wasi_hw.host import DriverEnv, I2cHost, SimI2cBackend, VirtualClock
from wasi_hw.host.devices import Bme280, Sht3x

E = _wasi_i2c.ERRNO


def fail_with(errno_table):
    def fail(exc: BaseException, name: str) -> int:
        if isinstance(exc, HwError):
            return errno_table.get(exc.kind, errno_table["other"])
        raise exc
    return fail


@pytest.fixture
def guest():
    store = wasmtime.Store()
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, None)))
    mem = GuestMemory(memory, store, max_copy=65536)
    sim = SimI2cBackend()
    sim.attach("i2c-1", 0x76, Bme280(temperature_c=20.0))
    sim.attach("i2c-1", 0x44, Sht3x())
    host = I2cHost({"i2c-1": sim})
    yield mem, sim, _wasi_i2c.bind(host, mem, fail_with(E))
    del store  # GuestMemory does not keep the store alive: it must outlive every call


def open_bus(mem, f, name=b"i2c-1"):
    mem.write(0x100, name)
    assert f["open"](0x100, len(name), 0x200) == E["success"]
    return mem.read_u32(0x200)


def test_open_transaction_write_read(guest):
    mem, sim, f = guest
    bus = open_bus(mem, f)
    mem.write(0x300, b"\xd0")
    assert f["write_read"](bus, 0x76, 0, 0x300, 1, 0x310, 1) == E["success"]
    assert mem.read(0x310, 1) == b"\x60"
    # transaction: [write 0x88, read 2, read 4] as an operation array
    mem.write(0x320, b"\x88")
    ops = (
        struct.pack("<BxxxII", 1, 0x320, 1)
        + struct.pack("<BxxxII", 0, 0x400, 2)
        + struct.pack("<BxxxII", 0, 0x402, 4)
    )
    mem.write(0x500, ops)
    assert f["transaction"](bus, 0x76, 0, 0x500, 3) == E["success"]
    assert mem.read(0x400, 6) == bytes.fromhex("706b436718fc")
    assert f["close"](bus) == E["success"]
    assert f["close"](bus) == E["bad_handle"]


def test_errors_reach_the_guest_as_errnos(guest):
    mem, sim, f = guest
    assert open_bus(mem, f) != 0
    mem.write(0x100, b"i2c-9")
    assert f["open"](0x100, 5, 0x200) == E["no_such_bus"]
    bus = 1
    mem.write(0x600, b"\xee\xee")
    assert f["read"](bus, 0x50, 0, 0x600, 2) == E["nack_address"]
    assert mem.read(0x600, 2) == b"\xee\xee"
    assert f["read"](bus, 0x80, 0, 0x600, 2) == E["invalid_argument"]
    assert f["read"](bus, 0x76, 7, 0x600, 2) == E["invalid_argument"]  # enum out of range
    assert f["transaction"](bus, 0x76, 0, 0x500, 0) == E["invalid_argument"]
    assert f["write"](bus, 0x44, 0, 0x600, 0x5000) == E["no_mem"]  # over the transfer quota
    assert f["write"](bus, 0x44, 0, 0x600, 0x10000) == E["fault"]  # outside linear memory
    assert f["delay_ns"](2_000_000_000) == E["invalid_argument"]
    t = sim.clock.now_ns()
    assert f["delay_ns"](15_000_000) == E["success"]
    assert sim.clock.now_ns() - t == 15_000_000


def test_driver_env_through_shim():
    store = wasmtime.Store()
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, None)))
    mem = GuestMemory(memory, store, max_copy=65536)
    reports, clock = [], VirtualClock(5)
    env = DriverEnv(config={"bus": "i2c-1"}, report_sink=reports.append, clock=clock)
    D = _wasi_driver.ERRNO
    f = _wasi_driver.bind(env, mem, fail_with(D))
    data = cbor2.dumps({"temperature_c": 20.5})
    mem.write(0x100, data)
    assert f["report"](0x100, len(data)) == D["success"]
    assert reports == [{"temperature_c": 20.5}]
    assert f["report"](0x100, len(data) - 1) == D["invalid_argument"]
    mem.write(0x200, b"bus")
    assert f["config_get"](0x200, 3, 0x300, 16, 0x400) == D["success"]
    assert mem.read_u32(0x400) == 5 and mem.read(0x300, 5) == b"i2c-1"
    assert f["config_get"](0x200, 3, 0x300, 2, 0x400) == D["too_large"]
    mem.write(0x200, b"nope")
    assert f["config_get"](0x200, 4, 0x300, 16, 0x400) == D["not_found"]
    assert f["now_ns"](0x500) == D["success"] and mem.read_u64(0x500) == 5
    del store
