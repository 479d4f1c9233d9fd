"""Shared fixtures for the kernel tests: .wat drivers, manifests and a simulated BME280."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from wasi_hw.host import SimI2cBackend
from wasi_hw.host.devices import Bme280
from wasi_hw.kernel import Backends, Kernel
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


@pytest.fixture
def sim():
    backend = SimI2cBackend(["i2c-1"])
    backend.attach("i2c-1", 0x76, Bme280())
    return backend


@pytest.fixture
def kernel(sim, tmp_path):
    events = []
    k = Kernel(Backends(i2c=sim), on_event=events.append, cache_dir=tmp_path / "aot", tick_ms=2)
    k.events = events
    yield k
    k.close()


def reports(events, driver):
    return [e.data for e in events if e.kind == "report" and e.driver == driver]


def states(events, driver):
    return [e.data for e in events if e.kind == "state" and e.driver == driver]
