"""The pytest plugin (entry point ``pytest11``: ``wasi_hw = wasi_hw.apps.testing._plugin``).

Fixtures: ``wasi_hw`` (function scope) — a fresh `DriverTest` working in the test's
``tmp_path``; ``wasi_hw_build`` (session scope) — ``build(crate_dir) -> Path`` building a
driver crate once per session with `wasi_hw.apps.build_path`, skipping the test when the
machine has no Rust wasm toolchain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from wasi_hw import UserError

from ._harness import DriverTest

__all__ = ["wasi_hw", "wasi_hw_build"]


@pytest.fixture(scope="session")
def wasi_hw_build() -> Callable[[Path], Path]:
    """``build(crate_dir) -> Path`` of its .wasm, built once per session."""
    from .._build import build_path, select_toolchain

    built: dict[Path, Path] = {}

    def build(crate: Path) -> Path:
        crate = Path(crate).resolve()
        if crate not in built:
            try:
                select_toolchain()
            except UserError as err:
                pytest.skip(f"no Rust wasm toolchain: {err}")
            artifacts = build_path(crate)
            if len(artifacts) != 1:
                raise UserError(f"{crate}: expected one driver module, built "
                                f"{', '.join(a.name for a in artifacts) or 'none'}")
            built[crate] = artifacts[0].path
        return built[crate]

    return build


@pytest.fixture
def wasi_hw(tmp_path, wasi_hw_build) -> DriverTest:
    """A `DriverTest` for this test (see `wasi_hw.apps.testing`)."""
    return DriverTest(tmp_path, builder=wasi_hw_build)
