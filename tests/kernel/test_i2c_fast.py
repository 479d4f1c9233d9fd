"""The C write_read / write / read path (kernel/_i2c_fast.py) gives exactly what the
generated shim → guard → host chain gives: same errnos, same bytes in guest memory, same audit
records, same backend traffic.

Two identical worlds (kernel, simulated buses, devices) run the same calls, one through the
fused functions, one through the generic chain bound over the same kind of guard."""

from __future__ import annotations

import random
import tempfile
import threading

import pytest
import wasmtime

from wasi_hw._bindings import _wasi_i2c as abi
from wasi_hw.apps import _bench as B
from wasi_hw.host import SimI2cBackend
from wasi_hw.host.devices import Bme280
from wasi_hw.kernel import Backends, I2cGrant, _native
from wasi_hw.kernel._i2c_fast import fused_i2c
from wasi_hw.kernel._manifest import RegisterRange
from wasi_hw.kernel._policy import make_fail

MAX = 64
PAGES = 2
TOP = PAGES * 65536
NAMES = ("write_read", "write", "read")

_WAT = """
(module
  (import "wasi_i2c" "open" (func $open (param i32 i32 i32) (result i32)))
  (import "wasi_i2c" "read" (func $r (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_i2c" "write" (func $w (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_i2c" "write_read" (func $wr (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "i2c-1")
  (data (i32.const 16) "i2c-2")
  (func (export "init") (result i32) (local $e i32)
    (local.set $e (call $open (i32.const 0) (i32.const 5) (i32.const 32)))
    (if (local.get $e) (then (return (local.get $e))))
    (call $open (i32.const 16) (i32.const 5) (i32.const 36)))
  (func (export "poll") (result i32) (i32.const 0))
)
"""

# i2c-1: a BME280 under a register-restricted, write-pairs grant (0x77 granted, nothing there);
# i2c-2: another BME280 at 0x76 and a 10-bit address, no register restriction
GRANTS = (
    I2cGrant("i2c-1", frozenset({0x76, 0x77}), registers=(
        RegisterRange(0x88, 0xA1, True, False), RegisterRange(0xD0, 0xD0, True, False),
        RegisterRange(0xE0, 0xE0, False, True), RegisterRange(0xE1, 0xF0, True, False),
        RegisterRange(0xF2, 0xF5, True, True), RegisterRange(0xF7, 0xFE, True, False)),
        write_pairs=True),
    I2cGrant("i2c-2", frozenset({0x76, 0x90, 0x150}), ten_bit=True),
)


def _put(mem, ptr: int, data: bytes) -> None:
    for off in range(0, len(data), MAX):      # the copy quota is MAX
        mem.write(ptr + off, data[off:off + MAX])


def _get(mem, ptr: int, n: int) -> bytes:
    return b"".join(mem.read(p, min(MAX, ptr + n - p)) for p in range(ptr, ptr + n, MAX))


class World:
    def __init__(self, cache: str, fused: bool) -> None:
        sim = SimI2cBackend(["i2c-1", "i2c-2"])
        sim.attach("i2c-1", 0x76, Bme280())
        sim.attach("i2c-2", 0x76, Bme280())
        sim.attach("i2c-2", 0x150, Bme280(), ten_bit=True)
        self.sim = sim
        manifest = B._manifest("i2c-fast", i2c=GRANTS, memory_pages=PAGES, max_transfer=MAX,
                               deadline_ms=1000)
        self.run = B._Running(manifest, wasmtime.wat2wasm(_WAT), Backends(i2c=sim, clock=sim.clock),
                              cache)
        inst = self.run.instance
        self.inst = inst
        self.guard = inst.guards["wasi_i2c"]
        self.mem = inst.mem
        self.handles = (self.mem.read_u32(32), self.mem.read_u32(36))
        fail = make_fail(manifest.name, "wasi_i2c", abi.ERRNO, self.guard._audit,
                         inst.violations)
        if fused:
            self.fns = {n: inst.sandbox._shims[("wasi_i2c", n)] for n in NAMES}
        else:
            self.fns = abi.bind(self.guard, self.mem, fail)

    def call(self, name: str, args: tuple, data: bytes) -> tuple:
        mem = self.mem
        _put(mem, 1024, data)
        _put(mem, 2048, b"\xee" * 128)
        audit = self.guard._audit
        before = len(audit.entries)
        hist = len(self.sim.history)
        try:
            errno = self.fns[name](*args)
        except BaseException as exc:  # noqa: BLE001 — a trap is an outcome too
            errno = f"raised {type(exc).__name__}: {exc}"
        entries = [{k: v for k, v in e.items() if k != "time"}
                   for e in list(audit.entries)[before:]]
        v = self.inst.violations
        return (errno, _get(mem, 0, 4096) + _get(mem, TOP - 64, 64), entries,
                list(self.sim.history)[hist:], (v.faults, v.bad_handles, v.host_errors))

    def close(self) -> None:
        self.run.close()


