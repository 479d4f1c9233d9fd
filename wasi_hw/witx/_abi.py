"""Stage 4: lowering WITX functions to core WebAssembly signatures (preview1 ABI).

Each function becomes a `FunctionAbi`: an explicit plan per parameter and per result that
the generators consume, and the core signature it implies.

- ints ≤ 32 bits, ``char8``, ``char``, ``usize``, enums/flags with a repr ≤ u32, handles and
  pointers → one ``i32``; u64/s64 and u64-repr enums/flags → ``i64``; f32/f64 as themselves.
- ``string`` and ``(list T)`` → ``(ptr: i32, len: i32)``.
- A pointer parameter ``X`` immediately followed by ``X_len`` (a u32/usize such as ``$size``)
  is planned as one guest region (``kind == "region"``) — the wasi-hw pairing convention;
  its core form is unchanged (two i32).
- The single result must be ``(expected T? (error E))`` with E an enum: it is returned as
  the ``i32`` errno. T adds one trailing ``i32`` out-pointer (a tuple: one per element).
- ``(@witx noreturn)`` functions return nothing.
Records and variants cannot be passed by value (pass ``(@witx const_pointer $t)``).
Pure; errors are `WitxError` located at the offending param/result.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._ast import (
    Builtin,
    Document,
    EnumType,
    FlagsType,
    Function,
    HandleType,
    ListType,
    Module,
    Param,
    PointerType,
    RecordType,
    StringType,
    TypeRef,
    VariantType,
    underlying,
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
    ``len * sizeof(elem)`` bytes), ``"string"`` or ``"list"`` (ptr, len).
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
    module: str
    function: Function
    params: tuple[ParamPlan, ...]
    outs: tuple[OutPlan, ...]
    error: TypeRef | None  # the errno enum, or None when the function returns nothing
    ok: TypeRef | None     # the expected's ok type (a tuple when several outs)
    noreturn: bool

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def core_params(self) -> tuple[CoreParam, ...]:
        return tuple(c for p in self.params for c in p.core) + tuple(o.core for o in self.outs)

    @property
    def core_results(self) -> tuple[str, ...]:
        return ("i32",) if self.error is not None else ()

    def signature(self) -> str:
        """``(i32, i64) -> i32`` (``-> ()`` when nothing is returned)."""
        params = ", ".join(c.type for c in self.core_params)
        res = ", ".join(self.core_results)
        return f"({params}) -> {res or '()'}" if len(self.core_results) <= 1 else \
            f"({params}) -> ({res})"


def core_type(t: TypeRef) -> str | None:
    """The single core type of a scalar WITX type, or None if it is not a scalar."""
    u = underlying(t)
    if isinstance(u, Builtin):
        return {"u64": "i64", "s64": "i64", "f32": "f32", "f64": "f64"}.get(u.name, "i32")
    if isinstance(u, (EnumType, FlagsType)):
        return "i64" if u.repr == "u64" else "i32"
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
            if ct is None:
                what = "a record" if isinstance(u, RecordType) else "a variant"
                raise WitxError(f"param `${p.name}` of `{fn.name}` is {what} passed by value; "
                                "pass `(@witx const_pointer $type)` instead", p.loc)
            plans.append(ParamPlan("value", p, (core(p.name, ct),)))
        i += 1

    if fn.noreturn or not fn.results:
        return FunctionAbi(module, fn, tuple(plans), (), None, None, fn.noreturn)
    if len(fn.results) > 1:
        raise WitxError(f"`{fn.name}` has {len(fn.results)} results; the preview1 ABI "
                        "allows one `(expected ...)`", fn.results[1].loc)
    r = fn.results[0]
    v = underlying(r.type)
    if not (isinstance(v, VariantType) and v.kind == "expected"):
        raise WitxError(f"result `${r.name}` of `{fn.name}` must be `(expected T? (error E))`",
                        r.loc)
    if v.err is None or not isinstance(underlying(v.err), EnumType) \
            or core_type(v.err) != "i32":
        raise WitxError(f"result `${r.name}` of `{fn.name}` needs `(error E)` with E an enum "
                        "of at most 32 bits (the errno)", r.loc)
    outs: list[OutPlan] = []
    if v.ok is not None:
        okt = underlying(v.ok)
        if isinstance(okt, RecordType) and okt.is_tuple:
            outs = [OutPlan(f.type, core(f"ret{j}", "i32", "")) for j, f in enumerate(okt.fields)]
        else:
            outs = [OutPlan(v.ok, core("ret", "i32", ""))]
    return FunctionAbi(module, fn, tuple(plans), tuple(outs), v.err, v.ok, False)


def lower_module(module: Module) -> list[FunctionAbi]:
    return [lower_function(module.name, f) for f in module.functions]


def lower_document(doc: Document) -> list[FunctionAbi]:
    """Lower every function of every module of ``doc``."""
    return [a for m in doc.modules for a in lower_module(m)]
