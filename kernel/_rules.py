"""The grant rules: one compiled decision per frozen grant, executed by every path.

Contract:
- `I2cRule(grant)` compiles one `I2cGrant` (a bus) once. ``admits(address, ten_bit)`` is
  the address rule. ``judge(messages)`` is the register rule, decided on the messages that
  go on the wire — ``(is_write, length, written bytes or None)`` after `wire_messages` merged
  adjacent operations of the same direction (embedded-hal 1.0: no repeated START between
  them) — and returns None (allowed) or ``(register or None, why)`` for the first violation.
  The device's register pointer is modelled as the grant declares (``pointer``):

  ``auto_increment``  a Write's first byte sets the pointer, each further byte goes to the
                      pointer and advances it; a Read reads from the pointer and advances it.
  ``write_pairs``     a Write is ``reg, value, reg, value, …`` (BME280, datasheet 6.2.1): each
                      value goes to the register byte before it; a Read auto-increments. After
                      a Write ending in a value the pointer is unknown (chips differ).
  ``none``            the pointer never moves: every written byte goes to, every read byte
                      comes from, the register the Write's first byte named.

  The pointer is unknown at the start of every transaction (the bus is not held between
  calls, another driver or process may move it), after a failed transaction nothing is
  assumed, and a Read from an unknown pointer — or past register 0xFF — is denied. A Write
  of the pointer alone needs it inside some granted range. Sound first: whatever a device
  does within its declared behaviour, no byte goes into or comes out of a register without
  that right (tests/kernel/test_oracle.py checks it against what simulated devices saw).
- ``write_read_limit`` and ``write_limit`` are the same rule compiled to tables for the two
  shapes drivers use most (a bytes object of 256 little-endian i32, by first written byte):
  ``write_read_limit[p]``: the longest Read allowed after the one-byte Write ``[p]`` (-1: that
  Write is denied); ``write_limit[p]``: the most bytes allowed after ``p`` in one Write
  (-1: denied; a Write longer than the table allows is decided by ``judge``). They are made
  by asking ``judge``, so they cannot say more than it does; the C fast path
  (``kernel/_cnative.c``) executes them and hands everything else to the generic chain,
  whose guard calls ``judge``.
- `UsbRule(grant)` is one `UsbGrant`: ``endpoint(ep)`` (endpoint 0 always),
  ``interface(i)``, ``operation(name)``.
- `wire_messages(ops)` merges ``(is_write, length, data)`` operations as the host does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any, cast

from ._manifest import POINTER_MODES

__all__ = ["I2cRule", "UsbRule", "wire_messages", "POINTER_MODES"]

_U8 = range(0x100)
Message = tuple[bool, int, "bytes | None"]


def wire_messages(ops: Iterable[Message]) -> list[Message]:
    """Adjacent operations of the same direction merged into one message (embedded-hal)."""
    out: list[Message] = []
    for is_write, n, data in ops:
        if out and out[-1][0] == is_write:
            w, m, d = out[-1]
            # a write carries its bytes (the Message contract)
            out[-1] = (w, m + n, (cast(bytes, d) + cast(bytes, data)) if is_write else None)
        else:
            out.append((is_write, n, bytes(cast(bytes, data)) if is_write else None))
    return out


class I2cRule:
    """One granted bus compiled (module docstring)."""

    __slots__ = ("grant", "addresses", "ten_bit", "registers", "pointer", "covered",
                 "readable", "writable", "read_run", "write_run", "write_read_limit",
                 "write_limit")

    def __init__(self, grant: Any) -> None:
        self.grant = grant
        self.addresses = frozenset(grant.addresses)
        self.ten_bit = bool(grant.ten_bit)
        self.registers = bool(grant.registers)
        self.pointer = grant.pointer            # checked by I2cGrant: one of POINTER_MODES
        self.covered = bytes(any(g.covers(r) for g in grant.registers) for r in _U8)
        self.readable = bytes(grant.allows_register(r, write=False) for r in _U8)
        self.writable = bytes(grant.allows_register(r, write=True) for r in _U8)
        self.read_run = _runs(self.readable)     # run[p]: allowed registers from p on in a row
        self.write_run = _runs(self.writable)
        self.write_read_limit = _table(self._limit_write_read)
        self.write_limit = _table(self._limit_write)

    def admits(self, address: int, ten_bit: bool) -> bool:
        """The address rule: granted, and 10-bit only under a ``ten_bit`` grant."""
        return address in self.addresses and (self.ten_bit or not ten_bit)

    # -- the register rule --------------------------------------------------------------
    def judge(self, messages: Sequence[Message]) -> tuple[int | None, str] | None:
        """None when every message is allowed, else ``(register, why)`` (module docstring)."""
        if not self.registers:
            return None
        ptr: int | None = None          # unknown at the start of every transaction
        for is_write, n, data in messages:
            if is_write:
                bad, ptr = self._write(data if data is not None else b"", ptr)
            else:
                bad, ptr = self._read(n, ptr)
            if bad is not None:
                return bad
        return None

    def _write(self, data: bytes, ptr: int | None) -> tuple[Any, int | None]:
        n = len(data)
        if not n:
            return None, ptr            # address only: the pointer stays where it was
        p = data[0]
        if n == 1 and not self.covered[p]:   # with data, the write rights below decide
            return (p, f"register {p:#04x} is outside the granted ranges"), None
        mode = self.pointer
        if mode == "write_pairs":
            for i in range(0, n - 1, 2):
                r = data[i]
                if not self.writable[r]:
                    return (r, f"writing register {r:#04x} is not granted"), None
            if n % 2:
                last = data[n - 1]
                if not self.covered[last]:
                    return (last, f"register {last:#04x} is outside the granted ranges"), None
                return None, last
            return None, None           # ended on a value: where the pointer went is unknown
        if mode == "none":
            if n > 1 and not self.writable[p]:
                return (p, f"writing register {p:#04x} is not granted"), None
            return None, p
        if n - 1 > self.write_run[p]:   # auto-increment: p, p+1, … (never past 0xFF)
            bad = next((r for r in range(p, p + n - 1) if r > 0xFF or not self.writable[r]),
                       0x100)
            return (bad, f"writing register {bad:#04x} is not granted"), None
        return None, p + n - 1

    def _read(self, n: int, ptr: int | None) -> tuple[Any, int | None]:
        if not n:
            return None, ptr
        if ptr is None:
            return (None, "read without a known register pointer under a register-restricted "
                          "grant (set it in the same transaction, e.g. write_read)"), None
        if self.pointer == "none":
            if ptr > 0xFF or not self.readable[ptr]:
                return (ptr, f"reading register {ptr:#04x} is not granted"), None
            return None, ptr
        if ptr > 0xFF or n > self.read_run[ptr]:
            bad = next((r for r in range(ptr, ptr + n) if r > 0xFF or not self.readable[r]),
                       0x100)
            return (bad, f"reading register {bad:#04x} is not granted"), None
        return None, ptr + n

    # -- the tables, asked of judge ---------------------------------------------------------
    def _limit_write_read(self, p: int) -> int:
        if not self.registers:
            return 0x7FFFFFFF
        if self.judge([(True, 1, bytes((p,)))]) is not None:
            return -1
        lo, hi = 0, 0x101                 # the longest allowed read: judge is monotonic in n
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.judge([(True, 1, bytes((p,))), (False, mid, None)]) is None:
                lo = mid
            else:
                hi = mid
        return lo if lo < 0x100 or self.pointer != "none" else 0x7FFFFFFF

    def _limit_write(self, p: int) -> int:
        if not self.registers:
            return 0x7FFFFFFF
        if self.judge([(True, 1, bytes((p,)))]) is not None:
            return -1
        if self.pointer == "write_pairs":  # only [p, value] is a table entry; longer: judge
            return 1 if self.judge([(True, 2, bytes((p, 0)))]) is None else 0
        lo, hi = 0, 0x101
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.judge([(True, mid + 1, bytes((p,)) * (mid + 1))]) is None:
                lo = mid
            else:
                hi = mid
        return lo if lo < 0x100 or self.pointer != "none" else 0x7FFFFFFF


def _runs(allowed: bytes) -> tuple[int, ...]:
    runs = [0] * 0x101
    for reg in range(0xFF, -1, -1):
        runs[reg] = runs[reg + 1] + 1 if allowed[reg] else 0
    return tuple(runs)


def _table(limit: Any) -> bytes:
    return struct.pack("<256i", *(limit(p) for p in _U8))


class UsbRule:
    """One `UsbGrant`: which endpoints, interfaces and operations (module docstring)."""

    __slots__ = ("grant", "endpoints", "interfaces", "operations")

    def __init__(self, grant: Any) -> None:
        self.grant = grant
        self.endpoints = frozenset(grant.endpoints)
        self.interfaces = frozenset(grant.interfaces)
        self.operations = frozenset(grant.operations)

    def endpoint(self, ep: int) -> bool:
        return not ep & 0x0F or ep in self.endpoints

    def interface(self, i: int) -> bool:
        return i in self.interfaces

    def operation(self, name: str) -> bool:
        return name in self.operations
