"""``wasi-hw witx check FILE...`` and ``wasi-hw witx abi FILE``.

``check`` loads, validates and lowers each file, printing ``FILE: ok (N modules, M
functions, K typenames)``; an invalid one is reported as ``file:line:col: message`` with the
source line and a caret (exit 1 when any failed). ``abi`` prints one line per function,
``module.function: (i32, i64) -> i32``.
"""

from __future__ import annotations

import argparse
import sys

from wasi_hw.witx import WitxError, load, lower_document

__all__ = ["register"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _check(args: argparse.Namespace) -> int:
    failed = 0
    for path in args.files:
        try:
            doc = load(path)
            abis = lower_document(doc)
        except WitxError as err:
            print(f"wasi-hw: {err}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: ok ({_plural(len(doc.modules), 'module')}, "
              f"{_plural(len(abis), 'function')}, {len(doc.typenames)} typenames)")
    return 1 if failed else 0


def _abi(args: argparse.Namespace) -> int:
    try:
        abis = lower_document(load(args.file))
    except WitxError as err:
        print(f"wasi-hw: {err}", file=sys.stderr)
        return 1
    for a in abis:
        print(f"{a.module}.{a.name}: {a.signature()}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("witx", help="check WITX specs and show their core-wasm ABI")
    sub = p.add_subparsers(dest="witx_command", metavar="SUBCOMMAND", required=True)
    c = sub.add_parser("check", help="parse, validate and lower WITX files")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.set_defaults(func=_check)
    a = sub.add_parser("abi", help="print each function's lowered core signature")
    a.add_argument("file", metavar="FILE")
    a.set_defaults(func=_abi)
