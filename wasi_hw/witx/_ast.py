"""The resolved WITX model: types, typenames, functions, modules, documents.

Produced by `wasi_hw.witx._parser`; consumed by layout, lowering and the generators.
A type reference is either a `TypeName` (a named `(typename $x ...)`, kept so generators
can use the name) or an anonymous `Type`; `underlying()` strips names. Every node keeps
its `Location` and its ``;;;`` doc comment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import Location

__all__ = [
    "Builtin", "StringType", "ListType", "PointerType", "HandleType", "EnumType",
    "FlagsType", "RecordType", "Field", "VariantType", "Case", "TypeName", "Type", "TypeRef",
    "Param", "Function", "Module", "Constant", "Document", "underlying", "INT_REPRS",
]

# Integer representations allowed for enum tags and flags, with their byte widths.
INT_REPRS = {"u8": 1, "u16": 2, "u32": 4, "u64": 8}


class Type:
    """Base of anonymous types."""

    __slots__ = ()


@dataclass(eq=False, slots=True)
class Builtin(Type):
    """``u8 u16 u32 u64 s8 s16 s32 s64 f32 f64 char8 char usize``."""

    name: str


@dataclass(eq=False, slots=True)
class StringType(Type):
    """``string``: UTF-8 text passed as (pointer, length)."""


@dataclass(eq=False, slots=True)
class ListType(Type):
    """``(list T)``: ``len`` elements of T passed as (pointer, length)."""

    elem: "TypeRef"


@dataclass(eq=False, slots=True)
class PointerType(Type):
    """``(@witx pointer T)`` or ``(@witx const_pointer T)``: a 32-bit guest address."""

    elem: "TypeRef"
    const: bool


@dataclass(eq=False, slots=True)
class HandleType(Type):
    """``(handle)``: an opaque 32-bit resource handle."""


@dataclass(eq=False, slots=True)
class Case:
    """An enum case, a flag, or a variant case (``type`` None: no payload)."""

    name: str
    docs: str
    loc: Location
    type: "TypeRef | None" = None


@dataclass(eq=False, slots=True)
class EnumType(Type):
    """``(enum (@witx tag uN)? $a $b ...)``: case i has value i; the tag defaults to u32."""

    repr: str
    cases: list[Case]


@dataclass(eq=False, slots=True)
class FlagsType(Type):
    """``(flags (@witx repr uN)? $a $b ...)``: flag i is bit i; the repr defaults to u32."""

    repr: str
    flags: list[Case]


@dataclass(eq=False, slots=True)
class Field:
    name: str
    type: "TypeRef"
    docs: str
    loc: Location


@dataclass(eq=False, slots=True)
class RecordType(Type):
    """``(record (field $n T) ...)``; ``(tuple T ...)`` is a record with fields 0, 1, ..."""

    fields: list[Field]
    is_tuple: bool = False


@dataclass(eq=False, slots=True)
class VariantType(Type):
    """``variant``/``union``/``expected``/``bool``: a tag of ``repr`` then the case's payload.

    ``kind`` is the source form. For ``expected``, case 0 is ``ok`` and case 1 ``err``;
    ``bool`` is the variant ``(case $false) (case $true)``. Without ``(@witx tag)`` the tag
    is u32. With an enum tag, ``tag`` is its typename and the cases are in its order.
    """

    repr: str
    cases: list[Case]
    kind: str = "variant"
    tag: "TypeName | None" = None

    @property
    def ok(self) -> "TypeRef | None":
        return self.cases[0].type

    @property
    def err(self) -> "TypeRef | None":
        return self.cases[1].type

    @property
    def is_enum(self) -> bool:
        """Whether no case has a payload (the value is its tag alone)."""
        return all(c.type is None for c in self.cases)

    @property
    def is_expected(self) -> bool:
        """Whether the cases are ``ok`` and ``err``: ``(expected ...)`` or its long form."""
        return [c.name for c in self.cases] == ["ok", "err"]


@dataclass(eq=False, slots=True)
class TypeName:
    """``(typename $name T)``; ``type`` is filled in by resolution."""

    name: str
    type: "TypeRef"
    docs: str
    loc: Location

    def __repr__(self) -> str:
        return f"TypeName(${self.name})"


TypeRef = Type | TypeName


def underlying(t: TypeRef) -> Type:
    """The anonymous type behind ``t``, through any chain of typenames."""
    while isinstance(t, TypeName):
        t = t.type
    return t


@dataclass(eq=False, slots=True)
class Param:
    name: str
    type: TypeRef
    docs: str
    loc: Location


@dataclass(eq=False, slots=True)
class Function:
    """``(@interface func (export "name") (param ...)* (result ...)* (@witx noreturn)?)``."""

    name: str
    params: list[Param]
    results: list[Param]
    noreturn: bool
    docs: str
    loc: Location


@dataclass(eq=False, slots=True)
class Module:
    name: str
    functions: list[Function]
    imports_memory: bool
    docs: str
    loc: Location

    def function(self, name: str) -> Function:
        for f in self.functions:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(eq=False, slots=True)
class Constant:
    """``(@witx const $type $name VALUE)``: a named integer value of ``type`` (an integer,
    enum or flags typename)."""

    type: TypeName
    name: str
    value: int
    docs: str
    loc: Location


@dataclass(eq=False, slots=True)
class Document:
    """A loaded WITX document: its typenames (in definition order, including those of
    ``use``d files), modules and constants. ``files`` lists every source read, in the order their
    reading started (root first); ``uses`` maps each of them to the files it ``use``s
    directly."""

    typenames: dict[str, TypeName] = field(default_factory=dict)
    modules: list[Module] = field(default_factory=list)
    constants: list[Constant] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    uses: dict[str, list[str]] = field(default_factory=dict)

    def module(self, name: str) -> Module:
        for m in self.modules:
            if m.name == name:
                return m
        raise KeyError(name)
