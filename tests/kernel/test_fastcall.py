"""The fast (unchecked) host-call path behaves exactly like the checked one.

One `.wat` module imports a host function of every signature shape (i32/i64/f32/f64
parameters, zero, one and several results) and exports entry points of every shape; each
scenario runs once through `Linker.define_func` + `Func.__call__` and once through the
unchecked C API, and must give the same results, the same exceptions and the same traps.
A real driver (bme280.wasm) linked through the generated shims must read the same values
and drive the same bus traffic (errnos included) on both paths.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import wasmtime

from wasi_hw.kernel import _fastcall
from wasi_hw.kernel._fastcall import (VERIFIED_WASMTIME, HostCalls, define_fast,
                                      fast_path_available, installed_wasmtime)

ROOT = Path(__file__).resolve().parents[2]

WAT = r"""
(module
  (import "h" "ii_i" (func $ii_i (param i32 i32) (result i32)))
  (import "h" "l_l" (func $l_l (param i64) (result i64)))
  (import "h" "fd_d" (func $fd_d (param f32 f64) (result f64)))
  (import "h" "v_v" (func $v_v))
  (import "h" "i_il" (func $i_il (param i32) (result i32 i64)))
  (import "h" "lifd_f" (func $lifd_f (param i64 i32 f32 f64) (result f32)))
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (func (export "ii_i") (param i32 i32) (result i32) (call $ii_i (local.get 0) (local.get 1)))
  (func (export "l_l") (param i64) (result i64) (call $l_l (local.get 0)))
  (func (export "fd_d") (param f32 f64) (result f64) (call $fd_d (local.get 0) (local.get 1)))
  (func (export "v_v") (call $v_v) (global.set $calls (i32.add (global.get $calls) (i32.const 1))))
  (func (export "calls") (result i32) (global.get $calls))
  (func (export "i_il") (param i32) (result i32 i64) (call $i_il (local.get 0)))
  (func (export "lifd_f") (param i64 i32 f32 f64) (result f32)
    (call $lifd_f (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "loop_sum") (param i32) (result i32) (local $acc i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get 0)))
      (local.set $acc (i32.add (local.get $acc) (call $ii_i (local.get 0) (i32.const 1))))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $next)))
    (local.get $acc))
  (func (export "boom") (result i32) unreachable)
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "spin") (loop $l (br $l)))
)
"""

MODES = ("checked", "fast")


class Host:
    """Host functions whose behaviour each scenario sets."""

    def __init__(self) -> None:
        self.log: list[tuple] = []
        self.ii_i_result = None        # override for the i32 result (conversion cases)
        self.raise_in = None           # exception to raise from ii_i

    def ii_i(self, a, b):
        self.log.append(("ii_i", a, b))
        if self.raise_in is not None:
            raise self.raise_in
        return a * 3 + b if self.ii_i_result is None else self.ii_i_result

    def l_l(self, a):
        self.log.append(("l_l", a))
        return a * 2 + 1

    def fd_d(self, a, b):
        self.log.append(("fd_d", a, b))
        return a + b

    def v_v(self):
        self.log.append(("v_v",))

    def i_il(self, a):
        self.log.append(("i_il", a))
        return (a + 1, a * (1 << 40))

    def lifd_f(self, a, b, c, d):
        self.log.append(("lifd_f", a, b, c, d))
        return float(a + b) + c * d


SIGS = {"ii_i": (("i32", "i32"), ("i32",)), "l_l": (("i64",), ("i64",)),
        "fd_d": (("f32", "f64"), ("f64",)), "v_v": ((), ()), "i_il": (("i32",), ("i32", "i64")),
        "lifd_f": (("i64", "i32", "f32", "f64"), ("f32",))}


def instance(mode: str, host: Host, *, epoch: bool = False):
    cfg = wasmtime.Config()
    cfg.epoch_interruption = epoch
    engine = wasmtime.Engine(cfg)
    module = wasmtime.Module(engine, WAT)
    linker = wasmtime.Linker(engine)
    calls = HostCalls(linker, fast=(mode == "fast"))
    assert calls.fast == (mode == "fast")
    for name, (params, results) in SIGS.items():
        calls.define("h", name, params, results, getattr(host, name))
    store = wasmtime.Store(engine)
    inst = linker.instantiate(store, module)
    exports = inst.exports(store)

    def call(name, *args):
        return calls.caller(store, exports[name])(*args)

    return engine, store, call


def outcome(fn, *args):
    """What a call did: ('ok', value) or ('raise', type, message) or ('trap', code)."""
    try:
        v = fn(*args)
    except wasmtime.Trap as trap:
        return ("trap", trap.trap_code)
    except wasmtime.WasmtimeError as err:
        return ("wasmtime-error", str(err).splitlines()[0])
    except BaseException as err:  # noqa: BLE001 — compare every kind
        return ("raise", type(err), str(err))
    if isinstance(v, float) and math.isnan(v):
        v = "nan"
    return ("ok", v)


SCENARIOS = [
    ("ii_i", (5, 7)), ("ii_i", (-1, 2)), ("ii_i", (0x7FFFFFFF, 1)), ("ii_i", (0xFFFFFFFF, 0)),
    ("l_l", (1 << 40,)), ("l_l", (-(1 << 62),)), ("l_l", (0xFFFFFFFFFFFFFFFF,)),
    ("fd_d", (1.5, 2.25)), ("fd_d", (-0.0, 1e300)), ("fd_d", (3, 4)),
    ("v_v", ()), ("i_il", (9,)), ("i_il", (-3,)),
    ("lifd_f", (1 << 33, -4, 0.5, 8.0)),
    ("loop_sum", (100,)), ("calls", ()), ("div", (7, 2)),
    ("boom", ()), ("div", (1, 0)), ("div", (-0x80000000, -1)),
    ("ii_i", (1,)), ("ii_i", (1, 2, 3)), ("ii_i", ("x", 2)), ("fd_d", (None, 1.0)),
]


@pytest.mark.parametrize("name,args", SCENARIOS, ids=[f"{n}{a}" for n, a in SCENARIOS])
def test_both_paths_same_outcome(name, args):
    results = {}
    for mode in MODES:
        host = Host()
        _, _, call = instance(mode, host)
        results[mode] = (outcome(call, name, *args), host.log)
    assert results["fast"] == results["checked"]


@pytest.mark.parametrize("value", [5, -7, 0xFFFFFFFF, 1 << 33, None, 2.5, "x", True])
def test_result_conversion_same(value):
    """What a host function returns is converted (or refused) identically."""
    seen = {}
    for mode in MODES:
        host = Host()
        host.ii_i_result = value
        _, _, call = instance(mode, host)
        seen[mode] = outcome(call, "ii_i", 1, 2)
    assert seen["fast"] == seen["checked"]


@pytest.mark.parametrize("exc", [ValueError("boom"), KeyError("k"), KeyboardInterrupt(),
                                 SystemExit(3)])
def test_host_exception_surfaces_as_itself(exc):
    for mode in MODES:
        host = Host()
        host.raise_in = exc
        _, _, call = instance(mode, host)
        with pytest.raises(type(exc)) as info:
            call("loop_sum", 5)
        assert info.value is exc
        assert len(host.log) == 1                       # the guest stopped at the first failure
        assert outcome(call, "l_l", 4) == ("ok", 9)     # the store stays usable afterwards
        from wasmtime import _func
        assert _func.LAST_EXCEPTION is None              # nothing left pending


def test_exception_through_func_call_too():
    """With the fast definition, the ordinary `Func.__call__` re-raises the exception too
    (the kernel may keep calling exports the checked way)."""
    host = Host()
    host.raise_in = RuntimeError("from host")
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    ty = wasmtime.FuncType([wasmtime.ValType.i32()] * 2, [wasmtime.ValType.i32()])
    assert define_fast(linker, "h", "ii_i", ("i32", "i32"), ("i32",), ty, host.ii_i)
    for name, (params, results) in SIGS.items():
        if name != "ii_i":
            HostCalls(linker, fast=True).define("h", name, params, results, getattr(host, name))
    store = wasmtime.Store(engine)
    exports = linker.instantiate(store, wasmtime.Module(engine, WAT)).exports(store)
    with pytest.raises(RuntimeError, match="from host"):
        exports["ii_i"](store, 1, 2)
    host.raise_in = None
    assert exports["ii_i"](store, 1, 2) == 5


def test_epoch_interrupt_is_the_same_trap():
    for mode in MODES:
        engine, store, call = instance(mode, Host(), epoch=True)
        store.set_epoch_deadline(1)
        engine.increment_epoch()
        assert outcome(call, "spin") == ("trap", wasmtime.TrapCode.INTERRUPT)


def test_callbacks_survive_gc_and_are_released():
    import gc

    before = set(_fastcall._LIVE)
    host = Host()
    _, store, call = instance("fast", host)
    mine = set(_fastcall._LIVE) - before
    assert len(mine) == len(SIGS)
    gc.collect()                               # the Linker is gone; the Store holds the funcs
    assert call("loop_sum", 50) == sum(n * 3 + 1 for n in range(1, 51))
    del call, store
    gc.collect()
    assert not mine & set(_fastcall._LIVE)     # wasmtime's finalizers released them


def test_version_pin():
    """The layout was verified against one wasmtime-py release: that one is installed."""
    assert installed_wasmtime() == VERIFIED_WASMTIME
    assert fast_path_available()


def test_version_mismatch_falls_back_to_checked(monkeypatch):
    monkeypatch.setattr(_fastcall, "installed_wasmtime", lambda: "51.0.0")
    assert not fast_path_available()
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    assert not HostCalls(linker, fast=True).fast
    ty = wasmtime.FuncType([wasmtime.ValType.i32()] * 2, [wasmtime.ValType.i32()])
    assert define_fast(linker, "h", "ii_i", ("i32", "i32"), ("i32",), ty, Host().ii_i) is None
    host = Host()
    _, _, call = instance("checked", host)
    assert call("ii_i", 2, 3) == 9


def test_env_switch_disables(monkeypatch):
    monkeypatch.setenv("WASI_HW_FASTCALL", "0")
    assert not fast_path_available()


# -- a real driver through the generated shims -----------------------------------------------

def _run_bme280(mode: str):
    from wasi_hw._memory import GuestMemory
    from wasi_hw.host import DriverEnv, I2cHost, SimI2cBackend
    from wasi_hw.host.devices import Bme280
    from wasi_hw.kernel._policy import Violations, make_fail
    from wasi_hw.kernel._audit import AuditLog
    from wasi_hw.kernel._sandbox import bindings_for

    wasm = ROOT / "build" / "wasm" / "bme280.wasm"
    if not wasm.exists():
        pytest.skip("build/wasm/bme280.wasm not built (wasi-hw build)")
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wasm.read_bytes())
    linker = wasmtime.Linker(engine)
    calls = HostCalls(linker, fast=(mode == "fast"))
    shims: dict = {}
    for imp in module.imports:
        params, results = bindings_for(imp.module).IMPORTS[imp.name]
        key = (imp.module, imp.name)
        calls.define(imp.module, imp.name, params, results,
                     lambda *a, key=key: shims[key](*a))
    store = wasmtime.Store(engine)
    exports = linker.instantiate(store, module).exports(store)
    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", 0x76, Bme280(21.5, 100_500.0, 40.0))
    reports, logs = [], []
    hosts = {"wasi_i2c": I2cHost(sim, sim.clock),
             "wasi_driver": DriverEnv(config={"bus": "i2c-1", "address": "0x76"},
                                      report_sink=reports.append,
                                      log_sink=lambda lvl, m: logs.append((lvl, m)),
                                      clock=sim.clock)}
    audit = AuditLog()
    from wasi_hw.kernel import ImcHub, adhoc_manifest
    hosts["wasi_imc"] = ImcHub(audit).env(adhoc_manifest(wasm, bus="i2c-1", allow=[0x76]))
    mem = GuestMemory(exports["memory"], store, max_copy=4096)
    for mod in {i.module for i in module.imports}:
        b = bindings_for(mod)
        fail = make_fail("bme", mod, b.ERRNO, audit, Violations())
        for name, fn in b.bind(hosts[mod], mem, fail).items():
            shims[(mod, name)] = fn
    init, poll = calls.caller(store, exports["init"]), calls.caller(store, exports["poll"])
    out = [init(), poll(), poll()]
    sim.detach("i2c-1", 0x76) if hasattr(sim, "detach") else None
    out.append(poll())                  # the device is gone: an errno path, same on both
    return out, reports, logs, [h[:3] for h in getattr(sim, "history", [])]


def test_real_driver_identical_on_both_paths():
    checked = _run_bme280("checked")
    fast = _run_bme280("fast")
    assert checked[0][:3] == [0, 0, 0]
    assert checked[1] and checked[1][-1]
    assert fast == checked
