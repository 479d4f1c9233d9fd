"""The native host-call path (``kernel/_cnative.c``): what crosses between wasm and Python.

In C: the import trampolines, the entry into a guest export, guest-memory access with
`GuestMemory`'s checks, the fused ``wasi_usb.bulk_transfer`` and ``wasi_i2c`` ``write_read`` /
``write`` / ``read`` calls (they look up the answers the guard's rules, `_rules`, compiled;
whatever they do not take goes, before any I/O, to the generic shim → guard → host chain)
and the epoch ticker. In Python: the shims, the guards and the policy; no grant rule moves
to C. Each C part has the outcomes of the ctypes path it replaces; what it saves is measured
in docs/benchmarks.md.

Contract:
- `available()` is True when the extension imported, the fast path of `_fastcall` is
  available (the wasmtime-py version it was verified against), the C layout matches
  wasmtime-py's own ctypes definitions (value slot and memory handle sizes), and
  ``WASI_HW_NATIVE`` was not ``0`` when the module was imported. Otherwise every caller uses
  the ctypes path, which behaves identically (tests/kernel/test_native.py runs both).
- `configure(default_table)` (once per process; later calls change nothing) hands the C
  side wasmtime's function addresses, the shim table of a thread that has none set, and
  `_fastcall.reraise_at_call_site` as the exception hook.
- `define(linker, module, name, params, results, key)` defines ``module.name`` (params i32 /
  i64, one i32 result) as a C trampoline that calls ``table[key](*args)`` where ``table`` is
  this thread's current shim table (`set_current` / `get_current`); outcomes are those of
  `_fastcall.define_unchecked` with the standard exception hook: a Python exception
  (``BaseException`` included) surfaces as itself at the call site, a result that is not an
  int is a `TypeError`, an int result is truncated to 32 bits.
- `memory(memory, store, max_copy=…)` is `GuestMemory`'s ``native`` factory: a `Memory`
  (``size()``, ``read(ptr, n)``, ``write(ptr, data)``, a no-op ``nothing()``) over the
  instance's memory with `GuestMemory`'s checks and errors (`GuestFault` outside the memory,
  ``HwError("no_mem")`` over the copy quota). None when not `available()`.
- `entry(store, func)` (after `configure`) returns ``call(ticks)``: it sets ``store``'s epoch
  deadline to ``ticks`` and enters ``func`` (an export ``() -> i32``) through the unchecked
  C API with the GIL released. Outcomes are those of
  `_fastcall.HostCalls.caller`: the signed i32 result; a Python exception raised in a host
  function as itself; a trap as `wasmtime.Trap`; an engine error as `wasmtime.WasmtimeError`.
  None when not `available()`. `raw_entry(store, func)` is the same C call without the
  wrapper, ``call(ticks[, table])``: it also makes ``table`` this thread's shim table for the
  call, and raises `Trapped`, which `outcome(exc)` turns into the exception above — the
  kernel's own entry (`DriverInstance.call`), one Python frame less.
- `fused_bulk(**fields)` is `_usb_fast.fused_bulk_transfer`'s C function (its fields:
  ``plans``, ``granted``, ``generic``, ``fail``, ``pack``, ``memory`` (a native `Memory`),
  ``limit``, ``deadline_ms``, ``default_timeout_ms``), or None when not `available()`.
- `fused_i2c(kind, **fields)` is `_i2c_fast.fused_i2c`'s ``write_read`` / ``write`` /
  ``read`` in C: it executes the guard's compiled rule (``rules``: handle → `I2cRule`, its
  address set and tables) and hands every call the rule's tables do not allow, before any
  I/O, to the generic chain (``fallback``); None when not `available()`.
- ``WASI_HW_CNATIVE_PATH`` (read at import) loads the extension from that file instead of
  the installed one: the sanitizer build of tests/kernel/test_sanitizers.py.
- `ticker(engine, tick_ms)` starts a C thread that calls ``wasmtime_engine_increment_epoch``
  every ``tick_ms`` and never takes the GIL, returning it (``stop()`` joins it; ``running()``);
  None when not `available()`. (A Python ticker thread would take the GIL for each tick and
  contend every host call's GIL hand-off while it waits.)
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Sequence
from typing import Any

import wasmtime

from wasi_hw import GuestFault

from ._fastcall import fast_path_available, reraise_at_call_site


def _load_extension() -> Any:
    """The C extension: the installed one, or — for the sanitizer test tier — the build
    named by ``WASI_HW_CNATIVE_PATH``; None when built without a C compiler."""
    path = os.environ.get("WASI_HW_CNATIVE_PATH")
    if path:
        import importlib.util
        import sys

        name = f"{__package__}._cnative"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"WASI_HW_CNATIVE_PATH={path!r} is not an extension module")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules[name] = mod
        return mod
    import importlib

    try:
        return importlib.import_module(f"{__package__}._cnative")
    except ImportError:  # built without a C compiler: the ctypes path is used
        return None


_cnative = _load_extension()

__all__ = ["available", "configure", "define", "set_current", "get_current", "memory", "ticker",
           "entry", "raw_entry", "Trapped", "outcome", "fused_bulk", "fused_i2c"]

_KINDS = {"i32": "i", "i64": "I"}
_KEYS: dict[Any, Any] = {}        # every key handed to C: kept alive for the process
_LOCK = threading.Lock()
_CONFIGURED = False


_SWITCHED_OFF = os.environ.get("WASI_HW_NATIVE", "1") == "0"   # read once, at import


def available() -> bool:
    """True when the native path may be used here (see the module docstring)."""
    return not _SWITCHED_OFF and _layout_ok()


@functools.cache
def _layout_ok() -> bool:
    if _cnative is None or not fast_path_available():
        return False
    from wasmtime import _ffi as ffi

    return (ctypes.sizeof(ffi.wasmtime_val_raw_t) == _cnative.SLOT_SIZE
            and ctypes.sizeof(ffi.wasmtime_memory_t) == _cnative.MEMORY_SIZE
            and ctypes.sizeof(ffi.wasmtime_func_t) == _cnative.FUNC_SIZE)


@functools.cache
def _lib() -> Any:
    from wasmtime import _ffi as ffi

    return ctypes.CDLL(ffi.dll._name)   # a private handle: wasmtime-py's prototypes untouched


def _address(name: str) -> int:
    return ctypes.cast(getattr(_lib(), name), ctypes.c_void_p).value or 0


def configure(default_table: Any) -> None:
    """Set up the C side once (module docstring)."""
    global _CONFIGURED
    with _LOCK:
        if _CONFIGURED:
            return
        _cnative.configure(_address("wasmtime_trap_new"), _address("wasmtime_memory_data"),
                           _address("wasmtime_memory_data_size"),
                           _address("wasmtime_func_call_unchecked"),
                           _address("wasmtime_context_set_epoch_deadline"), default_table,
                           reraise_at_call_site)
        _CONFIGURED = True


def define(linker: wasmtime.Linker, module: str, name: str, params: Sequence[str],
           results: Sequence[str], key: Any) -> None:
    """Define ``module.name`` as the C trampoline dispatching on ``key`` (module docstring)."""
    from wasmtime import _ffi as ffi

    from ._fastcall import _engine_type

    if list(results) != ["i32"] or any(p not in _KINDS for p in params):
        raise ValueError(f"the native path takes (i32|i64)* -> i32, not {params} -> {results}")
    with _LOCK:
        key = _KEYS.setdefault(key, key)
    env = _cnative.new_slot(key, "".join(_KINDS[p] for p in params))
    callback = ctypes.cast(_cnative.trampoline(), ffi.wasmtime_func_unchecked_callback_t)
    finalizer = ctypes.cast(_cnative.finalizer(), ctypes.CFUNCTYPE(None, ctypes.c_void_p))
    m, n = module.encode(), name.encode()
    ty = _engine_type(linker.engine, params, results)
    err = ffi.wasmtime_linker_define_func_unchecked(linker.ptr(), m, len(m), n, len(n),
                                                    ty.ptr(), callback, ctypes.c_void_p(env),
                                                    finalizer)
    if err:   # the slot (a few bytes) is left behind: whether wasmtime ran the finalizer is
        raise wasmtime.WasmtimeError._from_ptr(err)  # not documented; a leak beats a double free


def set_current(table: Any) -> Any:
    """Make ``table`` this thread's shim table; returns the previous one."""
    return _cnative.set_current(table)


