"""AoT cache: verified entries load, anything else is recompiled and never loaded."""

from __future__ import annotations

import json
import os

import pytest
import wasmtime

from wasi_hw.kernel._cache import AotCache

from kernel_testing import F42_WAT
from kernel_testing import run_f as run


def test_compile_then_load_from_cache(engine, wasm, tmp_path):
    cache = AotCache(engine, tmp_path)
    first = cache.load(wasm)
    assert first.source == "compiled" and first.why == "no entry"
    assert first.cwasm is not None and first.cwasm.exists()
    record = json.loads(first.cwasm.with_suffix(".json").read_text())
    assert record["wasm_sha256"] == first.wasm_sha256
    second = cache.load(wasm)
    assert second.source == "cache"
    assert run(engine, second.module) == 42


def test_corrupt_entry_is_recompiled_not_loaded(engine, wasm, tmp_path):
    cache = AotCache(engine, tmp_path)
    cwasm = cache.load(wasm).cwasm
    data = bytearray(cwasm.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cwasm.write_bytes(bytes(data))
    again = cache.load(wasm)
    assert again.source == "compiled" and again.why == "digest mismatch"
    assert run(engine, again.module) == 42
    assert cache.load(wasm).source == "cache"   # rewritten


def test_foreign_unrecorded_entry_is_not_loaded(engine, wasm, tmp_path):
    cache = AotCache(engine, tmp_path)
    digest = __import__("hashlib").sha256(wasm).hexdigest()
    cwasm, sidecar = cache.paths(digest)
    # a .cwasm of a *different* module planted under this module's key, without a sidecar
    other = wasmtime.Module(engine.engine, wasmtime.wat2wasm(F42_WAT.replace("42", "7")))
    tmp_path.mkdir(exist_ok=True)
    cwasm.write_bytes(bytes(other.serialize()))
    loaded = cache.load(wasm)
    assert loaded.source == "compiled" and loaded.why == "unrecorded entry"
    assert run(engine, loaded.module) == 42


def test_sidecar_for_other_engine_config_is_rejected(engine, wasm, tmp_path):
    cache = AotCache(engine, tmp_path)
    sidecar = cache.load(wasm).cwasm.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["engine"] = {**record["engine"], "epoch_interruption": False}
    sidecar.write_text(json.dumps(record))
    loaded = cache.load(wasm)
    assert loaded.source == "compiled" and loaded.why == "sidecar engine mismatch"


def test_sidecar_from_other_wasmtime_version_is_rejected(engine, wasm, tmp_path):
    cache = AotCache(engine, tmp_path)
    sidecar = cache.load(wasm).cwasm.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["wasmtime"] = "1.0.0"
    sidecar.write_text(json.dumps(record))
    assert cache.load(wasm).why == "sidecar wasmtime mismatch"


def test_invalid_wasm_raises(engine, tmp_path):
    with pytest.raises(wasmtime.WasmtimeError):
        AotCache(engine, tmp_path).load(b"\0asm\x01\0\0\0garbage")


def test_no_temp_files_left(engine, wasm, tmp_path):
    AotCache(engine, tmp_path).load(wasm)
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".cwasm", ".json"]


def test_cache_dir_is_private(engine, wasm, tmp_path):
    root = tmp_path / "aot" / "deeper"              # the parents are created too
    AotCache(engine, root).load(wasm)
    assert root.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702, 0o1777])
def test_shared_cache_dir_is_never_trusted(engine, wasm, tmp_path, mode):
    root = tmp_path / "aot"
    cache = AotCache(engine, root)
    cache.load(wasm)
    assert cache.load(wasm).source == "cache"       # private: the entry is used
    root.chmod(mode)                                 # group or others could have planted entries
    loaded = cache.load(wasm)
    assert loaded.source == "compiled" and "writable by others" in loaded.why
    assert run(engine, loaded.module) == 42
    before = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
    cache.compile(wasm)                              # nor is anything written there
    assert {p.name: p.stat().st_mtime_ns for p in root.iterdir()} == before


def test_cache_dir_of_another_user_is_never_trusted(engine, wasm, tmp_path, monkeypatch):
    """Real ownership when we may chown (root, as the CI runs); otherwise our uid is made to
    differ from the directory's."""
    root = tmp_path / "aot"
    cache = AotCache(engine, root)
    cache.load(wasm)
    if os.geteuid() == 0:
        os.chown(root, 65534, 65534)                 # nobody
    else:
        uid = root.stat().st_uid
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    loaded = cache.load(wasm)
    assert loaded.source == "compiled" and "owned by another user" in loaded.why


def test_interface_is_recorded_with_the_entry(engine, tmp_path):
    from wasi_hw.apps import _bench as B
    from wasi_hw.kernel._sandbox import module_interface
    wasm = B._driver_wasm("bme280")
    cache = AotCache(engine, tmp_path, describe=module_interface)
    first = cache.load(wasm)
    want = module_interface(first.module)
    assert first.source == "compiled" and first.interface == want
    assert ["wasi_i2c", "write_read", "func", ["i32"] * 7, ["i32"]] in want["imports"]
    assert want["exports"] == {"memory": ["memory", [], []], "init": ["func", [], ["i32"]],
                               "poll": ["func", [], ["i32"]]}
    record = json.loads(first.cwasm.with_suffix(".json").read_text())
    assert record["interface"] == want
    second = cache.load(wasm)
    assert second.source == "cache" and second.interface == want
    # an entry written without it (an older cache, or no describe) gets it made on load
    plain = AotCache(engine, tmp_path / "plain")
    assert plain.load(wasm).interface is None
    assert AotCache(engine, tmp_path / "plain", describe=module_interface).load(wasm).interface \
        == want


@pytest.mark.parametrize("bad", [None, {}, {"imports": "x", "exports": {}}, [1, 2],
                                 {"imports": [["wasi_i2c", "open"]], "exports": {}},
                                 {"imports": [], "exports": {"poll": ["func", [], "i32"]}}])
def test_sandbox_reads_the_module_when_the_interface_is_malformed(engine, tmp_path, bad):
    from wasi_hw.apps import _bench as B
    from wasi_hw.kernel import load_manifest
    from wasi_hw.kernel._sandbox import Sandbox, module_interface
    wasm = B._driver_wasm("bme280")
    manifest = load_manifest(B._root() / "drivers" / "bme280" / "manifest.toml")
    module = wasmtime.Module(engine.engine, wasm)
    good = Sandbox(engine, module, manifest, interface=module_interface(module))
    assert Sandbox(engine, module, manifest, interface=bad).used == good.used


def test_sandbox_checks_the_recorded_interface(engine):
    """The checks read the interface they are given (the cache's record of the module)."""
    from wasi_hw.apps import _bench as B
    from wasi_hw.kernel import LoadError, load_manifest
    from wasi_hw.kernel._sandbox import Sandbox, module_interface
    wasm = B._driver_wasm("bme280")
    manifest = load_manifest(B._root() / "drivers" / "bme280" / "manifest.toml")
    module = wasmtime.Module(engine.engine, wasm)
    iface = module_interface(module)
    wrong = {**iface, "exports": {**iface["exports"], "poll": ["func", ["i32"], ["i32"]]}}
    with pytest.raises(LoadError, match="'poll' must be a function"):
        Sandbox(engine, module, manifest, interface=wrong)
    extra = {**iface, "imports": iface["imports"] + [["env", "x", "func", [], []]]}
    with pytest.raises(LoadError, match="env.x"):
        Sandbox(engine, module, manifest, interface=extra)
