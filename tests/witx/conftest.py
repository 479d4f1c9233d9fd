"""Paths shared by the WITX tests: the project's specs. (WASI preview1's WITX and the
reference crate come from crates.io: `preview1_dir`, `reference_crates` in tests/conftest.py.)"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WITX = REPO / "witx"
