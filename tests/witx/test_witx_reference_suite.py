"""The reference implementation's own test suite, run against our toolchain.

The Rust ``witx`` crate 0.9.1 (the implementation WASI preview1 was written with) ships
``tests/witxt/*.witxt`` in its crates.io package; cargo fetches it (`reference_crates`,
tests/conftest.py) and every directive is checked here:

- ``(witx $id? DECL* | (load "file"*))``: a valid document — we load it and lower every
  function;
- ``(assert_invalid (witx ...) "message")``: we reject it, for the same reason (our message
  carries the fragment `REASONS` maps the crate's message to);
- ``(assert_abi (witx ...) (wasm (param T*) (result T*)) (call_wasm I*) (call_interface
  I*))``: our core signature of the first function is the one given, and the crate's
  instruction streams (how a caller lowers arguments and lifts results, how a callee lifts
  and lowers) follow from our parameter and result plans (`_instructions`);
- ``(assert_representable eq|noteq|superset $doc "type" $doc "type")``: `representable`.

`CRATE_ERRORS` would list the directives on which we keep a different answer because the
crate is wrong; it is empty — every directive of the suite agrees. The crate's errors
(docs/design.md, "The reference WITX implementation") lie outside its suite and are pinned
against the crate itself in test_witx_reference_layout.py. wasi.witxt loads files of the
WASI repository that the package does not ship: preview0/preview1 are taken from
``wasi-common`` instead, the two "ephemeral" loads cannot run (asserted below).
"""

from __future__ import annotations

import re
from pathlib import Path

from wasi_hw.witx import (
    Builtin, EnumType, FlagsType, HandleType, ListType, PointerType, RecordType, StringType,
    VariantType, WitxError, load, lower_document, parse, representable, underlying,
)
from wasi_hw.witx._sexpr import SAtom, SList, read_sexprs

# the crate's error message → what ours says for the same reason
REASONS = {
    "Redefinition of name": "duplicate",
    "Anonymous structured types": "anonymous structured types",
    "Unknown name": "unknown type",
    "Wrong kind of name": "a variant tag must be an enum or",
    "Invalid union field": "is not a case of its tag",
    "Union expected": "cases but its tag",
    "ABI error: invalid return type": "cannot be returned",
    "ABI error: only named types are allowed in results":
        "only named types are allowed in results",
}

# Directives (file, line) on which the crate is wrong, and what we answer instead: none.
CRATE_ERRORS: dict[tuple[str, int], str] = {}

# wasi.witxt loads the WASI repository's files relative to the crate's source tree; the
# package ships none of them. preview0 and preview1 are in wasi-common (the same files,
# doc comments aside); the "ephemeral" phase is in no pinned package.
SUBSTITUTES = {
    "phases/old/snapshot_0/witx/wasi_unstable.witx":
        ("wasi-common", "witx/preview0/wasi_unstable.witx"),
    "phases/snapshot/witx/wasi_snapshot_preview1.witx":
        ("wasi-common", "witx/preview1/wasi_snapshot_preview1.witx"),
}
NOT_SHIPPED = "phases/ephemeral/"


# ---- instruction streams from our plans -------------------------------------------------
def _lower(t) -> str:
    """The instruction lowering an interface value of type ``t`` to core wasm."""
    u = underlying(t)
    if isinstance(u, Builtin):
        return {"u64": "i64.from_u64", "s64": "i64.from_s64", "f32": "f32.from_if32",
                "f64": "f64.from_if64"}.get(u.name, f"i32.from_{u.name}")
    if isinstance(u, PointerType):
        return "i32.from_const_pointer" if u.const else "i32.from_pointer"
    if isinstance(u, HandleType):
        return "i32.from_handle"
    if isinstance(u, FlagsType):
        return "i64.from_bitflags" if u.repr == "u64" else "i32.from_bitflags"
    if isinstance(u, EnumType) or (isinstance(u, VariantType) and u.is_enum):
        return "enum.lower"
    if isinstance(u, (StringType, ListType)):
        return "list.pointer_length"
    assert isinstance(u, (RecordType, VariantType))
    return "addr-of"


