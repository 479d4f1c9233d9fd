"""Stage 2: S-expressions → a resolved, validated `Document`.

Accepts the WITX language of the reference implementation (the Rust ``witx`` crate 0.9.1,
which WASI preview1 is written in): ``use``, ``typename``, ``module`` with ``(import "name"
(memory))`` and ``(@interface func (export "...") (param ...)* (result ...)* (@witx
noreturn)?)``; types ``u8``…``u64``, ``s8``…``s64``, ``f32``, ``f64``, ``char``,
``string``, ``bool``, ``(@witx usize|char8|pointer T|const_pointer T)``, ``(list T)``,
``(tuple T*)``, ``(expected T? (error E?))``, ``(variant (@witx tag T)? (case $n T?)*)``,
``(union (@witx tag T)? T*)``, ``(enum (@witx tag uN)? $a+)``, ``(flags (@witx repr uN)?
$a*)``, ``(record (field $n T)+)``, ``(handle)``; and ``(@witx const $type $name VALUE)``.

The rules are the reference's: one namespace for typenames and modules, each name defined
before it is used (so nothing refers to itself); a ``use``d file is read once, at its first
``use``; enum tags, flags reprs and variant tags default to u32; records, unions, enums,
flags and handles only at the top of a ``typename`` (anonymous structured types elsewhere
are rejected); variant cases with an enum tag may come in any order and take the tag's.
Stricter than the reference, on purpose: cases and flags must fit their tag/repr, variant
case names are unique, a ``noreturn`` function declares no result, a constant's type is an
integer, enum or flags typename and its value fits it.

`load(path)` (or a list of paths, read in order into one document) is the only function
that reads files (through ``reader``, replaceable for tests); `parse(text, path)` parses a
single source with the same checks.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

from ._ast import (
    INT_REPRS, Builtin, Case, Constant, Document, EnumType, Field, FlagsType, Function,
    HandleType,
    ListType, Module, Param, PointerType, RecordType, StringType, TypeName, TypeRef,
    VariantType, underlying,
)
from ._errors import Location, WitxError
from ._sexpr import SAtom, SExpr, SList, read_sexprs

__all__ = ["load", "parse", "BOOL_CASES"]

_BUILTINS = {"u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "f32", "f64", "char"}
# structured types that must be named: only allowed directly under `(typename $x ...)`
_NAMED_ONLY = {"record", "union", "enum", "flags", "handle"}
BOOL_CASES = ("false", "true")
# value bits of a constant's type (non-negative values only, as the reference reads them)
_CONST_BITS = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "s8": 7, "s16": 15, "s32": 31,
               "s64": 63, "char8": 8, "usize": 32}


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def load(path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
         reader: Callable[[str], str] = _read_file) -> Document:
    """Load the WITX file at ``path`` (or each of several paths, in order, into one
    document) and every file they ``use`` (relative to the using file's directory); return
    the resolved document. Raises `WitxError` for any problem, including an unreadable
    file."""
    paths = [os.fspath(path)] if isinstance(path, (str, os.PathLike)) else \
        [os.fspath(p) for p in path]
    b = _Builder(reader)
    for p in paths:
        try:
            text = reader(p)
        except OSError as err:
            raise WitxError(f"cannot read {p}: {err.strerror or err}") from None
        except UnicodeDecodeError as err:
            raise WitxError(f"{p}: not UTF-8 text ({err.reason} at byte {err.start})") from None
        b.file(text, p)
    return b.doc


def parse(text: str, path: str = "<input>",
          reader: Callable[[str], str] = _read_file) -> Document:
    """Parse and resolve the WITX source ``text`` (``use`` paths relative to ``path``)."""
    b = _Builder(reader)
    b.file(text, path)
    return b.doc


def _err(msg: str, node: SExpr | Location) -> WitxError:
    return WitxError(msg, node if isinstance(node, Location) else node.loc)


def _describe(node: SExpr) -> str:
    return node.describe()


def _is(node: SExpr, kind: str) -> bool:
    return isinstance(node, SAtom) and node.kind == kind


def _is_list(node: SExpr, head: str) -> bool:
    return isinstance(node, SList) and node.head() == head


class _Builder:
    def __init__(self, reader: Callable[[str], str]) -> None:
        self.reader = reader
        self.doc = Document()
        self.names: dict[str, tuple[str, Location]] = {}  # name → (kind, where defined)
        self.defining: str | None = None  # the typename whose type is being read
        self.files_seen: set[str] = set()

    # ---- files and top-level forms -------------------------------------------------
    def file(self, text: str, path: str) -> None:
        key = os.path.normpath(os.path.abspath(path)) if not path.startswith("<") else path
        if key in self.files_seen:
            return  # read once, at its first `use`
        self.files_seen.add(key)
        self.doc.files.append(path)
        self.doc.uses[path] = []
        for form in read_sexprs(text, path):
            if not isinstance(form, SList):
                raise _err(f"expected a top-level form `(use ...)`, `(typename ...)` or "
                           f"`(module ...)`, found {_describe(form)}", form)
            head = form.head()
            if head == "use":
                self._use(form, path)
            elif head == "typename":
                self._typename(form)
            elif head == "module":
                self.doc.modules.append(self._module(form))
            elif head == "@witx":
                self.doc.constants.append(self._const(form))
            else:
                raise _err(f"unknown top-level form {_describe(form)}: expected `use`, "
                           "`typename`, `module` or `(@witx const ...)`", form)

    def _use(self, form: SList, path: str) -> None:
        if len(form.items) != 2 or not _is(form.items[1], "string"):
            raise _err('`use` takes one file name: `(use "file.witx")`', form)
        target = form.items[1]
        rel = str(target.value)
        base = os.path.dirname(path) if not path.startswith("<") else "."
        full = os.path.join(base, rel)
        self.doc.uses[path].append(full)
        key = os.path.normpath(os.path.abspath(full))
        if key in self.files_seen:
            return
        try:
            text = self.reader(full)
        except OSError as err:
            raise _err(f"cannot read used file {rel!r} ({full}): {err.strerror or err}",
                       target) from None
        except UnicodeDecodeError:
            raise _err(f"used file {rel!r} is not UTF-8 text", target) from None
        self.file(text, full)

    def _introduce(self, name: str, kind: str, at: SExpr) -> None:
        """Claim ``name`` in the one namespace of typenames and modules."""
        if name in self.names:
            first_kind, first = self.names[name]
            what = kind if kind == first_kind else f"name (already a {first_kind})"
            raise _err(f"duplicate {what} `${name}` (first defined at {first})", at)
        self.names[name] = (kind, at.loc)

    def _typename(self, form: SList) -> None:
        items = form.items
        if len(items) < 2 or not _is(items[1], "id"):
            raise _err("`typename` needs a name: `(typename $name TYPE)`", form)
        if len(items) == 2:
            raise _err(f"`typename ${items[1].value}` is missing its type", form)
        if len(items) > 3:
            raise _err("`typename` takes a name and one type; found extra "
                       f"{_describe(items[3])}", items[3])
        name = str(items[1].value)
        self._introduce(name, "typename", items[1])
        self.defining = name
        tn = TypeName(name, self._type(items[2], named=True), form.docs, form.loc)
        self.defining = None
        self.doc.typenames[name] = tn

    def _const(self, form: SList) -> Constant:
        it = form.items
        if not (len(it) == 5 and _is(it[1], "keyword") and it[1].value == "const"
                and _is(it[2], "id") and _is(it[3], "id") and _is(it[4], "int")):
            raise _err("a constant is `(@witx const $type $name VALUE)`", form)
        tn = self._ref(it[2])  # type: ignore[arg-type]
        u = underlying(tn)
        if isinstance(u, (EnumType, FlagsType)):
            bits = 8 * INT_REPRS[u.repr]
        elif isinstance(u, Builtin) and u.name in _CONST_BITS:
            bits = _CONST_BITS[u.name]
        else:
            raise _err(f"a constant's type must be an integer, enum or flags typename; "
                       f"`${tn.name}` is not", it[2])
        name, value = str(it[3].value), int(it[4].value)
        if not 0 <= value < 1 << bits:  # the reference reads an unsigned 64-bit value
            raise _err(f"constant `${name}` = {value} does not fit `${tn.name}` "
                       f"(0..{(1 << bits) - 1})", it[4])
        for c in self.doc.constants:
            if c.type is tn and c.name == name:
                raise _err(f"duplicate constant `${name}` of `${tn.name}` (first at {c.loc})",
                           it[3])
        return Constant(tn, name, value, form.docs, it[3].loc)

    # ---- types ------------------------------------------------------------------
    def _ref(self, atom: SAtom) -> TypeName:
        name = str(atom.value)
        if name == self.defining:
            raise _err(f"type `${name}` refers to itself", atom)
        tn = self.doc.typenames.get(name)
        if tn is not None:
            return tn
        if name in self.names:
            raise _err(f"`${name}` is a {self.names[name][0]}, not a type", atom)
        raise _err(f"unknown type `${name}` (a typename must be defined before it is used)",
                   atom)

    def _type(self, node: SExpr, named: bool = False) -> TypeRef:
        """The type ``node`` denotes; ``named``: it is the whole of a typename's definition
        (the only place records, unions, enums, flags and handles may be written)."""
        if isinstance(node, SAtom):
            if node.kind == "id":
                return self._ref(node)
            if node.kind == "keyword":
                if node.value in _BUILTINS:
                    return Builtin(str(node.value))
                if node.value == "string":
                    return StringType()
                if node.value == "bool":
                    return VariantType("u32", [Case(n, "", node.loc) for n in BOOL_CASES],
                                       "bool")
                if node.value in ("char8", "usize"):
                    raise _err(f"expected a type, found `{node.value}`: it is written "
                               f"`(@witx {node.value})`", node)
            raise _err(f"expected a type, found {_describe(node)}", node)
        head = node.head()
        args = node.items[1:]
        if head in _NAMED_ONLY and not named:
            raise _err(f"an anonymous `({head} ...)` is not allowed here: anonymous "
                       f"structured types (record, union, enum, flags, handle) must be "
                       f"given a typename and used by name", node)
        if head == "@witx":
            return self._witx_type(node)
        if head == "enum":
            return self._enum(node, args)
        if head == "flags":
            return self._flags(node, args)
        if head == "record":
            return self._record(node, args)
        if head == "tuple":
            return RecordType([Field(str(i), self._type(a), "", a.loc)
                               for i, a in enumerate(args)], is_tuple=True)
        if head == "variant":
            return self._variant(node, args)
        if head == "union":
            return self._union(node, args)
        if head == "expected":
            return self._expected(node, args)
        if head == "handle":
            if args:
                raise _err("`(handle)` takes no arguments", args[0])
            return HandleType()
        if head == "list":
            if len(args) != 1:
                raise _err("`list` expects 1 argument: `(list TYPE)`",
                           args[1] if len(args) > 1 else node)
            return ListType(self._type(args[0]))
        what = f"`({head} ...)`" if head else "a list"
        raise _err(f"expected a type, found {what}", node)

    def _witx_type(self, node: SList) -> TypeRef:
        if len(node.items) < 2 or not _is(node.items[1], "keyword"):
            raise _err("expected `(@witx pointer T)`, `(@witx const_pointer T)`, "
                       "`(@witx usize)` or `(@witx char8)`", node)
        what = node.items[1].value
        if what in ("pointer", "const_pointer"):
            if len(node.items) != 3:
                raise _err(f"`(@witx {what} TYPE)` takes exactly one type", node)
            return PointerType(self._type(node.items[2]), const=what == "const_pointer")
        if what in ("usize", "char8"):
            if len(node.items) != 2:
                raise _err(f"`(@witx {what})` takes no arguments", node.items[2])
            return Builtin(str(what))
        raise _err(f"unknown `@witx` type annotation `{what}`", node.items[1])

    def _annotation(self, args: list[SExpr], key: str) -> tuple[SList | None, list[SExpr]]:
        """Split a leading ``(@witx <key> X)`` off ``args``."""
        if args and _is_list(args[0], "@witx"):
            ann = args[0]
            assert isinstance(ann, SList)
            if len(ann.items) >= 2 and _is(ann.items[1], "keyword") and ann.items[1].value == key:
                if len(ann.items) != 3:
                    raise _err(f"`(@witx {key} ...)` takes exactly one argument", ann)
                return ann, args[1:]
            got = ann.items[1].value if len(ann.items) > 1 else ""
            raise _err(f"unexpected annotation `(@witx {got} ...)`: expected `(@witx {key} ...)`",
                       ann)
        return None, args

    def _int_repr(self, ann: SList | None, what: str) -> str:
        if ann is None:
            return "u32"
        rep = ann.items[2]
        if not _is(rep, "keyword") or rep.value not in INT_REPRS:
            raise _err(f"{what} representation must be one of u8, u16, u32, u64; "
                       f"found {_describe(rep)}", rep)
        return str(rep.value)

    def _names(self, args: list[SExpr], what: str) -> list[Case]:
        cases: list[Case] = []
        seen: dict[str, Location] = {}
        for a in args:
            if not _is(a, "id"):
                raise _err(f"expected a {what} name `$name`, found {_describe(a)}", a)
            name = str(a.value)
            if name in seen:
                raise _err(f"duplicate {what} `${name}` (first at {seen[name]})", a)
            seen[name] = a.loc
            cases.append(Case(name, a.docs, a.loc))
        return cases

    def _enum(self, node: SList, args: list[SExpr]) -> EnumType:
        ann, args = self._annotation(args, "tag")
        rep = self._int_repr(ann, "tag")
        cases = self._names(args, "enum case")
        if not cases:
            raise _err("an enum needs at least one case", node)
        if len(cases) > 1 << (INT_REPRS[rep] * 8):
            raise _err(f"{len(cases)} enum cases do not fit the tag type {rep}", ann or node)
        return EnumType(rep, cases)

    def _flags(self, node: SList, args: list[SExpr]) -> FlagsType:
        ann, args = self._annotation(args, "repr")
        rep = self._int_repr(ann, "flags")
        flags = self._names(args, "flag")
        if len(flags) > INT_REPRS[rep] * 8:
            raise _err(f"{len(flags)} flags do not fit the representation {rep} "
                       f"({INT_REPRS[rep] * 8} bits)", ann or node)
        return FlagsType(rep, flags)

    def _record(self, node: SList, args: list[SExpr]) -> RecordType:
        fields: list[Field] = []
        seen: dict[str, Location] = {}
        for a in args:
            if not _is_list(a, "field"):
                raise _err(f"expected `(field $name TYPE)` in a record, found {_describe(a)}", a)
            assert isinstance(a, SList)
            if len(a.items) != 3 or not _is(a.items[1], "id"):
                raise _err("a field is `(field $name TYPE)`", a)
            name = str(a.items[1].value)
            if name in seen:
                raise _err(f"duplicate field `${name}` (first at {seen[name]})", a.items[1])
            seen[name] = a.items[1].loc
            fields.append(Field(name, self._type(a.items[2]), a.docs, a.loc))
        if not fields:
            raise _err("a record needs at least one field", node)
        return RecordType(fields)

    def _tag(self, ann: SList) -> tuple[str, TypeName | None, list[Case] | None]:
        """A variant/union tag: an unsigned integer type, or an enum (a variant without
        payloads) whose cases name the variant's."""
        t = ann.items[2]
        tref = self._type(t)
        u = underlying(tref)
        if isinstance(u, Builtin) and u.name in ("u8", "char8", "u16", "u32", "usize", "u64"):
            return {"char8": "u8", "usize": "u32"}.get(u.name, u.name), None, None
        if isinstance(u, EnumType):
            return u.repr, tref if isinstance(tref, TypeName) else None, u.cases
        if isinstance(u, VariantType) and u.is_enum:
            return u.repr, tref if isinstance(tref, TypeName) else None, u.cases
        what = {StringType: "a string", ListType: "a list", RecordType: "a record",
                FlagsType: "flags", VariantType: "a variant with payloads",
                HandleType: "a handle", PointerType: "a pointer", Builtin: "a signed or "
                "float type"}.get(type(u), type(u).__name__)
        name = f"`${tref.name}`" if isinstance(tref, TypeName) else _describe(t)
        raise _err(f"a variant tag must be an enum or u8/u16/u32/u64; {name} is {what}", t)

    def _variant(self, node: SList, args: list[SExpr]) -> VariantType:
        ann, args = self._annotation(args, "tag")
        tag = self._tag(ann) if ann is not None else ("u32", None, None)
        cases: list[Case] = []
        seen: dict[str, Location] = {}
        for a in args:
            if not _is_list(a, "case"):
                raise _err(f"expected `(case $name TYPE?)` in a variant, found {_describe(a)}", a)
            assert isinstance(a, SList)
            if len(a.items) not in (2, 3) or not _is(a.items[1], "id"):
                raise _err("a variant case is `(case $name)` or `(case $name TYPE)`", a)
            name = str(a.items[1].value)
            if name in seen:
                raise _err(f"duplicate variant case `${name}` (first at {seen[name]})",
                           a.items[1])
            seen[name] = a.items[1].loc
            payload = self._type(a.items[2]) if len(a.items) == 3 else None
            cases.append(Case(name, a.docs, a.items[1].loc, payload))
        return self._tagged(node, ann, tag, cases, "variant")

    def _tagged(self, node: SList, ann: SList | None,
                tag: tuple[str, TypeName | None, list[Case] | None], cases: list[Case],
                kind: str) -> VariantType:
        rep, tag_name, names = tag
        if names is None:
            if len(cases) > 1 << (INT_REPRS[rep] * 8):
                raise _err(f"{len(cases)} cases do not fit the tag type {rep}", ann or node)
            return VariantType(rep, cases, kind)
        shown = f"`${tag_name.name}`" if tag_name else "its tag"
        if len(names) != len(cases):
            raise _err(f"{kind} has {len(cases)} cases but its tag {shown} has "
                       f"{len(names)}", node)
        if kind == "union":
            cases = [Case(n.name, c.docs, c.loc, c.type)
                     for c, n in zip(cases, names, strict=True)]
        else:  # cases may be written in any order; they take the tag's
            order = {n.name: i for i, n in enumerate(names)}
            for c in cases:
                if c.name not in order:
                    raise _err(f"variant case `${c.name}` is not a case of its tag {shown} "
                               f"({', '.join('$' + n.name for n in names)})", c.loc)
            cases = sorted(cases, key=lambda c: order[c.name])
        return VariantType(rep, cases, kind, tag_name)

    def _union(self, node: SList, args: list[SExpr]) -> VariantType:
        ann, args = self._annotation(args, "tag")
        tag = self._tag(ann) if ann is not None else ("u32", None, None)
        cases = [Case(str(i), a.docs, a.loc, self._type(a)) for i, a in enumerate(args)]
        return self._tagged(node, ann, tag, cases, "union")

    def _expected(self, node: SList, args: list[SExpr]) -> VariantType:
        ok: TypeRef | None = None
        rest = list(args)
        if rest and not _is_list(rest[0], "error"):
            ok = self._type(rest.pop(0))
        if not rest:
            raise _err("`expected` needs its error part: `(expected T? (error E?))`", node)
        e = rest.pop(0)
        if not _is_list(e, "error"):
            raise _err(f"expected `(error TYPE?)`, found {_describe(e)}", e)
        assert isinstance(e, SList)
        if len(e.items) > 2:
            raise _err("`(error TYPE?)` takes at most one type", e.items[2])
        err = self._type(e.items[1]) if len(e.items) == 2 else None
        if rest:
            raise _err(f"unexpected {_describe(rest[0])} after `(error ...)` in `expected`",
                       rest[0])
        return VariantType("u32", [Case("ok", "", node.loc, ok), Case("err", "", e.loc, err)],
                           "expected")

    # ---- modules --------------------------------------------------------------
    def _module(self, form: SList) -> Module:
        items = form.items
        if len(items) < 2 or not _is(items[1], "id"):
            raise _err("a module needs a name: `(module $name ...)`", form)
        name = str(items[1].value)
        self._introduce(name, "module", items[1])
        funcs: list[Function] = []
        seen: dict[str, Location] = {}  # imports and functions: one namespace per module
        memory = False
        for item in items[2:]:
            if _is_list(item, "import"):
                assert isinstance(item, SList)
                imp = self._memory_import(item)
                if imp.value in seen:
                    raise _err(f'duplicate import or function name "{imp.value}" in module '
                               f"`${name}` (first at {seen[str(imp.value)]})", imp)
                seen[str(imp.value)] = imp.loc
                memory = True
            elif _is_list(item, "@interface"):
                assert isinstance(item, SList)
                fn = self._function(item)
                if fn.name in seen:
                    raise _err(f"duplicate function `{fn.name}` in module `${name}` "
                               f"(first at {seen[fn.name]})", item)
                seen[fn.name] = item.loc
                funcs.append(fn)
            else:
                raise _err("expected `(import \"memory\" (memory))` or `(@interface func ...)` "
                           f"in a module, found {_describe(item)}", item)
        return Module(name, funcs, memory, form.docs, form.loc)

    def _memory_import(self, item: SList) -> SAtom:
        ok = (len(item.items) == 3 and _is(item.items[1], "string")
              and _is_list(item.items[2], "memory")
              and len(item.items[2].items) == 1)  # type: ignore[union-attr]
        if not ok:
            raise _err('a module imports only its memory: `(import "memory" (memory))`', item)
        name = item.items[1]
        assert isinstance(name, SAtom)
        return name

    def _function(self, item: SList) -> Function:
        it = item.items
        if len(it) < 2 or not (_is(it[1], "keyword") and it[1].value == "func"):
            raise _err("expected `(@interface func (export \"name\") ...)`", item)
        export = it[2] if len(it) > 2 else None
        if not (isinstance(export, SList) and export.head() == "export"
                and len(export.items) == 2 and _is(export.items[1], "string")):
            raise _err('a function needs its export name: `(@interface func (export "name") ...)`',
                       export if export is not None else item)
        name = str(export.items[1].value)  # type: ignore[union-attr]
        if not name:
            raise _err("a function's export name must not be empty", export.items[1])
        params: list[Param] = []
        results: list[Param] = []
        seen: dict[str, Location] = {}
        noreturn = None
        for x in it[3:]:
            head = x.head() if isinstance(x, SList) else None
            if head in ("param", "result"):
                assert isinstance(x, SList)
                if len(x.items) != 3 or not _is(x.items[1], "id"):
                    raise _err(f"a {head} is `({head} $name TYPE)`", x)
                pname = str(x.items[1].value)
                if pname in seen:
                    raise _err(f"duplicate parameter or result `${pname}` in `{name}`",
                               x.items[1])
                seen[pname] = x.loc
                p = Param(pname, self._type(x.items[2]), x.docs, x.loc)
                (params if head == "param" else results).append(p)
            elif isinstance(x, SList) and head == "@witx" and len(x.items) == 2 \
                    and _is(x.items[1], "keyword") and x.items[1].value == "noreturn":
                noreturn = x
            else:
                raise _err(f"expected `(param ...)`, `(result ...)` or `(@witx noreturn)` in "
                           f"function `{name}`, found {_describe(x)}", x)
        if noreturn is not None and results:
            raise _err(f"`{name}` is `noreturn` but declares a result", noreturn)
        return Function(name, params, results, noreturn is not None, item.docs, item.loc)
