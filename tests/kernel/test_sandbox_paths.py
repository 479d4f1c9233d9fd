"""The sandbox on both host-call paths (`_fastcall`: unchecked C API, and `Linker.define_func`):
same results, Ctrl-C still propagates, and it is faster."""

from __future__ import annotations

import time

import pytest

from wasi_hw.kernel import Backends, Kernel
from wasi_hw.kernel._fastcall import fast_path_available
from wasi_hw.kernel._sandbox import Sandbox

from kernel_testing import manifest, reports, wat

pytestmark = pytest.mark.skipif(not fast_path_available(), reason="fast host-call path unavailable")


def timed_polls(kernel, name, fast, polls=5):
    slot = kernel.add(manifest(name, deadline_ms=5000), wat("call_storm"))
    slot.sandbox = Sandbox(kernel.engine, slot.sandbox.module, slot.manifest, fast=fast)
    assert slot.sandbox.fast is fast
    kernel.start()
    t0 = time.perf_counter()
    for _ in range(polls):
        kernel._poll(slot)
    return (time.perf_counter() - t0) / (polls * 2001)


def test_fast_and_slow_paths_agree_and_fast_is_faster(kernel):
    slow = timed_polls(kernel, "slow", fast=False)
    fast = timed_polls(kernel, "fast", fast=True)
    assert reports(kernel.events, "slow") == reports(kernel.events, "fast") == [{"n": 2000}] * 5
    print(f"per host call: define_func {slow * 1e6:.2f} µs, unchecked {fast * 1e6:.2f} µs")
    assert fast < slow


def test_keyboard_interrupt_in_host_call_propagates(sim, tmp_path):
    def on_event(event):
        if event.kind == "log":
            raise KeyboardInterrupt
    with Kernel(Backends(i2c=sim), on_event=on_event, cache_dir=tmp_path) as kernel:
        slot = kernel.add(manifest("log_once"), wat("log_once"))
        assert slot.sandbox.fast
        with pytest.raises(KeyboardInterrupt):
            kernel.run(rounds=1)