def _lift(t) -> str:
    """The instruction lifting core wasm to an interface value of type ``t``."""
    u = underlying(t)
    if isinstance(u, Builtin):
        return {"u64": "u64.from_i64", "s64": "s64.from_i64", "f32": "if32.from_f32",
                "f64": "if64.from_f64"}.get(u.name, f"{u.name}.from_i32")
    if isinstance(u, PointerType):
        return "const_pointer.from_i32" if u.const else "pointer.from_i32"
    if isinstance(u, HandleType):
        return "handle.from_i32"
    if isinstance(u, FlagsType):
        return "bitflags.from_i64" if u.repr == "u64" else "bitflags.from_i32"
    if isinstance(u, EnumType) or (isinstance(u, VariantType) and u.is_enum):
        return "enum.lift"
    if isinstance(u, (StringType, ListType)):
        return "list.from_pointer_length"
    assert isinstance(u, (RecordType, VariantType))
    return "load"


def _instructions(abi) -> tuple[list[str], list[str]]:
    """(caller side, callee side) instruction streams implied by our lowering plan."""
    core = list(abi.core_params)
    index = {id(c): i for i, c in enumerate(core)}
    wasm: list[str] = []
    iface: list[str] = []
    nth = 0
    for plan in abi.params:
        witx = [plan.param] + ([plan.len_param] if plan.len_param is not None else [])
        cores = list(plan.core)
        if plan.kind == "region":
            pairs = [(witx[0], [cores[0]]), (witx[1], [cores[1]])]
        else:
            pairs = [(witx[0], cores)]
        for p, cs in pairs:
            wasm += [f"get-arg{nth}", _lower(p.type)]
            nth += 1
            iface += [f"get-arg{index[id(c)]}" for c in cs] + [_lift(p.type)]
    if abi.returns == "expected":
        for j in range(len(abi.outs)):
            wasm += ["allocate-space", f"return_pointer.get{j}"]
    wasm.append("call.wasm")
    iface.append("call.interface")
    if abi.returns == "value":
        wasm.append(_lift(abi.value))
        iface.append(_lower(abi.value))
    elif abi.returns == "expected":
        if abi.ok is None and abi.error is None:  # payload-free: an enum of its own
            wasm.append("enum.lift")
            iface.append("enum.lower")
        else:
            tuple_ok = abi.ok is not None and isinstance(underlying(abi.ok), RecordType) \
                and underlying(abi.ok).is_tuple
            wasm.append("block.push")
            for j, _ in enumerate(abi.outs):
                wasm += [f"return_pointer.get{j}", "load"]
            if tuple_ok:
                wasm.append("tuple.lift")
            wasm += ["block.finish", "block.push"]
            if abi.error is not None:
                wasm += ["reuse_return", _lift(abi.error)]
            wasm += ["block.finish", "result.lift"]
            iface.append("block.push")
            if abi.ok is not None:
                iface.append("variant-payload")
                if tuple_ok:
                    iface.append("tuple.lower")
                for out in reversed(abi.outs):
                    iface += [f"get-arg{index[id(out.core)]}", "store"]
            iface += ["block.finish", "block.push"]
            if abi.error is not None:
                iface += ["variant-payload", _lower(abi.error)]
            iface += ["block.finish", "result.lower"]
    wasm.append("return")
    iface.append("return")
    return wasm, iface


