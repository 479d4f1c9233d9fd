"""The fast host-call path: wasmtime's unchecked C API, with the checked API as fallback.

For a host function defined with `wasmtime.Linker.define_func` wasmtime-py boxes every
argument in a `Val`, allocates a `Caller` and looks the function up in a slab; a call into an
export through `Func.__call__` builds the function's `FuncType` every time. wasmtime's
*unchecked* C API (`wasmtime_linker_define_func_unchecked`, `wasmtime_func_call_unchecked`)
passes raw 16-byte `wasmtime_val_raw_t` slots instead (the costs: docs/benchmarks.md).

Contract:
- `define_unchecked(linker, module, name, params, results, func, on_exception)` defines
  ``module.name`` of core signature ``params -> results`` (each ``"i32" | "i64" | "f32" |
  "f64"``) in ``linker``. ``func`` gets the arguments as Python ints / floats (i32 and i64
  signed, as the checked path delivers them) and returns ``None`` (no result), the single
  result, or a sequence of results. Results are converted exactly as the checked path
  converts them: i32/i64 take ints (truncated to the slot's width, two's complement), f32/f64
  take floats only; a value of the wrong type is a `TypeError`. Any exception
  (`BaseException` included) raised by ``func`` or by the conversion is handed to
  ``on_exception(exc)`` and the guest traps; the trap
  reaches the caller of the export as a `wasmtime.WasmtimeError`, so whoever calls into the
  guest must re-raise what ``on_exception`` stored. `reraise_at_call_site` (the standard
  ``on_exception``) parks it in wasmtime-py's own pending-exception slot, so `Func.__call__`
  re-raises it just as for `define_func`. `define_fast(linker, module, name, params, results,
  ty, fn)` is that combination, returning None when the fast path is unavailable.
  The ctypes callback stays alive until wasmtime drops the definition (its finalizer).
- `HostCalls(linker, fast=None)` is what the kernel uses: ``define(module, name, params,
  results, func)`` picks the unchecked path when ``fast`` (default: `fast_path_available()`)
  and `Linker.define_func` otherwise; ``caller(store, func)`` returns a zero-argument-or-more
  callable that enters the export (unchecked call when fast, `Func.__call__` otherwise).
  On both paths a Python exception raised in a host function surfaces *as itself* at the
  call site, a wasm trap as `wasmtime.Trap` (with its ``trap_code``: INTERRUPT for a blown
  epoch deadline), an engine error as `wasmtime.WasmtimeError`; results come back as the
  checked path returns them (``None``, one value, or a list). The two paths are
  interchangeable: `tests/kernel/test_fastcall.py` runs the same module through both.
- The raw layout used here (slot size, symbol signatures, the way `Func` and `Store` expose
  their C handles) was verified against wasmtime-py `VERIFIED_WASMTIME`. `fast_path_available()`
  is False for any other installed version (or if a symbol is missing, or
  ``WASI_HW_FASTCALL=0`` is set), and then every `HostCalls` uses the checked path — a version
  mismatch degrades speed, never correctness.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import os
import struct
import threading
import weakref
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import wasmtime

__all__ = ["VERIFIED_WASMTIME", "FAST_AVAILABLE", "installed_wasmtime", "fast_path_available",
           "define_unchecked", "define_fast", "reraise_at_call_site", "HostCalls", "func_type",
           "call_failure"]

#: The wasmtime-py release whose C layout this module was verified against.
VERIFIED_WASMTIME = "50.0.1"

_SLOT = 16  # sizeof(wasmtime_val_raw_t): a union with a v128 member
_ARG_FMT = {"i32": "i12x", "i64": "q8x", "f32": "f12x", "f64": "d8x"}
_RES_FMT = {"i32": "I12x", "i64": "Q8x", "f32": "f12x", "f64": "d8x"}
_MASK = {"i32": 0xFFFFFFFF, "i64": 0xFFFFFFFFFFFFFFFF}
_VALTYPE = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64,
            "f32": wasmtime.ValType.f32, "f64": wasmtime.ValType.f64}


@functools.cache
def installed_wasmtime() -> str | None:
    """The installed wasmtime-py version (package metadata, read once), or None."""
    try:
        return version("wasmtime")
    except PackageNotFoundError:
        return getattr(wasmtime, "__version__", None)


def fast_path_available() -> bool:
    """True when the unchecked path may be used here (see the module docstring)."""
    if os.environ.get("WASI_HW_FASTCALL", "1") == "0":
        return False
    return _layout_ok(installed_wasmtime())


@functools.cache
def _layout_ok(found: str | None) -> bool:
    if found != VERIFIED_WASMTIME:
        return False
    try:
        from wasmtime import _ffi as ffi
    except ImportError:
        return False
    need = ("wasmtime_linker_define_func_unchecked", "wasmtime_func_call_unchecked",
            "wasmtime_trap_new", "wasmtime_func_unchecked_callback_t", "wasmtime_val_raw_t")
    return all(hasattr(ffi, n) for n in need) and ctypes.sizeof(ffi.wasmtime_val_raw_t) == _SLOT


def func_type(params: Sequence[str], results: Sequence[str]) -> wasmtime.FuncType:
    """A new FuncType from core type names (never share one across engines)."""
    try:
        return wasmtime.FuncType([_VALTYPE[p]() for p in params], [_VALTYPE[r]() for r in results])
    except KeyError as err:
        raise ValueError(f"not a core value type: {err.args[0]!r}") from None


# engine → {(params, results): FuncType}: a FuncType (costly to make) is made once per engine
# and signature and never crosses engines; entries go with their engine
_TYPES: weakref.WeakKeyDictionary[wasmtime.Engine, dict] = weakref.WeakKeyDictionary()
_TYPES_LOCK = threading.Lock()


def _engine_type(engine: wasmtime.Engine, params: Sequence[str],
                 results: Sequence[str]) -> wasmtime.FuncType:
    key = (tuple(params), tuple(results))
    with _TYPES_LOCK:
        table = _TYPES.setdefault(engine, {})
        ty = table.get(key)
        if ty is None:
            ty = table[key] = func_type(*key)
    return ty


@functools.cache
def _structs(params: tuple[str, ...], results: tuple[str, ...]) -> tuple[Any, Any]:
    """(unpack_from of the argument slots, pack_into of the result slots) for a signature."""
    unpack = struct.Struct("<" + "".join(_ARG_FMT[p] for p in params)).unpack_from
    pack = struct.Struct("<" + "".join(_RES_FMT[r] for r in results)).pack_into
    return unpack, pack


# -- host functions --------------------------------------------------------------------------

_LIVE: dict[int, Any] = {}          # key → callback (kept alive until wasmtime finalizes it)
_KEYS = itertools.count(1)
_LIVE_LOCK = threading.Lock()
_TRAP_MSG = b"host function raised a Python exception"


def _finalize(env: int | None) -> None:
    try:
        with _LIVE_LOCK:
            _LIVE.pop(env or 0, None)
    except Exception:  # noqa: BLE001 — may run during interpreter shutdown
        pass


_FINALIZER = None   # the ctypes finalizer, made on first use (needs wasmtime._ffi)
# the callback as seen from C: (env, caller, args_and_results, nargs_and_results) -> trap*;
# pointers as plain integers so the buffer is addressed without ctypes pointer objects
_RAW_CB = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                           ctypes.c_size_t)


def _convert_error(value: Any, ty: str) -> TypeError:
    return TypeError(f"don't know how to convert {value!r} to {ty}")


def _make_callback(func: Callable[..., Any], params: Sequence[str], results: Sequence[str],
                   on_exception: Callable[[BaseException], None]) -> Callable[..., int]:
    from wasmtime import _ffi as ffi

    unpack, pack = _structs(tuple(params), tuple(results))
    size = max(len(params), len(results), 1) * _SLOT
    buf_t = ctypes.c_char * size
    trap_new = ffi.wasmtime_trap_new
    void_p = ctypes.c_void_p
    nres = len(results)
    if nres:
        masks = [_MASK.get(r) for r in results]
        floats = [r in ("f32", "f64") for r in results]

    def trap(exc: BaseException) -> int:
        on_exception(exc)
        return ctypes.cast(trap_new(_TRAP_MSG, len(_TRAP_MSG)), void_p).value or 0

    if nres == 1 and masks[0] is not None:   # the common shape: errno-returning shims
        mask, ty = masks[0], results[0]

        def callback(env: int, caller: int, args: int, nargs: int) -> int:
            buf = buf_t.from_address(args)
            try:
                r = func(*unpack(buf))
                if not isinstance(r, int):
                    raise _convert_error(r, ty)
                pack(buf, 0, r & mask)
            except BaseException as exc:  # noqa: BLE001 — every outcome becomes a trap
                return trap(exc)
            return 0

        return callback

    def any_shape(env: int, caller: int, args: int, nargs: int) -> int:
        buf = buf_t.from_address(args) if args else None
        try:
            r = func(*unpack(buf)) if params else func()
            if nres == 0:
                if r is not None:
                    raise wasmtime.WasmtimeError("callback produced results when it shouldn't")
                return 0
            vals = [r] if nres == 1 else list(r)
            if len(vals) != nres:
                raise wasmtime.WasmtimeError("callback produced wrong number of results")
            for i, v in enumerate(vals):
                if floats[i]:
                    if not isinstance(v, float):
                        raise _convert_error(v, results[i])
                else:
                    if not isinstance(v, int):
                        raise _convert_error(v, results[i])
                    vals[i] = v & masks[i]  # type: ignore[operator]  # ints have a mask
            pack(buf, 0, *vals)
        except BaseException as exc:  # noqa: BLE001
            return trap(exc)
        return 0

    return any_shape


def define_unchecked(linker: wasmtime.Linker, module: str, name: str, params: Sequence[str],
                     results: Sequence[str], func: Callable[..., Any],
                     on_exception: Callable[[BaseException], None], *,
                     ty: wasmtime.FuncType | None = None) -> None:
    """Define ``module.name`` in ``linker`` through the unchecked C API (module docstring).
    ``ty`` may pass the FuncType already made (from the linker's engine)."""
    global _FINALIZER
    from wasmtime import _ffi as ffi

    if _FINALIZER is None:
        _FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_finalize)
    if ty is None:
        ty = _engine_type(linker.engine, params, results)
    raw = _RAW_CB(_make_callback(func, tuple(params), tuple(results), on_exception))
    cb = ctypes.cast(raw, ffi.wasmtime_func_unchecked_callback_t)
    key = next(_KEYS)
    with _LIVE_LOCK:
        _LIVE[key] = raw
    m, n = module.encode(), name.encode()
    err = ffi.wasmtime_linker_define_func_unchecked(linker.ptr(), m, len(m), n, len(n), ty.ptr(),
                                                    cb, ctypes.c_void_p(key), _FINALIZER)
    if err:
        with _LIVE_LOCK:
            _LIVE.pop(key, None)
        raise wasmtime.WasmtimeError._from_ptr(err)


