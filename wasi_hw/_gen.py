"""The bindings generated from ``witx/``, as text: what ``wasi-hw gen`` writes and checks.

`generate(root)` maps every output path (relative to the repo root) to its text:
``sdk-rust/src/raw/{mod,<file>}.rs`` (Rust raw bindings, one per WITX file) and
``wasi_hw/_bindings/{__init__,_<module>}.py`` (Python host shims, one per module).
`stale(root, files)` lists the paths whose committed content differs. Reads the specs and
the committed files; writes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._codegen_python import render_python_init, render_python_module
from ._codegen_rust import render_rust_file, render_rust_mod, rust_file_name
from .witx._parser import load

__all__ = ["generate", "stale"]

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
