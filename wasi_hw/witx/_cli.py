"""``wasi-hw witx check FILE...`` and ``wasi-hw witx abi FILE``.

``check`` loads, validates and lowers each file, printing ``FILE: ok (N modules, M
functions)``; the first invalid one is reported as ``file:line:col: message`` with the
source line and a caret (exit 1). ``abi`` prints one line per function,
``module.function: (i32, i64) -> i32``.
"""

from __future__ import annotations

import argparse
import sys

from ._abi import lower_document
from ._errors import WitxError
from ._parser import load

__all__ = ["register"]


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
        print(f"{path}: ok ({len(doc.modules)} module{'s' if len(doc.modules) != 1 else ''}, "
              f"{len(abis)} function{'s' if len(abis) != 1 else ''}, "
              f"{len(doc.typenames)} typenames)")
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