@pytest.fixture(params=["installed"])
def worlds(request):
    with tempfile.TemporaryDirectory() as c1, tempfile.TemporaryDirectory() as c2:
        a, b = World(c1, True if request.param == "installed" else request.param), \
            World(c2, False)
        try:
            assert a.handles == b.handles
            yield a, b
        finally:
            a.close()
            b.close()


def _args(name: str, h: int, address: int, mode: int, dp: int, dn: int, bp: int, bn: int):
    if name == "write_read":
        return (h, address, mode, dp, dn, bp, bn)
    if name == "write":
        return (h, address, mode, dp, dn)
    return (h, address, mode, bp, bn)


def _both(a: World, b: World, name: str, args: tuple, data: bytes) -> tuple:
    got_a, got_b = a.call(name, args, data), b.call(name, args, data)
    assert got_a == got_b, (name, args, data)
    return got_a


def test_the_fused_functions_are_installed(worlds):
    a, _ = worlds
    sandbox = a.inst.sandbox
    for n in NAMES:
        fn = sandbox._shims[("wasi_i2c", n)]
        if _native.available():      # the C version, over the generic chain
            assert type(fn).__name__ == "I2c" and a.inst.mem.native is not None
        else:                        # no C: the generic chain itself
            assert fn.__module__ == "wasi_hw._bindings._wasi_i2c"