def get_current() -> Any:
    """This thread's shim table (the default table when none was set)."""
    return _cnative.get_current()


def memory(mem: Any, store: Any, *, max_copy: int) -> Any:
    """A native `Memory` over ``mem`` (a `wasmtime.Memory` of ``store``), or None — the
    ``native`` factory of `GuestMemory`, the only caller."""
    if not available():
        return None
    from wasi_hw import HwError

    ctx = ctypes.cast(store._context(), ctypes.c_void_p).value
    return _cnative.Memory(ctx, bytes(mem._memory), (mem, store), GuestFault, HwError, max_copy)


def ticker(engine: wasmtime.Engine, tick_ms: float) -> Any:
    """A started native epoch ticker for ``engine`` (module docstring), or None."""
    if not available():
        return None
    addr = ctypes.cast(engine.ptr(), ctypes.c_void_p).value
    return _cnative.Ticker(_address("wasmtime_engine_increment_epoch"), addr,
                           max(1, int(tick_ms * 1e6)), engine)


def entry(store: wasmtime.Store, func: wasmtime.Func) -> Any:
    """``call(ticks)`` entering ``func`` natively (module docstring), or None."""
    enter = raw_entry(store, func)
    if enter is None:
        return None
    trapped = _cnative.Trapped

    def call(ticks: int) -> int:
        try:
            return enter(ticks)
        except trapped as t:
            raise outcome(t) from None

    return call


