"""Paths shared by the WITX tests: the project's specs and the shared conformance data."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WITX = REPO / "witx"
CONFORMANCE = REPO / ".." / "shared" / "conformance" / "wasi-preview1"


@pytest.fixture(scope="session")
def preview1_dir() -> Path:
    """WASI preview1's WITX, beside the checkout (never copied into the project)."""
    if not (CONFORMANCE / "wasi_snapshot_preview1.witx").is_file():
        pytest.fail(f"conformance data missing: expected {CONFORMANCE.resolve()} "
                    "(the shared/ directory must sit beside the checkout)")
    return CONFORMANCE
