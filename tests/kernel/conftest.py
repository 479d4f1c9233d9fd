"""Shared fixtures for the kernel tests: a simulated BME280 and a kernel around it."""

from __future__ import annotations

import pytest

from wasi_hw.host import SimI2cBackend
from wasi_hw.host.devices import Bme280
from wasi_hw.kernel import Backends, Kernel

from kernel_testing import manifest, reports, states, wat  # noqa: F401  (re-exported helpers)


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


@pytest.fixture(scope="module")
def engine():
    """A kernel engine shared by one test module (the AoT cache tests)."""
    from wasi_hw.kernel._engine import KernelEngine

    with KernelEngine() as e:
        yield e


@pytest.fixture
def wasm():
    """The AoT cache tests' module (`kernel_testing.F42_WAT`) as bytes."""
    import wasmtime

    from kernel_testing import F42_WAT

    return wasmtime.wat2wasm(F42_WAT)
