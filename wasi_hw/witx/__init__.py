"""The WITX toolchain: a staged, pure pipeline from spec text to core-wasm signatures.

lex/read (`_sexpr`) → parse + resolve + validate (`_parser`: `load`, `parse`) → layout
(`_layout`: `layout`, `field_offsets`, `payload_offset`) → ABI lowering (`_abi`:
`lower_document`, `FunctionAbi`); `representable` (`_representation`) compares types'
values. The language, layouts and signatures are those of the reference implementation
(the Rust ``witx`` crate 0.9.1) except where docs/design.md records the crate's errors.
No wasmtime, no I/O besides reading the spec files.
Every problem is a `WitxError` located at ``file:line:col``. Name mapping to Python and
Rust lives in `_names`.
"""

from ._abi import CoreParam, FunctionAbi, OutPlan, ParamPlan, lower_document, lower_function, \
    lower_module
from ._ast import (
    Builtin, Case, Document, EnumType, Field, FlagsType, Function, HandleType, ListType, Module,
    Param, PointerType, RecordType, StringType, TypeName, VariantType, underlying,
)
from ._errors import Location, WitxError
from ._layout import Layout, field_offsets, layout, payload_offset
from ._parser import load, parse
from ._representation import representable

__all__ = [
    "load", "parse", "WitxError", "Location",
    "Document", "Module", "Function", "Param", "TypeName", "Builtin", "StringType", "ListType",
    "PointerType", "HandleType", "EnumType", "FlagsType", "RecordType", "Field", "VariantType",
    "Case", "underlying",
    "Layout", "layout", "field_offsets", "payload_offset",
    "FunctionAbi", "ParamPlan", "OutPlan", "CoreParam", "lower_document", "lower_module",
    "lower_function", "representable",
]
