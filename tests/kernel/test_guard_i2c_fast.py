"""The I2C guard's per-call fast paths (`write_read`, `write`) decide exactly as its general
register rules (`_check`): same outcome, same audit entry, same register-pointer state."""

from __future__ import annotations

import functools
import random

import pytest

from wasi_hw import HwError
from wasi_hw._bindings._wasi_i2c import AddressMode
from wasi_hw.kernel import AuditLog
from wasi_hw.kernel._guard import I2cGuard
from wasi_hw.kernel._manifest import I2cGrant, Limits, Manifest, RegisterRange


class Host:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def open(self, name: str) -> int:
        return 1

    def write(self, bus, address, mode, data) -> None:
        self.calls.append(("write", bus, address, int(mode), bytes(data)))

    def write_read(self, bus, address, mode, data, buf) -> None:
        self.calls.append(("write_read", bus, address, int(mode), bytes(data), len(buf)))


RANGES = (RegisterRange(0x88, 0xA1, True, False), RegisterRange(0xD0, 0xD0, True, False),
          RegisterRange(0xE0, 0xE0, False, True), RegisterRange(0xF2, 0xF5, True, True),
          RegisterRange(0xF7, 0xFE, True, False), RegisterRange(0xFF, 0xFF, True, True))


def guard(pairs: bool) -> tuple[I2cGuard, AuditLog, Host]:
    m = Manifest(name="drv", wasm=None,
                 i2c=(I2cGrant("i2c-1", frozenset({0x76}), registers=RANGES, write_pairs=pairs),),
                 limits=Limits(max_transfer=16))
    audit, host = AuditLog(), Host()
    g = I2cGuard(host, m, audit)
    g.open("i2c-1")
    return g, audit, host


def outcome(fn) -> str | None:
    try:
        fn()
    except HwError as err:
        return err.kind
    return None


@pytest.mark.parametrize("pairs", [False, True])
def test_fast_paths_match_the_general_rules(pairs):
    rng = random.Random(7 + pairs)
    fast, fast_audit, fast_host = guard(pairs)
    ref, ref_audit, ref_host = guard(pairs)
    seven = AddressMode.SEVEN_BIT
    regs = [0x00, 0x87, 0x88, 0xA1, 0xA2, 0xD0, 0xE0, 0xF1, 0xF2, 0xF4, 0xF5, 0xF6, 0xF7,
            0xFD, 0xFE, 0xFF]
    for _ in range(3000):
        data = bytes(rng.choice(regs) for _ in range(rng.choice([0, 1, 1, 1, 2, 3, 4, 5])))
        n = rng.choice([0, 1, 2, 6, 8, 20])
        address = rng.choice([0x76, 0x76, 0x76, 0x77])
        if rng.random() < 0.5:
            got = outcome(functools.partial(fast.write_read, 1, address, seven, data,
                                            bytearray(n)))

            def general(address=address, data=data, n=n) -> None:
                ref._check("write_read", 1, address, seven,
                           [(True, len(data), data), (False, n, None)])
                ref_host.write_read(1, address, seven, data, bytearray(n))
            want = outcome(general)
        else:
            got = outcome(functools.partial(fast.write, 1, address, seven, data))

            def general(address=address, data=data) -> None:
                ref._check("write", 1, address, seven, [(True, len(data), data)])
                ref_host.write(1, address, seven, data)
            want = outcome(general)
        assert got == want, (data, n, address)
        assert fast._pointer == ref._pointer, (data, n, address)
    assert fast_host.calls == ref_host.calls
    assert [(e["asked"], e["why"], e["outcome"]) for e in fast_audit.entries] == \
        [(e["asked"], e["why"], e["outcome"]) for e in ref_audit.entries]
    assert len(fast_audit.entries) > 100 and len(fast_host.calls) > 100
