"""`wasi-hw new driver` + `wasi-hw build PATH` from outside the repository: the new crate
builds to wasm, its native unit test (embedded-hal-mock) passes, and its generated pytest
tests pass through the installed `wasi_hw` plugin (a separate pytest process, as an author
would run it). Also: `wasi-hw build` where there is no crate says so and builds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw.apps._build import select_toolchain
from wasi_hw.apps._scaffold import new_driver

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wasi_hw", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def toolchain():
    try:
        return select_toolchain()
    except UserError as err:
        pytest.skip(f"no Rust toolchain: {err}")


@pytest.mark.parametrize("kind, unit_test", [
    ("--i2c", "reads_the_value_register_msb_first"),
    ("--usb", "summarises_a_transfer"),
])
def test_new_driver_outside_the_repo_builds_and_passes_its_tests(tmp_path, toolchain, kind,
                                                                 unit_test):
    assert not tmp_path.is_relative_to(ROOT)
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target")}
    made = _cli("new", "driver", "thermo", kind, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    crate = tmp_path / "thermo"
    assert "wasi-hw build thermo" in made.stdout
    cargo = tomllib.loads((crate / "Cargo.toml").read_text())
    assert "workspace" in cargo and cargo["profile"]["release"]["panic"] == "abort"
    assert (crate / ".cargo" / "config.toml").is_file()

    built = _cli("build", "thermo", cwd=tmp_path, env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    wasm = crate / "build" / "wasm" / "thermo.wasm"
    assert wasm.is_file() and "thermo.wasm" in built.stdout

    native_env = {**env, **{k: v for k, v in toolchain.env.items() if "WASM32" not in k}}
    unit = subprocess.run([toolchain.cargo, "test"], cwd=crate, env=native_env,
                          capture_output=True, text=True, timeout=900)
    assert unit.returncode == 0, unit.stderr[-3000:]
    assert f"{unit_test} ... ok" in unit.stdout

    plugin = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-p", "no:xdist", "tests"], cwd=crate, env=env,
                            capture_output=True, text=True, timeout=900)
    assert plugin.returncode == 0, plugin.stdout[-3000:] + plugin.stderr[-2000:]
    assert "2 passed" in plugin.stdout


def test_plain_cargo_uses_the_generated_config(tmp_path, toolchain):
    crate = new_driver(tmp_path, "plain")
    text = (crate / ".cargo" / "config.toml").read_text()
    config = tomllib.loads(text)
    assert config["target"]["wasm32-unknown-unknown"]["rustflags"] == [
        "-C", "link-arg=-zstack-size=65536"]
    assert config["alias"]["wasm"][:4] == ["build", "--release", "--target",
                                           "wasm32-unknown-unknown"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGO_TARGET_WASM32")}
    env.pop("RUSTC", None)
    env["CARGO_TARGET_DIR"] = str(ROOT / "target")
    if toolchain.route == "debian":
        env["RUSTC_BOOTSTRAP"] = "1"
    out = subprocess.run([toolchain.cargo, "wasm"], cwd=crate, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (ROOT / "target" / "wasm32-unknown-unknown" / "release"
            / "wasi_hw_driver_plain.wasm").is_file()


def test_build_outside_any_crate_says_so_and_builds_nothing(tmp_path):
    out = _cli("build", cwd=tmp_path)
    assert out.returncode == 2
    assert "not inside a Rust crate" in out.stderr and "wasi-hw new driver" in out.stderr
    assert "bme280" not in out.stdout + out.stderr
    missing = _cli("build", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such directory" in missing.stderr


def test_new_driver_inside_a_workspace_joins_it(tmp_path):
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["drivers/*"]\n')
    (tmp_path / "drivers").mkdir()
    crate = new_driver(tmp_path / "drivers", "inner")
    cargo = tomllib.loads((crate / "Cargo.toml").read_text())
    assert "workspace" not in cargo and "profile" not in cargo   # the root's apply
    manifest = tomllib.loads((crate / "manifest.toml").read_text())
    assert manifest["wasm"] == "../../build/wasm/inner.wasm"


@pytest.mark.parametrize("name, message", [
    ("Thermo", "use lower-case letters"), ("9lives", "starting with a letter"),
    ("a" * 60, "use lower-case letters")])
def test_bad_names_are_refused(tmp_path, name, message):
    out = _cli("new", "driver", name, cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and not list(tmp_path.iterdir())


def test_an_existing_directory_is_never_overwritten(tmp_path):
    (tmp_path / "thermo").mkdir()
    out = _cli("new", "driver", "thermo", cwd=tmp_path)
    assert out.returncode == 2 and "already exists" in out.stderr
