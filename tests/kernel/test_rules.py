"""The compiled I2C rule: its tables (what the C fast path looks up) say exactly what its
``judge`` says for the shapes they cover — they are made by asking it — for every pointer
behaviour and a spread of grants; and `wire_messages` merges as embedded-hal specifies."""

from __future__ import annotations

import random

import pytest

from wasi_hw.kernel._manifest import I2cGrant, RegisterRange
from wasi_hw.kernel._rules import I2cRule, wire_messages


def _grant(rng: random.Random, pointer: str) -> I2cGrant:
    ranges = []
    for _ in range(rng.randint(1, 5)):
        first = rng.choice([0, 0x10, 0x80, 0xF0, 0xFC, rng.randrange(256)])
        last = min(0xFF, first + rng.randint(0, 6))
        access = rng.choice(["r", "w", "rw"])
        ranges.append(RegisterRange(first, last, "r" in access, "w" in access))
    return I2cGrant("i2c-1", frozenset({0x76}), registers=tuple(ranges), pointer=pointer)


def _i32(table: bytes, p: int) -> int:
    return int.from_bytes(table[4 * p:4 * p + 4], "little", signed=True)


@pytest.mark.parametrize("pointer", ["auto_increment", "write_pairs", "none"])
def test_tables_agree_with_judge(pointer):
    rng = random.Random(pointer)
    for _ in range(20):
        rule = I2cRule(_grant(rng, pointer))
        for p in range(256):
            wr, w = _i32(rule.write_read_limit, p), _i32(rule.write_limit, p)
            for n in (0, 1, 2, 3, 7, 255, 256):
                ok = rule.judge([(True, 1, bytes((p,))), (False, n, None)]) is None
                assert (n <= wr) == ok, (pointer, p, n)
            for k in (0, 1):         # a table entry below its limit is allowed by judge
                data = bytes((p,)) + bytes((p,)) * k
                if k <= w:
                    assert rule.judge([(True, len(data), data)]) is None, (pointer, p, k)
                elif pointer != "write_pairs" or k <= 1:
                    assert rule.judge([(True, len(data), data)]) is not None


def test_adjacent_operations_of_one_direction_merge():
    assert wire_messages([(True, 1, b"\xf4"), (True, 1, b"\xf5"), (False, 2, None),
                          (False, 3, None), (True, 0, b""), (True, 1, b"\x01")]) == [
        (True, 2, b"\xf4\xf5"), (False, 5, None), (True, 1, b"\x01")]
