"""The Rust → wasm build route (`wasi_hw.apps.build`, `wasi-hw build`).

Route selection runs against fake machines; the real build compiles the `hello` driver with
whatever toolchain this machine has, loads it with wasmtime and checks its imports against
the generated spec bindings and its exports against the driver ABI.
"""

from __future__ import annotations

import importlib
import json
import subprocess
from pathlib import Path

import pytest
import wasmtime

from wasi_hw import UserError
from wasi_hw.apps import _build
from wasi_hw.apps.cli import main

pytestmark = pytest.mark.wasm  # runs cargo

ROOT = Path(__file__).resolve().parents[1]


class FakeProbe(_build.Probe):
    def __init__(self, *, targets=None, which=(), files=(), globs=()):
        self.targets, self.paths, self.files, self.globs = (
            targets,
            dict(which),
            set(files),
            list(globs),
        )

    def rustup_targets(self):
        return None if self.targets is None else set(self.targets)

    def which(self, name):
        return self.paths.get(name)

    def exists(self, path):
        return path in self.files

    def glob(self, pattern):
        assert pattern == "/usr/lib/llvm-*/bin/wasm-ld"
        return list(self.globs)


# both routes link drivers with a 64 KiB wasm stack instead of rustc's 1 MiB
STACK = "-C link-arg=-zstack-size=65536"
DEBIAN = {"/usr/bin/cargo", "/usr/bin/rustc", "/usr/lib/rustlib/src/rust/library/core"}


def test_rustup_with_the_wasm_target_builds_plainly():
    tc = _build.select_toolchain(FakeProbe(
        targets={"x86_64-unknown-linux-gnu", "wasm32-unknown-unknown"},
        which={"cargo": "/home/u/.cargo/bin/cargo"}, files=DEBIAN))
    assert tc.route == "rustup"
    assert tc.cargo == "/home/u/.cargo/bin/cargo"
    assert tc.env == {"CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS": STACK} and tc.args == ()


def test_rustup_without_the_target_falls_back_to_debian_and_newest_wasm_ld():
    tc = _build.select_toolchain(FakeProbe(
        targets={"x86_64-unknown-linux-gnu"}, which={"cargo": "/root/.cargo/bin/cargo"},
        files=DEBIAN, globs=["/usr/lib/llvm-9/bin/wasm-ld", "/usr/lib/llvm-22/bin/wasm-ld",
                             "/usr/lib/llvm-19/bin/wasm-ld"]))
    assert tc.route == "debian"
    assert tc.cargo == "/usr/bin/cargo"
    assert tc.env == {"RUSTC": "/usr/bin/rustc", "RUSTC_BOOTSTRAP": "1",
                      "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER": "/usr/lib/llvm-22/bin/wasm-ld",
                      "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS": STACK}
    assert tc.args == ("-Zbuild-std=core,alloc",)


def test_wasm_ld_on_path_when_no_llvm_directory():
    tc = _build.select_toolchain(FakeProbe(files=DEBIAN, which={"wasm-ld": "/opt/bin/wasm-ld"}))
    assert tc.env["CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER"] == "/opt/bin/wasm-ld"


@pytest.mark.parametrize("probe, needle", [
    (FakeProbe(), "rustup target add wasm32-unknown-unknown"),
    (FakeProbe(targets={"x86_64-unknown-linux-gnu"}, files={"/usr/bin/rustc"}), "/usr/bin/cargo"),
    (FakeProbe(files={"/usr/bin/cargo", "/usr/bin/rustc"}), "rust-web-src"),
    (FakeProbe(files=DEBIAN), "lld-22"),
])
def test_missing_toolchain_is_one_clear_line(probe, needle):
    with pytest.raises(UserError) as info:
        _build.select_toolchain(probe)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["sdk-rust", "drivers/*"]\n')
    for rel, name, kind in [("sdk-rust", "wasi-hw-sdk", '["rlib"]'),
                            ("drivers/aaa", "wasi-hw-driver-aaa", '["cdylib", "rlib"]'),
                            ("drivers/bbb", "wasi-hw-driver-bbb", '["cdylib", "rlib"]')]:
        d = tmp_path / rel
        d.mkdir(parents=True)
        (d / "Cargo.toml").write_text(f'[package]\nname = "{name}"\n[lib]\ncrate-type = {kind}\n')
    (tmp_path / "drivers/notacrate").mkdir()
    return tmp_path


