"""Representability: can every value of one WITX type be represented by another?

`representable(t, by)` answers ``"eq"`` (the same values), ``"superset"`` (``by`` holds
every value of ``t`` and more) or ``"noteq"``, with the reference's rules (the ``witx``
crate's ``Representable``), which compare values, not names or memory layout:

- unsigned integers widen (u8 ⊂ u16 ⊂ u32 ⊂ u64, ``char8`` counting as u8 and ``usize``
  as u32 when widened); other builtins only equal themselves;
- enums, ``bool``, variants, unions and ``expected`` are tagged cases: the tag must
  widen, each case of ``t`` must exist in ``by`` at the same position with a payload
  representable by ``by``'s (dropping a payload, or ``by`` having more cases, makes a
  superset);
- records, tuples and flags (a flags type is a record of ``bool`` fields) must have the
  same field names in order, each field exactly representable;
- string is a list of ``char``; lists and (const) pointers compare their elements;
  handles are all alike.
"""

from __future__ import annotations

from ._ast import (
    INT_REPRS, Builtin, Case, EnumType, Field, FlagsType, HandleType, ListType, PointerType,
    RecordType, StringType, Type, TypeRef, VariantType, underlying,
)

__all__ = ["representable"]

_UNSIGNED = {"u8": 1, "char8": 1, "u16": 2, "u32": 4, "usize": 4, "u64": 8}
_BOOL = VariantType("u32", [Case("false", "", None), Case("true", "", None)],  # type: ignore[arg-type]
                    "bool")
_CHAR = Builtin("char")


def _widen(a: int, b: int) -> str:
    return "eq" if a == b else "superset" if a < b else "noteq"


def _shape(t: TypeRef) -> Type:
    """``t`` in the reference's vocabulary: enums as variants, flags as records of bools,
    string as a list of char."""
    u = underlying(t)
    if isinstance(u, EnumType):
        return VariantType(u.repr, [Case(c.name, "", c.loc) for c in u.cases])
    if isinstance(u, FlagsType):
        return RecordType([Field(f.name, _BOOL, "", f.loc) for f in u.flags])
    if isinstance(u, StringType):
        return ListType(_CHAR)
    return u


def representable(t: TypeRef, by: TypeRef) -> str:
    """``"eq"``, ``"superset"`` or ``"noteq"``: how ``by`` represents the values of ``t``."""
    a, b = _shape(t), _shape(by)
    if isinstance(a, Builtin) and isinstance(b, Builtin):
        if a.name == b.name:
            return "eq"
        if a.name in _UNSIGNED and b.name in _UNSIGNED and \
                _UNSIGNED[a.name] < _UNSIGNED[b.name]:
            return "superset"
        return "noteq"
    if isinstance(a, HandleType) and isinstance(b, HandleType):
        return "eq"
    if isinstance(a, ListType) and isinstance(b, ListType):
        return representable(a.elem, b.elem)
    if isinstance(a, PointerType) and isinstance(b, PointerType) and a.const == b.const:
        return representable(a.elem, b.elem)
    if isinstance(a, RecordType) and isinstance(b, RecordType):
        if len(a.fields) != len(b.fields):
            return "noteq"
        for fa, fb in zip(a.fields, b.fields, strict=True):
            if fa.name != fb.name or representable(fa.type, fb.type) != "eq":
                return "noteq"
        return "eq"
    if isinstance(a, VariantType) and isinstance(b, VariantType):
        return _variant(a, b)
    return "noteq"


def _variant(a: VariantType, b: VariantType) -> str:
    result = _widen(INT_REPRS[a.repr], INT_REPRS[b.repr])
    if result == "noteq":
        return result
    superset = result == "superset"
    where = {c.name: (i, c) for i, c in enumerate(b.cases)}
    for i, c in enumerate(a.cases):
        if c.name not in where or where[c.name][0] != i:
            return "noteq"
        other = where[c.name][1].type
        if c.type is not None and other is not None:
            r = representable(c.type, other)
            if r == "noteq":
                return r
            superset = superset or r == "superset"
        elif c.type is not None:
            return "noteq"  # a payload `by` cannot hold
        elif other is not None:
            superset = True
    return "superset" if superset or len(a.cases) < len(b.cases) else "eq"