def raw_entry(store: wasmtime.Store, func: wasmtime.Func) -> Any:
    """The C ``call(ticks[, table])`` of `entry` without its wrapper, or None: a failure
    raises `Trapped`, which `outcome` converts; ``table`` (not None) is this thread's shim
    table for the call."""
    if not available() or not _CONFIGURED:
        return None
    ctx = ctypes.cast(store._context(), ctypes.c_void_p).value
    return _cnative.Entry(ctx, bytes(func._func), (store, func)).call


class _NoTrapped(Exception):
    """Never raised: `Trapped` where the extension is not built."""


#: What a `raw_entry` call raises on a trap or engine error (convert it with `outcome`).
Trapped: type[BaseException] = _cnative.Trapped if _cnative is not None else _NoTrapped


def outcome(t: BaseException) -> BaseException:
    """The exception (`wasmtime.Trap`, `wasmtime.WasmtimeError`, or the host function's own)
    for a `Trapped` raised by a `raw_entry` call."""
    return _outcome(*t.args)


def _outcome(err: int, trap: int) -> BaseException:
    """The exception for a failed unchecked call (addresses; the error/trap are consumed)."""
    from wasmtime import _ffi as ffi

    from ._fastcall import call_failure

    return call_failure(ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)) if err else None,
                        ctypes.cast(trap, ctypes.POINTER(ffi.wasm_trap_t)) if trap else None)


def fused_bulk(*, plans: dict, granted: set, generic: Any, fail: Any, pack: Any, memory: Any,
               limit: int, deadline_ms: int, default_timeout_ms: int) -> Any:
    """The C fused ``bulk_transfer`` (module docstring), or None."""
    if not available() or not isinstance(memory, _cnative.Memory):
        return None
    from wasi_hw import HwError

    return _cnative.Bulk(plans, granted, generic, fail, pack, HwError, memory, limit,
                         deadline_ms, default_timeout_ms)


def fused_i2c(kind: str, *, rules: dict, handles: dict, fallback: Any, fail: Any,
              write_op: Any, read_op: Any, wait: Any, deliver: Any, region: Any, memory: Any,
              limit: int) -> Any:
    """The C fused I2C ``kind`` (``write_read``, ``write``, ``read``) over the generic chain
    ``fallback`` (module docstring), or None."""
    if not available() or not isinstance(memory, _cnative.Memory):
        return None
    return _cnative.I2c(kind, rules, handles, fallback, fail, write_op, read_op, wait, deliver,
                        region, memory, limit)
