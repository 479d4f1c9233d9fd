"""AoT entries know the machine they were compiled for.

The engine fingerprint and the sidecar carry the resolved target triple; a `.cwasm` for
another architecture is refused before wasmtime sees a byte of it; a target this wasmtime
build cannot compile for is refused with one line, the probe that finds out runs in a child
(an unsupported backend aborts the process that asks). The positive half — an entry compiled
for aarch64 loading on aarch64 — runs in the arm64 tier (tests/arm64).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform

import pytest
import wasmtime

from wasi_hw import UserError
from wasi_hw.kernel import AotCache
from wasi_hw.kernel._cache import cwasm_arch, foreign_cwasm
from wasi_hw.kernel._engine import KernelEngine, check_target, host_target, target_arch

HERE = target_arch(host_target())
OTHER = "aarch64" if HERE != "aarch64" else "x86_64"
OTHER_TRIPLE = f"{OTHER}-unknown-linux-gnu"
_MACHINE = {"x86_64": 62, "aarch64": 183}


def test_host_target_names_this_machine(engine):
    assert HERE == {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(),
                                                               platform.machine().lower())
    assert engine.config["target"] == host_target() == engine.target
    assert engine.runs_here


def test_the_fingerprint_depends_on_the_target(engine):
    from wasi_hw.kernel import _engine

    blob = json.dumps({"wasmtime": _engine.WASMTIME_VERSION, **engine.config,
                       "target": OTHER_TRIPLE}, sort_keys=True)
    assert hashlib.sha256(blob.encode()).hexdigest()[:16] != engine.fingerprint


def test_cwasm_arch_reads_the_elf_machine(engine, wasm):
    data = bytes(wasmtime.Module(engine.engine, wasm).serialize())
    assert cwasm_arch(data[:20]) == HERE
    assert foreign_cwasm(data[:20], engine) is None
    assert cwasm_arch(b"\0asm" + bytes(16)) is None
    assert "no ELF header" in foreign_cwasm(b"junk" * 5, engine)


def _plant_foreign(cache: AotCache, wasm: bytes, *, sealed: bool) -> None:
    """Rewrite the entry as one compiled for OTHER would look, its sidecar consistent (as a
    cache directory copied from another machine's would be)."""
    loaded = cache.compile(wasm)
    data = bytearray(loaded.cwasm.read_bytes())
    data[18:20] = _MACHINE[OTHER].to_bytes(2, "little")
    loaded.cwasm.write_bytes(bytes(data))
    sidecar = loaded.cwasm.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["cwasm_sha256"] = hashlib.sha256(data).hexdigest()
    if sealed:
        st = os.stat(loaded.cwasm)
        record["cwasm_stat"] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    sidecar.write_text(json.dumps(record))


@pytest.mark.parametrize("sealed", [False, True])
def test_a_cwasm_for_another_architecture_is_refused_never_loaded(engine, wasm, tmp_path,
                                                                  monkeypatch, sealed):
    cache = AotCache(engine, tmp_path / "aot")
    _plant_foreign(cache, wasm, sealed=sealed)
    handed = []
    real = wasmtime.Module.deserialize
    monkeypatch.setattr(wasmtime.Module, "deserialize",
                        staticmethod(lambda e, b: handed.append(b) or real(e, b)))
    monkeypatch.setattr(wasmtime.Module, "deserialize_file",
                        staticmethod(lambda e, p: handed.append(p)))
    got = cache.load(wasm)
    assert handed == []                                   # wasmtime never saw the foreign bytes
    assert got.source == "compiled"
    assert got.why == f"compiled for {OTHER}, this engine is {HERE}: refused, never loaded"
    assert cwasm_arch(got.cwasm.read_bytes()[:20]) == HERE    # the entry was rewritten
    assert cache.load(wasm).source == "cache"


def test_unknown_target_is_one_line():
    why = check_target("bogus-thing")
    assert why is not None and why.startswith("unknown target 'bogus-thing'")
    with pytest.raises(UserError, match="unknown target"):
        KernelEngine(target="bogus-thing")


def test_a_foreign_target_compiles_only_or_is_refused_without_killing_us(wasm, tmp_path):
    """The x86_64 wheel has no aarch64 backend (asking aborts: the probe is a child); where a
    build has one, the engine compiles entries for that machine and refuses to load them."""
    why = check_target(OTHER_TRIPLE)
    if why is not None:
        assert f"has no {OTHER} compiler" in why
        with pytest.raises(UserError, match=f"no {OTHER} compiler"):
            KernelEngine(target=OTHER_TRIPLE)
        return
    with KernelEngine(target=OTHER_TRIPLE) as cross:
        assert not cross.runs_here and cross.config["target"] == OTHER_TRIPLE
        cache = AotCache(cross, tmp_path / "aot")
        out = cache.compile(wasm)
        assert cwasm_arch(out.cwasm.read_bytes()[:20]) == OTHER
        with pytest.raises(UserError, match="only compiles"):
            cache.load(wasm)