# ---- running the suite ------------------------------------------------------------------
class _Suite:
    def __init__(self, crates: dict[str, Path]) -> None:
        self.crates = crates
        self.docs: dict[str, object] = {}
        self.outcomes: dict[tuple[str, int], str] = {}  # directive → "ok" or what differed
        self.kinds: dict[str, int] = {}
        self.not_runnable: list[tuple[str, int]] = []

    def document(self, node: SList, text: str, path: Path, starts: list[int]):
        """Our document for a ``(witx $id? ...)`` node."""
        items = node.items[1:]
        if items and isinstance(items[0], SAtom) and items[0].kind == "id":
            items = items[1:]
        if len(items) == 1 and isinstance(items[0], SList) and items[0].head() == "load":
            files = []
            for a in items[0].items[1:]:
                rel = str(a.value)
                key = rel.lstrip("./")
                if key in SUBSTITUTES:
                    crate, sub = SUBSTITUTES[key]
                    files.append(self.crates[crate] / sub)
                elif key.startswith(NOT_SHIPPED):
                    raise LookupError(rel)
                else:
                    files.append(path.parent / rel)
            return load(files)
        if not items:
            return parse("", str(path))
        start = starts[items[0].loc.line - 1] + items[0].loc.col - 1
        end = starts[node.end.line - 1] + node.end.col - 1
        # blank out what precedes the declarations so locations stay those of the .witxt
        pad = re.sub(r"[^\n]", " ", text[:start])
        return parse(pad + text[start:end], str(path))

    def run_file(self, path: Path) -> None:
        text = path.read_text()
        starts = [0] + [m.end() for m in re.finditer("\n", text)]
        name = path.name
        for d in read_sexprs(text, str(path)):
            assert isinstance(d, SList), d
            key = (name, d.loc.line)
            kind = d.head()
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            try:
                self.outcomes[key] = getattr(self, kind)(d, text, path, starts)
            except LookupError:
                self.not_runnable.append(key)

    def witx(self, d, text, path, starts) -> str:
        try:
            doc = self.document(d, text, path, starts)
            lower_document(doc)
        except WitxError as err:
            return f"rejected: {err.message}"
        if len(d.items) > 1 and isinstance(d.items[1], SAtom) and d.items[1].kind == "id":
            self.docs[str(d.items[1].value)] = doc
        return "ok"

    def assert_invalid(self, d, text, path, starts) -> str:
        message = str(d.items[2].value)
        try:
            lower_document(self.document(d.items[1], text, path, starts))
        except WitxError as err:
            want = next(v for k, v in REASONS.items() if message.startswith(k))
            return "ok" if want in err.message.lower() or want in err.message else \
                f"rejected for another reason: {err.message}"
        return "accepted"

    def assert_abi(self, d, text, path, starts) -> str:
        try:
            doc = self.document(d.items[1], text, path, starts)
            abi = lower_document(doc)[0]
        except WitxError as err:
            return f"rejected: {err.message}"
        sig = d.items[2]
        want_params, want_results = [], []
        for part in sig.items[1:]:
            (want_params if part.head() == "param" else want_results).extend(
                str(a.value) for a in part.items[1:])
        got = ([c.type for c in abi.core_params], list(abi.core_results))
        if got != (want_params, want_results):
            return f"signature {got}"
        wasm, iface = _instructions(abi)
        want_wasm = [str(a.value) for a in d.items[3].items[1:]]
        want_iface = [str(a.value) for a in d.items[4].items[1:]]
        if wasm != want_wasm:
            return f"call_wasm {wasm}"
        if iface != want_iface:
            return f"call_interface {iface}"
        return "ok"

    def assert_representable(self, d, text, path, starts) -> str:
        want, a_doc, a, b_doc, b = (x.value for x in d.items[1:])
        got = representable(self.docs[a_doc].typenames[a], self.docs[b_doc].typenames[b])
        return "ok" if got == want else f"representable: {got}"


def _run(reference_crates) -> _Suite:
    suite = _Suite(reference_crates)
    files = sorted((reference_crates["witx"] / "tests" / "witxt").glob("*.witxt"))
    assert [f.name for f in files] == ["abi.witxt", "anonymous.witxt", "multimodule.witxt",
                                      "representation.witxt", "shorthand.witxt",
                                      "simple.witxt", "union.witxt", "wasi.witxt"]
    for f in files:
        suite.run_file(f)
    return suite


def test_reference_suite(reference_crates):
    suite = _run(reference_crates)
    # the whole suite ran: 107 directives besides assert_representable, and wasi.witxt's 4
    assert suite.kinds == {"witx": 47, "assert_invalid": 20, "assert_abi": 44,
                           "assert_representable": 27}
    assert suite.not_runnable == [("wasi.witxt", 9), ("wasi.witxt", 24)]
    differing = {k: v for k, v in suite.outcomes.items() if v != "ok"}
    assert differing == CRATE_ERRORS
