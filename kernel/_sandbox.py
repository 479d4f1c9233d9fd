"""The sandbox: one linked driver module, and its running instances.

Contract:
- `Sandbox(engine, module, manifest, interface=None)` checks the module's imports against the
  generated bindings' `IMPORTS` (`wasi_hw._bindings._<module>`) — an unknown module, unknown
  function or wrong signature, or an imported memory/table/global, raises `LoadError` naming
  every one of them — and its required exports, reading both from ``interface``
  (`module_interface(module)`, as the AoT cache recorded it at compile time; read from the
  module when absent or malformed), then defines each import in a `Linker` of the kernel's
  engine (through `_fastcall.HostCalls`: wasmtime's unchecked C API where verified, else
  `Linker.define_func`; ``fast=False`` forces the checked path, ``True`` asks for the fast
  one) and pre-links the module (`Linker.instantiate_pre`, which checks every import's type
  against the definitions again). There is one `Linker` per engine and host-call path, shared by
  all its sandboxes (each import is defined the first time a sandbox needs it): its functions
  dispatch through the shim table of the driver instance the kernel is running on the calling
  thread (set by `DriverInstance.call` for the duration of the call), so linking a sandbox
  costs only the pre-link, and restarts reuse the pre-linked module and only rebind the shims.
  A host call made outside `DriverInstance.call` (e.g. by a start function) fails; code
  that enters a guest's exports itself does so inside `DriverInstance.active()`.
- `Sandbox.start(hosts, audit)` (a `LoadError` if the module can never start under its limits,
  `DriverFault` if its start function traps) makes a fresh `Store` (memory limit
  `limits.memory_pages`, one instance, one memory, one table), instantiates, requires the
  exports `memory`, `init`, `poll`, wraps each host module in its kernel guard, binds the
  generated shims to a
  `GuestMemory` over the instance's memory (`max_copy = limits.max_transfer`) and the kernel's
  `fail` trampoline (`_policy`), and returns a `DriverInstance`. ``wasi_usb.bulk_transfer`` is
  served by `_usb_fast.fused_bulk_transfer` over the generated shim where the C extension
  is built: the same outcomes, minus re-deciding per transfer what the guard and host
  already accepted for that handle; ``wasi_i2c.write_read`` / ``write`` / ``read`` likewise
  by `_i2c_fast.fused_i2c`, which executes the guard's compiled rule. Without C every call
  takes the generic chain. A spec function the module's guard does not classify (checked,
  or listed in its ``NO_GRANT``) is refused: errno ``access`` and an audit entry.
- `DriverInstance.call(export)` sets the epoch deadline (`limits.deadline_ms`) and resets the
  guards' per-call budgets before every entry into the guest and returns the export's i32
  result. A blown deadline raises `DriverFault("deadline")`, any other trap
  `DriverFault("trap")`, a Python exception that
  escaped the shims `DriverFault("host")`; `BaseException`s (Ctrl-C) propagate. Calls are not
  reentrant: a call from the thread already running the instance raises
  `DriverFault("reentrant")`; a call from another thread (the IMC serving a remote request)
  waits for the running one (at most ``wait`` seconds, then `DriverFault("busy")`).
  ``imc_serve`` (a module's `wasi_imc` serving entry, optional, ``() -> i32``) is entered the
  same way as ``init`` and ``poll``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import wasmtime

from wasi_hw import GuestMemory, HwError

from . import _native
from ._audit import AuditLog
from ._engine import KernelEngine
from ._fault import DriverFault
from ._guard import DriverGuard, I2cGuard, UsbGuard, _Guard
from ._i2c_fast import fused_i2c
from ._imc import ImcGuard
from ._manifest import Manifest
from ._policy import Violations, make_fail
from ._usb_fast import fused_bulk_transfer

__all__ = ["Sandbox", "DriverInstance", "DriverFault", "LoadError", "SPEC_MODULES",
           "bindings_for", "REQUIRED_EXPORTS", "module_interface", "interface_problems",
           "export_problems"]

#: wasm import module → (bindings module, kernel guard class)
SPEC_MODULES: dict[str, tuple[str, type]] = {
    "wasi_i2c": ("wasi_hw._bindings._wasi_i2c", I2cGuard),
    "wasi_usb": ("wasi_hw._bindings._wasi_usb", UsbGuard),
    "wasi_driver": ("wasi_hw._bindings._wasi_driver", DriverGuard),
    "wasi_imc": ("wasi_hw._bindings._wasi_imc", ImcGuard),
}
REQUIRED_EXPORTS = ("memory", "init", "poll")
_OPTIONAL_ENTRIES = ("imc_serve",)   # () -> i32 entries a module may export
_ENTRY_SIG = ((), ("i32",))   # the signature of init and poll
_PAGE = 65536


class LoadError(HwError):
    """The module cannot be run as a driver (imports, exports, instantiation)."""

    def __init__(self, message: str) -> None:
        super().__init__("load", message)


@functools.cache
def bindings_for(module: str) -> ModuleType:
    """The generated bindings of wasm import module `module` (looked up once)."""
    try:
        return importlib.import_module(SPEC_MODULES[module][0])
    except ModuleNotFoundError as err:
        raise LoadError(
            f"bindings for {module} are not generated (run `wasi-hw gen`): {err}"
        ) from None


def _valtype(name: str) -> wasmtime.ValType:
    return {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64,
            "f32": wasmtime.ValType.f32, "f64": wasmtime.ValType.f64}[name]()


def _memory_hint(module: wasmtime.Module, allowed: int) -> str:
    """Why a module may need more pages than its manifest allows, when its memory says so."""
    need = max((x.type.limits.min for x in module.exports
                if isinstance(x.type, wasmtime.MemoryType)), default=0)
    if need <= allowed:
        return ""
    hint = (f" — the module asks for {need} pages ({need * 64} KiB) at start, the manifest "
            f"allows {allowed}")
    if need >= 17:
        return hint + (": likely linked with rustc's default 1 MiB stack, not built with "
                       "`wasi-hw build` (or its .cargo/config.toml), which links a 64 KiB "
                       f"stack; rebuild it that way, or raise limits.memory_pages to {need}")
    return hint + (f": its stack and static data need that much; raise limits.memory_pages "
                   f"to {need} or shrink its buffers")


class Sandbox:
    """A driver module checked, linked and pre-instantiated in the kernel's engine."""

    def __init__(self, engine: KernelEngine, module: wasmtime.Module, manifest: Manifest,
                 *, fast: bool | None = None, interface: Any = None) -> None:
        self.engine = engine
        self.module = module
        self.manifest = manifest
        # what the checks read of the module: recorded with its AoT cache entry, else read now
        # (through wasmtime-py's type objects: most of a cached start when done per load)
        iface = interface if _well_formed(interface) else module_interface(module)
        # import module → functions the driver imports
        self.used, problems = _check_imports(iface["imports"])
        if problems:
            raise LoadError("unresolvable imports: " + "; ".join(problems))
        problems = export_problems(iface["exports"])
        if problems:
            raise LoadError(problems[0])
        self._shims: dict[tuple[str, str], Callable[..., int]] = {}
        calls, pre = _shared_link(engine, module, self.used, fast)   # "cannot link"
        self._calls, self._pre = calls, pre
        self.fast = bool(self._calls.fast)
        self._live: DriverInstance | None = None

    def start(self, hosts: Mapping[str, Any], audit: AuditLog) -> DriverInstance:
        """A fresh instance with `hosts` (import module → host module) behind the guards."""
        missing = [m for m in self.used if m not in hosts]
        if missing:
            raise LoadError(f"driver {self.manifest.name} imports {', '.join(missing)} "
                            "but no host module for it was provided")
        limits = self.manifest.limits
        store = wasmtime.Store(self.engine.engine)
        store.set_limits(memory_size=limits.memory_pages * _PAGE, instances=1, memories=1,
                         tables=1, table_elements=10_000)
        store.set_epoch_deadline(self.engine.deadline_ticks(limits.deadline_ms))
        tls = _CURRENT
        prev, tls.shims = tls.shims, _NO_SHIMS    # a start function gets no host calls
        try:
            instance = self._pre.instantiate(store)
        except wasmtime.Trap as trap:
            kind = "deadline" if trap.trap_code == wasmtime.TrapCode.INTERRUPT else "trap"
            raise DriverFault(kind, f"start function: {_trap_text(trap)}") from None
        except wasmtime.WasmtimeError as err:
            raise LoadError(f"cannot instantiate with limits.memory_pages = {limits.memory_pages}: "
                            f"{str(err).splitlines()[0]}"
                            f"{_memory_hint(self.module, limits.memory_pages)}") from None
        finally:
            tls.shims = prev
        exports = instance.exports(store)
        memory = exports["memory"]
        mem = GuestMemory(memory, store, max_copy=limits.max_transfer,
                          native=_native.memory)   # C accessors where the C half is built
        counters = Violations()
        guards: dict[str, Any] = {}
        shims: dict[tuple[str, str], Callable[..., int]] = {}
        for mod in self.used:
            bindings = bindings_for(mod)
            guard = SPEC_MODULES[mod][1](hosts[mod], self.manifest, audit)
            guards[mod] = guard
            fail = make_fail(self.manifest.name, mod, bindings.ERRNO, audit, counters)
            for name, fn in bindings.bind(guard, mem, fail).items():
                shims[(mod, name)] = fn
            if mod == "wasi_usb" and "bulk_transfer" in self.used[mod]:
                key = (mod, "bulk_transfer")
                shims[key] = fused_bulk_transfer(guard, mem, fail, shims[key])
            if mod == "wasi_i2c":
                generic: dict[str, Any] = {n: shims[(mod, n)]
                                           for n in ("write_read", "write", "read")
                                           if n in self.used[mod]}
                for name, fn in fused_i2c(guard, mem, fail, generic).items():
                    shims[(mod, name)] = fn
        self._shims = shims
        inst = DriverInstance(self, store, instance, exports, mem, counters, guards, shims)
        self._live = inst
        return inst


