"""Random core-wasm arguments thrown at every generated shim, behind the kernel's guards and
its `fail` trampoline, over real host modules and simulated backends.

Whatever the arguments and memory contents, each call returns one of its module's errno
values (never raises, never crashes the host), the memory keeps its size, and no host module
fails unexpectedly (no ``host_error`` in the audit log: every outcome is a spec errno). Small
example counts keep CI fast; ``HYPOTHESIS_PROFILE=benchmark`` makes ≥ 100 000 calls in all
(``thorough``: 2 000 examples per shim).
"""

from __future__ import annotations

import os

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings, strategies as st

from wasi_hw._memory import GuestMemory
from wasi_hw.host import DriverEnv, I2cHost, SimI2cBackend, SimUsbBackend, UsbHost
from wasi_hw.host.devices import Bme280
from wasi_hw.host.usbdevices import EchoDevice
from wasi_hw.kernel import AuditLog, ImcHub, ImcPolicy
from wasi_hw.kernel._policy import Violations, make_fail
from wasi_hw.kernel._sandbox import SPEC_MODULES, bindings_for
from wasi_hw.kernel._manifest import I2cGrant, Limits, Manifest, UsbGrant

settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None)
# Benchmark mode (at least 100 000 calls): HYPOTHESIS_PROFILE=benchmark gives every shim
# enough examples that the whole run makes at least 100 000 raw calls.
_SHIMS = sum(len(bindings_for(m).IMPORTS) for m in SPEC_MODULES)
settings.register_profile("benchmark", max_examples=-(-100_000 // _SHIMS), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PAGES = 1
MANIFEST = Manifest(
    name="fuzz", wasm=None, config={"bus": "i2c-1"},
    i2c=(I2cGrant("i2c-1", frozenset({0x76})),),
    usb=(UsbGrant(0x1209, 0x0001, None, frozenset({0}), frozenset({0x01, 0x81}), frozenset()),),
    limits=Limits(max_transfer=512),
    imc=ImcPolicy(offer=["echo"], call=["echo", "x"], publish=["t"], subscribe=["fuzz.t"]),
)


class World:
    def __init__(self) -> None:
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        module = wasmtime.Module(engine, f'(module (memory (export "memory") {PAGES}))')
        self.memory = wasmtime.Instance(self.store, module, []).exports(self.store)["memory"]
        self.mem = GuestMemory(self.memory, self.store, max_copy=MANIFEST.limits.max_transfer)
        sim = SimI2cBackend(["i2c-1"])
        sim.attach("i2c-1", 0x76, Bme280())
        self.audit = AuditLog()
        hosts = {
            "wasi_i2c": I2cHost(sim, max_transfer=512),
            "wasi_usb": UsbHost(SimUsbBackend([EchoDevice()]), max_transfer=512),
            "wasi_driver": DriverEnv(config={"bus": "i2c-1"}, clock=sim.clock),
            "wasi_imc": ImcHub(self.audit).env(MANIFEST),
        }
        self.shims = {}
        counters = Violations()
        for mod, (_, guard_cls) in SPEC_MODULES.items():
            b = bindings_for(mod)
            guard = guard_cls(hosts[mod], MANIFEST, self.audit)
            fail = make_fail("fuzz", mod, b.ERRNO, self.audit, counters)
            for name, fn in b.bind(guard, self.mem, fail).items():
                self.shims[(mod, name)] = (fn, b.IMPORTS[name][0], set(b.ERRNO.values()))


WORLD = World()
ALL = sorted(WORLD.shims)

i32 = st.one_of(
    st.integers(-(2**31), 2**31 - 1),
    st.sampled_from([0, 1, 2, 4, 16, 0x76, 0xFFFF, 0x10000, -1, -4, 2**31 - 1, -(2**31)]),
)
i64 = st.integers(-(2**63), 2**63 - 1)


@pytest.mark.parametrize("key", ALL, ids=[f"{m}.{n}" for m, n in ALL])
@given(data=st.data(), memory=st.binary(min_size=0, max_size=256))
def test_shim_never_raises(key, data, memory):
    fn, params, errnos = WORLD.shims[key]
    WORLD.memory.write(WORLD.store, memory, 0)
    args = [data.draw(i64 if p == "i64" else i32) for p in params]
    size_before = WORLD.memory.data_len(WORLD.store)
    result = fn(*args)
    assert result in errnos, (key, args, result)
    assert WORLD.memory.data_len(WORLD.store) == size_before
    host_errors = [e for e in WORLD.audit.entries if e["outcome"] == "host_error"]
    assert not host_errors, host_errors[0]