# -- the kernel's interface ------------------------------------------------------------------

def reraise_at_call_site(exc: BaseException) -> None:
    """The standard ``on_exception``: park ``exc`` in wasmtime-py's own pending-exception slot,
    which `Func.__call__` re-raises when the trap reaches it — exactly as for a function
    defined with `Linker.define_func` — and which `HostCalls.caller` re-raises likewise."""
    from wasmtime import _func

    if _func.LAST_EXCEPTION is None:   # the first failure is the cause
        _func.LAST_EXCEPTION = exc  # type: ignore[assignment]  # re-raised as is, any kind


def _take_pending() -> BaseException | None:
    from wasmtime import _func

    exc, _func.LAST_EXCEPTION = _func.LAST_EXCEPTION, None
    return exc


def call_failure(err: Any, trap: Any) -> BaseException:
    """What a failed unchecked call raises, from its error and trap pointers (ctypes
    pointers, falsy when absent; both consumed): the host function's own exception when one
    is pending (`reraise_at_call_site`), else `wasmtime.WasmtimeError` / `wasmtime.Trap`."""
    from wasmtime import _ffi as ffi

    pending = _take_pending()
    if pending is not None or err:
        if trap:
            ffi.wasm_trap_delete(trap)
        if pending is not None:
            if err:
                ffi.wasmtime_error_delete(err)
            return pending
        return wasmtime.WasmtimeError._from_ptr(err)
    return wasmtime.Trap._from_ptr(trap)