def module_interface(module: wasmtime.Module) -> dict[str, Any]:
    """What `Sandbox` checks of ``module``, as JSON-ready data: ``{"imports": [[module, name,
    kind, params, results], …], "exports": {name: [kind, params, results]}}`` (kinds "func",
    "memory", "table", "global"; value types as wasmtime names them; exports: only
    `REQUIRED_EXPORTS`). The AoT cache records it with each entry (`AotCache(describe=…)`),
    so a cached start does not read the module's types again."""
    def described(ty: Any) -> list:
        if isinstance(ty, wasmtime.FuncType):
            return ["func", [str(p) for p in ty.params], [str(r) for r in ty.results]]
        kind = {wasmtime.MemoryType: "memory", wasmtime.TableType: "table",
                wasmtime.GlobalType: "global"}.get(type(ty), type(ty).__name__)
        return [kind, [], []]

    # wasmtime-py rebuilds every import/export (name, module, type) on each access: once each
    imports = [[imp.module or "", imp.name or "", *described(imp.type)] for imp in module.imports]
    exports = {}
    for exp in module.exports:
        name = exp.name
        if name in REQUIRED_EXPORTS:
            exports[name] = described(exp.type)
    return {"imports": imports, "exports": exports}


def interface_problems(iface: Mapping[str, Any]) -> list[str]:
    """Every reason `Sandbox` would refuse a module with `module_interface` ``iface`` (its
    imports, then its exports), as messages; empty when it would link."""
    _, problems = _check_imports(iface["imports"])
    return [f"unresolvable import {p}" for p in problems] + export_problems(iface["exports"])


