"""The SDK stands alone: copied out of the repository it builds, `cargo package` accepts it
(with its verification build), and a crate elsewhere depends on it by path."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw.apps._build import select_toolchain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cargo():
    try:
        tc = select_toolchain()
    except UserError as err:
        pytest.skip(f"no Rust toolchain: {err}")
    env = {**os.environ, **{k: v for k, v in tc.env.items() if "WASM32" not in k}}

    def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        out = subprocess.run([tc.cargo, *args], cwd=cwd, env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, f"cargo {' '.join(args)}:\n{out.stderr[-4000:]}"
        return out

    return run


def test_manifest_inherits_nothing_from_the_workspace():
    text = (ROOT / "sdk-rust" / "Cargo.toml").read_text()
    assert "workspace" not in "".join(l for l in text.splitlines() if not l.startswith("#"))
    pkg = tomllib.loads(text)["package"]
    for key in ("version", "edition", "license", "description", "readme"):
        assert isinstance(pkg.get(key), str), key
    assert (ROOT / "sdk-rust" / pkg["readme"]).is_file()


def test_copied_alone_it_packages_and_an_outside_crate_uses_it(tmp_path, cargo):
    sdk = tmp_path / "vendor" / "wasi-hw-sdk"
    shutil.copytree(ROOT / "sdk-rust", sdk, ignore=shutil.ignore_patterns("target"))
    listing = cargo(["package", "--allow-dirty", "--list"], sdk).stdout.split()
    assert "src/lib.rs" in listing and "src/raw/wasi_i2c.rs" in listing
    cargo(["package", "--allow-dirty"], sdk)                # builds the packaged copy
    assert list((sdk / "target" / "package").glob("wasi-hw-sdk-*.crate"))

    user = tmp_path / "thermo"
    (user / "src").mkdir(parents=True)
    (user / "Cargo.toml").write_text(
        '[package]\nname = "thermo"\nversion = "0.1.0"\nedition = "2021"\n\n'
        f'[dependencies]\nwasi-hw-sdk = {{ path = "{sdk}" }}\n')
    (user / "src" / "lib.rs").write_text(
        "#![no_std]\n"
        "pub fn celsius(raw: [u8; 2]) -> f32 { f32::from(i16::from_be_bytes(raw) >> 4) * 0.0625 }\n"
        "pub fn try_bus() -> Result<(), wasi_hw_sdk::Error> {\n"
        "    let _bus = wasi_hw_sdk::i2c::I2cBus::open(\"i2c-1\")?;\n    Ok(())\n}\n")
    cargo(["build"], user)