EDGE = [
    # name, handle index (2: forged), address, mode, data, dp, dn, bp, bn
    ("chip id", "write_read", 0, 0x76, 0, b"\xd0", 1024, 1, 2048, 1),
    ("calibration run", "write_read", 0, 0x76, 0, b"\x88", 1024, 1, 2048, 26),
    ("read past the range", "write_read", 0, 0x76, 0, b"\xa0", 1024, 1, 2048, 3),
    ("unreadable register", "write_read", 0, 0x76, 0, b"\xe0", 1024, 1, 2048, 1),
    ("two-byte pointer", "write_read", 0, 0x76, 0, b"\xf4\x27", 1024, 2, 2048, 1),
    ("empty write, restricted", "write_read", 0, 0x76, 0, b"", 1024, 0, 2048, 1),
    ("empty read", "write_read", 0, 0x76, 0, b"\xd0", 1024, 1, 2048, 0),
    ("no device", "write_read", 0, 0x77, 0, b"\xd0", 1024, 1, 2048, 1),
    ("address not granted", "write_read", 0, 0x10, 0, b"\xd0", 1024, 1, 2048, 1),
    ("address beyond u16", "write_read", 0, 0x10076, 0, b"\xd0", 1024, 1, 2048, 1),
    ("negative address", "write_read", 0, -1, 0, b"\xd0", 1024, 1, 2048, 1),
    ("10-bit not granted", "write_read", 0, 0x76, 1, b"\xd0", 1024, 1, 2048, 1),
    ("10-bit granted", "write_read", 1, 0x150, 1, b"\xd0", 1024, 1, 2048, 1),
    ("10-bit address in 7-bit mode", "write_read", 1, 0x150, 0, b"\xd0", 1024, 1, 2048, 1),
    ("granted 10-bit address in 7-bit mode", "write_read", 1, 0x90, 0, b"\xd0", 1024, 1, 2048, 1),
    ("granted address, 10-bit mode", "write_read", 1, 0x90, 1, b"\xd0", 1024, 1, 2048, 1),
    ("7-bit address in 10-bit mode", "write_read", 1, 0x76, 1, b"\xd0", 1024, 1, 2048, 1),
    ("bad mode", "write_read", 1, 0x76, 2, b"\xd0", 1024, 1, 2048, 1),
    ("negative mode", "write_read", 1, 0x76, -1, b"\xd0", 1024, 1, 2048, 1),
    ("forged handle", "write_read", 2, 0x76, 0, b"\xd0", 1024, 1, 2048, 1),
    ("over quota", "write_read", 1, 0x76, 0, b"\xd0", 1024, 1, 2048, MAX),
    ("at quota", "write_read", 1, 0x76, 0, b"\xd0", 1024, 1, 2048, MAX - 1),
    ("buffer outside memory", "write_read", 1, 0x76, 0, b"\xd0", 1024, 1, TOP - 2, 4),
    ("buffer at the end", "write_read", 1, 0x76, 0, b"\xd0", 1024, 1, TOP - 4, 4),
    ("data outside memory", "write_read", 1, 0x76, 0, b"\xd0", TOP - 1, 2, 2048, 1),
    ("negative pointer", "write_read", 1, 0x76, 0, b"\xd0", 1024, 1, -8, 4),
    ("huge length", "write_read", 1, 0x76, 0, b"\xd0", 1024, 1, 2048, -1),
    ("unrestricted long write", "write_read", 1, 0x76, 0, b"\xf4\x27\xf5", 1024, 3, 2048, 2),
    ("pairs", "write", 0, 0x76, 0, b"\xf4\x27\xf2\x01", 1024, 4, 0, 0),
    ("pairs, odd", "write", 0, 0x76, 0, b"\xf4\x27\xf5", 1024, 3, 0, 0),
    ("pairs, bad register", "write", 0, 0x76, 0, b"\xf4\x27\xd0\x01", 1024, 4, 0, 0),
    ("reset", "write", 0, 0x76, 0, b"\xe0\xb6", 1024, 2, 0, 0),
    ("pointer only", "write", 0, 0x76, 0, b"\xf7", 1024, 1, 0, 0),
    ("pointer outside the ranges", "write", 0, 0x76, 0, b"\x00", 1024, 1, 0, 0),
    ("empty write", "write", 0, 0x76, 0, b"", 1024, 0, 0, 0),
    ("write no device", "write", 0, 0x77, 0, b"\xf4\x27", 1024, 2, 0, 0),
    ("write over quota", "write", 1, 0x76, 0, b"\xf4" * MAX, 1024, MAX + 1, 0, 0),
    ("write outside memory", "write", 1, 0x76, 0, b"\xf4", TOP - 1, 2, 0, 0),
    ("read without pointer", "read", 0, 0x76, 0, b"", 0, 0, 2048, 1),
    ("read unrestricted", "read", 1, 0x76, 0, b"", 0, 0, 2048, 8),
    ("read empty", "read", 1, 0x76, 0, b"", 0, 0, 2048, 0),
    ("read outside memory", "read", 1, 0x76, 0, b"", 0, 0, TOP, 1),
    ("read forged handle", "read", 2, 0x76, 0, b"", 0, 0, 2048, 1),
]


@pytest.mark.parametrize("case", EDGE, ids=[c[0] for c in EDGE])
def test_edge_cases_match(worlds, case):
    a, b = worlds
    _, name, hi, address, mode, data, dp, dn, bp, bn = case
    h = (*a.handles, 999)[hi]
    # twice each, and after a pointer write / read so the register tracking is exercised
    for _ in range(2):
        _both(a, b, name, _args(name, h, address, mode, dp, dn, bp, bn), data)
        _both(a, b, "write", _args("write", a.handles[0], 0x76, 0, 1024, 1, 0, 0), b"\xf7")
        _both(a, b, "read", _args("read", a.handles[0], 0x76, 0, 0, 0, 2048, 2), b"")
        _both(a, b, name, _args(name, h, address, mode, dp, dn, bp, bn), data)


REGS = (0x00, 0x88, 0x99, 0xA0, 0xA1, 0xD0, 0xE0, 0xE1, 0xF0, 0xF2, 0xF4, 0xF5, 0xF7, 0xFE,
        0xFF, 0x27, 0xB6)


