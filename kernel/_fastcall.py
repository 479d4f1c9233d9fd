"""The fast host-call path: linker functions through wasmtime's *unchecked* C API.

`Linker.define_func` costs 12–21 µs per wasm → Python call (values boxed through `Val`);
`wasmtime_linker_define_func_unchecked`, reachable through wasmtime-py's ctypes layer, hands
the callback the raw argument array instead (~0.7 µs). `define_fast(linker, module, name,
params, results, ty, fn)` defines `fn` (taking the core-wasm integers, returning one i32)
that way and returns the ctypes callback to keep alive; it returns None — and the caller
falls back to `define_func` — when the installed wasmtime-py lacks the symbols (so an
upgrade degrades speed, never behaviour).

Semantics are the same as `define_func`'s: i32/i64 arguments arrive as Python ints (signed),
the i32 result is written back; a `BaseException` escaping `fn` (Ctrl-C) becomes a trap and is
re-raised at the wasm call site through wasmtime-py's own pending-exception slot.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable

import wasmtime

__all__ = ["define_fast", "FAST_AVAILABLE"]

try:
    from wasmtime import _ffi as _ffi
    from wasmtime import _func as _wfunc

    _CB = _ffi.wasmtime_func_unchecked_callback_t
    _DEFINE = _ffi.wasmtime_linker_define_func_unchecked
    _FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
    FAST_AVAILABLE = True
except (ImportError, AttributeError):  # pragma: no cover - depends on the wasmtime-py build
    FAST_AVAILABLE = False

def _make_callback(fn: Callable[..., int], params: tuple[str, ...]) -> Any:
    kinds = tuple(p == "i64" for p in params)
    n = len(kinds)

    if n and not any(kinds):          # the common case: all i32
        def callback(env, caller, raw, nraw):  # noqa: ANN001 — ctypes signature
            try:
                raw[0].i32 = fn(*[raw[i].i32 for i in range(n)])
                return 0
            except BaseException as exc:  # noqa: BLE001 — becomes a trap, re-raised at the call site
                return _trap(exc)
    else:
        def callback(env, caller, raw, nraw):  # noqa: ANN001
            try:
                raw[0].i32 = fn(*[raw[i].i64 if k else raw[i].i32 for i, k in enumerate(kinds)])
                return 0
            except BaseException as exc:  # noqa: BLE001
                return _trap(exc)

    return _CB(callback)


def _trap(exc: BaseException) -> int:
    _wfunc.LAST_EXCEPTION = exc
    trap = wasmtime.Trap("python exception")._consume()
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


def define_fast(linker: wasmtime.Linker, module: str, name: str, params: tuple[str, ...],
                results: tuple[str, ...], ty: wasmtime.FuncType, fn: Callable[..., int]) -> Any:
    """Define `fn` as import `module.name` through the unchecked API and return the ctypes
    callback (the caller keeps it alive as long as the linker and its instances); None if
    the fast path is unavailable."""
    if not FAST_AVAILABLE or tuple(results) != ("i32",):
        return None
    cb = _make_callback(fn, tuple(params))
    mod_b, name_b = module.encode(), name.encode()
    err = _DEFINE(linker.ptr(), ctypes.create_string_buffer(mod_b), len(mod_b),
                  ctypes.create_string_buffer(name_b), len(name_b), ty.ptr(), cb, None,
                  _FINALIZER(0))
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)
    return cb