def export_problems(exports: Mapping[str, Any]) -> list[str]:
    """Why the exports (`module_interface`'s ``exports``) are not a driver's, if they are not."""
    missing = [n for n in REQUIRED_EXPORTS if n not in exports]
    if missing:
        return [f"missing exports: {', '.join(missing)} (a driver exports memory, init and "
                "poll)"]
    problems = []
    if exports["memory"][0] != "memory":
        problems.append("export 'memory' is not a memory")
    for n in ("init", "poll"):
        if list(exports[n]) != ["func", [], ["i32"]]:
            problems.append(f"export {n!r} must be a function () -> i32")
    return problems


def _is_entry(store: wasmtime.Store, exports: Any, name: str) -> bool:
    """Whether `exports` has a function `name` of type () -> i32."""
    try:
        func = exports[name]
    except KeyError:
        return False
    if not isinstance(func, wasmtime.Func):
        return False
    ty = func.type(store)
    return not list(ty.params) and [str(r) for r in ty.results] == ["i32"]


def _well_formed(iface: Any) -> bool:
    """Whether ``iface`` has `module_interface`'s shape (a recorded one is data from a file)."""
    def entry(e: Any, n: int) -> bool:
        return isinstance(e, list) and len(e) == n and all(isinstance(x, str) for x in e[:n - 2]) \
            and all(isinstance(x, list) and all(isinstance(v, str) for v in x) for x in e[n - 2:])
    return isinstance(iface, dict) and isinstance(iface.get("imports"), list) and \
        isinstance(iface.get("exports"), dict) and \
        all(entry(i, 5) for i in iface["imports"]) and \
        all(isinstance(k, str) and entry(v, 3) for k, v in iface["exports"].items())


