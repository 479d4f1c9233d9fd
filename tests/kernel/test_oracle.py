"""Register rights against an oracle: what the simulated device actually saw.

Random register grants and random operation sequences go through the real import path — a
wasm guest calling ``wasi_i2c.transaction`` / ``write`` / ``read`` / ``write_read`` — on the
kernel's fast host-call path (the C trampoline and C fused calls where built; the whole
kernel suite runs again with ``WASI_HW_NATIVE=0`` in tests/kernel/test_native.py, which makes
this the ctypes path) and on the checked path (``Linker.define_func``). The device models
record every register a byte went into or came out of (``touched``); every one must be
granted with that right. The guard is never asked: this is not a mirror of its rules.
"""

from __future__ import annotations

import os
import struct

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasi_hw._bindings._wasi_i2c import ERRNO
from wasi_hw.host import SimI2cBackend
from wasi_hw.host.devices import Bme280, RegisterDevice, Tmp102
from wasi_hw.kernel import AuditLog
from wasi_hw.kernel._engine import KernelEngine
from wasi_hw.kernel._hosts import Backends, make_hosts
from wasi_hw.kernel._manifest import I2cGrant, Limits, Manifest, RegisterRange
from wasi_hw.kernel._sandbox import Sandbox

ADDRESS = 0x76
# examples per path (fewer under the sanitizer build: tests/kernel/test_sanitizers.py)
EXAMPLES = int(os.environ.get("WASI_HW_ORACLE_EXAMPLES", "300"))
ACCESS = ERRNO["access"]
PROGRAM, RESULTS, DATA = 0x1000, 0x4000, 0x8000

# a guest that runs a program of I2C calls written into its memory by the test:
# [count] at 0x0ffc, then 32-byte commands (op, address, mode, a, b, c, d) at 0x1000;
# op 1 transaction(ops, n), 2 write(data, n), 3 read(buf, n), 4 write_read(data, n, buf, m)
INTERPRETER = """
(module
  (import "wasi_i2c" "open" (func $open (param i32 i32 i32) (result i32)))
  (import "wasi_i2c" "transaction" (func $tx (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_i2c" "write" (func $write (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_i2c" "read" (func $read (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_i2c" "write_read" (func $wr (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 0) "i2c-1")
  (func (export "init") (result i32)
    (call $open (i32.const 0) (i32.const 5) (i32.const 16)))
  (func (export "poll") (result i32)
    (local $i i32) (local $c i32) (local $op i32) (local $h i32)
    (local.set $h (i32.load (i32.const 16)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0x0ffc))))
      (local.set $c (i32.add (i32.const 0x1000) (i32.shl (local.get $i) (i32.const 5))))
      (local.set $op (i32.load (local.get $c)))
      (i32.store (i32.add (i32.const 0x4000) (i32.shl (local.get $i) (i32.const 2)))
        (if (result i32) (i32.eq (local.get $op) (i32.const 1))
          (then (call $tx (local.get $h) (i32.load offset=4 (local.get $c))
                  (i32.load offset=8 (local.get $c)) (i32.load offset=12 (local.get $c))
                  (i32.load offset=16 (local.get $c))))
          (else (if (result i32) (i32.eq (local.get $op) (i32.const 2))
            (then (call $write (local.get $h) (i32.load offset=4 (local.get $c))
                    (i32.load offset=8 (local.get $c)) (i32.load offset=12 (local.get $c))
                    (i32.load offset=16 (local.get $c))))
            (else (if (result i32) (i32.eq (local.get $op) (i32.const 3))
              (then (call $read (local.get $h) (i32.load offset=4 (local.get $c))
                      (i32.load offset=8 (local.get $c)) (i32.load offset=12 (local.get $c))
                      (i32.load offset=16 (local.get $c))))
              (else (call $wr (local.get $h) (i32.load offset=4 (local.get $c))
                      (i32.load offset=8 (local.get $c)) (i32.load offset=12 (local.get $c))
                      (i32.load offset=16 (local.get $c)) (i32.load offset=20 (local.get $c))
                      (i32.load offset=24 (local.get $c))))))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.const 0)))
"""


class _Hold(RegisterDevice):
    """A register chip whose pointer never moves (declared ``pointer = "none"``)."""

    def next_pointer(self, pointer: int, write: bool) -> int:
        return pointer


