"""The native half of the host-call path (kernel/_native.py, kernel/_cnative.c).

It must be built here (a silent fallback would hide a broken build), behave exactly like the
ctypes path it replaces — same results, same exceptions, same truncation — check guest memory
bounds as `GuestMemory` does, and tick epochs without the GIL. The whole kernel suite also
runs with it switched off (``WASI_HW_NATIVE=0``), a step of its own in ``./dev.sh test``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import wasmtime

from wasi_hw import GuestFault, HwError
from wasi_hw._memory import GuestMemory
from wasi_hw.kernel import (
    _native,
    _sandbox,  # noqa: F401 — configures the native half
)
from wasi_hw.kernel._engine import KernelEngine
from wasi_hw.kernel._fastcall import HostCalls, define_unchecked, reraise_at_call_site

ROOT = Path(__file__).resolve().parents[2]
OFF = os.environ.get("WASI_HW_NATIVE") == "0"
needs_native = pytest.mark.skipif(OFF or not _native.available(),
                                  reason="native path switched off")

WAT = r"""
(module
  (import "h" "f" (func $f (param i32 i64) (result i32)))
  (import "h" "g" (func $g (result i32)))
  (memory (export "memory") 1 3)
  (func (export "f") (param i32 i64) (result i32) (call $f (local.get 0) (local.get 1)))
  (func (export "g") (result i32) (call $g))
  (func (export "grow") (result i32) (memory.grow (i32.const 1)))
  (func (export "minus") (result i32) (i32.const -5))
  (func (export "trap") (result i32) (unreachable))
  (func (export "spin") (result i32) (loop (br 0)) (i32.const 0))
)
"""


@pytest.mark.skipif(OFF, reason="WASI_HW_NATIVE=0")
def test_native_is_built_and_used_here():
    assert _native.available(), "kernel/_cnative.c was not built (is gcc / python3-dev there?)"
    from wasi_hw.kernel._sandbox import _CURRENT, _NativeCurrent
    assert isinstance(_CURRENT, _NativeCurrent)


class Linked:
    """The WAT module with h.f / h.g defined natively or through the ctypes callback."""

    def __init__(self, native: bool, table: dict, engine: wasmtime.Engine | None = None) -> None:
        engine = engine or wasmtime.Engine()
        self.linker = wasmtime.Linker(engine)
        self.table = table
        for name, params in (("f", ("i32", "i64")), ("g", ())):
            key = ("h-test", name)
            if native:
                _native.define(self.linker, "h", name, params, ("i32",), key)
            else:
                define_unchecked(self.linker, "h", name, params, ("i32",),
                                 lambda *a, key=key: self.table[key](*a), reraise_at_call_site)
        self.store = wasmtime.Store(engine)
        self.store.set_epoch_deadline(1 << 40)
        inst = self.linker.instantiate(self.store, wasmtime.Module(engine, WAT))
        self.exports = inst.exports(self.store)
        calls = HostCalls(self.linker)
        self.f = calls.caller(self.store, self.exports["f"], (["i32", "i64"], ["i32"]))
        self.g = calls.caller(self.store, self.exports["g"], ([], ["i32"]))
        self.native = native

    def outcome(self, fn, *args):
        prev = _native.set_current(self.table) if self.native else None
        try:
            return ("ok", fn(*args))
        except wasmtime.Trap as trap:       # the code, not the backtrace text
            return ("raised", "Trap", str(trap.trap_code))
        except BaseException as exc:  # noqa: BLE001 — an exception is an outcome too
            return ("raised", type(exc).__name__, str(exc))
        finally:
            if self.native:
                _native.set_current(prev)


def _stop(*a):
    raise KeyboardInterrupt("stop")


def _boom(*a):
    raise ValueError("boom")


FUNCS = {
    "echo": lambda a, b: a + b,
    "negative": lambda a, b: -1,
    "wide": lambda a, b: 2**40 + 5,
    "huge": lambda a, b: -(2**80) - 3,
    "bool": lambda a, b: True,
    "float": lambda a, b: 1.0,
    "none": lambda a, b: None,
    "raises": _boom,
    "ctrl-c": _stop,
}
ARGS = [(0, 0), (1, 2), (-1, -(2**63)), (2**31 - 1, 2**63 - 1), (-(2**31), 7)]


@needs_native
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_trampoline_matches_the_ctypes_path(name):
    table = {("h-test", "f"): FUNCS[name], ("h-test", "g"): lambda: 42}
    native, ctyped = Linked(True, dict(table)), Linked(False, dict(table))
    for args in ARGS:
        got = native.outcome(native.f, *args)
        assert got == ctyped.outcome(ctyped.f, *args), (name, args)
        if name == "echo":
            assert got[0] == "ok"


@needs_native
def test_missing_function_and_default_table():
    native = Linked(True, {})
    ctyped = Linked(False, {})
    assert native.outcome(native.g) == ctyped.outcome(ctyped.g)
    assert native.outcome(native.g)[1] == "KeyError"
    # no table set on this thread: the default (the kernel's "outside a call") table answers
    from wasi_hw.kernel._sandbox import _NO_SHIMS
    prev = _native.set_current(None)
    try:
        assert _native.get_current() is _NO_SHIMS
        with pytest.raises(Exception, match="outside a kernel call"):
            native.g()
    finally:
        _native.set_current(prev)


@needs_native
@pytest.mark.parametrize("export,g", [("minus", None), ("trap", None), ("g", lambda: 7),
                                      ("g", _boom), ("g", _stop), ("g", lambda: "x"),
                                      ("spin", None)])
def test_native_entry_matches_the_unchecked_call(export, g):
    ke = KernelEngine(tick_ms=2)
    try:
        outcomes = []
        for native in (True, False):
            linked = Linked(native, {("h-test", "g"): g}, ke.engine)
            store = wasmtime.Store(ke.engine)
            inst = linked.linker.instantiate(store, wasmtime.Module(ke.engine, WAT))
            func = inst.exports(store)[export]
            if native:
                enter = _native.entry(store, func)

                def call(enter=enter):
                    return enter(ke.deadline_ticks(10))
            else:
                checked = HostCalls(linked.linker).caller(store, func, ([], ["i32"]))

                def call(store=store, checked=checked):
                    store.set_epoch_deadline(ke.deadline_ticks(10))
                    return checked()
            outcomes.append(linked.outcome(call))
        assert outcomes[0] == outcomes[1]
        if export == "spin":
            assert outcomes[0] == ("raised", "Trap", str(wasmtime.TrapCode.INTERRUPT))
    finally:
        ke.close()


@needs_native
@pytest.mark.parametrize("g,want", [(lambda: 7, ("ok", 7)), (_boom, ("raised", "ValueError")),
                                    (_stop, ("raised", "KeyboardInterrupt"))])
def test_raw_entry_sets_the_shim_table_for_the_call_only(g, want):
    """``call(ticks, table)``: host calls see ``table``; the thread's previous table is back
    afterwards, whether the call returned, raised or trapped."""
    ke = KernelEngine(tick_ms=2)
    try:
        linked = Linked(True, {}, ke.engine)
        store = wasmtime.Store(ke.engine)
        inst = linked.linker.instantiate(store, wasmtime.Module(ke.engine, WAT))
        enter = _native.raw_entry(store, inst.exports(store)["g"])
        outside = {("h-test", "g"): lambda: 1}
        prev = _native.set_current(outside)
        try:
            seen = []

            def spy():
                seen.append(_native.get_current())
                return g()
            table = {("h-test", "g"): spy}
            try:
                got = ("ok", enter(ke.deadline_ticks(10), table))
            except _native.Trapped as t:
                exc = _native.outcome(t)
                got = ("raised", type(exc).__name__)
            except BaseException as exc:  # noqa: BLE001
                got = ("raised", type(exc).__name__)
            assert seen == [table]
            assert _native.get_current() is outside
            assert got == want
            # without a table (or None) the thread's own table serves
            assert enter(ke.deadline_ticks(10), None) == 1
            assert enter(ke.deadline_ticks(10)) == 1
        finally:
            _native.set_current(prev)
    finally:
        ke.close()


@needs_native
def test_memory_checks_bounds_like_guest_memory():
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    linker.define_func("h", "f", wasmtime.FuncType([wasmtime.ValType.i32(), wasmtime.ValType.i64()],
                                                   [wasmtime.ValType.i32()]), lambda a, b: 0)
    linker.define_func("h", "g", wasmtime.FuncType([], [wasmtime.ValType.i32()]), lambda: 0)
    exports = linker.instantiate(store, wasmtime.Module(engine, WAT)).exports(store)
    mem = exports["memory"]
    ref = GuestMemory(mem, store, max_copy=1 << 20, native=_native.memory)
    nat = ref.native
    assert ref.hot()[2] == nat.read
    assert nat.size() == ref.size() == 65536
    nat.write(10, b"abc")
    nat.write(13, bytearray(b"de"))
    nat.write(15, memoryview(b"f"))
    assert nat.read(10, 6) == ref.read(10, 6) == b"abcdef"
    assert nat.read(65536, 0) == b""
    for ptr, n in ((65530, 7), (-1, 2), (2**32 - 1, 1), (0, 65537)):
        with pytest.raises(GuestFault) as a:
            nat.read(ptr, n)
        with pytest.raises(GuestFault) as b:
            ref.read(ptr, n)
        assert str(a.value) == str(b.value)
        with pytest.raises(GuestFault):
            nat.write(ptr, b"x" * n)
    with pytest.raises(TypeError):
        nat.read("0", 1)
    with pytest.raises(TypeError):
        nat.write(0, "text")
    assert exports["grow"](store) == 1          # memory moves/grows: the next access sees it
    assert nat.size() == 2 * 65536
    nat.write(65536 + 100, b"grown")
    assert ref.read(65536 + 100, 5) == b"grown"
    assert nat.nothing() is None
    small = GuestMemory(mem, store, max_copy=4, native=_native.memory)
    for fn, args in ((small.native.read, (0, 5)), (small.native.write, (0, b"12345"))):
        with pytest.raises(HwError) as a:
            fn(*args)
        with pytest.raises(HwError) as b:
            getattr(small, fn.__name__)(*args)
        assert (a.value.kind, str(a.value)) == (b.value.kind, str(b.value)) and \
            a.value.kind == "no_mem"


@pytest.mark.timing  # a runaway stopped by the ticker within wall-clock seconds
@needs_native
def test_native_ticker_interrupts_without_the_gil():
    ke = KernelEngine(tick_ms=2)
    try:
        assert ke._native_ticker is not None and ke._native_ticker.running()
        assert not ke._ticker.is_alive()          # no Python ticker thread
        store = wasmtime.Store(ke.engine)
        module = wasmtime.Module(ke.engine, "(module (func (export \"spin\") (loop (br 0))))")
        spin = wasmtime.Instance(store, module, []).exports(store)["spin"]
        store.set_epoch_deadline(ke.deadline_ticks(20))
        t0 = time.perf_counter()
        with pytest.raises(wasmtime.Trap) as trap:
            spin(store)
        assert trap.value.trap_code == wasmtime.TrapCode.INTERRUPT
        assert time.perf_counter() - t0 < 5.0
    finally:
        ke.close()
    assert not ke._native_ticker.running()
    ke._native_ticker.stop()                       # idempotent
