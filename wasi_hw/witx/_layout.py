"""Stage 3: memory layout of WITX types, as WASI preview1 (legacy witx) lays them out.

Sizes/alignments: u8 s8 char8 1; u16 s16 2; u32 s32 f32 char usize handle pointer 4;
u64 s64 f64 8; string and list (pointer, length) 8/4; enum and flags their integer repr.
A record (and a tuple) places each field at the next offset aligned to the field's
alignment; its alignment is the largest field alignment and its size is rounded up to it.
A variant (union, expected, bool) is its tag, then the payload at the tag size rounded up to
the largest payload alignment; the size is the largest case, rounded up to the alignment.
Equal to the reference (the ``witx`` crate 0.9.1) except where it is wrong: it sizes each
variant case with the payload at that case's own alignment, smaller than the common payload
offset needs; an empty union has its tag's layout, an empty tuple size 0 and alignment 1.
Pure and cached per type object.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._ast import (
    INT_REPRS, Builtin, EnumType, FlagsType, HandleType, ListType, PointerType, RecordType,
    StringType, TypeRef, VariantType, underlying,
)

__all__ = ["Layout", "layout", "field_offsets", "payload_offset", "align_to"]

_BUILTIN = {"u8": 1, "s8": 1, "char8": 1, "u16": 2, "s16": 2, "u32": 4, "s32": 4, "f32": 4,
            "char": 4, "usize": 4, "u64": 8, "s64": 8, "f64": 8}


@dataclass(frozen=True, slots=True)
class Layout:
    size: int
    align: int


def align_to(offset: int, align: int) -> int:
    return (offset + align - 1) // align * align


_cache: dict[int, tuple[object, Layout]] = {}


def layout(t: TypeRef) -> Layout:
    """Size and alignment of ``t`` in guest memory."""
    u = underlying(t)
    hit = _cache.get(id(u))
    if hit is not None and hit[0] is u:
        return hit[1]
    result = _compute(u)
    _cache[id(u)] = (u, result)
    return result


def _compute(u: object) -> Layout:
    if isinstance(u, Builtin):
        n = _BUILTIN[u.name]
        return Layout(n, n)
    if isinstance(u, (EnumType, FlagsType)):
        n = INT_REPRS[u.repr]
        return Layout(n, n)
    if isinstance(u, (HandleType, PointerType)):
        return Layout(4, 4)
    if isinstance(u, (StringType, ListType)):
        return Layout(8, 4)
    if isinstance(u, RecordType):
        offset, align = 0, 1
        for f in u.fields:
            fl = layout(f.type)
            offset = align_to(offset, fl.align) + fl.size
            align = max(align, fl.align)
        return Layout(align_to(offset, align), align)
    if isinstance(u, VariantType):
        tag = INT_REPRS[u.repr]
        off = payload_offset(u)
        size, align = tag, tag
        for c in u.cases:
            if c.type is not None:
                cl = layout(c.type)
                size = max(size, off + cl.size)
                align = max(align, cl.align)
        return Layout(align_to(size, align), align)
    raise TypeError(f"no layout for {u!r}")


def field_offsets(record: TypeRef) -> list[int]:
    """Byte offset of each field of a record (or tuple)."""
    r = underlying(record)
    assert isinstance(r, RecordType)
    out, offset = [], 0
    for f in r.fields:
        fl = layout(f.type)
        offset = align_to(offset, fl.align)
        out.append(offset)
        offset += fl.size
    return out


def payload_offset(variant: TypeRef) -> int:
    """Byte offset of a variant's payload: the tag size rounded up to the payload alignment."""
    v = underlying(variant)
    assert isinstance(v, VariantType)
    align = max([layout(c.type).align for c in v.cases if c.type is not None], default=1)
    return align_to(INT_REPRS[v.repr], align)
