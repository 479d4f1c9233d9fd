"""Helpers for the kernel tests: .wat drivers, manifests, and event filters.

Imported by name (`from kernel_testing import wat`), never as `conftest`: several test
directories have a conftest.py, and a bare `conftest` import picks whichever came first.
"""

from __future__ import annotations

from pathlib import Path

import wasmtime

from wasi_hw.kernel._manifest import I2cGrant, Limits, Manifest, RestartPolicy

HERE = Path(__file__).parent


def wat(name: str) -> bytes:
    """The wasm of tests/kernel/wat/<name>.wat or tests/kernel/hostile/<name>.wat."""
    for d in ("wat", "hostile"):
        p = HERE / d / f"{name}.wat"
        if p.exists():
            return wasmtime.wat2wasm(p.read_text())
    raise FileNotFoundError(name)


def manifest(name: str, *, addresses=(0x76,), deadline_ms=100, max_faults=2, backoff_ms=1,
             interval_ms=5, registers=(), memory_pages=4, **limits) -> Manifest:
    return Manifest(
        name=name, wasm=HERE / f"{name}.wasm",
        config={"bus": "i2c-1", "address": "0x76"},
        i2c=(I2cGrant("i2c-1", frozenset(addresses), registers=tuple(registers)),),
        limits=Limits(deadline_ms=deadline_ms, memory_pages=memory_pages, **limits),
        poll_interval_ms=interval_ms,
        restart=RestartPolicy(max_faults=max_faults, backoff_ms=backoff_ms, backoff_max_ms=1000),
    )



def reports(events, driver):
    return [e.data for e in events if e.kind == "report" and e.driver == driver]


def states(events, driver):
    return [e.data for e in events if e.kind == "state" and e.driver == driver]


#: the AoT cache tests' module: one function ``f`` returning 42
F42_WAT = '(module (memory (export "memory") 1) (func (export "f") (result i32) i32.const 42))'


def run_f(engine, module) -> int:
    """Instantiate ``module`` (F42_WAT or alike) in a fresh store of ``engine``; ``f()``."""
    import wasmtime

    store = wasmtime.Store(engine.engine)
    store.set_epoch_deadline(100)
    return wasmtime.Instance(store, module, []).exports(store)["f"](store)
