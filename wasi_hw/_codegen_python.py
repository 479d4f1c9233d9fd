"""Python host-binding generator: one WITX module → ``wasi_hw/_bindings/_<module>.py``.

The generated module (pure Python, no wasmtime import) holds, per docs/design.md:
``MODULE``, ``ERRNO``, an ``IntEnum`` per enum, an ``IntFlag`` per flags, a frozen slotted
dataclass per record (lifted form: a pointer/``_len`` pair becomes one ``bytes`` or
`GuestRegion`; pointer-free records also get ``SIZE``, ``ALIGN``, ``pack()`` and
``unpack(data, offset=0)``), the ``Wasi<Module>`` Protocol, ``IMPORTS`` (core signatures)
and ``bind(host, mem, fail)`` returning one straight-line shim per import. A shim lifts
the core integers through the `GuestMemory` (every region checked, out-pointers checked
before the host runs), calls the host method bound once at ``bind`` time, lowers the
result through the out-pointers and returns 0; any exception goes to ``fail(exc, name)``
whose value it returns. A shim that touches guest memory pins the memory's base and size
for the call (``mem.pin()`` … ``mem.unpin()`` in ``finally``: one read of them per host
call, see `wasi_hw._memory`); the memory accessors are resolved once at ``bind`` time.
Struct formats are precompiled ``struct.Struct`` objects.
"""

from __future__ import annotations

from .witx._abi import FunctionAbi, ParamPlan, lower_module
from .witx._ast import (
    Builtin, Document, EnumType, FlagsType, HandleType, ListType, Module, PointerType,
    RecordType, StringType, TypeName, TypeRef, underlying,
)
from .witx._errors import WitxError
from .witx._layout import field_offsets, layout
from .witx._names import camel, py_ident, upper

__all__ = ["render_python_module", "render_python_init"]

_FMT = {"u8": "B", "s8": "b", "char8": "B", "u16": "H", "s16": "h", "u32": "I", "s32": "i",
        "char": "I", "usize": "I", "u64": "Q", "s64": "q", "f32": "f", "f64": "d"}
_REPR_FMT = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q"}
_INT_RANGE = {"u8": (0, 0xFF), "char8": (0, 0xFF), "u16": (0, 0xFFFF), "s8": (-128, 127),
              "s16": (-32768, 32767)}
_U32_MASKED = {"u32", "usize", "char"}


def _fmt(t: TypeRef) -> str | None:
    """The struct format of a scalar type stored in memory, or None."""
    u = underlying(t)
    if isinstance(u, Builtin):
        return _FMT[u.name]
    if isinstance(u, (EnumType, FlagsType)):
        return _REPR_FMT[u.repr]
    if isinstance(u, (HandleType, PointerType)):
        return "I"
    return None


def _is_len_field(f, ptr_name: str) -> bool:
    u = underlying(f.type)
    return f.name == f"{ptr_name}_len" and isinstance(u, Builtin) and u.name in ("u32", "usize")


def _named(t: TypeRef) -> TypeName | None:
    """The innermost typename of ``t`` that names a record, enum or flags (None if none)."""
    while isinstance(t, TypeName):
        if not isinstance(t.type, TypeName):
            return t if isinstance(t.type, (RecordType, EnumType, FlagsType)) else None
        t = t.type
    return None