# pointer behaviour declared in the grant → device models that behave so
MODELS = {"auto_increment": [RegisterDevice], "write_pairs": [Bme280],
          "none": [_Hold, Tmp102]}


@pytest.fixture(scope="module")
def world():
    with KernelEngine() as engine:
        module = wasmtime.Module(engine.engine, INTERPRETER)
        yield engine, module


class Program:
    """Commands laid out in guest memory (see INTERPRETER)."""

    def __init__(self) -> None:
        self.commands: list[tuple[int, ...]] = []
        self.blobs: list[tuple[int, bytes]] = []
        self._free = DATA

    def _blob(self, data: bytes) -> int:
        ptr = self._free
        self.blobs.append((ptr, data))
        self._free += max(len(data), 1) + 8
        return ptr

    def transaction(self, ops: list[tuple[bool, bytes | int]]) -> None:
        table = b""
        for is_write, x in ops:
            if is_write:
                table += struct.pack("<B3xII", 1, self._blob(x), len(x))
            else:
                table += struct.pack("<B3xII", 0, self._blob(bytes(x)), x)
        self.commands.append((1, ADDRESS, 0, self._blob(table), len(ops), 0, 0))

    def write(self, data: bytes) -> None:
        self.commands.append((2, ADDRESS, 0, self._blob(data), len(data), 0, 0))

    def read(self, n: int) -> None:
        self.commands.append((3, ADDRESS, 0, self._blob(bytes(n)), n, 0, 0))

    def write_read(self, data: bytes, n: int) -> None:
        self.commands.append((4, ADDRESS, 0, self._blob(data), len(data),
                              self._blob(bytes(n)), n))

    def load(self, mem) -> None:
        mem.write(0x0FFC, struct.pack("<I", len(self.commands)))
        for i, c in enumerate(self.commands):
            mem.write(PROGRAM + 32 * i, struct.pack("<7I4x", *c))
        for ptr, data in self.blobs:
            if data:
                mem.write(ptr, data)


def run(world, grant: I2cGrant, device, program: Program, *, fast: bool,
        audit: AuditLog | None = None) -> list[int]:
    """Run ``program`` under ``grant`` against ``device``; the errnos of its calls."""
    engine, module = world
    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", ADDRESS, device)
    manifest = Manifest(name="oracle", wasm=None, i2c=(grant,),
                        limits=Limits(max_transfer=256, deadline_ms=1000, memory_pages=2))
    sandbox = Sandbox(engine, module, manifest, fast=fast)
    hosts = make_hosts(manifest, Backends(i2c=sim, clock=sim.clock), report_sink=lambda i: None,
                       log_sink=lambda level, message: None)
    inst = sandbox.start(hosts, audit if audit is not None else AuditLog())
    assert inst.call("init") == 0
    program.load(inst.mem)
    assert inst.call("poll") == 0
    return list(struct.unpack(f"<{len(program.commands)}I",
                              inst.mem.read(RESULTS, 4 * len(program.commands))))


def allowed(grant: I2cGrant) -> set[tuple[str, int]]:
    return {(kind, r) for r in range(256) for kind, w in (("r", False), ("w", True))
            if grant.allows_register(r, write=w)}


# -- strategies: a window of 8 registers, each with its own rights (dense in edges) --------
def _ranges(base: int, rights: list[str]) -> tuple[RegisterRange, ...]:
    return tuple(RegisterRange(base + i, base + i, "r" in a, "w" in a)
                 for i, a in enumerate(rights) if a)


ranges = st.builds(_ranges, st.sampled_from([0x00, 0x40, 0xF8]),
                   st.lists(st.sampled_from(["", "r", "w", "rw"]), min_size=8, max_size=8)) \
    .filter(bool)
lengths = st.integers(0, 5)


def commands_near(regs) -> st.SearchStrategy:
    """Commands whose bytes are the grant's edges and their neighbours (where bugs live)."""
    edges = sorted({x for r in regs for x in (r.first - 1, r.first, r.last, r.last + 1)
                    if 0 <= x <= 0xFF})
    data = st.lists(st.sampled_from(edges), min_size=0, max_size=5).map(bytes)
    op = st.one_of(st.tuples(st.just(True), data), st.tuples(st.just(False), lengths))
    command = st.one_of(
        st.tuples(st.just("transaction"), st.lists(op, min_size=1, max_size=4)),
        st.tuples(st.just("write"), data),
        st.tuples(st.just("read"), lengths),
        st.tuples(st.just("write_read"), st.tuples(data, lengths)))
    return st.lists(command, min_size=1, max_size=12)


