"""Kernel snapshots: memory and every mutable global survive remove → add(restore=);
images are checked; a snapshot larger than the manifest's memory limit is refused."""

from __future__ import annotations

import dataclasses

import pytest
import wasmtime

from wasi_hw import HwError
from wasi_hw.fleet import write_counter
from wasi_hw.kernel import Backends, Kernel, LoadError, Snapshot, load_manifest, migratable


def _reports(events):
    return [e.data for e in events if e.kind == "report"]


def _poll(kernel, n):
    slot = next(iter(kernel.slots.values()))
    for _ in range(n):
        slot.next_due = 0
        kernel.step()


def test_migratable_exports_hidden_mutable_globals(tmp_path):
    write_counter(tmp_path)
    wasm = (tmp_path / "counter.wasm").read_bytes()
    module = wasmtime.Module(wasmtime.Engine(), migratable(wasm))
    assert "__wasihw_global_0" in [e.name for e in module.exports]
    # idempotent, and a module with nothing hidden comes back unchanged
    assert migratable(migratable(wasm)) == migratable(wasm)
    plain = wasmtime.wat2wasm('(module (memory (export "memory") 1))')
    assert migratable(plain) == bytes(plain)
    with pytest.raises(LoadError):
        migratable(b"not wasm")


def test_state_continues_after_restore(tmp_path):
    man = load_manifest(write_counter(tmp_path, pages=3, fill=True))
    wasm = migratable((tmp_path / "counter.wasm").read_bytes())
    events = []
    with Kernel(Backends(), on_event=events.append, cache_dir=tmp_path / "c") as k:
        k.add(man, wasm)
        k.start()
        _poll(k, 4)
        snap = k.snapshot("counter")
        k.remove("counter")
        assert "counter" not in k.slots
        image = snap.encode()
        back = Snapshot.decode(image)
        assert back == snap and back.pages == 3
        k.add(man, wasm, restore=back)
        k.start()
        _poll(k, 3)
    assert _reports(events) == [{"n": i, "g": i} for i in range(1, 8)]


def test_zero_pages_are_left_out_of_the_image(tmp_path):
    man = load_manifest(write_counter(tmp_path, pages=16))
    with Kernel(Backends(), cache_dir=tmp_path / "c") as k:
        k.add(man, migratable((tmp_path / "counter.wasm").read_bytes()))
        k.start()
        _poll(k, 1)
        snap = k.snapshot("counter")
    assert len(snap.memory) == 16 * 65536 and len(snap.encode()) < 2 * 65536


def test_snapshot_bounded_by_the_memory_limit(tmp_path):
    man = load_manifest(write_counter(tmp_path, pages=4))
    wasm = migratable((tmp_path / "counter.wasm").read_bytes())
    events = []
    with Kernel(Backends(), on_event=events.append, cache_dir=tmp_path / "c") as k:
        k.add(man, wasm)
        k.start()
        snap = k.snapshot("counter")
        k.remove("counter")
        small = dataclasses.replace(man, limits=dataclasses.replace(man.limits, memory_pages=4))
        big = Snapshot(snap.memory + bytes(65536), snap.globals)     # 5 pages
        k.add(small, wasm, restore=big)
        k.start()
        assert k.slots["counter"].state == "quarantined"
    assert any("above the manifest's limits.memory_pages = 4" in e.detail for e in events
               if e.kind == "state")


@pytest.mark.parametrize("image", [b"", b"WHSNAP1\n\x05\x00\x00\x00junk", b"XXXX" * 10])
def test_malformed_images_are_refused(image):
    with pytest.raises(LoadError):
        Snapshot.decode(image)


def _tally(kernel):
    return int.from_bytes(kernel.imc.call_bytes("caller", "tally", b"", 1.0), "little")


def test_offers_survive_a_restore_and_are_withdrawn_first(tmp_path):
    """A restored module serves what it offered (its init() is skipped), counting on; the
    source's offer is gone before the snapshot is taken (no call after it is lost)."""
    man = load_manifest(write_counter(tmp_path, service="tally"))
    wasm = migratable((tmp_path / "counter.wasm").read_bytes())
    with Kernel(Backends(), cache_dir=tmp_path / "c") as src, \
            Kernel(Backends(), cache_dir=tmp_path / "c") as dst:
        src.add(man, wasm)
        src.start()
        assert [_tally(src) for _ in range(3)] == [1, 2, 3]
        snap = src.snapshot("counter", withdraw=True)
        assert snap.offers == (("tally", 1024, 1096),)
        with pytest.raises(HwError) as err:
            _tally(src)                       # withdrawn before the snapshot
        assert err.value.kind == "unavailable"
        src.remove("counter")
        back = Snapshot.decode(snap.encode())
        assert back.offers == snap.offers
        dst.add(man, wasm, restore=back)
        dst.start()
        assert dst.slots["counter"].state == "running"
        assert dst.imc.services() == {"tally": "counter"}
        assert [_tally(dst) for _ in range(2)] == [4, 5]


def test_restored_offers_pass_the_offer_rule_again(tmp_path):
    """A snapshot's offers are checked like a fresh offer: a manifest that no longer lists
    the service refuses the restore (audited ``access``), and a serve buffer outside memory
    is refused too."""
    man = load_manifest(write_counter(tmp_path, service="tally"))
    wasm = migratable((tmp_path / "counter.wasm").read_bytes())
    with Kernel(Backends(), cache_dir=tmp_path / "c") as k:
        k.add(man, wasm)
        k.start()
        snap = k.snapshot("counter", withdraw=True)
        k.remove("counter")
        bare = dataclasses.replace(man, imc=dataclasses.replace(man.imc, offer=frozenset()))
        k.add(bare, wasm, restore=snap)
        k.start()
        slot = k.slots["counter"]
        assert slot.state == "quarantined" and "does not list 'tally'" in slot.last_error
        assert any(r["outcome"] == "access" and r["call"] == "wasi_imc.offer"
                   for r in k.audit.for_driver("counter"))
        assert k.imc.services() == {}
        k.remove("counter")
        outside = dataclasses.replace(snap, offers=(("tally", 65536 - 4, 64),))
        k.add(man, wasm, restore=outside)
        k.start()
        slot = k.slots["counter"]
        assert slot.state == "quarantined" and "outside memory" in slot.last_error
        assert k.imc.services() == {}
