"""``wasi-hw gen [--check] [--root DIR]``: regenerate the bindings committed from ``witx/``.

``gen`` writes the generated files that differ (`wasi_hw.generate_bindings`); ``gen
--check`` writes nothing and exits 1 listing the stale ones (the freshness gate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wasi_hw import UserError, generate_bindings, stale_bindings

__all__ = ["register"]


def _repo_root() -> Path:
    here = Path.cwd()
    for d in (here, *here.parents):
        if (d / "witx").is_dir() and (d / "wasi_hw").is_dir():
            return d
    pkg = Path(__file__).resolve().parents[2]      # the source tree of an editable install
    if (pkg / "witx").is_dir():
        return pkg
    raise UserError("cannot find the repository root (a directory with witx/ and wasi_hw/)")


def _run(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else _repo_root()
    files = generate_bindings(root)
    bad = stale_bindings(root, files)
    if args.check:
        for rel in bad:
            print(f"stale: {rel.as_posix()}", file=sys.stderr)
        if bad:
            print(f"wasi-hw gen: {len(bad)} generated file(s) out of date; run `wasi-hw gen`",
                  file=sys.stderr)
            return 1
        print(f"{len(files)} generated files up to date")
        return 0
    for rel in bad:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(files[rel], encoding="utf-8")
        print(f"wrote {rel.as_posix()}")
    if not bad:
        print(f"{len(files)} generated files up to date")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gen", help="regenerate bindings from witx/ (--check: verify)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 listing generated files that are out of date")
    p.add_argument("--root", help="repository root (default: found from the current directory)")
    p.set_defaults(func=_run)