def _check_imports(imports: list) -> tuple[dict[str, list[str]], list[str]]:
    """(import module → imported functions, every problem) from `module_interface`'s
    ``imports``."""
    used: dict[str, list[str]] = {}
    problems: list[str] = []
    for imp_module, imp_name, kind, params, results in imports:
        where = f"{imp_module}.{imp_name}"
        if imp_module not in SPEC_MODULES:
            problems.append(f"{where} (unknown module; drivers may import only "
                            f"{', '.join(SPEC_MODULES)})")
            continue
        if kind != "func":
            problems.append(f"{where} (imports a {_TYPE_NAMES.get(kind, kind)}; only functions "
                            "may be imported — the driver must export its memory)")
            continue
        table = bindings_for(imp_module).IMPORTS
        if imp_name not in table:
            problems.append(f"{where} (no such function in witx/{imp_module}.witx)")
            continue
        want = table[imp_name]
        got = (tuple(params), tuple(results))
        if got != tuple(tuple(x) for x in want):
            problems.append(f"{where} (signature {_sig(got)}, spec says {_sig(want)})")
            continue
        used.setdefault(imp_module, []).append(imp_name)
    return used, problems


_TYPE_NAMES = {"memory": "MemoryType", "table": "TableType", "global": "GlobalType"}


class _NoShims(dict):
    """The shim table outside any kernel call into a guest: every host call fails."""

    def __missing__(self, key: tuple[str, str]) -> Callable[..., int]:
        raise LoadError(f"{key[0]}.{key[1]} called outside a kernel call into the guest "
                        "(e.g. from a start function)")


_NO_SHIMS = _NoShims()


class _Current(threading.local):
    """Per thread: the shim table of the driver instance the kernel is running on it."""

    shims: Mapping[tuple[str, str], Callable[..., int]] = _NO_SHIMS


class _NativeCurrent:
    """The same, kept where the C trampolines of `_native` read it (a C thread-local)."""

    shims = property(lambda self: _native.get_current(),
                     lambda self, table: _native.set_current(table))


if _native.available():
    _native.configure(_NO_SHIMS)
    _CURRENT: Any = _NativeCurrent()
else:
    _CURRENT = _Current()
_LINKERS_LOCK = threading.Lock()


def _dispatcher(key: tuple[str, str]) -> Callable[..., int]:
    tls = _CURRENT

    def call(*args: int) -> int:
        return tls.shims[key](*args)

    return call


