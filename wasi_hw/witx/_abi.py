"""Stage 4: lowering WITX functions to core WebAssembly signatures (preview1 ABI).

Each function becomes a `FunctionAbi`: an explicit plan per parameter and per result that
the generators consume, and the core signature it implies — the reference's
(``InterfaceFunc::wasm_signature`` of the ``witx`` crate 0.9.1):

- ints ≤ 32 bits, ``char8``, ``char``, ``usize``, handles, pointers, enums (any tag) and
  other payload-free variants (``bool``) → one ``i32``; u64/s64 → ``i64``; flags → their
  repr's core type (u64 → ``i64``); f32/f64 as themselves.
- ``string`` and ``(list T)`` → ``(ptr: i32, len: i32)``.
- records and variants with payloads are passed by reference: one ``i32`` address of the
  value in guest memory (``kind == "byref"``).
- A pointer parameter ``X`` immediately followed by ``X_len`` (a u32/usize such as ``$size``)
  is planned as one guest region (``kind == "region"``) — the wasi-hw pairing convention;
  its core form is unchanged (two i32).
- At most one result. A scalar (int, float, char, handle, pointer, flags) is returned as
  the core result itself (``returns == "value"``). ``(expected T? (error E?))`` (any variant
  whose cases are ``ok`` and ``err``) is returned as its tag's core type, the ``i32``
  errno: T and E must be typenames (a tuple T: each element), E an enum; T adds one
  trailing ``i32`` out-pointer (a tuple: one per element). Nothing else can be returned.
- ``(@witx noreturn)`` functions return nothing.
Pure; errors are `WitxError` located at the offending param/result.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._ast import (
    Builtin, Document, EnumType, FlagsType, Function, HandleType, ListType, Module, Param,
    PointerType, RecordType, StringType, TypeName, TypeRef, VariantType, underlying,
)
from ._errors import WitxError

__all__ = ["CoreParam", "ParamPlan", "OutPlan", "FunctionAbi", "lower_function",
           "lower_module", "lower_document", "core_type"]


@dataclass(frozen=True, slots=True)
class CoreParam:
    name: str
    type: str  # "i32" | "i64" | "f32" | "f64"


@dataclass(frozen=True, slots=True)
class ParamPlan:
    """How one WITX parameter (or a pointer/``_len`` pair) crosses the ABI.

    ``kind``: ``"value"`` (int, enum, flags, handle, float: one core value),
    ``"pointer"`` (a lone pointer: one i32 address), ``"region"`` (pointer + ``len_param``:
    ``len * sizeof(elem)`` bytes), ``"string"`` or ``"list"`` (ptr, len), ``"byref"``
    (a record or variant: the i32 address of the value).
    """

    kind: str
    param: Param
    core: tuple[CoreParam, ...]
    len_param: Param | None = None

    @property
    def name(self) -> str:
        return self.param.name

    @property
    def type(self) -> TypeRef:
        return self.param.type


@dataclass(frozen=True, slots=True)
class OutPlan:
    """One out-pointer parameter through which the callee stores a result value."""

    type: TypeRef
    core: CoreParam


@dataclass(frozen=True, slots=True)
class FunctionAbi:
    """``returns``: ``"nothing"`` (no result, or noreturn), ``"value"`` (the scalar
    ``value`` is the core result) or ``"expected"`` (the core result is the errno of type
    ``error``, 0 for success — ``error`` is None for ``(error)`` without a type — and
    ``ok``, if any, is stored through ``outs``)."""

    module: str
    function: Function
    params: tuple[ParamPlan, ...]
    outs: tuple[OutPlan, ...]
    error: TypeRef | None  # the errno enum of an `expected` result
    ok: TypeRef | None     # the expected's ok type (a tuple when several outs)
    noreturn: bool
    returns: str = "nothing"
    value: TypeRef | None = None  # the type returned directly (returns == "value")
    result_core: str | None = None

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def core_params(self) -> tuple[CoreParam, ...]:
        return tuple(c for p in self.params for c in p.core) + tuple(o.core for o in self.outs)

    @property
    def core_results(self) -> tuple[str, ...]:
        return (self.result_core,) if self.result_core is not None else ()

    def signature(self) -> str:
        """``(i32, i64) -> i32`` (``-> ()`` when nothing is returned)."""
        params = ", ".join(c.type for c in self.core_params)
        res = ", ".join(self.core_results)
        return f"({params}) -> {res or '()'}" if len(self.core_results) <= 1 else \
            f"({params}) -> ({res})"


def core_type(t: TypeRef) -> str | None:
    """The single core type of a scalar WITX parameter type, or None if it is not one.
    Enums (and other payload-free variants) are i32 whatever their tag, as in the
    reference; flags take their repr's type."""
    u = underlying(t)
    if isinstance(u, Builtin):
        return {"u64": "i64", "s64": "i64", "f32": "f32", "f64": "f64"}.get(u.name, "i32")
    if isinstance(u, FlagsType):
        return "i64" if u.repr == "u64" else "i32"
    if isinstance(u, EnumType) or (isinstance(u, VariantType) and u.is_enum):
        return "i32"
    if isinstance(u, (HandleType, PointerType)):
        return "i32"
    return None


