"""Clocks: VirtualClock (instant, deterministic, thread-safe) and RealClock."""

from __future__ import annotations

import threading
import time

import pytest

from wasi_hw.host import Clock, RealClock, VirtualClock


def test_virtual_clock_advances_only_when_asked():
    c = VirtualClock(100)
    assert isinstance(c, Clock)
    assert c.now_ns() == 100
    c.sleep_ns(50)
    c.advance(7)
    assert c.now_ns() == 157
    for bad in (lambda: c.sleep_ns(-1), lambda: VirtualClock(-5)):
        with pytest.raises(ValueError):
            bad()
    assert c.now_ns() == 157


def test_virtual_clock_is_thread_safe():
    c = VirtualClock()
    threads = [
        threading.Thread(target=lambda: [c.sleep_ns(1) for _ in range(5000)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.now_ns() == 20000


def test_real_clock_sleeps_at_least():
    c = RealClock()
    assert isinstance(c, Clock)
    t0 = time.monotonic_ns()
    c.sleep_ns(2_000_000)
    assert time.monotonic_ns() - t0 >= 2_000_000
    assert abs(c.now_ns() - time.monotonic_ns()) < 50_000_000
    c.sleep_ns(0)
    with pytest.raises(ValueError):
        c.sleep_ns(-1)