class _Gen:
    def __init__(self, doc: Document, module: Module, display: str) -> None:
        self.doc, self.module, self.display = doc, module, display
        self.out: list[str] = []
        self.structs: dict[str, str] = {}  # format → constant name
        self.abis = lower_module(module)
        errors = {id(a.error): a.error for a in self.abis if a.error is not None}
        if len(errors) > 1:
            raise WitxError(f"module `${module.name}` uses several errno types; the bindings "
                            "need one", module.loc)
        self.errno = next(iter(errors.values()), None)
        cases = [c.name for c in underlying(self.errno).cases] if self.errno else []
        self.invalid = next((k for k in ("invalid_argument", "invalid_param", "inval")
                             if k in cases), "other")

    # ---- helpers ----------------------------------------------------------------
    def struct(self, fmt: str) -> str:
        name = self.structs.get(fmt)
        if name is None:
            name = f"_S{len(self.structs)}"
            self.structs[fmt] = name
        return name

    def lift_name(self, tn: TypeName) -> str:
        return f"_lift_{tn.name}"

    def annotation(self, t: TypeRef) -> str:
        named = _named(t)
        if named is not None:
            return camel(named.name)
        u = underlying(t)
        if isinstance(u, StringType):
            return "str"
        if isinstance(u, ListType):
            return "bytes" if _fmt(u.elem) == "B" and not _named(u.elem) else \
                f"list[{self.annotation(u.elem)}]"
        if isinstance(u, Builtin) and u.name in ("f32", "f64"):
            return "float"
        if isinstance(u, RecordType) and u.is_tuple:
            return f"tuple[{', '.join(self.annotation(f.type) for f in u.fields)}]"
        return "int"

    def scalar_lift(self, t: TypeRef, expr: str) -> str:
        """Expression validating an in-memory scalar value (enums and flags checked)."""
        named = _named(t)
        u = underlying(t)
        if named is not None and isinstance(u, (EnumType, FlagsType)):
            return f"{self.lift_name(named)}({expr})"
        if isinstance(u, (EnumType, FlagsType)):
            raise WitxError("an anonymous enum or flags must be given a typename to be bound "
                            "to Python")
        return expr

    def mem_lift(self, t: TypeRef, raw: str, off: str) -> str:
        """Expression lifting a value of type ``t`` stored at ``raw[off:]``."""
        named = _named(t)
        u = underlying(t)
        if isinstance(u, RecordType) and named is not None:
            return f"{self.lift_name(named)}(mem, {raw}, {off})"
        fmt = _fmt(t)
        if fmt is not None:
            return self.scalar_lift(t, f"{self.struct('<' + fmt)}.unpack_from({raw}, {off})[0]")
        if isinstance(u, (StringType, ListType)):
            pl = self.struct("<II")
            return self.seq_lift(t, f"*{pl}.unpack_from({raw}, {off})")
        raise WitxError(f"the Python bindings cannot lift {type(u).__name__} from memory")

    def seq_lift(self, t: TypeRef, args: str) -> str:
        """Expression lifting a string or list given ``ptr, len`` as ``args``."""
        u = underlying(t)
        if isinstance(u, StringType):
            return f"_utf8(mem.read({args}))"
        assert isinstance(u, ListType)
        return self.array_lift(u.elem, args, const=True)

    def array_lift(self, elem: TypeRef, args: str, const: bool) -> str:
        if _fmt(elem) == "B" and not _named(elem):
            return f"mem.read({args})"
        lay = layout(elem)
        named = _named(elem)
        if isinstance(underlying(elem), RecordType) and named is not None:
            return f"_read_array(mem, {args}, {lay.size}, {self.lift_name(named)})"
        fmt = _fmt(elem)
        if fmt is None:
            raise WitxError("the Python bindings can lift arrays of records and scalars only")
        s = self.struct("<" + fmt)
        return f"[{self.scalar_lift(elem, 'x')} for (x,) in " \
               f"{s}.iter_unpack(_read_bytes(mem, {args}, {lay.size}))]"

    def pointer_lift(self, ptr: PointerType, p: str, n: str | None) -> str:
        """A pointer (with an optional element count expression) as the host sees it."""
        elem = ptr.elem
        size = layout(elem).size
        if n is not None:
            if ptr.const:
                return self.array_lift(elem, f"{p}, {n}", const=True)
            count = n if size == 1 else f"({n} & 0xFFFFFFFF) * {size}"
            return f"mem.region({p}, {count})"
        if ptr.const:
            return f"{self.mem_lift(elem, f'mem.read({p}, {size})', '0')}"
        return f"mem.region({p}, {size})"

    # ---- types ------------------------------------------------------------------
    def emit(self, *lines: str) -> None:
        self.out.extend(lines)

    def docstring(self, text: str, indent: str) -> None:
        if text:
            body = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').splitlines()
            if len(body) == 1:
                self.emit(f'{indent}"""{body[0]}"""')
            else:
                self.emit(f'{indent}"""{body[0]}', *[f"{indent}{b}".rstrip() for b in body[1:]],
                          f'{indent}"""')

    def typename(self, tn: TypeName) -> list[str]:
        """Emit the Python form of a typename; return the public names it defines."""
        name = camel(tn.name)
        if isinstance(tn.type, TypeName):
            self.emit(f"{name} = {camel(tn.type.name)}" if _named(tn.type) else
                      f"{name} = {self.annotation(tn.type)}", "")
            return [name]
        u = tn.type
        if isinstance(u, (EnumType, FlagsType)):
            is_enum = isinstance(u, EnumType)
            cases = u.cases if is_enum else u.flags
            self.emit("", f"class {name}(enum.{'IntEnum' if is_enum else 'IntFlag'}):")
            self.docstring(tn.docs or f"`${tn.name}`", "    ")
            for i, c in enumerate(cases):
                self.emit(f"    {upper(c.name)} = {i if is_enum else 1 << i}")
                if c.docs:
                    self.docstring(c.docs, "    ")
            self.emit("", "")
            lift = self.lift_name(tn)
            if is_enum:
                self.emit(f"_{name.upper()}_MEMBERS = tuple({name})", "", "",
                          f"def {lift}(v: int) -> {name}:",
                          f"    if 0 <= v < {len(cases)}:",
                          f"        return _{name.upper()}_MEMBERS[v]",
                          f"    raise HwError({self.invalid!r}, f\"{tn.name} value {{v}} is not "
                          f"one of its {len(cases)} cases\")", "", "")
            else:
                allbits = (1 << len(cases)) - 1
                self.emit(f"def {lift}(v: int) -> {name}:",
                          f"    if v & ~{allbits:#x}:",
                          f"        raise HwError({self.invalid!r}, f\"{tn.name} value {{v:#x}} "
                          f"has unknown bits\")",
                          f"    return {name}(v)", "", "")
            return [name]
        if isinstance(u, RecordType) and not u.is_tuple:
            self.record(tn, u)
            return [name]
        if isinstance(u, (Builtin, HandleType, PointerType, StringType, ListType)):
            self.emit(f"{name} = {self.annotation(tn.type)}", "")
            return [name]
        return []  # variants / expected: lowered through errno and out-pointers only

    def record(self, tn: TypeName, r: RecordType) -> None:
        name = camel(tn.name)
        lay = layout(tn)
        offsets = field_offsets(tn)
        fmt, pos, k = "<", 0, 0
        value_index: list[int | None] = []
        nested = []
        for f, off in zip(r.fields, offsets):
            if off > pos:
                fmt += f"{off - pos}x"
            ff = _fmt(f.type)
            u = underlying(f.type)
            if ff is not None:
                fmt += ff
                value_index.append(k)
                k += 1
            elif isinstance(u, (StringType, ListType)):
                fmt += "II"
                value_index.append(k)
                k += 2
            elif isinstance(u, RecordType) and _named(f.type):
                fmt += f"{layout(f.type).size}x"
                value_index.append(None)
                nested.append(f)
            else:
                raise WitxError(f"field `${f.name}` of `${tn.name}`: the Python bindings "
                                "cannot store this type in a record", f.loc)
            pos = off + layout(f.type).size
        if lay.size > pos:
            fmt += f"{lay.size - pos}x"
        s = self.struct(fmt)
        # lifted fields: pointer + _len pairs collapse into one
        lifted: list[tuple[str, str, str]] = []  # (py name, annotation, expression)
        pure = True
        i = 0
        while i < len(r.fields):
            f, vi = r.fields[i], value_index[i]
            u = underlying(f.type)
            fname = py_ident(f.name)
            if isinstance(u, PointerType):
                pure = False
                if i + 1 < len(r.fields) and _is_len_field(r.fields[i + 1], f.name):
                    expr = self.pointer_lift(u, f"v[{vi}]", f"v[{vi + 1}]")
                    ann = self.pointer_ann(u)
                    lifted.append((fname, ann, expr))
                    i += 2
                    continue
                lifted.append((fname, "int", f"v[{vi}]"))
            elif isinstance(u, (StringType, ListType)):
                pure = False
                lifted.append((fname, self.annotation(f.type),
                               self.seq_lift(f.type, f"v[{vi}], v[{vi + 1}]")))
            elif vi is None:
                off = offsets[i]
                lifted.append((fname, self.annotation(f.type),
                               self.mem_lift(f.type, "raw", f"off + {off}")))
                pure = pure and self.pure_record(f.type)
            else:
                lifted.append((fname, self.annotation(f.type), self.scalar_lift(f.type,
                                                                                 f"v[{vi}]")))
            i += 1
        self.emit("", "@dataclasses.dataclass(frozen=True, slots=True)", f"class {name}:")
        desc = (tn.docs + "\n\n" if tn.docs else "") + \
            f"Guest layout: {lay.size} bytes, align {lay.align}; " + \
            ", ".join(f"{f.name} @{o}" for f, o in zip(r.fields, offsets)) + "."
        self.docstring(desc, "    ")
        for fname, ann, _ in lifted:
            self.emit(f"    {fname}: {ann}")
        if pure:
            self.emit("", f"    SIZE: typing.ClassVar[int] = {lay.size}",
                      f"    ALIGN: typing.ClassVar[int] = {lay.align}", "",
                      "    def pack(self) -> bytes:",
                      '        """The guest-memory bytes of this record."""')
            scalars = [f"self.{py_ident(f.name)}" for f, vi in zip(r.fields, value_index)
                       if vi is not None]
            if nested:
                self.emit(f"        b = bytearray({s}.pack({', '.join(scalars)}))")
                for f in nested:
                    o = offsets[r.fields.index(f)]
                    self.emit(f"        b[{o}:{o + layout(f.type).size}] = "
                              f"self.{py_ident(f.name)}.pack()")
                self.emit("        return bytes(b)")
            else:
                self.emit(f"        return {s}.pack({', '.join(scalars)})")
            self.emit("", "    @classmethod",
                      f"    def unpack(cls, data: bytes, offset: int = 0) -> \"{name}\":",
                      '        """Read one record from ``data`` at ``offset`` (enums checked)."""',
                      f"        return {self.lift_name(tn)}(None, data, offset)")
        self.emit("", "",
                  f"def {self.lift_name(tn)}(mem: typing.Any, raw: bytes, off: int) -> {name}:",
                  f"    v = {s}.unpack_from(raw, off)",
                  f"    return {name}({', '.join(e for _, _, e in lifted)})", "", "")

    def pure_record(self, t: TypeRef) -> bool:
        u = underlying(t)
        if isinstance(u, RecordType):
            return all(self.pure_record(f.type) for f in u.fields)
        return _fmt(t) is not None and not isinstance(u, PointerType)

    def pointer_ann(self, u: PointerType) -> str:
        if u.const:
            if _fmt(u.elem) == "B" and not _named(u.elem):
                return "bytes"
            return f"list[{self.annotation(u.elem)}]"
        return "GuestRegion"

    # ---- functions --------------------------------------------------------------
    def param_lift(self, plan: ParamPlan) -> tuple[list[str], str, str]:
        """(statements, host argument expression, annotation) of one parameter plan."""
        u = underlying(plan.type)
        c = [py_ident(x.name) for x in plan.core]
        if plan.kind == "value":
            ann = self.annotation(plan.type)
            if isinstance(u, (EnumType, FlagsType)):
                mask = "0xFFFFFFFFFFFFFFFF" if u.repr == "u64" else "0xFFFFFFFF"
                return [], self.scalar_lift(plan.type, f"{c[0]} & {mask}"), ann
            if isinstance(u, HandleType) or (isinstance(u, Builtin) and u.name in _U32_MASKED):
                return [f"{c[0]} &= 0xFFFFFFFF"], c[0], ann
            if isinstance(u, Builtin) and u.name == "u64":
                return [f"{c[0]} &= 0xFFFFFFFFFFFFFFFF"], c[0], ann
            if isinstance(u, Builtin) and u.name in _INT_RANGE:
                lo, hi = _INT_RANGE[u.name]
                masked = u.name in ("u8", "char8", "u16")
                stmts = [f"{c[0]} &= 0xFFFFFFFF"] if masked else []
                stmts += [f"if not {lo} <= {c[0]} <= {hi}:",
                          f"    raise HwError({self.invalid!r}, f\"{plan.name}: {{{c[0]}}} is "
                          f"out of range for {u.name}\")"]
                return stmts, c[0], ann
            return [], c[0], ann
        if plan.kind in ("string", "list"):
            return [], self.seq_lift(plan.type, f"{c[0]}, {c[1]}"), self.annotation(plan.type)
        if plan.kind == "byref":  # a record passed by reference: lifted from its bytes
            size = layout(plan.type).size
            return [], self.mem_lift(plan.type, f"mem.read({c[0]}, {size})", "0"), \
                self.annotation(plan.type)
        assert isinstance(u, PointerType)
        if plan.kind == "region":
            return [], self.pointer_lift(u, c[0], c[1]), self.pointer_ann(u)
        ann = self.annotation(u.elem) if u.const else "GuestRegion"
        return [], self.pointer_lift(u, c[0], None), ann

    def result_ann(self, abi: FunctionAbi) -> str:
        if abi.noreturn:
            return "typing.NoReturn"
        if abi.ok is None:
            return "None"
        return self.annotation(abi.ok)

    def out_store(self, t: TypeRef, ptr: str, value: str) -> str:
        named = _named(t)
        u = underlying(t)
        if isinstance(u, RecordType) and named is not None and self.pure_record(t):
            return f"mem.write({ptr}, {value}.pack())"
        fmt = _fmt(t)
        if fmt is None:
            raise WitxError(f"the Python bindings cannot return {type(u).__name__} through an "
                            "out-pointer")
        return f"mem.write_struct({ptr}, {self.struct('<' + fmt)}, {value})"

    def function_lines(self, abi: FunctionAbi) -> list[str]:
        if abi.returns == "value" or (abi.returns == "expected" and abi.error is None):
            raise WitxError(f"`{abi.name}`: the Python bindings need the result to be "
                            "`(expected T? (error E))` with an enum E, the errno that carries "
                            "host failures", abi.function.loc)
        core = [py_ident(c.name) for c in abi.core_params]
        fname = py_ident(abi.name)
        lines = [f"    def {fname}({', '.join(core)}):", "        try:"]
        body: list[str] = []
        for o in abi.outs:
            body.append(f"_check({py_ident(o.core.name)}, {layout(o.type).size})")
        args = []
        for plan in abi.params:
            stmts, expr, _ = self.param_lift(plan)
            body += stmts
            if expr == py_ident(plan.core[0].name) and plan.kind == "value":
                args.append(expr)
            else:
                var = f"a_{py_ident(plan.name)}"
                body.append(f"{var} = {expr}")
                args.append(var)
        call = f"h_{fname}({', '.join(args)})"
        if not abi.outs:
            body.append(call)
        elif len(abi.outs) == 1:
            body.append(f"_r = {call}")
            body.append(self.out_store(abi.outs[0].type, py_ident(abi.outs[0].core.name), "_r"))
        else:
            body.append(f"_r = {call}")
            for j, o in enumerate(abi.outs):
                body.append(self.out_store(o.type, py_ident(o.core.name), f"_r[{j}]"))
        if abi.returns == "expected":
            body.append("return 0")
        # memory accessors bound once in bind(); base/size pinned for the call's duration
        pinned = any("mem" in b or "_check(" in b for b in body)
        body = [b.replace("mem.read(", "_mread(").replace("mem.region(", "_mregion(")
                 .replace("mem.write_struct(", "_mwrite_struct(").replace("mem.write(", "_mwrite(")
                for b in body]
        if pinned:
            body.insert(0, "_pin()")
        lines += [f"            {b}" for b in body]
        lines += ["        except Exception as _exc:",
                  f"            return fail(_exc, {abi.name!r})"]
        if pinned:
            lines += ["        finally:", "            _unpin()"]
        return lines

    # ---- module -----------------------------------------------------------------
    def render(self) -> str:
        m = self.module
        public: list[str] = ["MODULE", "ERRNO"]
        self.emit(f"MODULE = {m.name!r}", "")
        for tn in self.doc.typenames.values():
            public += self.typename(tn)
        for c in self.doc.constants:  # (@witx const $type $name value)
            cname = f"{c.type.name}_{c.name}".upper()
            flags = isinstance(underlying(c.type), FlagsType)
            self.emit(f"{cname}: {camel(c.type.name)} = {camel(c.type.name)}({c.value})"
                      if flags else f"{cname}: int = {c.value}")
            self.docstring(c.docs, "")
            self.emit("")
            public.append(cname)
        errno = self.errno
        if errno is not None:
            cases = underlying(errno).cases
            items = ", ".join(f"{c.name!r}: {i}" for i, c in enumerate(cases))
            self.emit(f"ERRNO: dict[str, int] = {{{items}}}",
                      f'"""Case name → value of `${errno.name}`, the errno of every function."""',
                      "")
        else:
            self.emit("ERRNO: dict[str, int] = {}", "")
        proto = camel(m.name)
        public += [proto, "IMPORTS", "bind"]
        self.emit("", f"class {proto}(typing.Protocol):")
        self.docstring((m.docs + "\n\n" if m.docs else "") +
                 f"What a host implements for `{m.name}`: lifted arguments in, lifted result "
                 "out; failures raise `HwError(kind)`.", "    ")
        for abi in self.abis:
            params = ["self"]
            for plan in abi.params:
                params.append(f"{py_ident(plan.name)}: {self.param_lift(plan)[2]}")
            self.emit("", f"    def {py_ident(abi.name)}({', '.join(params)}) -> "
                          f"{self.result_ann(abi)}:")
            self.docstring(abi.function.docs or abi.name, "        ")
            self.emit("        ...")
        self.emit("", "")
        imports = []
        for abi in self.abis:
            ps = "".join(f"{c.type!r}, " for c in abi.core_params)
            rs = "".join(f"{r!r}, " for r in abi.core_results)
            imports.append(f"    {abi.name!r}: (({ps.rstrip(' ')}), ({rs.rstrip(' ')})),")
        self.emit("IMPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {", *imports,
                  "}", '"""Export name → (core param types, core result types)."""', "", "")
        self.emit("def bind(host: typing.Any, mem: GuestMemory,",
                  "         fail: typing.Callable[[BaseException, str], int]"
                  ") -> dict[str, typing.Callable[..., int]]:",
                  f'    """One raw callable per `{m.name}` import, over ``host`` (a `{proto}`)."""',
                  "    _check = mem.check",
                  "    _pin, _unpin = mem.pin, mem.unpin",
                  "    _mread, _mregion, _mwrite, _mwrite_struct = "
                  "mem.read, mem.region, mem.write, mem.write_struct")
        for abi in self.abis:
            self.emit(f"    h_{py_ident(abi.name)} = _method(host, {abi.name!r})")
        for abi in self.abis:
            self.emit("")
            self.emit(*self.function_lines(abi))
        self.emit("", "    return {")
        self.emit(*[f"        {abi.name!r}: {py_ident(abi.name)}," for abi in self.abis], "    }")

        body = self.out
        self.out = []
        head = [f"# GENERATED by wasi-hw gen from {self.display} — do not edit.",
                f'"""Host bindings of the `{m.name}` WITX module (generated).',
                "",
                "See `wasi_hw._codegen_python` for the contract: lifted types, the "
                f"`{proto}` host Protocol,",
                "``IMPORTS`` and ``bind(host, mem, fail)``.",
                '"""', "", "from __future__ import annotations", "",
                *(["import dataclasses"] if "@dataclasses.dataclass" in "\n".join(body) else []),
                "import enum", "import struct", "import typing", "",
                "from .._errors import HwError", "from .._memory import GuestMemory, GuestRegion",
                "from .._shimlib import (host_method, read_array as _read_array,",
                "                        read_bytes as _read_bytes, utf8)",
                "", f"__all__ = {sorted(set(public))!r}", "",
                *[f"{n} = struct.Struct({f!r})" for f, n in self.structs.items()], "", "",
                f"def _utf8(raw: bytes) -> str:",
                f"    return utf8(raw, {self.invalid!r})", "", "",
                "def _method(host: typing.Any, name: str) -> typing.Callable[..., typing.Any]:",
                f"    return host_method(host, {m.name!r}, name)", "", ""]
        text = "\n".join(head + body)
        while "\n\n\n\n" in text:
            text = text.replace("\n\n\n\n", "\n\n\n")
        return text.rstrip("\n") + "\n"


def render_python_module(doc: Document, module: Module, display: str) -> str:
    """The source of ``wasi_hw/_bindings/_<module>.py`` for ``module`` of ``doc``."""
    return _Gen(doc, module, display).render()


def render_python_init(modules: list[str]) -> str:
    """``wasi_hw/_bindings/__init__.py``: the generated modules, by import module name."""
    mods = sorted(modules)
    lines = ["# GENERATED by wasi-hw gen from witx/ — do not edit.",
             '"""Generated host bindings, one module per WITX module.',
             "",
             "``MODULES`` maps each wasm import module name to its binding module (with",
             "``MODULE``, ``ERRNO``, ``IMPORTS``, ``bind`` and the host Protocol).",
             '"""', "", "from __future__ import annotations", ""]
    lines += [f"from . import _{m}" for m in mods]
    lines += [""]
    lines += [f"from ._{m} import {camel(m)}" for m in mods]
    lines += ["", f"__all__ = {sorted(['MODULES'] + [camel(m) for m in mods])!r}", "",
              "MODULES = {"]
    lines += [f"    _{m}.MODULE: _{m}," for m in mods]
    lines += ["}"]
    return "\n".join(lines) + "\n"
