"""`inspect`: what a driver module imports and exports, which grants it could use, and timings.

Contract: `inspect_wasm(wasm, cache)` returns an `Inspection` — imports (module, name,
signature, whether the spec knows it), exports, the capabilities the imports make reachable
(`CAPABILITIES`: each spec function → the grant kind that governs it), and three timings
measured on this machine: a fresh compile, a verified cache load (`.cwasm` deserialize), and a
Store + instantiate from the pre-linked module with stub host functions. Nothing is called.
``problems`` lists everything `run` would refuse the module for (the sandbox's own import
and export checks: unknown functions, wrong signatures, missing or mistyped exports).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import wasmtime

from ._cache import AotCache
from ._sandbox import SPEC_MODULES, bindings_for, interface_problems, module_interface

__all__ = ["inspect_wasm", "Inspection", "CAPABILITIES"]

_USB_DEVICE = "usb device (vid:pid[:serial])"
CAPABILITIES: dict[str, dict[str, str]] = {
    "wasi_i2c": {
        "open": "i2c bus",
        "close": "i2c bus",
        "transaction": "i2c address (+ register ranges)",
        "read": "i2c address (+ register ranges)",
        "write": "i2c address (+ register ranges)",
        "write_read": "i2c address (+ register ranges)",
        "delay_ns": "none (bounded by the per-call deadline)",
    },
    "wasi_usb": {
        "list_devices": _USB_DEVICE, "device_info": _USB_DEVICE, "port_path": _USB_DEVICE,
        "device_descriptor": _USB_DEVICE, "config_descriptor": _USB_DEVICE, "open": _USB_DEVICE,
        "close": _USB_DEVICE, "string_descriptor": _USB_DEVICE, "get_configuration": _USB_DEVICE,
        "hotplug_poll": _USB_DEVICE,
        "set_configuration": "usb operation set_configuration",
        "claim_interface": "usb interface", "release_interface": "usb interface",
        "set_alt_setting": "usb interface",
        "detach_kernel_driver": "usb operation detach_kernel_driver (+ interface)",
        "control_transfer": "usb device (endpoint 0)",
        "bulk_transfer": "usb endpoint", "interrupt_transfer": "usb endpoint",
        "iso_transfer": "usb endpoint", "clear_halt": "usb endpoint",
        "reset_device": "usb operation reset",
    },
    "wasi_driver": {
        **{n: "always granted" for n in ("report", "log", "config_get", "inbox", "now_ns")},
        **{n: "memory sharing ([sharing] grant_to)" for n in ("grant", "revoke")},
        **{n: "memory sharing ([sharing] receive_from)"
           for n in ("granted_len", "granted_read", "granted_write")},
    },
}


@dataclass
class Inspection:
    imports: list[tuple[str, str, str, bool]]        # module, name, signature, known to the spec
    exports: list[tuple[str, str]]                   # name, kind/signature
    capabilities: dict[str, list[str]]               # grant kind → functions reaching it
    compile_s: float
    cache_load_s: float
    instantiate_s: float | None
    problems: list[str]


def _sig(t: object) -> str:
    if isinstance(t, wasmtime.FuncType):
        return (f"func({', '.join(str(p) for p in t.params)}) -> "
                f"({', '.join(str(r) for r in t.results)})")
    if isinstance(t, wasmtime.MemoryType):
        return f"memory(min {t.limits.min} pages)"
    return type(t).__name__.replace("Type", "").lower()


def inspect_wasm(wasm: bytes, cache: AotCache) -> Inspection:
    engine = cache.engine
    t0 = time.perf_counter()
    module = wasmtime.Module(engine.engine, wasm)
    compile_s = time.perf_counter() - t0
    cache.compile(wasm)                    # make sure a verified entry exists …
    loaded = cache.load(wasm)              # … and time loading it
    cache_load_s = loaded.seconds

    imports, problems = [], []
    caps: dict[str, list[str]] = {}
    linker = wasmtime.Linker(engine.engine)
    for imp in module.imports:
        known = False
        if imp.module in SPEC_MODULES and isinstance(imp.type, wasmtime.FuncType):
            try:
                table = bindings_for(imp.module).IMPORTS
            except Exception as err:  # noqa: BLE001 — bindings not generated: still inspect
                problems.append(str(err))
                table = {}
            known = imp.name in table
            if known:
                cap = CAPABILITIES.get(imp.module or "", {}).get(imp.name or "", "unknown")
                caps.setdefault(cap, []).append(f"{imp.module}.{imp.name}")
        if not known:
            problems.append(f"import {imp.module}.{imp.name} is not defined by the specs")
        imports.append((imp.module or "", imp.name or "", _sig(imp.type), known))
        if isinstance(imp.type, wasmtime.FuncType):
            n = len(list(imp.type.results))
            linker.define_func(imp.module or "", imp.name or "", wasmtime.FuncType(
                list(imp.type.params), list(imp.type.results)),
                (lambda *a, _n=n: 0 if _n == 1 else None))
    exports = [(e.name, _sig(e.type)) for e in module.exports]
    # what `run` refuses, by the sandbox's own checks (signatures of imports and exports)
    flagged = {f"{m}.{n} (" for m, n, _, known in imports if not known}
    for problem in interface_problems(module_interface(module)):
        if not any(f in problem for f in flagged):     # unknown imports: named above
            problems.append(problem)
    instantiate_s = None
    if all(isinstance(i.type, wasmtime.FuncType) for i in module.imports):
        try:
            pre = linker.instantiate_pre(loaded.module)
            store = wasmtime.Store(engine.engine)
            store.set_epoch_deadline(engine.deadline_ticks(1000))
            t0 = time.perf_counter()
            pre.instantiate(store)
            instantiate_s = time.perf_counter() - t0
        except (wasmtime.WasmtimeError, wasmtime.Trap) as err:
            problems.append(f"cannot instantiate: {str(err).splitlines()[0]}")
    return Inspection(imports, exports, caps, compile_s, cache_load_s, instantiate_s, problems)
