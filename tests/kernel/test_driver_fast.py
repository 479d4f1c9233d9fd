"""The fused ``report`` (kernel/_driver_fast.py) gives exactly what the generated shim →
guard → host chain gives: same errnos, same items delivered, same audit records and
violation counters.

Two identical kernels run the same calls, one through the installed (fused) function, one
through the generic chain bound over the same kind of guard."""

from __future__ import annotations

import random
import tempfile

import cbor2
import pytest
import wasmtime

from wasi_hw.apps import _bench as B
from wasi_hw._bindings import _wasi_driver as abi
from wasi_hw._memory import GuestMemory
from wasi_hw.host import SimI2cBackend
from wasi_hw.kernel import Backends
from wasi_hw.kernel._driver_fast import fused_report
from wasi_hw.kernel._policy import make_fail

PAGES = 1
TOP = PAGES * 65536
REPORT_BYTES = 64

_WAT = """
(module
  (import "wasi_driver" "report" (func $report (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (i32.const 0))
)
"""


class World:
    def __init__(self, cache: str, how: str) -> None:
        sim = SimI2cBackend(["i2c-1"])
        manifest = B._manifest("driver-fast", memory_pages=PAGES, report_bytes=REPORT_BYTES)
        self.run = B._Running(manifest, wasmtime.wat2wasm(_WAT), Backends(i2c=sim, clock=sim.clock),
                              cache)
        inst = self.run.instance
        self.inst = inst
        self.guard = inst.guards["wasi_driver"]
        self.mem = inst.mem
        self.items: list = []
        self.raise_in_sink = False
        kernel_sink = self.guard._host._report_sink

        def sink(item):
            if self.raise_in_sink:
                raise RuntimeError("the consumer failed")
            self.items.append(item)
            kernel_sink(item)
        self.guard._host._report_sink = sink
        fail = make_fail(manifest.name, "wasi_driver", abi.ERRNO, self.guard._audit,
                         inst.violations)
        generic = abi.bind(self.guard, self.mem, fail)["report"]
        if how == "installed":
            self.fn = inst.sandbox._shims[("wasi_driver", "report")]
            assert self.fn.__module__ == "wasi_hw.kernel._driver_fast"
            # rebuilt so the test's sink is the one it delivers to
            self.fn = fused_report(self.guard, self.mem, fail, generic)
        elif how == "guest-memory":
            plain = GuestMemory(inst.instance.exports(inst.store)["memory"], inst.store,
                                max_copy=self.mem.max_copy)
            self.fn = fused_report(self.guard, plain, fail, generic)
        else:
            self.fn = generic

    def call(self, ptr: int, n: int, data: bytes) -> tuple:
        if data:
            self.mem.write(ptr & 0xFFFFFFFF, data)
        audit = self.guard._audit
        before = len(audit.entries)
        got = len(self.items)
        try:
            errno = self.fn(ptr, n)
        except BaseException as exc:  # noqa: BLE001 — a trap is an outcome too
            errno = f"raised {type(exc).__name__}: {exc}"
        entries = [{k: v for k, v in e.items() if k != "time"}
                   for e in list(audit.entries)[before:]]
        v = self.inst.violations
        return (errno, [repr(i) for i in self.items[got:]], entries,
                (v.faults, v.bad_handles, v.host_errors))

    def close(self) -> None:
        self.run.close()


@pytest.fixture(params=["installed", "guest-memory"])
def worlds(request):
    with tempfile.TemporaryDirectory() as c1, tempfile.TemporaryDirectory() as c2:
        a, b = World(c1, request.param), World(c2, "generic")
        try:
            yield a, b
        finally:
            a.close()
            b.close()


def _both(a: World, b: World, ptr: int, n: int, data: bytes = b"") -> tuple:
    got = a.call(ptr, n, data), b.call(ptr, n, data)
    assert got[0] == got[1], (ptr, n, data.hex())
    return got[0]


GOOD = cbor2.dumps({"temperature_c": 22.49, "humidity_pct": 45.0})


def test_reports_match(worlds):
    a, b = worlds
    assert _both(a, b, 1024, len(GOOD), GOOD)[:2] == (0, [repr(cbor2.loads(GOOD))])
    errno, items, audit, _ = _both(a, b, 1024, 2, b"\x01\x02")            # trailing byte
    assert errno == abi.ERRNO["invalid_argument"] and not items
    errno, _, audit, _ = _both(a, b, 1024, REPORT_BYTES + 1, b"\x00" * 65)  # over the quota
    assert errno == abi.ERRNO["no_mem"] and audit
    _both(a, b, 1024, REPORT_BYTES, cbor2.dumps(b"x" * (REPORT_BYTES - 2)))  # exactly the quota
    _both(a, b, TOP - 2, 4)                                                  # past the memory
    _both(a, b, TOP - len(GOOD), len(GOOD), GOOD)                            # at its very end
    _both(a, b, 1024, -1)                                                    # a negative length
    _both(a, b, -8, 4)                                                       # a negative pointer
    _both(a, b, 1024, 0)                                                     # nothing
    a.raise_in_sink = b.raise_in_sink = True
    _both(a, b, 1024, len(GOOD), GOOD)                                       # the sink fails


@pytest.mark.parametrize("seed", range(3))
def test_random_reports_match(worlds, seed):
    a, b = worlds
    rng = random.Random(seed)
    for _ in range(300):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 12)))
        if rng.random() < 0.5:
            data = cbor2.dumps([rng.randrange(-1000, 1000), "x" * rng.randrange(70)])
        ptr = rng.choice([0, 100, TOP - 8, TOP - len(data), 2**32 - 4])
        n = rng.choice([len(data), len(data) + 1, max(0, len(data) - 1), 2**31])
        if ptr + len(data) > TOP:
            data = b""
        _both(a, b, ptr, n, data)
