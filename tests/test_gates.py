"""The gates of the test command: ruff (lint), mypy (types) and clippy (Rust, host and wasm32).

Each runs the real tool over the whole tree with the configuration in the repository
(`[tool.ruff]` / `[tool.mypy]` in pyproject.toml, clippy's defaults with ``-D warnings``) and
fails with the tool's own findings. mypy cannot follow the editable install's import hook and
``wasi_hw.host`` / ``wasi_hw.kernel`` live outside ``wasi_hw/``: `typecheck_tree` lays out a
tree of links as the ``package-dir`` mapping says, mypy checks that, and its findings are
reported at their paths in the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw.apps._build import WASM_TARGET, select_toolchain

ROOT = Path(__file__).resolve().parents[1]


def _venv_tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"`{name}` is not installed: pip install -e '.[dev]'")
    return found


def _package_dirs(root: Path) -> dict[str, str]:
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["setuptools"]["package-dir"]


def typecheck_tree(root: Path, tree: Path) -> dict[str, str]:
    """Link ``root``'s packages into ``tree`` as installed (``tree/wasi_hw/host`` → ``host/``);
    return the tree's path prefixes mapped to the checkout's (``wasi_hw/host/`` → ``host/``)."""
    shutil.rmtree(tree, ignore_errors=True)
    mapping = _package_dirs(root)
    prefixes = {}
    for package in sorted(mapping, key=lambda p: p.count(".")):
        source = root / mapping[package]
        where = tree / package.replace(".", "/")
        if "." not in package:  # a top package: a real directory of links, room for mapped ones
            where.mkdir(parents=True)
            for entry in source.iterdir():
                if entry.name != "__pycache__" and not (where / entry.name).exists():
                    (where / entry.name).symlink_to(entry)
        else:
            if where.is_symlink() or where.exists():
                where.unlink()
            where.symlink_to(source, target_is_directory=True)
        prefixes[package.replace(".", "/") + "/"] = mapping[package].rstrip("/") + "/"
    return prefixes


def _real_paths(output: str, prefixes: dict[str, str]) -> str:
    ordered = sorted(prefixes, key=len, reverse=True)
    lines = []
    for line in output.splitlines():
        for p in ordered:
            if line.startswith(p):
                line = prefixes[p] + line[len(p):]
                break
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.unit
def test_ruff():
    proc = subprocess.run([_venv_tool("ruff"), "check", "--no-fix", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail("ruff found problems (`ruff check --fix .` repairs the mechanical ones):\n"
                    f"{proc.stdout}{proc.stderr}", pytrace=False)


@pytest.mark.unit
def test_mypy():
    tree = ROOT / ".cache" / "typecheck"
    prefixes = typecheck_tree(ROOT, tree)
    top = sorted({p.split(".")[0] for p in _package_dirs(ROOT)})
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
           "--cache-dir", str(ROOT / ".cache" / "mypy")]
    for package in top:
        cmd += ["-p", package]
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail("mypy found problems:\n" + _real_paths(proc.stdout + proc.stderr, prefixes),
                    pytrace=False)


def test_typecheck_tree_follows_the_package_dir_mapping(tmp_path):
    root = tmp_path / "src"
    for d in ("pkg", "lower", "upper/sub"):
        (root / d).mkdir(parents=True)
        (root / d / "__init__.py").write_text("")
    (root / "pkg" / "core.py").write_text("")
    (root / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = { "pkg" = "pkg", "pkg.lower" = "lower", '
        '"pkg.upper" = "upper" }\n')
    prefixes = typecheck_tree(root, tmp_path / "tree")
    tree = tmp_path / "tree"
    assert (tree / "pkg" / "core.py").resolve() == root / "pkg" / "core.py"
    assert (tree / "pkg" / "lower" / "__init__.py").resolve() == root / "lower" / "__init__.py"
    assert (tree / "pkg" / "upper" / "sub").resolve() == root / "upper" / "sub"
    assert prefixes == {"pkg/": "pkg/", "pkg/lower/": "lower/", "pkg/upper/": "upper/"}
    out = "pkg/upper/sub/x.py:3: error: no\npkg/core.py:1: note: hi\nFound 1 error"
    assert _real_paths(out, prefixes) == (
        "upper/sub/x.py:3: error: no\npkg/core.py:1: note: hi\nFound 1 error")
    typecheck_tree(root, tree)  # rebuilt in place
    assert (tree / "pkg" / "lower").is_symlink()


def _clippy(target: str | None) -> None:
    try:
        tc = select_toolchain()
    except UserError as err:
        pytest.skip(f"no Rust toolchain: {err}")
    env = dict(os.environ)
    if tc.route == "debian":  # Debian's cargo-clippy (rust-web-clippy), not rustup's proxy
        env["PATH"] = "/usr/bin:" + env.get("PATH", "")
    if target is None:  # the host: native `cargo test` builds of the crates' pure code
        env.update({k: v for k, v in tc.env.items() if "WASM32" not in k})
        cmd = [tc.cargo, "clippy", "--workspace", "--tests"]
    else:
        env.update(tc.env)
        cmd = [tc.cargo, "clippy", "--workspace", "--release", "--target", target, *tc.args]
    cmd += ["--", "-D", "warnings"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if "no such command: `clippy`" in proc.stderr:
        pytest.fail("clippy is not installed: `apt-get install rust-web-clippy` (Debian "
                    "toolchain) or `rustup component add clippy`")
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)}:\n{proc.stderr[-8000:]}", pytrace=False)


@pytest.mark.wasm
def test_clippy_wasm32():
    _clippy(WASM_TARGET)


@pytest.mark.wasm
def test_clippy_host():
    _clippy(None)
