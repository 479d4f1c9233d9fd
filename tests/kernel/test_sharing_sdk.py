"""The Rust SDK's `share` module end to end: a driver crate (tests/kernel/share_e2e) built for
wasm32 with the project's own build path, run twice in one `Kernel` — as grantor
(`Grant::share` of a `SharedRegion`, written every poll, revoked at poll 3) and as grantee
(`share::granted_read` / `granted_len` / `granted_write`).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from wasi_hw import UserError
from wasi_hw.apps import _build
from wasi_hw.kernel import SharingPolicy

from kernel_testing import manifest, reports

REPO = Path(__file__).resolve().parents[2]
CRATE = Path(__file__).parent / "share_e2e"


@pytest.fixture(scope="module")
def e2e_wasm(tmp_path_factory) -> bytes:
    try:
        _build.select_toolchain()
    except UserError as err:
        pytest.skip(f"no wasm toolchain here: {err}")
    ws = tmp_path_factory.mktemp("ws")
    shutil.copy(REPO / "Cargo.toml", ws / "Cargo.toml")
    shutil.copy(REPO / "Cargo.lock", ws / "Cargo.lock")
    (ws / "sdk-rust").symlink_to(REPO / "sdk-rust", target_is_directory=True)
    crate = ws / "drivers" / "share-e2e"
    crate.mkdir(parents=True)
    shutil.copy(CRATE / "Cargo.toml.in", crate / "Cargo.toml")
    shutil.copy(CRATE / "lib.rs", crate / "lib.rs")
    mp = pytest.MonkeyPatch()
    mp.setenv("CARGO_NET_OFFLINE", "true")
    # its own target directory (no lock shared with `wasi-hw build`), kept between runs
    mp.setenv("CARGO_TARGET_DIR", str(REPO / "target" / "test-share-e2e"))
    try:
        [art] = _build.build(ws, ["share-e2e"])
    finally:
        mp.undo()
    return art.path.read_bytes()


def test_sdk_grant_read_revoke(kernel, e2e_wasm):
    def m(name, role, **sharing):
        base = manifest(name, interval_ms=5)
        return dataclasses.replace(
            base,
            config={"role": role, "peer": "lcd" if name == "sensor" else "sensor"},
            i2c=(),
            sharing=SharingPolicy(**sharing),
        )

    kernel.add(m("sensor", "grantor", grant_to={"lcd"}), e2e_wasm)
    kernel.add(m("lcd", "grantee", receive_from={"sensor"}), e2e_wasm)
    kernel.run(rounds=6)
    assert all(s.state == "running" and s.faults == 0 for s in kernel.slots.values())
    sensor = reports(kernel.events, "sensor")
    assert sensor[:6] == [{"n": n, "shared": n < 3} for n in range(1, 7)]
    seen = reports(kernel.events, "lcd")
    live = [r for r in seen if "seen" in r]
    assert live and all(r["len"] == 8 and r["write_denied"] for r in live)
    # zero-copy: each read sees the grantor's count as it is then (0 before its first poll),
    # only counts written while the grant was live, in order
    assert {r["seen"] for r in live} <= {0, 1, 2}
    assert [r["seen"] for r in live] == sorted(r["seen"] for r in live)
    # after the revoke at the grantor's third poll every read is denied, never live again
    first_denied = next(i for i, r in enumerate(seen) if r.get("denied"))
    assert seen[:first_denied] == live and len(seen) - first_denied >= 3
    assert all(r == {"denied": True} for r in seen[first_denied:])
    calls = [(e["call"], e["outcome"]) for e in kernel.audit.for_driver("lcd")]
    assert ("wasi_driver.granted_write", "access") in calls
    assert ("wasi_driver.granted_read", "access") in calls
    assert kernel.grants.grants() == []

