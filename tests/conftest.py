"""Fixtures shared by the whole test tree.

`build_drivers("bme280", …)` builds driver crates to `build/wasm/<name>.wasm` with
`wasi-hw build` (cargo leaves a current crate alone) and returns their paths by name; a
test that asks for it is skipped when there is no Rust toolchain.

`reference_crates` maps each crates.io package the WITX conformance tests read (the
reference `witx` crate and its `tests/witxt` suite; `wasi-common`, which ships WASI
preview1's WITX) to its unpacked source directory, fetched by cargo through a throwaway
project under `.cache/` — nothing of them is copied into the tree. Tests using it are
skipped (with cargo's reason) only when crates.io cannot be reached; `preview1_dir` is
preview1's WITX directory inside `wasi-common`.

Inside the arm64 tier's root (``WASI_HW_IN_ARM64``) `build_drivers` returns the host's build
instead (wasm is portable): the ``build/wasm/`` the tier mounts there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from wasi_hw import UserError
from wasi_hw.apps._build import build, select_toolchain

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def build_drivers() -> Callable[..., dict[str, Path]]:
    if os.environ.get("WASI_HW_IN_ARM64"):
        def prebuilt(*names: str) -> dict[str, Path]:
            paths = {n: ROOT / "build" / "wasm" / f"{n}.wasm" for n in names}
            missing = [n for n, p in paths.items() if not p.exists()]
            if missing:
                pytest.fail(f"the host's build lacks {', '.join(missing)} (wasi-hw build)")
            return paths
        return prebuilt
    try:
        select_toolchain()
    except UserError as err:
        pytest.skip(f"no Rust toolchain: {err}")

    def run(*names: str) -> dict[str, Path]:
        return {a.name: a.path for a in build(ROOT, names)}

    return run


# The reference WITX implementation (WASI preview1 was built with it) and a package that
# ships preview1's WITX files (`witx/preview1/*.witx`), pinned.
REFERENCE_CRATES = {"witx": "=0.9.1", "wasi-common": "=46.0.3"}
# what cargo says when crates.io cannot be reached (any other failure is a test failure)
_NETWORK_HINTS = ("failed to download", "could not connect", "couldn't connect",
                  "could not resolve", "couldn't resolve", "timed out", "network",
                  "unable to update registry")


@pytest.fixture(scope="session")
def reference_crates() -> dict[str, Path]:
    cargo = shutil.which("cargo") or "/usr/bin/cargo"
    if not Path(cargo).exists():
        pytest.fail("cargo is not installed: it fetches the WITX reference crates")
    proj = ROOT / ".cache" / "witx-reference"
    deps = "\n".join(f'{name} = {{ version = "{v}", default-features = false }}'
                     for name, v in REFERENCE_CRATES.items())
    manifest = ('[package]\nname = "witx-reference"\nversion = "0.0.0"\nedition = "2021"\n'
                f'publish = false\n[lib]\npath = "lib.rs"\n[dependencies]\n{deps}\n'
                "[workspace]\n")
    proj.mkdir(parents=True, exist_ok=True)
    if not (proj / "Cargo.toml").is_file() or (proj / "Cargo.toml").read_text() != manifest:
        tmp = proj / f"Cargo.toml.{os.getpid()}"
        tmp.write_text(manifest)
        tmp.replace(proj / "Cargo.toml")
    (proj / "lib.rs").touch()
    proc = subprocess.run([cargo, "metadata", "--format-version", "1"], cwd=proj,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        err = proc.stderr.strip()
        if any(h in err.lower() for h in _NETWORK_HINTS):
            pytest.skip(f"crates.io unreachable, cannot fetch the WITX reference crates: "
                        f"{err[-600:]}")
        pytest.fail(f"cargo metadata failed for {proj}: {err[-2000:]}")
    pkgs = {p["name"]: p for p in json.loads(proc.stdout)["packages"]}
    out = {}
    for name, req in REFERENCE_CRATES.items():
        pkg = pkgs[name]
        assert pkg["version"] == req.lstrip("="), pkg["version"]
        out[name] = Path(pkg["manifest_path"]).parent
    return out


@pytest.fixture(scope="session")
def preview1_dir(reference_crates: dict[str, Path]) -> Path:
    """WASI preview1's WITX (``typenames.witx``, ``wasi_snapshot_preview1.witx``)."""
    d = reference_crates["wasi-common"] / "witx" / "preview1"
    assert (d / "wasi_snapshot_preview1.witx").is_file(), f"no preview1 WITX in {d}"
    return d
