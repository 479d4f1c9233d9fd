"""Guest linear memory: the only code that touches a driver's memory.

`GuestMemory(memory, store, *, max_copy)` wraps one instance's exported ``memory``. Every
``(ptr, len)`` is taken as unsigned 32-bit (a negative i32 from the guest is its unsigned
value) and checked — in exact integer arithmetic, so ``ptr + len`` cannot wrap — against
the memory's *current* size; a region outside it raises `GuestFault`. Any single host-side
copy or region larger than ``max_copy`` raises ``HwError("no_mem")`` (the guest's length
never makes the host allocate beyond the driver's quota).

The memory's size is never cached across host calls, since the guest may grow (and so move)
its memory between them: a generated shim calls ``pin()`` when a host call starts and
``unpin()`` when it ends, and every access in between uses the size read once by ``pin()``
(the guest is suspended in its host call and cannot grow its memory meanwhile; host calls
are not reentrant). Outside a pinned call every access re-reads the size from wasmtime. The
base address is re-read whenever the size changed — a linear memory moves only when it
grows, and it never shrinks — and copies go through a ``ctypes`` view over
``[base, base + size)`` that is rebuilt at the same moment (slicing it is a single
``memcpy``). Multi-byte values are little-endian.

``GuestMemory(..., native=factory)`` also builds ``factory(memory, store, max_copy=…)`` — the
kernel's C accessors (`wasi_hw.kernel._native.memory`: the same checks and errors, base and
size re-read per access) — and `hot()` hands them to hot paths instead of its own methods.

`GuestRegion` is a checked ``(ptr, len)`` window handed to host code: ``read()``,
``write(data, offset=0)``; it re-checks its bounds on each access. ``region.memory`` is the
`GuestMemory` it lies in.

`copy_between(src, src_ptr, dst, dst_ptr, n)` copies ``n`` bytes from one guest memory to
another (or within one) with a single ``memmove`` — no intermediate buffer — after checking
both regions against their memories' current sizes and ``n`` against both copy quotas
(the kernel's cross-driver grants use it).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any

from ._errors import GuestFault, HwError

__all__ = ["GuestMemory", "GuestRegion", "copy_between"]

_MASK32 = 0xFFFFFFFF
_U8, _U16, _U32, _U64 = (struct.Struct(f) for f in ("<B", "<H", "<I", "<Q"))
_memmove = ctypes.memmove
_c_char = ctypes.c_char


def _fast_accessors() -> tuple[Any, Any] | None:
    """wasmtime's ``wasmtime_memory_data``/``_data_size`` returning plain integers, through a
    private CDLL handle (so wasmtime-py's own prototypes are untouched). None if the
    installed wasmtime-py is laid out differently; the public API is used then."""
    try:
        from wasmtime import _ffi

        lib = ctypes.CDLL(_ffi.dll._name)
        data, size = lib.wasmtime_memory_data, lib.wasmtime_memory_data_size
        data.restype = size.restype = ctypes.c_size_t
        return data, size
    except Exception:  # pragma: no cover - depends on the wasmtime-py build
        return None


_FAST = _fast_accessors()


class GuestMemory:
    """Checked access to one instance's linear memory (see the module docstring)."""

    __slots__ = ("_size_of", "_base_of", "_keep", "max_copy", "_pinned", "_base", "_size",
                 "_view", "_mv", "native")

    def __init__(self, memory: Any, store: Any, *, max_copy: int,
                 native: Callable[..., Any] | None = None) -> None:
        if max_copy < 0:
            raise ValueError("max_copy must be >= 0")
        self.max_copy = max_copy
        # the C accessors (kernel/_native.memory), or None: see `hot`
        self.native = native(memory, store, max_copy=max_copy) if native is not None else None
        self._keep = (memory, store)  # the raw handles below point into these: keep them alive
        self._size_of, self._base_of = self._make_accessors(memory, store)
        self._pinned = False
        self._base, self._size = 0, -1      # what the view below was built for
        self._view: Any = None              # c_char array over [base, base + size)
        self._mv: memoryview = memoryview(b"")  # the same bytes, writable (once synced)

    @staticmethod
    def _make_accessors(memory: Any, store: Any) -> tuple[Callable[[], int], Callable[[], int]]:
        """(size(), base()) of the memory: wasmtime's C API directly where possible."""
        if _FAST is not None:
            try:
                ctx = store._context()
                ref = ctypes.byref(memory._memory)
                data, size = _FAST
                return (lambda: size(ctx, ref)), (lambda: data(ctx, ref))
            except AttributeError:  # not a wasmtime Memory/Store: use the public API
                pass

        def base() -> int:
            return ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value or 0
        return (lambda: memory.data_len(store)), base

    def _sync(self) -> int:
        """Re-read the size; base and view too when it changed. The current size."""
        size = self._size_of()
        if size != self._size:
            base = self._base_of()
            view = (_c_char * size).from_address(base)
            self._view, self._mv = view, memoryview(view).cast("B")
            self._base, self._size = base, size
        return size

    def hot(self) -> tuple[Callable[[], int], Callable[[], None], Callable[[int, int], bytes],
                           Callable[[int, Any], None]]:
        """``(pin, unpin, read, write)`` for a hot path: this object's own methods, or — when
        built with ``native`` — the C accessors, which need no pinning (``pin`` only returns
        the current size; bounds are re-read on every access) and raise the same errors."""
        n = self.native
        if n is None:
            return self.pin, self.unpin, self.read, self.write
        return n.size, n.nothing, n.read, n.write

    def pin(self) -> int:
        """A host call starts: read the size (and, if it changed, the base) once for it.
        Returns that size."""
        size = self._sync()
        self._pinned = True
        return size

    def unpin(self) -> None:
        """The host call ended: the guest may grow its memory again; re-read per access."""
        self._pinned = False

    # ---- checks -------------------------------------------------------------------
    def _span(self, ptr: int, n: int) -> int:
        """``ptr`` as unsigned after checking guest ``[ptr, ptr + n)``; the view is current."""
        ptr &= _MASK32
        if n < 0:
            raise GuestFault(f"negative length {n} at 0x{ptr:x}")
        size = self._size if self._pinned else self._sync()
        if ptr + n > size:
            raise GuestFault(f"region 0x{ptr:x}+{n} is outside linear memory ({size} bytes)")
        return ptr

    def _addr(self, ptr: int, n: int) -> int:
        """The host address of guest ``[ptr, ptr + n)`` after the bounds check."""
        ptr = self._span(ptr, n)
        return self._base + ptr

    def _quota(self, n: int) -> None:
        if n > self.max_copy:
            raise HwError("no_mem", f"{n} bytes exceed the copy quota of {self.max_copy}")

    def size(self) -> int:
        """The current size of the memory in bytes."""
        return self._size if self._pinned else self._sync()

    def check(self, ptr: int, n: int) -> None:
        """Raise `GuestFault` unless ``[ptr, ptr + n)`` lies inside the memory."""
        self._span(ptr, n)

    # ---- bytes ------------------------------------------------------------------
    def read(self, ptr: int, n: int) -> bytes:
        n &= _MASK32
        p = self._span(ptr, n)
        if n > self.max_copy:
            self._quota(n)
        data: bytes = self._view[p:p + n]
        return data

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        p = self._span(ptr, n)
        if n > self.max_copy:
            self._quota(n)
        if n:
            self._mv[p:p + n] = data if type(data) is bytes else bytes(data)

    def read_str(self, ptr: int, n: int) -> str:
        """Read ``n`` bytes of UTF-8; invalid UTF-8 → ``HwError("invalid_argument")``."""
        raw = self.read(ptr, n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise HwError("invalid_argument",
                          f"string at 0x{ptr & _MASK32:x} is not UTF-8 ({err.reason})") from None

    def region(self, ptr: int, n: int, writable: bool = True) -> GuestRegion:
        """A checked window of ``n`` bytes at ``ptr`` (``n`` within the copy quota)."""
        n &= _MASK32
        ptr = self._span(ptr, n)
        if n > self.max_copy:
            self._quota(n)
        return GuestRegion(self, ptr, n, writable)

    # ---- fixed-size values ------------------------------------------------------
    def read_u8(self, ptr: int) -> int:
        return self._mv[self._span(ptr, 1)]

    def read_u16(self, ptr: int) -> int:
        v: int = _U16.unpack_from(self._mv, self._span(ptr, 2))[0]
        return v

    def read_u32(self, ptr: int) -> int:
        v: int = _U32.unpack_from(self._mv, self._span(ptr, 4))[0]
        return v

    def read_u64(self, ptr: int) -> int:
        v: int = _U64.unpack_from(self._mv, self._span(ptr, 8))[0]
        return v

    def write_u8(self, ptr: int, v: int) -> None:
        self.write_struct(ptr, _U8, v)

    def write_u16(self, ptr: int, v: int) -> None:
        self.write_struct(ptr, _U16, v)

    def write_u32(self, ptr: int, v: int) -> None:
        self.write_struct(ptr, _U32, v)

    def write_u64(self, ptr: int, v: int) -> None:
        self.write_struct(ptr, _U64, v)

    def read_struct(self, ptr: int, fmt: str | struct.Struct) -> tuple[Any, ...]:
        """Unpack a little-endian ``struct`` format (give ``"<..."`` or a `struct.Struct`)."""
        s = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        return s.unpack_from(self._mv, self._span(ptr, s.size))

    def write_struct(self, ptr: int, fmt: str | struct.Struct, *values: Any) -> None:
        s = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        p = self._span(ptr, s.size)
        data = s.pack(*values)          # packed first: a bad value writes nothing
        if data:
            self._mv[p:p + s.size] = data


def copy_between(src: GuestMemory, src_ptr: int, dst: GuestMemory, dst_ptr: int, n: int) -> None:
    """Copy ``n`` bytes from ``src[src_ptr:]`` to ``dst[dst_ptr:]`` in one ``memmove``.

    Both regions are checked first (`GuestFault`), ``n`` against both quotas (``no_mem``);
    nothing is copied unless every check passes. Overlap (same memory) is allowed."""
    if n < 0:
        raise GuestFault(f"negative length {n}")
    src._quota(n)
    dst._quota(n)
    s = src._addr(src_ptr, n)
    d = dst._addr(dst_ptr, n)
    if n:
        _memmove(d, s, n)


class GuestRegion:
    """A bounds-checked ``(ptr, len)`` window of guest memory given to host code."""

    __slots__ = ("_mem", "ptr", "_len", "writable")

    def __init__(self, mem: GuestMemory, ptr: int, n: int, writable: bool = True) -> None:
        self._mem, self.ptr, self._len, self.writable = mem, ptr, n, writable

    def __len__(self) -> int:
        return self._len

    @property
    def memory(self) -> GuestMemory:
        """The guest memory this region lies in."""
        return self._mem

    def __repr__(self) -> str:
        return f"GuestRegion(ptr=0x{self.ptr:x}, len={self._len}, writable={self.writable})"

    def read(self) -> bytes:
        """The region's current bytes (a copy)."""
        mem, n = self._mem, self._len
        p = mem._span(self.ptr, n)
        data: bytes = mem._view[p:p + n]
        return data

    def write(self, data: bytes | bytearray | memoryview, offset: int = 0) -> None:
        """Copy ``data`` into the region at ``offset``; it must fit."""
        if not self.writable:
            raise ValueError(f"{self!r} is read-only")
        n = len(data)
        if offset < 0 or offset + n > self._len:
            raise ValueError(f"{n} bytes at offset {offset} do not fit {self!r}")
        if n:
            mem = self._mem
            p = mem._span(self.ptr + offset, n)
            mem._mv[p:p + n] = data if type(data) is bytes else bytes(data)
