"""Stage 2: S-expressions → a resolved, validated `Document`.

Accepts the WITX language as WASI snapshot preview1 uses it: ``use``, ``typename``,
``module`` with ``(import "memory" (memory))`` and ``(@interface func (export "..."))``,
``param``/``result``, ``enum``/``flags``/``record``/``variant``/``union``/``expected``/
``tuple``/``handle``/``list``/``string``/``char8``, ``(@witx tag|repr|pointer|
const_pointer|usize|char8|noreturn)``. Names are resolved across ``use``d files (one
namespace of typenames, forward references allowed, self-reference rejected).

`load(path)` is the only function that reads files (through ``reader``, replaceable for
tests); `parse(text, path)` parses a single source with the same checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._ast import (
    INT_REPRS,
    Builtin,
    Case,
    Document,
    EnumType,
    Field,
    FlagsType,
    Function,
    HandleType,
    ListType,
    Module,
    Param,
    PointerType,
    RecordType,
    StringType,
    TypeName,
    TypeRef,
    VariantType,
    underlying,
)
from ._errors import Location, WitxError
from ._sexpr import SAtom, SExpr, SList, read_sexprs

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = ["load", "parse"]

_BUILTINS = {"u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "f32", "f64", "char8", "char"}


def _read_file(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def load(path: str | os.PathLike[str], reader: Callable[[str], str] = _read_file) -> Document:
    """Load the WITX file at ``path`` and every file it ``use``s (relative to its own
    directory); return the resolved document. Raises `WitxError` for any problem,
    including an unreadable file."""
    path = os.fspath(path)
    try:
        text = reader(path)
    except OSError as err:
        raise WitxError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise WitxError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return _Builder(reader).build(text, path)


def parse(text: str, path: str = "<input>",
          reader: Callable[[str], str] = _read_file) -> Document:
    """Parse and resolve the WITX source ``text`` (``use`` paths relative to ``path``)."""
    return _Builder(reader).build(text, path)


def _err(msg: str, node: SExpr | Location) -> WitxError:
    return WitxError(msg, node if isinstance(node, Location) else node.loc)


def _describe(node: SExpr) -> str:
    return node.describe()


class _Builder:
    def __init__(self, reader: Callable[[str], str]) -> None:
        self.reader = reader
        self.doc = Document()
        self.pending: dict[str, tuple[SList, TypeName]] = {}
        self.resolving: set[str] = set()
        self.files_seen: set[str] = set()
        self.module_forms: list[SList] = []

    # ---- files and top-level forms -------------------------------------------------
    def build(self, text: str, path: str) -> Document:
        self._file(text, path, [])
        for name in list(self.pending):
            self._resolve_typename(name)
        for form in self.module_forms:
            self.doc.modules.append(self._module(form))
        return self.doc

    def _file(self, text: str, path: str, stack: list[str]) -> None:
        key = os.path.normpath(os.path.abspath(path)) if not path.startswith("<") else path
        if key in stack:
            raise WitxError(f"{path}: `use` cycle: {' -> '.join(stack + [key])}")
        if key in self.files_seen:
            return
        self.files_seen.add(key)
        self.doc.files.append(path)
        self.doc.uses[path] = []
        for form in read_sexprs(text, path):
            if not isinstance(form, SList):
                raise _err(f"expected a top-level form `(use ...)`, `(typename ...)` or "
                           f"`(module ...)`, found {_describe(form)}", form)
            head = form.head()
            if head == "use":
                self._use(form, path, stack + [key])
            elif head == "typename":
                self._declare_typename(form)
            elif head == "module":
                self.module_forms.append(form)
            else:
                raise _err(f"unknown top-level form {_describe(form)}: expected `use`, "
                           "`typename` or `module`", form)

    def _use(self, form: SList, path: str, stack: list[str]) -> None:
        if len(form.items) != 2 or not _is(form.items[1], "string"):
            raise _err('`use` takes one file name: `(use "file.witx")`', form)
        target = form.items[1]
        rel = str(target.value)
        base = os.path.dirname(path) if not path.startswith("<") else "."
        full = os.path.join(base, rel)
        self.doc.uses[path].append(full)
        try:
            text = self.reader(full)
        except OSError as err:
            raise _err(f"cannot read used file {rel!r} ({full}): {err.strerror or err}",
                       target) from None
        except UnicodeDecodeError:
            raise _err(f"used file {rel!r} is not UTF-8 text", target) from None
        self._file(text, full, stack)

    def _declare_typename(self, form: SList) -> None:
        items = form.items
        if len(items) < 2 or not _is(items[1], "id"):
            raise _err("`typename` needs a name: `(typename $name TYPE)`", form)
        if len(items) == 2:
            raise _err(f"`typename ${items[1].value}` is missing its type", form)
        if len(items) > 3:
            raise _err("`typename` takes a name and one type; found extra "
                       f"{_describe(items[3])}", items[3])
        name = str(items[1].value)
        if name in self.pending:
            first = self.pending[name][1].loc
            raise _err(f"duplicate typename `${name}` (first defined at {first})", items[1])
        tn = TypeName(name, None, form.docs, form.loc)  # type: ignore[arg-type]
        self.pending[name] = (form, tn)
        self.doc.typenames[name] = tn

    def _resolve_typename(self, name: str) -> TypeName:
        form, tn = self.pending[name]
        if tn.type is not None:
            return tn
        if name in self.resolving:
            raise _err(f"typename `${name}` is defined in terms of itself", form)
        self.resolving.add(name)
        tn.type = self._type(form.items[2])
        self.resolving.discard(name)
        return tn

    # ---- types ------------------------------------------------------------------
    def _ref(self, atom: SAtom) -> TypeName:
        name = str(atom.value)
        if name not in self.pending:
            raise _err(f"unknown type `${name}`", atom)
        if name in self.resolving:
            raise _err(f"type `${name}` refers to itself", atom)
        return self._resolve_typename(name)

    def _type(self, node: SExpr) -> TypeRef:
        if isinstance(node, SAtom):
            if node.kind == "id":
                return self._ref(node)
            if node.kind == "keyword":
                if node.value in _BUILTINS:
                    return Builtin(str(node.value))
                if node.value == "string":
                    return StringType()
            raise _err(f"expected a type, found {_describe(node)}", node)
        head = node.head()
        args = node.items[1:]
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
            self._arity(node, 1, "(list TYPE)")
            return ListType(self._type(args[0]))
        if head == "string":
            self._arity(node, 0, "(string)")
            return StringType()
        if head in _BUILTINS:
            self._arity(node, 0, f"({head})")
            return Builtin(head)
        what = f"`({head} ...)`" if head else "a list"
        raise _err(f"expected a type, found {what}", node)

    def _arity(self, node: SList, n: int, shape: str) -> None:
        if len(node.items) - 1 != n:
            where = node.items[n + 1] if len(node.items) - 1 > n else node
            raise _err(f"`{node.head()}` expects {n} argument{'s' if n != 1 else ''}: "
                       f"`{shape}`", where)

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
        if args and isinstance(args[0], SList) and args[0].head() == "@witx":
            ann = args[0]
            if len(ann.items) >= 2 and _is(ann.items[1], "keyword") and ann.items[1].value == key:
                if len(ann.items) != 3:
                    raise _err(f"`(@witx {key} ...)` takes exactly one argument", ann)
                return ann, args[1:]
            got = ann.items[1].value if len(ann.items) > 1 and _is(ann.items[1], "keyword") else ""
            raise _err(f"unexpected annotation `(@witx {got} ...)`: expected `(@witx {key} ...)`",
                       ann)
        return None, args

    def _int_repr(self, ann: SList | None, count: int, what: str, node: SList,
                  min_bits_per: bool) -> str:
        if ann is None:
            for r, width in INT_REPRS.items():
                if (count <= width * 8) if min_bits_per else (count <= 1 << (width * 8)):
                    return r
            raise _err(f"too many {what}", node)
        rep = ann.items[2]
        if not _is(rep, "keyword") or rep.value not in INT_REPRS:
            raise _err(f"{what.split()[-1]} representation must be one of u8, u16, u32, u64; "
                       f"found {_describe(rep)}", rep)
        return str(rep.value)

    def _names(self, args: list[SExpr], what: str, node: SList) -> list[Case]:
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
        cases = self._names(args, "enum case", node)
        if not cases:
            raise _err("an enum needs at least one case", node)
        rep = self._int_repr(ann, len(cases), "enum cases", node, False)
        if len(cases) > 1 << (INT_REPRS[rep] * 8):
            raise _err(f"{len(cases)} enum cases do not fit the tag type {rep}", ann or node)
        return EnumType(rep, cases)

    def _flags(self, node: SList, args: list[SExpr]) -> FlagsType:
        ann, args = self._annotation(args, "repr")
        flags = self._names(args, "flag", node)
        rep = self._int_repr(ann, len(flags), "flags representation", node, True)
        if len(flags) > INT_REPRS[rep] * 8:
            raise _err(f"{len(flags)} flags do not fit the representation {rep} "
                       f"({INT_REPRS[rep] * 8} bits)", ann or node)
        return FlagsType(rep, flags)

    def _record(self, node: SList, args: list[SExpr]) -> RecordType:
        fields: list[Field] = []
        seen: dict[str, Location] = {}
        for a in args:
            if not (isinstance(a, SList) and a.head() == "field"):
                raise _err(f"expected `(field $name TYPE)` in a record, found {_describe(a)}", a)
            if len(a.items) != 3 or not _is(a.items[1], "id"):
                raise _err("a field is `(field $name TYPE)`", a)
            name = str(a.items[1].value)
            if name in seen:
                raise _err(f"duplicate field `${name}` (first at {seen[name]})", a.items[1])
            seen[name] = a.items[1].loc
            fields.append(Field(name, self._type(a.items[2]), a.docs, a.loc))
        return RecordType(fields)

    def _tag_enum(self, ann: SList) -> tuple[str, TypeName | None, list[Case] | None]:
        """A variant/union tag: an integer repr, or an enum typename giving case names."""
        t = ann.items[2]
        if _is(t, "keyword") and t.value in INT_REPRS:
            return str(t.value), None, None
        if _is(t, "id"):
            tn = self._ref(t)
            e = underlying(tn)
            if isinstance(e, EnumType):
                return e.repr, tn, e.cases
            raise _err(f"a variant tag must be an enum or u8/u16/u32/u64; `${tn.name}` is not "
                       "an enum", t)
        raise _err(f"a variant tag must be an enum or u8/u16/u32/u64, found {_describe(t)}", t)

    def _variant(self, node: SList, args: list[SExpr]) -> VariantType:
        ann, args = self._annotation(args, "tag")
        cases: list[Case] = []
        seen: dict[str, Location] = {}
        for a in args:
            if not (isinstance(a, SList) and a.head() == "case"):
                raise _err(f"expected `(case $name TYPE?)` in a variant, found {_describe(a)}", a)
            if len(a.items) not in (2, 3) or not _is(a.items[1], "id"):
                raise _err("a variant case is `(case $name)` or `(case $name TYPE)`", a)
            name = str(a.items[1].value)
            if name in seen:
                raise _err(f"duplicate variant case `${name}` (first at {seen[name]})",
                           a.items[1])
            seen[name] = a.items[1].loc
            payload = self._type(a.items[2]) if len(a.items) == 3 else None
            cases.append(Case(name, a.docs, a.loc, payload))
        if not cases:
            raise _err("a variant needs at least one case", node)
        return self._tagged(node, ann, cases, "variant")

    def _tagged(self, node: SList, ann: SList | None, cases: list[Case], kind: str) -> VariantType:
        if ann is None:
            rep = next(r for r, w in INT_REPRS.items() if len(cases) <= 1 << (w * 8))
            return VariantType(rep, cases, kind)
        rep, tag, names = self._tag_enum(ann)
        if names is None:
            if len(cases) > 1 << (INT_REPRS[rep] * 8):
                raise _err(f"{len(cases)} cases do not fit the tag type {rep}", ann)
            return VariantType(rep, cases, kind)
        assert tag is not None  # names come from a tag enum
        if len(names) != len(cases):
            raise _err(f"{kind} has {len(cases)} cases but its tag `${tag.name}` has "
                       f"{len(names)}", node)
        if kind == "variant":
            for c, n in zip(cases, names, strict=True):
                if c.name != n.name:
                    raise _err(f"variant case `${c.name}` does not match tag case "
                               f"`${n.name}` of `${tag.name}`", c.loc)
        else:
            cases = [Case(n.name, c.docs, c.loc, c.type) for c, n in zip(cases, names, strict=True)]
        return VariantType(rep, cases, kind, tag)

    def _union(self, node: SList, args: list[SExpr]) -> VariantType:
        ann, args = self._annotation(args, "tag")
        if not args:
            raise _err("a union needs at least one case", node)
        cases = [Case(str(i), a.docs, a.loc, self._type(a)) for i, a in enumerate(args)]
        return self._tagged(node, ann, cases, "union")

    def _expected(self, node: SList, args: list[SExpr]) -> VariantType:
        ok: TypeRef | None = None
        err: TypeRef | None = None
        rest = list(args)
        if rest and not (isinstance(rest[0], SList) and rest[0].head() == "error"):
            ok = self._type(rest.pop(0))
        if rest:
            e = rest.pop(0)
            if not (isinstance(e, SList) and e.head() == "error"):
                raise _err(f"expected `(error TYPE)`, found {_describe(e)}", e)
            if len(e.items) != 2:
                raise _err("`(error TYPE)` takes exactly one type", e)
            err = self._type(e.items[1])
        if rest:
            raise _err(f"unexpected {_describe(rest[0])} after `(error ...)` in `expected`",
                       rest[0])
        return VariantType("u32", [Case("ok", "", node.loc, ok), Case("err", "", node.loc, err)],
                           "expected")

    # ---- modules --------------------------------------------------------------
    def _module(self, form: SList) -> Module:
        items = form.items
        if len(items) < 2 or not _is(items[1], "id"):
            raise _err("a module needs a name: `(module $name ...)`", form)
        name = str(items[1].value)
        if any(m.name == name for m in self.doc.modules):
            raise _err(f"duplicate module `${name}`", items[1])
        funcs: list[Function] = []
        seen: dict[str, Location] = {}
        memory = False
        for item in items[2:]:
            if isinstance(item, SList) and item.head() == "import":
                if memory:
                    raise _err("duplicate `(import \"memory\" (memory))`", item)
                self._memory_import(item)
                memory = True
            elif isinstance(item, SList) and item.head() == "@interface":
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

    def _memory_import(self, item: SList) -> None:
        ok = (len(item.items) == 3 and _is(item.items[1], "string")
              and isinstance(item.items[2], SList) and item.items[2].head() == "memory"
              and len(item.items[2].items) == 1)
        if not ok or not isinstance(item.items[1], SAtom):
            raise _err('the only import a module may declare is `(import "memory" (memory))`',
                       item)
        if item.items[1].value != "memory":
            raise _err(f'unknown import "{item.items[1].value}": only "memory" is supported',
                       item.items[1])

    def _function(self, item: SList) -> Function:
        it = item.items
        if len(it) < 2 or not (_is(it[1], "keyword") and it[1].value == "func"):
            raise _err("expected `(@interface func (export \"name\") ...)`", item)
        if len(it) < 3 or not (isinstance(it[2], SList) and it[2].head() == "export"
                               and len(it[2].items) == 2 and _is(it[2].items[1], "string")):
            raise _err('a function needs its export name: `(@interface func (export "name") ...)`',
                       it[2] if len(it) > 2 else item)
        name = str(it[2].items[1].value)
        if not name:
            raise _err("a function's export name must not be empty", it[2].items[1])
        params: list[Param] = []
        results: list[Param] = []
        seen: dict[str, Location] = {}
        noreturn = False
        for x in it[3:]:
            head = x.head() if isinstance(x, SList) else None
            if isinstance(x, SList) and head in ("param", "result"):
                if noreturn:
                    raise _err("`(@witx noreturn)` must come last", x)
                if len(x.items) != 3 or not _is(x.items[1], "id"):
                    raise _err(f"a {head} is `({head} $name TYPE)`", x)
                pname = str(x.items[1].value)
                if pname in seen:
                    raise _err(f"duplicate parameter or result `${pname}` in `{name}`",
                               x.items[1])
                if head == "param" and results:
                    raise _err(f"param `${pname}` after a result: params come first", x)
                seen[pname] = x.loc
                p = Param(pname, self._type(x.items[2]), x.docs, x.loc)
                (params if head == "param" else results).append(p)
            elif isinstance(x, SList) and head == "@witx" and len(x.items) == 2 \
                    and _is(x.items[1], "keyword") \
                    and x.items[1].value == "noreturn":
                if results:
                    raise _err(f"`{name}` is `noreturn` but declares a result", x)
                noreturn = True
            else:
                raise _err(f"expected `(param ...)`, `(result ...)` or `(@witx noreturn)` in "
                           f"function `{name}`, found {_describe(x)}", x)
        return Function(name, params, results, noreturn, item.docs, item.loc)


def _is(node: SExpr, kind: str) -> TypeIs[SAtom]:
    return isinstance(node, SAtom) and node.kind == kind