def test_crates_lists_sdk_and_drivers(tmp_path):
    ws = _workspace(tmp_path)
    found = _build.crates(ws)
    assert [(c.name, c.package, c.cdylib) for c in found] == [
        ("sdk-rust", "wasi-hw-sdk", False),
        ("aaa", "wasi-hw-driver-aaa", True),
        ("bbb", "wasi-hw-driver-bbb", True),
    ]
    assert _build.find_root(ws / "drivers" / "aaa") == ws.resolve()


class FakeCargo:
    """Stands in for `cargo build`: writes a .wasm per requested cdylib, answers JSON."""

    def __init__(self, ws: Path, fail=(), payload=b"\0asm\1\0\0\0"):
        self.ws, self.fail, self.payload, self.calls = ws, set(fail), payload, []

    def __call__(self, cmd, cwd, env, **kw):
        self.calls.append((cmd, env))
        lines = []
        packages = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-p"]
        for pkg in packages:
            name = pkg.removeprefix("wasi-hw-driver-")
            if pkg == "wasi-hw-sdk" or name in self.fail:
                continue
            out = self.ws / "target" / f"{pkg.replace('-', '_')}.wasm"
            out.parent.mkdir(exist_ok=True)
            out.write_bytes(self.payload + name.encode())
            lines.append(json.dumps({
                "reason": "compiler-artifact",
                "manifest_path": str(self.ws / "drivers" / name / "Cargo.toml"),
                "target": {"kind": ["cdylib", "rlib"], "name": pkg},
                "filenames": [str(out.with_suffix(".rlib")), str(out)],
            }))
        lines.append(json.dumps({"reason": "build-finished", "success": not self.fail}))
        return subprocess.CompletedProcess(cmd, 101 if self.fail else 0, "\n".join(lines), None)


TC = _build.Toolchain("debian", "/usr/bin/cargo", env={"RUSTC_BOOTSTRAP": "1"},
                      args=("-Zbuild-std=core,alloc",))


def test_one_cargo_call_copies_only_changed_modules(tmp_path):
    ws = _workspace(tmp_path)
    cargo = FakeCargo(ws)
    arts = _build.build(ws, toolchain=TC, run=cargo)
    cmd, env = cargo.calls[0]
    assert cmd[:4] == ["/usr/bin/cargo", "build", "--target", "wasm32-unknown-unknown"]
    assert "--release" in cmd and "-Zbuild-std=core,alloc" in cmd
    assert [cmd[i + 1] for i, a in enumerate(cmd) if a == "-p"] == [
        "wasi-hw-sdk", "wasi-hw-driver-aaa", "wasi-hw-driver-bbb"]
    assert env["RUSTC_BOOTSTRAP"] == "1"
    assert [(a.name, a.changed) for a in arts] == [("aaa", True), ("bbb", True)]
    out = ws / "build" / "wasm" / "aaa.wasm"
    assert out.read_bytes().endswith(b"aaa") and arts[0].size == out.stat().st_size
    before = out.stat().st_mtime_ns
    again = _build.build(ws, ["aaa"], toolchain=TC, run=cargo, release=False)
    assert [(a.name, a.changed) for a in again] == [("aaa", False)]
    assert out.stat().st_mtime_ns == before
    assert "--release" not in cargo.calls[1][0]
    cargo.payload = b"\0asm\1\0\0\0new"
    assert _build.build(ws, ["wasi-hw-driver-aaa"], toolchain=TC, run=cargo)[0].changed


def test_a_failing_crate_does_not_hide_the_others(tmp_path):
    ws = _workspace(tmp_path)
    with pytest.raises(_build.BuildError) as info:
        _build.build(ws, toolchain=TC, run=FakeCargo(ws, fail={"bbb"}))
    assert "bbb" in str(info.value) and "aaa" not in str(info.value)
    assert [a.name for a in info.value.artifacts] == ["aaa"]
    assert (ws / "build/wasm/aaa.wasm").is_file()