def _shared_link(engine: KernelEngine, module: wasmtime.Module, used: Mapping[str, list[str]],
                 fast: bool | None) -> tuple[Any, Any]:
    """(host-call layer, `InstancePre`) for ``module``: one `Linker` per engine and host-call
    path, shared by every sandbox of that engine. Its functions dispatch through `_CURRENT`
    (the table of the instance running on this thread), so they are defined once per engine
    — only the imports no earlier sandbox needed are added."""
    with _LINKERS_LOCK:
        linkers = engine.__dict__.setdefault("_wasi_hw_linkers", {})
        entry = linkers.get(fast)
        if entry is None:
            linker = wasmtime.Linker(engine.engine)
            entry = linkers[fast] = (_host_calls(linker, fast), linker, set())
        calls, linker, defined = entry
        for mod, names in used.items():
            table = bindings_for(mod).IMPORTS
            for name in names:
                if (mod, name) not in defined:
                    params, results = table[name]
                    if calls.fast and _native.available():
                        _native.define(linker, mod, name, params, results, (mod, name))
                    else:
                        calls.define(mod, name, params, results, _dispatcher((mod, name)))
                    defined.add((mod, name))
        try:
            return calls, linker.instantiate_pre(module)
        except wasmtime.WasmtimeError as err:
            raise LoadError(f"cannot link: {err}") from None


class _CheckedCalls:
    """`Linker.define_func` and `Func.__call__`: the fallback when `_fastcall` is unavailable."""

    fast = False

    def __init__(self, linker: wasmtime.Linker) -> None:
        self.linker = linker

    def define(self, module: str, name: str, params: Any, results: Any, func: Any) -> None:
        ty = wasmtime.FuncType([_valtype(p) for p in params], [_valtype(r) for r in results])
        self.linker.define_func(module, name, ty, func)

    def caller(self, store: wasmtime.Store, func: wasmtime.Func,
               sig: Any = None) -> Callable[[], Any]:
        return lambda: func(store)


def _host_calls(linker: wasmtime.Linker, fast: bool | None) -> Any:
    """The host-call layer: `_fastcall.HostCalls` (its unchecked C API where verified; `fast`
    None = its own default), or the checked wasmtime-py API when `fast` is False."""
    if fast is False:
        return _CheckedCalls(linker)
    try:
        from ._fastcall import HostCalls
    except ImportError:
        return _CheckedCalls(linker)
    return HostCalls(linker, fast=fast)


def _sig(sig: Any) -> str:
    params, results = sig
    return f"({', '.join(params)}) -> ({', '.join(results)})"


def _trap_text(trap: wasmtime.Trap) -> str:
    code = trap.trap_code
    first = str(trap.message).splitlines()[0] if trap.message else ""
    return f"{code.name.lower() if code is not None else 'trap'}: {first}"


class _Held:
    """`DriverInstance.held` (a plain class: a frozen `DriverFault` cannot pass through a
    generator-based context manager, which sets its ``__traceback__``)."""

    __slots__ = ("inst", "wait", "what")

    def __init__(self, inst: DriverInstance, wait: float | None, what: str) -> None:
        self.inst, self.wait, self.what = inst, wait, what

    def __enter__(self) -> Callable[[str], int]:
        inst, wait = self.inst, self.wait
        me = threading.get_ident()
        if inst._owner == me:
            raise DriverFault("reentrant", f"{self.what} called while the driver is running")
        if not inst._lock.acquire(timeout=-1 if wait is None else max(0.0, wait)):
            raise DriverFault("busy", f"{self.what}: the driver stayed busy for {wait:.3f} s")
        inst._owner = me
        return inst._enter

    def __exit__(self, *exc: object) -> None:
        self.inst._owner = 0
        self.inst._lock.release()