FAST_AVAILABLE = fast_path_available()


def define_fast(linker: wasmtime.Linker, module: str, name: str, params: Sequence[str],
                results: Sequence[str], ty: wasmtime.FuncType, fn: Callable[..., Any]) -> Any:
    """Define ``fn`` as ``module.name`` through the unchecked path, exceptions re-raised at the
    call site (`reraise_at_call_site`); returns a truthy token, or None when the fast path is
    not available here (the caller then uses `Linker.define_func`)."""
    if not fast_path_available():
        return None
    define_unchecked(linker, module, name, params, results, fn, reraise_at_call_site, ty=ty)
    return (module, name)


class HostCalls:
    """Host functions of one Linker and calls into the guests it links (module docstring)."""

    def __init__(self, linker: wasmtime.Linker, *, fast: bool | None = None) -> None:
        self.linker = linker
        self.fast = fast_path_available() if fast is None else bool(fast and fast_path_available())

    def define(self, module: str, name: str, params: Sequence[str], results: Sequence[str],
               func: Callable[..., Any]) -> None:
        if self.fast:
            define_unchecked(self.linker, module, name, params, results, func,
                             reraise_at_call_site)
        else:
            self.linker.define_func(module, name, _engine_type(self.linker.engine, params, results),
                                    func)

    def caller(self, store: wasmtime.Store, func: wasmtime.Func,
               sig: tuple[Sequence[str], Sequence[str]] | None = None) -> Callable[..., Any]:
        """A callable entering ``func`` (an export of an instance in ``store``). ``sig``
        (core param and result type names) may pass the signature the caller has already
        checked, which saves asking wasmtime for the function's type."""
        if not self.fast:
            return lambda *args: func(store, *args)
        return _UncheckedCall(store, func, sig)


