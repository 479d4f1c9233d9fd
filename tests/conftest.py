"""Fixtures shared by the whole test tree.

`build_drivers("bme280", …)` builds driver crates to `build/wasm/<name>.wasm` with
`wasi-hw build` (cargo leaves a current crate alone) and returns their paths by name; a
test that asks for it is skipped when there is no Rust toolchain.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw._build import build, select_toolchain

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def build_drivers() -> Callable[..., dict[str, Path]]:
    try:
        select_toolchain()
    except UserError as err:
        pytest.skip(f"no Rust toolchain: {err}")

    def run(*names: str) -> dict[str, Path]:
        return {a.name: a.path for a in build(ROOT, names)}

    return run
