"""AoT cache sealing: a settled, verified entry loads without re-hashing; any change to the
file after the seal (in place or replaced) falls back to the digest check."""

from __future__ import annotations

import json
import os
import time

import wasmtime

from wasi_hw.kernel import _cache
from wasi_hw.kernel._cache import AotCache

from kernel_testing import F42_WAT
from kernel_testing import run_f as run


def _record(cwasm):
    return json.loads(cwasm.with_suffix(".json").read_text())


def test_fresh_entry_is_not_sealed(engine, wasm, tmp_path):
    cache = AotCache(engine, tmp_path)
    cwasm = cache.load(wasm).cwasm
    assert cache.load(wasm).source == "cache"      # verified by digest, but too young to seal
    assert "cwasm_stat" not in _record(cwasm)


def _sealed(engine, wasm, tmp_path, monkeypatch):
    monkeypatch.setattr(_cache, "SETTLE_S", 0.0)
    cache = AotCache(engine, tmp_path)
    cwasm = cache.load(wasm).cwasm
    assert cache.load(wasm).source == "cache"      # digest verified → sealed
    assert len(_record(cwasm)["cwasm_stat"]) == 5
    return cache, cwasm


def test_sealed_entry_loads_without_hashing(engine, wasm, tmp_path, monkeypatch):
    cache, cwasm = _sealed(engine, wasm, tmp_path, monkeypatch)
    calls = []
    real = _cache.hashlib.sha256
    monkeypatch.setattr(_cache.hashlib, "sha256", lambda b=b"": calls.append(len(b)) or real(b))
    loaded = cache.load(wasm)
    assert loaded.source == "cache" and run(engine, loaded.module) == 42
    assert calls == [len(wasm)]                    # the .wasm only, never the .cwasm


def test_sealed_entry_modified_in_place_is_recompiled(engine, wasm, tmp_path, monkeypatch):
    cache, cwasm = _sealed(engine, wasm, tmp_path, monkeypatch)
    time.sleep(0.05)                               # past any coarse timestamp tick
    data = bytearray(cwasm.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with open(cwasm, "r+b") as f:                  # same inode, same size
        f.write(bytes(data))
    again = cache.load(wasm)
    assert again.source == "compiled" and again.why == "digest mismatch"
    assert run(engine, again.module) == 42


def test_sealed_entry_replaced_is_recompiled(engine, wasm, tmp_path, monkeypatch):
    cache, cwasm = _sealed(engine, wasm, tmp_path, monkeypatch)
    other = wasmtime.Module(engine.engine, wasmtime.wat2wasm(F42_WAT.replace("42", "7")))
    planted = tmp_path / "planted"
    planted.write_bytes(bytes(other.serialize()))
    os.replace(planted, cwasm)                     # a foreign .cwasm under the sealed name
    again = cache.load(wasm)
    assert again.source == "compiled" and again.why == "digest mismatch"
    assert run(engine, again.module) == 42
