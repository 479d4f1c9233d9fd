"""The layers hold: core → host → kernel → fleet → applications, each using only the public
names (``__all__``) of the layers below it.

Every Python module of the distribution is parsed (imports inside functions included) and
each import resolved to the module it names:
- a module never imports a higher layer (core must not import host, kernel, fleet or apps;
  host not kernel, fleet or apps; kernel not fleet or apps; fleet not apps);
- an import that crosses into another layer names a public package of that layer (no
  ``_x`` segment) and only names in that package's ``__all__``.
Within one layer, private modules are shared freely. ``wasi_hw/__main__.py`` is a program
(``python -m wasi_hw``), not importable code: it sits at the top, beside the applications.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: import root of each source directory (pyproject's package-dir)
SOURCES = {"wasi_hw": "wasi_hw", "host": "wasi_hw.host", "kernel": "wasi_hw.kernel",
           "fleet": "wasi_hw.fleet", "apps": "wasi_hw.apps"}
#: layer packages, bottom to top; everything else under wasi_hw is the core
LAYERS = ("wasi_hw", "wasi_hw.host", "wasi_hw.kernel", "wasi_hw.fleet", "wasi_hw.apps")
PROGRAMS = {"wasi_hw.__main__"}


def layer_of(module: str) -> str:
    for pkg in reversed(LAYERS[1:]):
        if module == pkg or module.startswith(pkg + "."):
            return pkg
    return "wasi_hw"


@dataclass(frozen=True)
class Import:
    source: str       # the importing module
    path: Path
    line: int
    target: str       # the module imported from (absolute)
    names: tuple[str, ...]   # names taken from it (empty: `import target`)


def modules(roots: dict[str, str], base: Path) -> dict[str, tuple[Path, bool]]:
    """module name → (file, is a package ``__init__``) for every .py under the sources."""
    out = {}
    for directory, package in roots.items():
        top = base / directory
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*.py")):
            parts = list(path.relative_to(top).with_suffix("").parts)
            is_init = parts[-1] == "__init__"
            if is_init:
                parts.pop()
            out[".".join([package, *parts])] = (path, is_init)
    return out


def imports(mods: dict[str, tuple[Path, bool]]) -> list[Import]:
    found = []
    for name, (path, is_init) in mods.items():
        package = name if is_init else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(name, path, node.lineno, alias.name, ()))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                found.append(Import(name, path, node.lineno, target,
                                    tuple(a.name for a in node.names)))
    return [i for i in found if i.target == "wasi_hw" or i.target.startswith("wasi_hw.")]


def _public_all(module: str) -> set[str]:
    return set(getattr(importlib.import_module(module), "__all__", ()))


def violations(found: list[Import], is_module: callable, public_all: callable = _public_all) \
        -> list[str]:
    """One line per import that breaks the layering (see the module docstring)."""
    bad = []
    for imp in found:
        if imp.source in PROGRAMS:
            continue
        src, dst = layer_of(imp.source), layer_of(imp.target)
        where = f"{imp.path}:{imp.line}: {imp.source}"
        if LAYERS.index(dst) > LAYERS.index(src):
            bad.append(f"{where} imports {imp.target} ({dst} is above {src})")
            continue
        if src == dst:
            continue
        if any(part.startswith("_") for part in imp.target.split(".")):
            bad.append(f"{where} imports private module {imp.target} of {dst}")
            continue
        # `from package import name`: a public name of it, or a public subpackage
        exported = public_all(imp.target) if imp.names else set()
        for name in imp.names:
            sub = f"{imp.target}.{name}"
            if name in exported or (not name.startswith("_") and is_module(sub)):
                continue
            bad.append(f"{where} imports {name} from {imp.target}, not in its __all__")
    return bad


def test_no_layer_imports_above_itself_or_private_names_below():
    mods = modules(SOURCES, ROOT)
    assert {"wasi_hw", "wasi_hw.host", "wasi_hw.kernel", "wasi_hw.apps"} <= set(mods)
    bad = violations(imports(mods), lambda name: name in mods)
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_checker_reports_each_kind_of_breach(tmp_path):
    """The checker itself: an upward import, a private module of a lower layer, a name
    missing from a lower layer's ``__all__`` are each reported; same-layer private imports
    and public names are not."""
    (tmp_path / "wasi_hw").mkdir()
    (tmp_path / "wasi_hw" / "__init__.py").write_text(
        "from ._errors import HwError\n"                  # core → core private: fine
        "from wasi_hw.host import Thing\n")               # core → host: upward
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "__init__.py").write_text("")
    (tmp_path / "host" / "_x.py").write_text(
        "from .._errors import HwError\n"                 # private module of the core
        "from wasi_hw import HwError, Secret\n"           # Secret is not in __all__
        "from wasi_hw import witx\n"                      # a public subpackage: fine
        "from ._y import z\n")                            # same layer: fine
    mods = modules({"wasi_hw": "wasi_hw", "host": "wasi_hw.host"}, tmp_path)
    found = imports(mods)
    mods["wasi_hw.witx"] = (tmp_path / "wasi_hw" / "witx" / "__init__.py", True)
    bad = violations(found, lambda name: name in mods,
                     lambda module: {"wasi_hw": {"HwError"}}.get(module, set()))
    assert len(bad) == 3, bad
    assert "imports wasi_hw.host (wasi_hw.host is above wasi_hw)" in bad[0]
    assert "private module wasi_hw._errors of wasi_hw" in bad[1]
    assert "imports Secret from wasi_hw, not in its __all__" in bad[2]


@pytest.mark.parametrize("package", [p for p in LAYERS if p != "wasi_hw.fleet"] + ["wasi_hw.witx"])
def test_public_surface_resolves(package):
    """Every name a layer lists in ``__all__`` exists (lazy names included)."""
    mod = importlib.import_module(package)
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ lists missing names: {missing}"


def test_the_witx_toolchain_loads_without_wasmtime():
    """The core's pure half (errors, the WITX pipeline) imports no wasmtime: guest memory and
    the bindings load on first use."""
    code = ("import sys, wasi_hw, wasi_hw.witx; "
            "assert 'wasmtime' not in sys.modules, 'wasmtime imported'; "
            "wasi_hw.GuestMemory; assert 'wasmtime' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
