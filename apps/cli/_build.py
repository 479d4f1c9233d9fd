"""``wasi-hw build [--release|--debug] [PATH | CRATE...]``: build driver crates to wasm.

``PATH`` (a directory with a ``Cargo.toml``: one driver crate or a workspace, anywhere) is
built with `wasi_hw.apps.build_path` into ``PATH/build/wasm/``. Without arguments: inside
the wasi-hw tree every driver (`wasi_hw.apps.build`), inside any other crate that crate;
anywhere else it says so. ``CRATE`` names pick drivers of the wasi-hw tree (``bme280``).
Prints one line per driver: its path, its size, and ``(unchanged)`` when the copy was current.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wasi_hw import UserError

from .. import _build

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "build", help="build the Rust drivers to build/wasm/<name>.wasm",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("crates", nargs="*", metavar="PATH|CRATE",
                   help="a crate or workspace directory (e.g. ./mysensor), or driver names "
                        "of the wasi-hw tree (e.g. bme280); default: the crate here")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--release", dest="release", action="store_true", default=True,
                      help="optimised, small modules (the default)")
    mode.add_argument("--debug", dest="release", action="store_false",
                      help="cargo's dev profile (faster to compile, larger)")
    p.add_argument("--root", type=Path, default=None,
                   help="workspace root (default: found from the current directory)")
    p.set_defaults(func=_run)


def _is_path(arg: str) -> bool:
    return "/" in arg or arg in (".", "..") or Path(arg, "Cargo.toml").is_file()


def _nearest_crate(start: Path) -> Path | None:
    for d in (start, *start.parents):
        if (d / "Cargo.toml").is_file():
            return d
    return None


def _run(args: argparse.Namespace) -> int:
    paths = [a for a in args.crates if _is_path(a)]
    if paths:
        if len(args.crates) != 1:
            raise UserError("give one PATH, or driver names of the wasi-hw tree, not both")
        return _build_path(Path(paths[0]), args.release)
    if args.root is not None:
        root = args.root.resolve()
    else:
        try:
            root = _build.find_root(None)
        except UserError:
            crate = _nearest_crate(Path.cwd().resolve())
            if crate is None or args.crates:
                raise UserError(
                    f"{Path.cwd()}: not inside a Rust crate (no Cargo.toml here or above): "
                    "give the crate's directory, e.g. `wasi-hw build ./mysensor`, or create "
                    "one with `wasi-hw new driver NAME`") from None
            return _build_path(crate, args.release)
    try:
        artifacts = _build.build(root, args.crates, release=args.release)
    except _build.BuildError as err:
        _print(root, err.artifacts)
        raise
    _print(root, artifacts)
    return 0


def _build_path(path: Path, release: bool) -> int:
    root = path.resolve()
    try:
        artifacts = _build.build_path(root, release=release)
    except _build.BuildError as err:
        _print(Path.cwd(), err.artifacts)
        raise
    _print(Path.cwd(), artifacts)
    return 0


def _print(root: Path, artifacts: list[_build.Artifact]) -> None:
    for a in artifacts:
        rel = a.path.relative_to(root) if a.path.is_relative_to(root) else a.path
        print(f"{rel}  {a.size} bytes{'' if a.changed else '  (unchanged)'}", flush=True)