def test_unknown_crate_names_the_choices(tmp_path):
    ws = _workspace(tmp_path)
    with pytest.raises(UserError, match=r"no crate named nope \(have: sdk-rust, aaa, bbb\)"):
        _build.build(ws, ["nope"], toolchain=TC, run=FakeCargo(ws))


def test_cli_reports_bad_crate_in_one_line(capsys):
    assert main(["build", "--root", str(ROOT), "no-such-driver"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wasi-hw: no crate named no-such-driver") and err.count("\n") == 1


# -- the real thing ------------------------------------------------------------------------

def _spec_imports(module: str) -> dict:
    return importlib.import_module(f"wasi_hw._bindings._{module}").IMPORTS


I2C_DRIVERS = ("hello", "bme280", "sht3x", "tmp102", "hd44780")


@pytest.fixture(scope="module")
def built() -> dict[str, Path]:
    try:
        _build.select_toolchain()
    except UserError as err:
        pytest.skip(f"no wasm toolchain here: {err}")
    arts = _build.build(ROOT, I2C_DRIVERS)
    assert sorted(a.name for a in arts) == sorted(I2C_DRIVERS)
    return {a.name: a.path for a in arts}


@pytest.mark.parametrize("name", I2C_DRIVERS)
def test_real_build_matches_the_spec_and_the_driver_abi(built, name):
    path = built[name]
    assert path == ROOT / "build" / "wasm" / f"{name}.wasm"
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(path))
    imports = {(i.module, i.name): i.type for i in module.imports}
    assert {m for m, _ in imports} <= {"wasi_i2c", "wasi_driver", "wasi_imc"}
    assert {("wasi_i2c", "open"), ("wasi_driver", "report"), ("wasi_driver", "config_get")} <= set(
        imports
    )
    for (mod, fn), ftype in imports.items():
        params, results = _spec_imports(mod)[fn]
        assert tuple(str(t) for t in ftype.params) == params, (mod, fn)
        assert tuple(str(t) for t in ftype.results) == results, (mod, fn)
    exports = {e.name: e.type for e in module.exports}
    assert isinstance(exports["memory"], wasmtime.MemoryType)
    # linked with a 64 KiB stack (STACK_SIZE), not rustc's 1 MiB: stack + data fit in the
    # 4 pages the manifests grant (a 1 MiB stack alone needs 16 pages)
    assert exports["memory"].limits.min <= 4, exports["memory"].limits.min
    for fn in ("init", "poll"):
        assert [str(t) for t in exports[fn].params] == []
        assert [str(t) for t in exports[fn].results] == ["i32"]


def test_hello_uses_the_transaction_primitive(built):
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(built["hello"]))
    assert ("wasi_i2c", "transaction") in {(i.module, i.name) for i in module.imports}


def test_rebuild_copies_nothing_and_says_so(built, capsys):
    before = built["hello"].stat().st_mtime_ns
    assert main(["build", "--root", str(ROOT), "hello"]) == 0
    size = built["hello"].stat().st_size
    assert capsys.readouterr().out == f"build/wasm/hello.wasm  {size} bytes  (unchanged)\n"
    assert built["hello"].stat().st_mtime_ns == before


def test_stack_flags_are_added_to_the_users_target_rustflags(tmp_path, monkeypatch):
    ws = _workspace(tmp_path)
    cargo = FakeCargo(ws)
    var = "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS"
    tc = _build.Toolchain("rustup", "cargo", env={var: STACK})
    monkeypatch.setenv(var, "-C target-feature=+simd128")
    _build.build(ws, toolchain=tc, run=cargo)
    assert cargo.calls[0][1][var] == f"-C target-feature=+simd128 {STACK}"
    monkeypatch.delenv(var)
    _build.build(ws, toolchain=tc, run=cargo)
    assert cargo.calls[1][1][var] == STACK
