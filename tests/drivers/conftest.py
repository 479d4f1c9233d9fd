"""Shared fixture for the native `cargo test` runs of the Rust crates.

`cargo_test(package, name_filter=None)` runs ``cargo test --lib -p <package> [filter]`` on
the host target with the toolchain `wasi_hw.apps.select_toolchain` picks (skipping when
there is none), fails with cargo's output when it fails, and returns the set of test names
that passed — callers assert the tests they require are among them, so a crate whose tests
vanish fails too.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw.apps._build import select_toolchain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cargo_test() -> Callable[..., set[str]]:
    try:
        tc = select_toolchain()
    except UserError as err:
        pytest.skip(f"no Rust toolchain: {err}")
    # Host-target builds: keep RUSTC/RUSTC_BOOTSTRAP, drop the wasm linker setting.
    env = {**os.environ, **{k: v for k, v in tc.env.items() if "WASM32" not in k}}

    def run(package: str, name_filter: str | None = None) -> set[str]:
        cmd = [tc.cargo, "test", "--lib", "-p", package]
        if name_filter:
            cmd.append(name_filter)
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{(out.stdout + out.stderr)[-6000:]}"
        assert not re.search(r"^test \S+ \.\.\. FAILED$", out.stdout, re.M)
        return set(re.findall(r"^test (\S+) \.\.\. ok$", out.stdout, re.M))

    return run
