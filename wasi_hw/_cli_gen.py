"""``wasi-hw gen [--check]``: regenerate the bindings committed from ``witx/``.

`generate(root)` maps every output path (relative to the repo root) to its text:
``sdk-rust/src/raw/{mod,<file>}.rs`` (Rust raw bindings, one per WITX file) and
``wasi_hw/_bindings/{__init__,_<module>}.py`` (Python host shims, one per module).
``gen`` writes the files that differ; ``gen --check`` writes nothing and exits 1 listing
the stale ones (CI's freshness gate).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._codegen_python import render_python_init, render_python_module
from ._codegen_rust import render_rust_file, render_rust_mod, rust_file_name
from .witx._parser import load

__all__ = ["generate", "stale", "register"]

RUST_RAW = Path("sdk-rust/src/raw")
PY_BINDINGS = Path("wasi_hw/_bindings")


def generate(root: Path) -> dict[Path, str]:
    """Render every generated file from ``root/witx/*.witx``; paths relative to ``root``."""
    root = Path(root)
    out: dict[Path, str] = {}
    rust_names: list[str] = []
    py_modules: list[str] = []
    for spec in sorted((root / "witx").glob("*.witx")):
        doc = load(spec)
        if not any(m.loc.path == str(spec) for m in doc.modules):
            continue  # a typenames-only file is rendered through the files that use it
        for path in doc.files:
            name = rust_file_name(doc, path)
            target = RUST_RAW / name
            if target not in out:
                display = Path(os.path.relpath(path, root)).as_posix()
                out[target] = render_rust_file(doc, path, display)
                rust_names.append(name[:-3])
        for module in doc.modules:
            if module.loc.path != str(spec):
                continue
            display = Path(os.path.relpath(spec, root)).as_posix()
            out[PY_BINDINGS / f"_{module.name}.py"] = render_python_module(doc, module, display)
            py_modules.append(module.name)
    out[RUST_RAW / "mod.rs"] = render_rust_mod(rust_names)
    out[PY_BINDINGS / "__init__.py"] = render_python_init(py_modules)
    return out


def stale(root: Path, files: dict[Path, str]) -> list[Path]:
    """The generated paths whose committed content differs from ``files``."""
    bad = []
    for rel, text in files.items():
        p = Path(root) / rel
        if not p.is_file() or p.read_text(encoding="utf-8") != text:
            bad.append(rel)
    return bad


def _repo_root() -> Path:
    here = Path.cwd()
    for d in (here, *here.parents):
        if (d / "witx").is_dir() and (d / "wasi_hw").is_dir():
            return d
    pkg = Path(__file__).resolve().parent.parent
    if (pkg / "witx").is_dir():
        return pkg
    from ._errors import UserError
    raise UserError("cannot find the repository root (a directory with witx/ and wasi_hw/)")


def _run(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else _repo_root()
    files = generate(root)
    bad = stale(root, files)
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
