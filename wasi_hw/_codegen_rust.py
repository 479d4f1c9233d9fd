"""Rust raw-binding generator: a WITX file → one ``sdk-rust/src/raw/<name>.rs``.

Output (``no_std``-clean; it names only ``core``):
- ``pub type`` aliases for scalar typenames and handles (``pub type Bus = u32;``), enums and
  flags as their integer repr with ``<TYPE>_<CASE>`` constants, ``(@witx const)`` values as
  ``<TYPE>_<NAME>`` constants;
- ``#[repr(C)]`` structs for records (pointers as ``*mut T`` / ``*const T``) and
  ``#[repr(C)]`` struct + union pairs for variants, each with compile-time assertions that
  Rust's size and alignment equal the WITX layout;
- one ``#[link(wasm_import_module = "<module>")] unsafe extern "C"`` block per module with
  every import at its exact lowered core signature (``i32``/``i64``), named as the export.
Typenames of ``use``d files live in their own file and are re-exported (``pub use``).
Pure: returns text.
"""

from __future__ import annotations

import os

from .witx._abi import lower_module
from .witx._ast import (
    Builtin, Document, EnumType, FlagsType, HandleType, ListType, PointerType, RecordType,
    StringType, TypeName, TypeRef, VariantType, underlying,
)
from .witx._errors import WitxError
from .witx._layout import layout
from .witx._names import camel, rust_const, rust_ident

__all__ = ["render_rust_file", "render_rust_mod", "rust_file_name"]

_RUST_BUILTIN = {"u8": "u8", "u16": "u16", "u32": "u32", "u64": "u64", "s8": "i8",
                 "s16": "i16", "s32": "i32", "s64": "i64", "f32": "f32", "f64": "f64",
                 "char8": "u8", "char": "u32", "usize": "usize"}


def rust_file_name(doc: Document, path: str) -> str:
    """``wasi_i2c.rs`` for the file defining module ``wasi_i2c``; else the file's stem."""
    mods = [m.name for m in doc.modules if m.loc.path == path]
    return f"{mods[0] if mods else os.path.splitext(os.path.basename(path))[0]}.rs"


def _doc(text: str, indent: str = "") -> list[str]:
    return [f"{indent}///{(' ' + line) if line else ''}" for line in text.splitlines()]


def _tref(t: TypeRef, *, where: str) -> str:
    if isinstance(t, TypeName):
        u = underlying(t)
        if isinstance(u, (StringType, ListType)):
            raise WitxError(f"{where}: `${t.name}` (a string or list) cannot be a record or "
                            "pointer element in the raw Rust bindings", t.loc)
        return camel(t.name)
    if isinstance(t, Builtin):
        return _RUST_BUILTIN[t.name]
    if isinstance(t, PointerType):
        return f"{'*const' if t.const else '*mut'} {_tref(t.elem, where=where)}"
    if isinstance(t, HandleType):
        return "u32"
    raise WitxError(f"{where}: an anonymous {type(t).__name__} must be given a typename to be "
                    "used here")


