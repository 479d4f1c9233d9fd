"""``wasi-hw build [--release|--debug] [--root DIR] [CRATE...]``: build the drivers to wasm.

Builds the named crates (directory names under ``drivers/``, or package names; default all)
with `wasi_hw.apps.build` and prints one line per driver: its path under the workspace
root, its size, and ``(unchanged)`` when the copy was already current.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .._build import Artifact, BuildError, build, find_root

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build", help="build the Rust drivers to build/wasm/<name>.wasm",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("crates", nargs="*", metavar="CRATE",
                   help="driver directory names (e.g. bme280) or package names; default: all")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--release", dest="release", action="store_true", default=True,
                      help="optimised, small modules (the default)")
    mode.add_argument("--debug", dest="release", action="store_false",
                      help="cargo's dev profile (faster to compile, larger)")
    p.add_argument("--root", type=Path, default=None,
                   help="workspace root (default: found from the current directory)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    root = find_root(args.root) if args.root is None else args.root.resolve()
    try:
        artifacts = build(root, args.crates, release=args.release)
    except BuildError as err:
        _print(root, err.artifacts)
        raise
    _print(root, artifacts)
    return 0


def _print(root: Path, artifacts: list[Artifact]) -> None:
    for a in artifacts:
        rel = a.path.relative_to(root) if a.path.is_relative_to(root) else a.path
        print(f"{rel}  {a.size} bytes{'' if a.changed else '  (unchanged)'}", flush=True)
