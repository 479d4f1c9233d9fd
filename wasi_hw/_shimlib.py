"""Runtime helpers of the generated shims (`wasi_hw/_bindings/_*.py`): written once, here.

The generated modules import these instead of each carrying a copy. Contract: every guest
(pointer, count) goes through `GuestMemory` (bounds and quota checked there); counts arrive as
core-wasm i32 values and are taken as unsigned 32-bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._errors import HwError
from ._memory import GuestMemory

__all__ = ["utf8", "read_bytes", "read_array", "host_method"]


def utf8(raw: bytes, invalid_kind: str) -> str:
    """`raw` decoded as UTF-8, or `HwError(invalid_kind)` (the module's invalid-argument case)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HwError(invalid_kind, f"string is not UTF-8 ({err.reason})") from None


def read_bytes(mem: GuestMemory, ptr: int, n: int, size: int) -> bytes:
    """`n` elements of `size` bytes at `ptr`, copied out of guest memory."""
    return mem.read(ptr, (n & 0xFFFFFFFF) * size)


def read_array(mem: GuestMemory, ptr: int, n: int, size: int,
               lift: Callable[[GuestMemory, bytes, int], Any]) -> list:
    """`n` records of `size` bytes at `ptr`, each lifted by `lift(mem, raw, offset)`. The
    byte count is never wrapped to 32 bits: beyond them no memory holds the region
    (`GuestFault`); within them `mem.read` checks the region, then the copy quota."""
    total = (n & 0xFFFFFFFF) * size
    if total > 0xFFFFFFFF:
        mem.check(ptr, total)                # raises: no linear memory is that large
    raw = mem.read(ptr, total)
    return [lift(mem, raw, off) for off in range(0, len(raw), size)]


def host_method(host: Any, module: str, name: str) -> Callable[..., Any]:
    """`host.<name>`, or a `TypeError` saying the host lacks that `<module>` function."""
    method = getattr(host, name, None)
    if not callable(method):
        raise TypeError(f"{type(host).__name__} does not implement {module}.{name}")
    return method