class DriverInstance:
    """One running instance of a driver (its own Store, memory and handle tables)."""

    def __init__(self, sandbox: Sandbox, store: wasmtime.Store, instance: wasmtime.Instance,
                 exports: Any, mem: Any, violations: Violations, guards: dict[str, Any],
                 shims: Mapping[tuple[str, str], Callable[..., int]] | None = None) -> None:
        self.sandbox = sandbox
        self.store = store
        self.instance = instance
        self.mem = mem
        self.violations = violations
        self.guards = guards
        # init and poll are () -> i32: checked when the sandbox was made
        # entering init/poll: the native entry (deadline, shim table and unchecked call in one
        # C call, `_native.raw_entry`) where built, else the host-call layer's caller
        native = sandbox._calls.fast and _native.available()
        names = ["init", "poll"] + [n for n in _OPTIONAL_ENTRIES if _is_entry(store, exports, n)]
        self._entries = {n: _native.raw_entry(store, exports[n]) for n in names} \
            if native else {}
        self._funcs = {n: sandbox._calls.caller(store, exports[n], _ENTRY_SIG)
                       for n in names if self._entries.get(n) is None}
        self._shims = sandbox._shims if shims is None else shims
        limits = sandbox.manifest.limits
        self._ticks = sandbox.engine.deadline_ticks(limits.deadline_ms)   # both fixed
        # only the guards that keep per-call budgets (the base class's begin_call is a no-op)
        self._begin = [g.begin_call for g in guards.values()
                       if type(g).begin_call is not _Guard.begin_call]
        self._lock = threading.Lock()
        self._owner = 0                 # the thread running the instance, 0 when idle

    def has_entry(self, export: str) -> bool:
        """Whether the module exports `export` as an entry (init, poll, imc_serve)."""
        return export in self._entries or export in self._funcs

    def call(self, export: str, wait: float | None = None) -> int:
        """Call `init`, `poll` or `imc_serve` under the per-call deadline; its i32 result.
        ``wait``: how long another thread's running call may delay this one (None: as long
        as it runs; it is bounded by its own deadline)."""
        with _Held(self, wait, export) as enter:
            return enter(export)

    def held(self, wait: float | None = None, what: str = "call") -> _Held:
        """Hold the instance as `call` does for a sequence of steps (the IMC writes a request
        into its memory, enters ``imc_serve``, reads the reply); a context manager yielding
        the entry function."""
        return _Held(self, wait, what)

    def _enter(self, export: str) -> int:
        entry = self._entries.get(export)
        func = self._funcs[export] if entry is None else None
        for begin in self._begin:
            begin()
        try:
            if entry is not None:       # the C entry: deadline, shim table and call in one
                try:
                    return entry(self._ticks, self._shims)
                except _native.Trapped as t:
                    raise _native.outcome(t) from None
            self.store.set_epoch_deadline(self._ticks)
            tls = _CURRENT
            prev, tls.shims = tls.shims, self._shims
            try:
                return int(func())  # type: ignore[misc]
            finally:
                tls.shims = prev
        except wasmtime.Trap as trap:
            if trap.trap_code == wasmtime.TrapCode.INTERRUPT:
                raise DriverFault(
                    "deadline",
                    f"{export} ran past its {self.sandbox.manifest.limits.deadline_ms} ms deadline",
                ) from None
            raise DriverFault("trap", f"{export}: {_trap_text(trap)}") from None
        except wasmtime.WasmtimeError as err:
            raise DriverFault("trap", f"{export}: {err}") from None
        except Exception as err:  # escaped a shim: still never a host crash
            raise DriverFault("host", f"{export}: {type(err).__name__}: {err}") from None

    @contextlib.contextmanager
    def active(self) -> Iterator[DriverInstance]:
        """Route host calls made on this thread to this instance's shims, as `call` does
        around each entry — for code that enters the guest's exports itself (benchmarks)."""
        tls = _CURRENT
        prev, tls.shims = tls.shims, self._shims
        try:
            yield self
        finally:
            tls.shims = prev

    def memory_pages(self) -> int:
        """The instance's current linear-memory size in 64 KiB pages."""
        return self.mem.size() // _PAGE
