"""Fixtures shared by the whole test tree, and the test tiers.

`build_drivers("bme280", …)` builds driver crates to `build/wasm/<name>.wasm` with
`wasi-hw build` (cargo leaves a current crate alone) and returns their paths by name; a
test that asks for it is skipped when there is no Rust toolchain.

Tiers (markers registered in pyproject.toml): every test gets exactly one. A tier marked on
the test (or its module) wins; otherwise the first rule that matches in `_TIER_RULES` order:
QEMU fixtures → ``vm``; a module named ``*umockdev*`` → ``umockdev``; compiled drivers or a
Rust toolchain (``build_drivers``, ``cargo_test``) or a directory whose tests run wasm
(``tests/kernel``, ``tests/integration``, ``tests/drivers``) → ``wasm``; the rest ``unit``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw._build import build, select_toolchain

ROOT = Path(__file__).resolve().parents[1]
TIERS = ("unit", "wasm", "umockdev", "vm", "timing", "engine")
_VM_FIXTURES = {"vm_kernel", "run_in_vm", "run_python_in_vm"}
_WASM_FIXTURES = {"build_drivers", "cargo_test"}
_WASM_DIRS = ("kernel", "integration", "drivers")


def _tier(item: pytest.Item) -> str:
    marked = [m.name for m in item.iter_markers() if m.name in TIERS]
    if marked:
        return marked[0]  # the closest mark (test before module)
    fixtures = set(getattr(item, "fixturenames", ()))
    path = Path(str(item.fspath)).resolve()
    if fixtures & _VM_FIXTURES:
        return "vm"
    if "umockdev" in path.name:
        return "umockdev"
    if fixtures & _WASM_FIXTURES:
        return "wasm"
    rel = path.relative_to(ROOT / "tests").parts
    if len(rel) > 1 and rel[0] in _WASM_DIRS:
        return "wasm"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = _tier(item)
        if not any(m.name == tier for m in item.iter_markers()):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def build_drivers() -> Callable[..., dict[str, Path]]:
    try:
        select_toolchain()
    except UserError as err:
        pytest.skip(f"no Rust toolchain: {err}")

    def run(*names: str) -> dict[str, Path]:
        return {a.name: a.path for a in build(ROOT, names)}

    return run