def _is_len(p: Param, ptr: Param) -> bool:
    u = underlying(p.type)
    return p.name == f"{ptr.name}_len" and isinstance(u, Builtin) and u.name in ("u32", "usize")


def lower_function(module: str, fn: Function) -> FunctionAbi:
    plans: list[ParamPlan] = []
    params = fn.params
    taken = {p.name for p in params}
    used: set[str] = set()

    def core(name: str, type_: str, own: str | None = None) -> CoreParam:
        """A core parameter named uniquely in this signature: ``name_`` on a clash with an
        earlier core name or with another WITX parameter (``own`` is the one it lowers)."""
        own = name if own is None else own
        while name in used or (name in taken and name != own):
            name += "_"
        used.add(name)
        return CoreParam(name, type_)

    i = 0
    while i < len(params):
        p = params[i]
        u = underlying(p.type)
        if isinstance(u, PointerType):
            if i + 1 < len(params) and _is_len(params[i + 1], p):
                ln = params[i + 1]
                plans.append(ParamPlan("region", p, (core(p.name, "i32"),
                                                     core(ln.name, "i32")), ln))
                i += 2
                continue
            plans.append(ParamPlan("pointer", p, (core(p.name, "i32"),)))
        elif isinstance(u, (StringType, ListType)):
            kind = "string" if isinstance(u, StringType) else "list"
            plans.append(ParamPlan(kind, p, (core(f"{p.name}_ptr", "i32", p.name),
                                             core(f"{p.name}_len", "i32", p.name))))
        else:
            ct = core_type(p.type)
            if ct is None:  # a record or a variant with payloads: by reference
                plans.append(ParamPlan("byref", p, (core(p.name, "i32"),)))
            else:
                plans.append(ParamPlan("value", p, (core(p.name, ct),)))
        i += 1

    if fn.noreturn or not fn.results:
        return FunctionAbi(module, fn, tuple(plans), (), None, None, fn.noreturn)
    if len(fn.results) > 1:
        raise WitxError(f"`{fn.name}` has {len(fn.results)} results; the preview1 ABI "
                        "allows at most one", fn.results[1].loc)
    r = fn.results[0]
    v = underlying(r.type)
    if isinstance(v, (Builtin, HandleType, PointerType, FlagsType)):
        return FunctionAbi(module, fn, tuple(plans), (), None, None, False, "value", r.type,
                           core_type(r.type))
    if isinstance(v, EnumType) and [c.name for c in v.cases] == ["ok", "err"]:
        # payload-free cases `ok` and `err`: the reference reads it as `(expected (error))`
        return FunctionAbi(module, fn, tuple(plans), (), None, None, False, "expected", None,
                           "i32")
    if not (isinstance(v, VariantType) and v.is_expected):
        what = {EnumType: "an enum", VariantType: "a variant other than `expected`",
                RecordType: "a record", StringType: "a string",
                ListType: "a list"}.get(type(v), type(v).__name__)
        raise WitxError(f"result `${r.name}` of `{fn.name}` is {what}, which cannot be "
                        "returned: return a scalar or `(expected T? (error E))`", r.loc)
    ok, err = v.ok, v.err
    if ok is not None:
        okt = underlying(ok)
        members = [f.type for f in okt.fields] if isinstance(okt, RecordType) and \
            okt.is_tuple else [ok]
        for m in members:
            if not isinstance(m, TypeName):
                raise WitxError(f"result `${r.name}` of `{fn.name}`: only named types are "
                                "allowed in results; give the `expected`'s ok type a "
                                "typename", r.loc)
    if err is not None:
        if not isinstance(err, TypeName):
            raise WitxError(f"result `${r.name}` of `{fn.name}`: only named types are "
                            "allowed in results; give the error type a typename", r.loc)
        e = underlying(err)
        if not (isinstance(e, EnumType) or (isinstance(e, VariantType) and e.is_enum)):
            raise WitxError(f"result `${r.name}` of `{fn.name}` needs `(error E)` with E an "
                            "enum (the errno returned as the core result)", r.loc)
    outs: list[OutPlan] = []
    if ok is not None:
        okt = underlying(ok)
        if isinstance(okt, RecordType) and okt.is_tuple:
            outs = [OutPlan(f.type, core(f"ret{j}", "i32", "")) for j, f in enumerate(okt.fields)]
        else:
            outs = [OutPlan(ok, core("ret", "i32", ""))]
    return FunctionAbi(module, fn, tuple(plans), tuple(outs), err, ok, False, "expected",
                       None, "i64" if v.repr == "u64" else "i32")


def lower_module(module: Module) -> list[FunctionAbi]:
    return [lower_function(module.name, f) for f in module.functions]


def lower_document(doc: Document) -> list[FunctionAbi]:
    """Lower every function of every module of ``doc``."""
    return [a for m in doc.modules for a in lower_module(m)]