def build(commands) -> Program:
    p = Program()
    for kind, arg in commands:
        if kind == "transaction":
            p.transaction(arg)
        elif kind == "write":
            p.write(arg)
        elif kind == "read":
            p.read(arg)
        else:
            p.write_read(*arg)
    return p


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "checked-path"])
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(pointer=st.sampled_from(sorted(MODELS)), model=st.integers(0, 1), regs=ranges,
       draw=st.data())
def test_device_sees_only_granted_registers(world, fast, pointer, model, regs, draw):
    commands = draw.draw(commands_near(regs), label="commands")
    grant = I2cGrant("i2c-1", frozenset({ADDRESS}), registers=regs, pointer=pointer)
    models = MODELS[pointer]
    device = models[model % len(models)]()
    run(world, grant, device, build(commands), fast=fast)
    assert device.touched <= allowed(grant), (pointer, regs, commands)


# -- the two classes found by hand, as fixed cases ---------------------------------------
CTRL_RO = (RegisterRange(0xF2, 0xF5, True, False),)


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "checked-path"])
def test_two_adjacent_writes_are_one_message_on_the_wire(world, fast):
    # [F4], [F5] in one transaction go out as one Write [F4 F5]: 0xF5 would land in ctrl_meas
    grant = I2cGrant("i2c-1", frozenset({ADDRESS}), registers=CTRL_RO, pointer="write_pairs")
    device = Bme280()
    p = Program()
    p.transaction([(True, b"\xf4"), (True, b"\xf5")])
    p.transaction([(True, b"\xf4"), (True, b""), (True, b"\x27")])
    assert run(world, grant, device, p, fast=fast) == [ACCESS, ACCESS]
    assert device.touched == set() and device.ctrl_meas == 0


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "checked-path"])
def test_pointer_after_register_value_pairs_is_unknown(world, fast):
    # the BME280 model leaves the pointer on the register just written; a read must not
    # rely on it being one past (nor on it staying): the read is denied
    grant = I2cGrant("i2c-1", frozenset({ADDRESS}), pointer="write_pairs",
                     registers=(RegisterRange(0xF4, 0xF4, False, True),
                                RegisterRange(0xF5, 0xF5, True, False)))
    device = Bme280()
    p = Program()
    p.transaction([(True, b"\xf4\x00"), (False, 1)])
    p.write_read(b"\xf5", 1)                                        # allowed: reads 0xF5
    assert run(world, grant, device, p, fast=fast) == [ACCESS, 0]
    assert device.touched == {("r", 0xF5)}          # the denied transaction wrote nothing


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "checked-path"])
def test_read_in_a_later_call_has_no_known_pointer(world, fast):
    grant = I2cGrant("i2c-1", frozenset({ADDRESS}),
                     registers=(RegisterRange(0xD0, 0xD0, True, False),))
    device = Bme280()
    p = Program()
    p.write(b"\xd0")
    p.read(1)
    assert run(world, grant, device, p, fast=fast) == [0, ACCESS]
    assert device.touched == set()


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "checked-path"])
def test_quota_denials_are_audited(world, fast):
    grant = I2cGrant("i2c-1", frozenset({ADDRESS}))
    audit = AuditLog()
    p = Program()
    p.commands.append((1, ADDRESS, 0, DATA, 0x8000_0000, 0, 0))   # a transaction of 2^31 ops
    p.commands.append((2, ADDRESS, 0, DATA, 257, 0, 0))           # over max_transfer = 256
    p.commands.append((1, ADDRESS, 0, DATA, 0x1556, 0, 0))         # 65 544 bytes of ops
    assert run(world, grant, Bme280(), p, fast=fast, audit=audit) == [
        ERRNO["fault"], ERRNO["no_mem"], ERRNO["no_mem"]]
    # 2^31 ops of 12 bytes are a region no memory holds (not a count wrapped to 32 bits)
    assert [(e["call"], e["outcome"]) for e in audit.entries] == [
        ("wasi_i2c.transaction", "fault"), ("wasi_i2c.write", "no_mem"),
        ("wasi_i2c.transaction", "no_mem")]