class _UncheckedCall:
    """``func(store, *args)`` through `wasmtime_func_call_unchecked`, same outcomes."""

    __slots__ = ("_store", "_func", "_call", "_ctx", "_ref", "_buf", "_n",
                 "_nparams", "_pack", "_unpack", "_nres", "_fmt")

    def __init__(self, store: wasmtime.Store, func: wasmtime.Func,
                 sig: tuple[Sequence[str], Sequence[str]] | None = None) -> None:
        from wasmtime import _ffi as ffi

        if sig is None:
            ty = func.type(store)
            params = [str(p) for p in ty.params]
            results = [str(r) for r in ty.results]
        else:
            params, results = list(sig[0]), list(sig[1])
        for t in (*params, *results):
            if t not in _ARG_FMT:
                raise ValueError(f"the unchecked call path handles numbers only, not {t}")
        self._store = store
        self._func = func
        self._call = ffi.wasmtime_func_call_unchecked
        self._ctx = store._context()
        self._ref = ctypes.byref(func._func)
        self._n = max(len(params), len(results), 1)
        self._buf = (ffi.wasmtime_val_raw_t * self._n)()
        self._nparams = len(params)
        self._pack = struct.Struct("<" + "".join(_RES_FMT[p] for p in params)).pack_into
        self._unpack = struct.Struct("<" + "".join(_ARG_FMT[r] for r in results)).unpack_from
        self._nres = len(results)
        self._fmt = [(p, _MASK.get(p)) for p in params]

    def __call__(self, *args: Any) -> Any:
        from wasmtime import _ffi as ffi

        if len(args) != self._nparams:
            word = "many" if len(args) > self._nparams else "few"
            raise wasmtime.WasmtimeError(f"too {word} parameters provided: given {len(args)}, "
                                         f"expected {self._nparams}")
        if args:
            vals = []
            for (ty, mask), v in zip(self._fmt, args, strict=True):
                if mask is None:
                    if not isinstance(v, float):
                        raise TypeError(f"don't know how to convert {v!r} to {ty}")
                    vals.append(v)
                else:
                    if not isinstance(v, int):
                        raise TypeError(f"don't know how to convert {v!r} to {ty}")
                    vals.append(v & mask)
            self._pack(self._buf, 0, *vals)
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        err = self._call(self._ctx, self._ref, self._buf, self._n, ctypes.byref(trap))
        if err or trap:
            raise call_failure(err, trap)
        if self._nres == 0:
            return None
        out = self._unpack(self._buf)
        return out[0] if self._nres == 1 else list(out)