@pytest.mark.parametrize("seed", range(6))
def test_random_calls_match(worlds, seed):
    a, b = worlds
    rnd = random.Random(seed)
    lengths = (0, 1, 1, 1, 2, 2, 3, 4, 6, 8, 26, MAX - 1, MAX, MAX + 1, 0xFFFFFFFF)
    for _ in range(300):
        name = rnd.choice(NAMES)
        h = rnd.choice((*a.handles, *a.handles, 0, 77))
        address = rnd.choice((0x76, 0x76, 0x76, 0x77, 0x90, 0x150, 0x10, 0x10076))
        mode = rnd.choice((0, 0, 0, 1, 2))
        dn, bn = rnd.choice(lengths), rnd.choice(lengths)
        dp = rnd.choice((1024, 1024, 1024, TOP - 2, -4))
        bp = rnd.choice((2048, 2048, 2048, TOP - 3, TOP, -2))
        data = bytes(rnd.choice(REGS) for _ in range(min(dn, MAX + 1)))
        if rnd.random() < 0.05:
            kind = rnd.choice(("nack_data", "arbitration_loss", "bus"))
            bus = rnd.choice(("i2c-1", "i2c-2"))
            a.sim.fail_next(bus, kind)
            b.sim.fail_next(bus, kind)
        _both(a, b, name, _args(name, h, address, mode, dp, dn, bp, bn), data)


def test_accepted_calls_skip_the_chain_and_others_take_it(worlds):
    a, _ = worlds
    calls = []

    def counting(n):
        def fn(*args):
            calls.append(n)
            return a.fns[n](*args)
        return fn

    if not _native.available():
        pytest.skip("no C extension: every call takes the generic chain")
    fns = fused_i2c(a.guard, a.mem, lambda exc, n: 99, {n: counting(n) for n in NAMES})
    h1, h2 = a.handles
    a.mem.write(1024, b"\xd0")
    assert fns["write_read"](h1, 0x76, 0, 1024, 1, 2048, 1) == 0
    assert fns["write"](h2, 0x76, 0, 1024, 1) == 0
    # a read under a register grant depends on a pointer no table knows: the chain denies it
    assert fns["read"](h1, 0x76, 0, 2048, 1) == abi.ERRNO["access"]
    assert fns["read"](h2, 0x76, 0, 2048, 4) == 0
    assert calls == ["read"]
    assert fns["write_read"](h1, 0x10, 0, 1024, 1, 2048, 1) == abi.ERRNO["access"]
    assert fns["write"](999, 0x76, 0, 1024, 1) == abi.ERRNO["bad_handle"]
    assert calls == ["read", "write_read", "write"]


def test_closed_handles(worlds):
    a, b = worlds
    h1, _ = a.handles
    args = _args("write_read", h1, 0x76, 0, 1024, 1, 2048, 1)
    assert _both(a, b, "write_read", args, b"\xd0")[0] == 0
    a.guard.close(h1)
    b.guard.close(h1)
    assert _both(a, b, "write_read", args, b"\xd0")[0] == abi.ERRNO["bad_handle"]
    assert _both(a, b, "read", _args("read", h1, 0x76, 0, 0, 0, 2048, 1), b"")[0] == \
        abi.ERRNO["bad_handle"]


def test_busy_bus_times_out_alike(worlds):
    a, b = worlds
    h = a.handles[1]
    for w in (a, b):
        w.guard._host._lock_timeout_s = 0.01
    locks = [w.guard._host.fused_io()[0][h][2] for w in (a, b)]
    held = threading.Event()
    release = threading.Event()

    def hold():
        for lock in locks:
            lock.acquire()
        held.set()
        release.wait(5)
        for lock in locks:
            lock.release()

    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait(5)
        for name in NAMES:
            got = _both(a, b, name, _args(name, h, 0x76, 0, 1024, 1, 2048, 1), b"\xf7")
            assert got[0] == abi.ERRNO["timeout"]
    finally:
        release.set()
        t.join()
    assert _both(a, b, "read", _args("read", h, 0x76, 0, 1024, 1, 2048, 1), b"")[0] == 0


@pytest.mark.parametrize("answer", [[b"\x01\x02"], [], [b"\x01", b"\x02"], [b""], None, [7]])
def test_malformed_backend_answers_match(worlds, answer):
    a, b = worlds
    for w in (a, b):
        w.sim.transaction = lambda *args, _a=answer: _a
    for name in NAMES:
        for h in a.handles:
            _both(a, b, name, _args(name, h, 0x76, 0, 1024, 1, 2048, 1), b"\xf7")