def _typename(tn: TypeName) -> list[str]:
    name, u = camel(tn.name), tn.type
    out = _doc(tn.docs)
    if isinstance(tn.type, TypeName) or isinstance(u, (Builtin, PointerType, HandleType)):
        return out + [f"pub type {name} = {_tref(tn.type, where=tn.name)};"]
    if isinstance(u, (EnumType, FlagsType)):
        out.append(f"pub type {name} = {u.repr};")
        cases = u.cases if isinstance(u, EnumType) else u.flags
        for i, c in enumerate(cases):
            out += _doc(c.docs)
            value = str(i) if isinstance(u, EnumType) else f"1 << {i}"
            out.append(f"pub const {rust_const(tn.name, c.name)}: {name} = {value};")
        return out
    if isinstance(u, RecordType):
        derive = "Copy, Clone, Debug" if _debuggable(u) else "Copy, Clone"
        out += ["#[repr(C)]", f"#[derive({derive})]", f"pub struct {name} {{"]
        for f in u.fields:
            out += _doc(f.docs, "    ")
            fname = rust_ident(f.name if not u.is_tuple else f"f{f.name}")
            out.append(f"    pub {fname}: {_tref(f.type, where=f'{tn.name}.{f.name}')},")
        return out + ["}"] + _asserts(name, tn)
    if isinstance(u, VariantType):
        if u.kind == "expected":
            return []  # only ever a function result: lowered to errno + out-pointers
        uname = f"{name}U"
        out += ["#[repr(C)]", "#[derive(Copy, Clone)]", f"pub struct {name} {{",
                f"    pub tag: {u.repr},", f"    pub u: {uname},", "}",
                "#[repr(C)]", "#[derive(Copy, Clone)]", f"pub union {uname} {{"]
        for c in u.cases:
            ty = "()" if c.type is None else _tref(c.type, where=f"{tn.name}.{c.name}")
            out.append(f"    pub {rust_ident(c.name)}: {ty},")
        return out + ["}"] + _asserts(name, tn)
    if isinstance(u, (StringType, ListType)):
        return [f"// `${tn.name}` is passed as (pointer, length); it has no Rust type here."]
    raise WitxError(f"cannot render typename `${tn.name}` in Rust", tn.loc)


def _debuggable(t: TypeRef) -> bool:
    """Whether ``#[derive(Debug)]`` works: unions (variants) implement no Debug."""
    u = underlying(t)
    if isinstance(u, RecordType):
        return all(_debuggable(f.type) for f in u.fields)
    return not isinstance(u, VariantType)


def _asserts(name: str, tn: TypeName) -> list[str]:
    lay = layout(tn)
    # The WITX layout is the wasm32 layout; on a 64-bit host (native `cargo test`) records
    # holding pointers are larger, so the checks apply to wasm32 only.
    cfg = '#[cfg(target_arch = "wasm32")]'
    return [cfg, f"const _: () = assert!(core::mem::size_of::<{name}>() == {lay.size});",
            cfg, f"const _: () = assert!(core::mem::align_of::<{name}>() == {lay.align});"]


def render_rust_file(doc: Document, path: str, display: str) -> str:
    """The raw-binding source for the WITX file ``path`` of ``doc`` (``display`` is the path
    named in the header)."""
    lines = [f"// GENERATED by wasi-hw gen from {display} — do not edit.",
             "#![allow(non_camel_case_types, dead_code, clashing_extern_declarations, clippy::all)]", ""]
    others = sorted({rust_file_name(doc, used)[:-3] for used in doc.uses.get(path, [])})
    lines += [f"pub use super::{o}::*;" for o in others]
    if others:
        lines.append("")
    for tn in doc.typenames.values():
        if tn.loc.path == path:
            rendered = _typename(tn)
            if rendered:
                lines += rendered + [""]
    for c in doc.constants:
        if c.loc.path == path:
            lines += _doc(c.docs) + [f"pub const {rust_const(c.type.name, c.name)}: "
                                     f"{camel(c.type.name)} = {c.value};", ""]
    for module in doc.modules:
        if module.loc.path != path:
            continue
        lines += _doc(module.docs)
        lines += [f'#[link(wasm_import_module = "{module.name}")]', 'unsafe extern "C" {']
        for abi in lower_module(module):
            fn = abi.function
            lines += _doc(fn.docs, "    ")
            params = ", ".join(f"{rust_ident(c.name)}: {c.type}" for c in abi.core_params)
            ret = " -> !" if abi.noreturn else \
                "".join(f" -> {r}" for r in abi.core_results)
            lines.append(f"    pub fn {rust_ident(fn.name)}({params}){ret};")
        lines += ["}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_rust_mod(names: list[str]) -> str:
    """``raw/mod.rs`` declaring the generated files ``names`` (stems)."""
    lines = ["// GENERATED by wasi-hw gen from witx/ — do not edit.",
             "//! Raw bindings: the WITX specs' types and imports at their core-wasm ABI.", ""]
    lines += [f"pub mod {n};" for n in sorted(names)]
    return "\n".join(lines) + "\n"
