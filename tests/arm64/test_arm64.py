"""The aarch64 tier: this checkout as a Raspberry Pi OS 64-bit user gets it, run emulated.

Inside a cached Debian bookworm arm64 root (tests/arm64/arm64.py), the project is installed
from its sdist (wheel built there: ``_cnative.c`` compiled by the aarch64 gcc); then the
demo kernel runs a round, ``wasi-hw bench --quick`` runs, a subset of the kernel suite runs
(the native host-call path, the hostile guests, the fast paths, the AoT cache), the I2C
drivers agree on the simulated bus with their replays and references, and AoT entries are
checked across architectures. The drivers' ``.wasm`` come from the host's build.

The subset and its cost are explained in docs/design.md ("The aarch64 tier").
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

import arm64

#: emulated runs are slow; each run inside the root has its own timeout below this
pytestmark = [pytest.mark.arm64, pytest.mark.timeout(3600)]

#: the kernel suite inside the root (why these: docs/design.md, "The aarch64 tier")
KERNEL_SUBSET = [
    "tests/kernel/test_native.py",          # the C extension as compiled by the aarch64 gcc
    "tests/kernel/test_fastcall.py",        # the ctypes layouts of wasmtime's C API
    "tests/kernel/test_i2c_fast.py",
    "tests/kernel/test_rules.py",
    "tests/kernel/test_hostile.py",         # hostile guests
    "tests/kernel/test_default_deny.py",
    "tests/kernel/test_oracle.py",
    "tests/kernel/test_cache.py",           # the AoT cache with aarch64 .cwasm
    "tests/kernel/test_cache_seal.py",
    "tests/kernel/test_cache_target.py",
    "tests/kernel/test_signals.py",
]
#: left out inside the root, each for a reason that is not about aarch64
DESELECT = [
    # re-runs the whole kernel suite with the native path off: the host tier covers the fallback
    "tests/kernel/test_native.py::test_kernel_suite_passes_with_the_native_path_off",
    # assumes the host outruns the audit log's rate bound: emulated, it does not
    "tests/kernel/test_hostile.py::test_report_flood_is_bounded",
    # register sweeps of ~190 s each emulated; the same compiled tables are checked by
    # test_rules and test_i2c_fast here, and the sweeps run on the host
    "tests/kernel/test_oracle.py::test_device_sees_only_granted_registers",
]

DEMO = 'D="$(python -c "import wasi_hw, os; print(os.path.dirname(wasi_hw.__file__))")/demo"'


def _ok(r, what):
    assert r.returncode == 0, (
        f"{what} failed in the arm64 root:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    )
    return r


def test_installed_from_the_sdist_with_the_aarch64_compiler(in_root):
    r = _ok(in_root("python -c 'import platform, wasi_hw.kernel as k, wasi_hw.kernel._native as n;"
                    " print(platform.machine(), n.available(), k.host_target())'; "
                    "ls /opt/dist; pip show -f wasi-hw | grep -c _cnative"), "import")
    lines = r.stdout.split()
    assert lines[:3] == ["aarch64", "True", "aarch64-unknown-linux-gnu"], r.stdout
    assert any(n.endswith("linux_aarch64.whl") for n in lines), r.stdout


def test_demo_kernel_runs_a_round(in_root):
    r = _ok(in_root(f"{DEMO}; WASI_HW_CACHE=/tmp/aot wasi-hw kernel run "
                    "\"$D/drivers/demo.kernel.toml\" --rounds 1 --json", timeout=900), "demo")
    events = [json.loads(line) for line in r.stdout.splitlines()]
    reports = {e["driver"] for e in events if e["event"] == "report"}
    assert {"bme280", "sht3x", "tmp102", "lcd", "usb-echo", "hid-keyboard", "msc"} <= reports, (
        r.stderr
    )
    assert "quarantined" not in r.stderr


KERNEL_FIGURES = ("bme280_read", "i2c_write_read", "usb_bulk_in_64k", "usb_round_trip_32b",
                  "cold_start", "matmul_interp", "crc32_interp", "rss_per_driver",
                  "export_call_speedup", "host_call_speedup")


def test_bench_quick(in_root):
    """From the installed wheel (no checkout: bench takes the packaged demo's BME280)."""
    # the kernel's figures; the IMC figures need a nats-server, which a Pi running drivers
    # alone does not have (the host tier runs them)
    only = " ".join(f"--only {n}" for n in KERNEL_FIGURES)
    r = _ok(in_root(f"cd /tmp && wasi-hw bench --quick --json {only}", timeout=1800),
            "bench --quick")
    results = json.loads(r.stdout)
    assert "aarch64" in results["machine"]["platform"] and results["machine"]["fast_path"]
    names = {f["name"] for f in results["figures"]}
    assert {"bme280_read", "i2c_write_read", "cold_start"} <= names, names
    assert all(f["ratio"] > 0 for f in results["figures"]), results["figures"]
    out = arm64.REPO / ".cache" / "arm64-bench-quick.json"
    out.write_text(r.stdout)


def test_kernel_suite_subset(in_root):
    missing = [f for f in KERNEL_SUBSET if not (arm64.REPO / f).exists()]
    assert not missing, f"the arm64 subset names files that are gone: {missing}"
    deselect = " ".join(f"--deselect {d}" for d in DESELECT)
    files = " ".join(f"{arm64.SRV}/{f}" for f in KERNEL_SUBSET)
    r = in_root(f"cd /tmp && pytest -q -ra -p no:cacheprovider --rootdir={arm64.SRV} "
                f"-c {arm64.SRV}/pyproject.toml --timeout=900 --durations=15 {deselect} {files}",
                timeout=2400)
    tail = r.stdout[-6000:] + r.stderr[-2000:]
    assert r.returncode == 0, tail
    assert " passed" in r.stdout and " failed" not in r.stdout, tail
    print(r.stdout.strip().splitlines()[-1], file=sys.stderr)


@pytest.mark.parametrize("driver,reference", [("bme280", "bme280"), ("sht3x", "sht3x"),
                                              ("tmp102", None), ("hd44780", None)])
def test_i2c_driver_parity_on_the_simulated_bus(in_root, driver, reference):
    ref = f"--reference {reference}" if reference else ""
    manifest = "hd44780" if driver == "hd44780" else driver
    r = in_root(f"{DEMO}; WASI_HW_CACHE=/tmp/aot wasi-hw parity \"$D/build/wasm/{driver}.wasm\" "
                f"--manifest \"$D/drivers/{manifest}/manifest.toml\" --backends sim,replay "
                f"{ref} --json", timeout=900)
    _ok(r, f"parity {driver}")
    report = json.loads(r.stdout)
    assert report["ok"] is True, r.stdout
    assert [leg["backend"] for leg in report["legs"]][:2] == ["sim", "replay"]
    assert all(leg["readings"] and not leg["failure"] for leg in report["legs"]), r.stdout


def _entry(cache: Path) -> tuple[Path, Path]:
    (cwasm,) = cache.glob("*.cwasm")
    return cwasm, cwasm.with_suffix(".json")


def test_aot_entries_load_on_their_architecture_and_are_refused_on_another(in_root, tmp_path):
    """An aarch64 entry compiled in one process loads from the cache in the next (no
    compile); an x86_64 entry under the Pi's key, its sidecar claiming aarch64, is refused
    before wasmtime sees it; the aarch64 entry is refused on this (x86_64) host the same way."""
    from wasi_hw.kernel import AotCache, KernelEngine, host_target
    from wasi_hw.kernel._cache import cwasm_arch
    from wasi_hw.kernel._engine import target_arch

    HERE = target_arch(host_target())

    xfer = tmp_path / "xfer"
    xfer.mkdir()
    wasm = arm64.REPO / "build" / "wasm" / "bme280.wasm"
    script = """
import json, sys, time
from pathlib import Path
from wasi_hw.kernel import AotCache, KernelEngine
cache_dir, wasm = Path(sys.argv[1]), Path(sys.argv[2]).read_bytes()
with KernelEngine(target="aarch64-unknown-linux-gnu") as engine:
    got = AotCache(engine, cache_dir).load(wasm)
    print(json.dumps({"source": got.source, "why": got.why, "ms": got.seconds * 1000,
                      "fingerprint": engine.fingerprint, "config": engine.config}))
"""
    (xfer / "load.py").write_text(script)
    inside = "/srv/xfer"
    load = (f"python {inside}/load.py {inside}/aa /srv/wasi-hw/build/wasm/bme280.wasm")
    binds = [(xfer, inside)]
    first = json.loads(_ok(in_root(load, binds=binds), "compile").stdout)
    second = json.loads(_ok(in_root(load, binds=binds), "load").stdout)
    assert first["source"] == "compiled" and second["source"] == "cache", (first, second)
    assert first["config"]["target"] == "aarch64-unknown-linux-gnu"
    a_cwasm, a_sidecar = _entry(xfer / "aa")
    assert cwasm_arch(a_cwasm.read_bytes()[:20]) == "aarch64"

    # an x86_64 entry planted under the Pi's key, with a sidecar that lies about its target
    with KernelEngine() as host:
        x = AotCache(host, tmp_path / "x86").compile(wasm.read_bytes())
    assert cwasm_arch(x.cwasm.read_bytes()[:20]) == HERE
    planted = xfer / "planted"
    planted.mkdir(mode=0o700)
    data = x.cwasm.read_bytes()
    record = json.loads(a_sidecar.read_text())
    record.pop("cwasm_stat", None)
    record["cwasm_sha256"] = hashlib.sha256(data).hexdigest()
    (planted / a_cwasm.name).write_bytes(data)
    (planted / a_sidecar.name).write_text(json.dumps(record))
    r = json.loads(_ok(in_root(load.replace(f"{inside}/aa", f"{inside}/planted"), binds=binds),
                       "planted").stdout)
    assert r["source"] == "compiled"
    assert r["why"] == f"compiled for {HERE}, this engine is aarch64: refused, never loaded", r

    # and the aarch64 entry brought to this host, under this host's key, is refused here
    with KernelEngine() as host:
        cache = AotCache(host, tmp_path / "here")
        cwasm, sidecar = cache.paths(hashlib.sha256(wasm.read_bytes()).hexdigest())
        cache.root.mkdir(mode=0o700)
        record = json.loads(a_sidecar.read_text())
        record.pop("cwasm_stat", None)
        record["engine"] = host.config
        cwasm.write_bytes(a_cwasm.read_bytes())
        sidecar.write_text(json.dumps(record))
        got = cache.load(wasm.read_bytes())
    assert got.source == "compiled"
    assert got.why == f"compiled for aarch64, this engine is {HERE}: refused, never loaded"
