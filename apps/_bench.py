"""``wasi-hw bench``: the benchmark suite — every figure a ratio against a baseline measured
in the same run, in the same process (warm-up first), as the median of many rounds.

Contract:
- `run_bench(quick=False, only=None, progress=None)` returns a JSON-ready dict::

      {"machine": {...}, "quick": bool, "figures": [
         {"name", "title", "ratio", "goal", "goal_op" ("<=" | ">="), "met",
          "subject": {"label", "median_s", "unit", "per"}, "baseline": {...},
          "rounds", "note"}, ...]}

  ``ratio`` is subject / baseline for times (throughput figures: baseline time / subject
  time, so that higher is better, as the goal states it). Absolute times are medians per
  ``per`` (one poll, one call, one transfer, one start, one kernel run, one driver) on *this
  machine* (``machine`` names it). Figures in `FIGURES`; ``only`` selects some by name.
- Rounds: subject and baseline alternate round by round (ABAB…) after warm-up rounds of
  each, so drift (CPU frequency, other load) hits both alike; the median of each is taken.
  ``quick`` uses few rounds: it proves the suite runs, its numbers are not to be quoted.
- Subjects run the real paths: the kernel (`wasi_hw.kernel.Kernel`: sandbox, guard, shims,
  host modules, the fast host-call path of `kernel._fastcall`) against simulated backends;
  baselines are native Python on the same backend instance type (the reference drivers of
  `wasi_hw.apps.reference`, direct backend calls shaped like smbus2 / pyusb code).
- Memory figures run in child processes (``python -c``) and read ``VmRSS``.
- `format_table(results)` renders the human table; `plot_ratios(results, path)` draws each
  figure's ratio against its goal (matplotlib, Agg backend) as a PNG.
"""

from __future__ import annotations

import collections
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from wasi_hw import UserError

__all__ = ["FIGURES", "run_bench", "format_table", "measure_pair", "plot_ratios"]


# -- measurement ----------------------------------------------------------------------------

def measure_pair(subject: Callable[[], Any], baseline: Callable[[], Any], *, rounds: int,
                 warmup: int = 3, inner: int = 1) -> tuple[float, float]:
    """Median seconds per call of ``subject`` and ``baseline``: each round times ``inner``
    calls; rounds alternate between the two after ``warmup`` rounds of each."""
    clock = time.perf_counter
    for _ in range(warmup):
        for fn in (subject, baseline):
            for _ in range(inner):
                fn()
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        for fn, out in ((subject, a), (baseline, b)):
            t0 = clock()
            for _ in range(inner):
                fn()
            out.append((clock() - t0) / inner)
    return statistics.median(a), statistics.median(b)


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    goal: float
    goal_op: str          # "<=" or ">="
    anchor: str           # the published figure the goal is set against
    run: Callable[[bool], tuple[float, dict[str, Any], dict[str, Any], int, str]]


def _result(fig: Figure, ratio: float, subject: dict, baseline: dict, rounds: int,
            note: str = "") -> dict:
    met = ratio <= fig.goal if fig.goal_op == "<=" else ratio >= fig.goal
    return {"name": fig.name, "title": fig.title, "ratio": ratio, "goal": fig.goal,
            "goal_op": fig.goal_op, "met": bool(met), "anchor": fig.anchor,
            "subject": subject, "baseline": baseline, "rounds": rounds, "note": note}


def _side(label: str, seconds: float, per: str) -> dict:
    return {"label": label, "median_s": seconds, "per": per}


# -- shared set-up --------------------------------------------------------------------------

def _root() -> Path:
    """The checkout (``drivers/``, ``build/wasm/``); an installed wheel has no checkout but
    carries the same layout for its demo (``wasi_hw/demo/``), which has what bench uses."""
    from ._build import find_root
    try:
        return find_root(Path(__file__).resolve().parent)
    except UserError:
        demo = Path(__file__).resolve().parents[1] / "demo"
        if (demo / "drivers" / "bme280" / "manifest.toml").is_file():
            return demo
        raise


def _driver_wasm(name: str) -> bytes:
    """``build/wasm/<name>.wasm``, built with `wasi-hw build` if missing."""
    root = _root()
    path = root / "build" / "wasm" / f"{name}.wasm"
    if not path.exists():
        from ._build import build
        build(root, [name])
    return path.read_bytes()


class _Running:
    """One driver started under a real `Kernel` against the given backends."""

    def __init__(self, manifest: Any, wasm: bytes | bytearray, backends: Any,
                 cache_dir: str) -> None:
        from wasi_hw.kernel import Kernel

        self.reports: collections.deque[Any] = collections.deque(maxlen=4)   # the newest
        self.kernel = Kernel(backends, cache_dir=cache_dir, on_event=self._event)
        self.slot = self.kernel.add(manifest, bytes(wasm))
        self.kernel.start()
        if self.slot.state != "running" or self.slot.instance is None:
            raise UserError(f"bench: driver {manifest.name} did not start: {self.slot.last_error}")
        self.instance = self.slot.instance

    def _event(self, ev: Any) -> None:
        if ev.kind == "report":
            self.reports.append(ev.data)
        elif ev.kind == "error":
            raise UserError(f"bench: driver error {ev.detail}")

    def poll(self) -> None:
        code = self.instance.call("poll")
        if code != 0:
            raise UserError(f"bench: poll returned {code}")

    def close(self) -> None:
        self.kernel.close()


def _manifest(name: str, *, i2c: tuple = (), usb: tuple = (), **limits: int) -> Any:
    from wasi_hw.kernel import Limits, Manifest
    # the deadline only stops a runaway: generous, so a slow machine (an emulated or small
    # ARM board) measures instead of faulting
    limits.setdefault("deadline_ms", 10_000)
    return Manifest(name=name, wasm=Path(f"{name}.wasm"), config={"bus": "i2c-1",
                                                                  "address": "0x76"},
                    i2c=i2c, usb=usb, limits=Limits(**limits), poll_interval_ms=1)


# -- the figures ----------------------------------------------------------------------------

def _bench_bme280(quick: bool) -> tuple[float, dict, dict, int, str]:
    from wasi_hw.host import SimI2cBackend
    from wasi_hw.host.devices import Bme280
    from wasi_hw.kernel import Backends, load_manifest

    from .reference import Bme280Driver

    wasm = _driver_wasm("bme280")
    manifest = load_manifest(_root() / "drivers" / "bme280" / "manifest.toml")
    sim_w = SimI2cBackend(["i2c-1"])
    sim_w.attach("i2c-1", 0x76, Bme280())
    sim_n = SimI2cBackend(["i2c-1"])
    sim_n.attach("i2c-1", 0x76, Bme280())
    native = Bme280Driver(sim_n, "i2c-1", 0x76)
    native.init()
    with tempfile.TemporaryDirectory() as cache:
        run = _Running(manifest, wasm, Backends(i2c=sim_w, clock=sim_w.clock), cache)
        try:
            run.poll()
            want = native.poll()
            if run.reports[-1] != want:
                raise UserError(f"bench: wasm and native readings differ: {run.reports[-1]} "
                                f"vs {want}")
            rounds = 15 if quick else 300
            s, b = measure_pair(run.poll, native.poll, rounds=rounds, inner=5 if quick else 20)
        finally:
            run.close()
    return s / b, _side("wasm driver poll (kernel)", s, "poll"), \
        _side("reference driver poll (Python)", b, "poll"), rounds, ""


_I2C_WAT = """
(module
  (import "wasi_i2c" "open" (func $open (param i32 i32 i32) (result i32)))
  (import "wasi_i2c" "write_read" (func $wr (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "i2c-1")
  (data (i32.const 16) "\\d0")
  (global $bus (mut i32) (i32.const 0))
  (func (export "init") (result i32) (local $e i32)
    (local.set $e (call $open (i32.const 0) (i32.const 5) (i32.const 8)))
    (if (local.get $e) (then (return (local.get $e))))
    (global.set $bus (i32.load (i32.const 8)))
    (i32.const 0))
  (func (export "poll") (result i32) (local $n i32) (local $e i32)
    (local.set $n (i32.const {n}))
    (loop $next
      (local.set $e (call $wr (global.get $bus) (i32.const 0x76) (i32.const 0)
                              (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 1)))
      (if (local.get $e) (then (return (local.get $e))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $next (local.get $n)))
    (i32.const 0))
)
"""


def _bench_i2c_call(quick: bool) -> tuple[float, dict, dict, int, str]:
    import wasmtime

    from wasi_hw.host import Read, SimI2cBackend, Write
    from wasi_hw.host.devices import Bme280
    from wasi_hw.kernel import Backends, I2cGrant

    n = 200
    wasm = wasmtime.wat2wasm(_I2C_WAT.replace("{n}", str(n)))
    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", 0x76, Bme280())
    manifest = _manifest("bench-i2c", i2c=(I2cGrant("i2c-1", frozenset({0x76})),),
                         memory_pages=1)
    ops: list[Read | Write] = [Write(b"\xd0"), Read(1)]
    transaction = sim.transaction

    def native() -> None:
        for _ in range(n):
            transaction("i2c-1", 0x76, False, ops)

    with tempfile.TemporaryDirectory() as cache:
        run = _Running(manifest, wasm, Backends(i2c=sim, clock=sim.clock), cache)
        try:
            if transaction("i2c-1", 0x76, False, ops) != [b"\x60"]:
                raise UserError("bench: the simulated BME280 did not answer its chip id")
            rounds = 7 if quick else 60
            s, b = measure_pair(run.poll, native, rounds=rounds, warmup=2)
            # where the difference goes: the same call entered at each layer below the guest
            mem = run.instance.mem
            bus, region = mem.read_u32(8), mem.region(32, 1)
            guard, host = run.instance.guards["wasi_i2c"], run.slot.hosts["wasi_i2c"]
            layers = {}
            for label, fn in (("guard", guard.write_read), ("host", host.write_read)):
                def loop(fn=fn) -> None:
                    for _ in range(n):
                        fn(bus, 0x76, 0, b"\xd0", region)
                layers[label] = measure_pair(loop, native, rounds=rounds, warmup=2)[0] / n
        finally:
            run.close()
    subject = _side("write_read from wasm (kernel)", s / n, "call")
    subject["layers_s"] = {"wasm (fast host call + shim + guard + host + backend)": s / n,
                           "kernel guard + host + backend": layers["guard"],
                           "I2cHost + backend": layers["host"], "backend": b / n}
    return s / b, subject, _side("backend.transaction from Python", b / n, "call"), rounds, \
        f"{n} write_read calls of [D0] → 1 byte per round"


def _usb_wat(mode: str, n: int, length: int) -> str:
    """A driver opening the first granted device; poll = n bulk IN of ``length`` bytes
    ("in") or n round trips of OUT then IN ``length`` bytes ("rt")."""
    xfer = {
        "in": "(local.set $e (call $bulk (global.get $h) (i32.const 0x81) (i32.const 4096) "
              f"(i32.const {length}) (i32.const 1000) (i32.const 40)))"
              "(if (local.get $e) (then (return (local.get $e))))",
        "rt": "(local.set $e (call $bulk (global.get $h) (i32.const 0x01) (i32.const 4096) "
              f"(i32.const {length}) (i32.const 1000) (i32.const 40)))"
              "(if (local.get $e) (then (return (local.get $e))))"
              "(local.set $e (call $bulk (global.get $h) (i32.const 0x81) (i32.const 8192) "
              f"(i32.const {length}) (i32.const 1000) (i32.const 40)))"
              "(if (local.get $e) (then (return (local.get $e))))",
    }[mode]
    return f"""
(module
  (import "wasi_usb" "list_devices" (func $list (param i32 i32 i32 i32) (result i32)))
  (import "wasi_usb" "open" (func $open (param i32 i32) (result i32)))
  (import "wasi_usb" "claim_interface" (func $claim (param i32 i32) (result i32)))
  (import "wasi_usb" "bulk_transfer" (func $bulk (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 3)
  (global $h (mut i32) (i32.const 0))
  (func (export "init") (result i32) (local $e i32)
    (local.set $e (call $list (i32.const 0) (i32.const 64) (i32.const 4) (i32.const 32)))
    (if (local.get $e) (then (return (local.get $e))))
    (if (i32.eqz (i32.load (i32.const 32))) (then (return (i32.const 99))))
    (local.set $e (call $open (i32.load (i32.const 64)) (i32.const 36)))
    (if (local.get $e) (then (return (local.get $e))))
    (global.set $h (i32.load (i32.const 36)))
    (call $claim (global.get $h) (i32.const 0)))
  (func (export "poll") (result i32) (local $n i32) (local $e i32)
    (local.set $n (i32.const {n}))
    (loop $next
      {xfer}
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $next (local.get $n)))
    (i32.const 0))
)
"""


def _source_device() -> Any:
    """A high-speed vendor device whose bulk IN endpoint 0x81 always has data (a stream
    source: ADC, camera); bulk OUT 0x01 swallows everything."""
    from wasi_hw.host.usbdevices import (
        BULK,
        Configuration,
        DeviceDescriptor,
        Endpoint,
        Interface,
        UsbDeviceModel,
    )

    class SourceDevice(UsbDeviceModel):
        speed = "high"
        VENDOR_ID, PRODUCT_ID = 0x1209, 0x00B0

        def __init__(self) -> None:
            iface = Interface(0, 0xFF, 0, 0, (Endpoint(0x01, BULK, 512), Endpoint(0x81, BULK, 512)))
            super().__init__(DeviceDescriptor(self.VENDOR_ID, self.PRODUCT_ID, bcd_device=0x0100),
                             [Configuration(1, (iface,))])
            self.data = bytes(range(256)) * 256

        def out(self, endpoint: int, data: bytes) -> int:
            return len(data)

        def in_(self, endpoint: int, max_len: int) -> bytes | None:
            return self.data[:max_len]

    return SourceDevice()


def _bench_usb(mode: str, quick: bool) -> tuple[float, float, dict, dict, int, str]:
    """(subject s per transfer, baseline s per transfer, …) for "in" (64 KiB) or "rt" (32 B)."""
    import array

    import wasmtime

    from wasi_hw.host import SimUsbBackend
    from wasi_hw.host.usbdevices import EchoDevice
    from wasi_hw.kernel import Backends, UsbGrant

    length, n = (65536, 20) if mode == "in" else (32, 100)

    def model() -> Any:
        return _source_device() if mode == "in" else EchoDevice()

    # two buses of the same kind, one device each: a claimed interface has one owner (usbfs)
    guest_bus, native_bus = SimUsbBackend([model()]), SimUsbBackend([model()])
    (info,) = native_bus.devices()
    manifest = _manifest(f"bench-usb-{mode}",
                         usb=(UsbGrant(info.vendor_id, info.product_id,
                                       interfaces=frozenset({0}),
                                       endpoints=frozenset({0x01, 0x81})),),
                         memory_pages=3, max_transfer=65536, deadline_ms=1000)
    wasm = wasmtime.wat2wasm(_usb_wat(mode, n, length))

    # native, shaped like pyusb code: find, open, claim, then dev.read / dev.write
    handle = native_bus.open(info.id)
    native_bus.claim_interface(handle, 0)
    payload = bytes(range(32))
    bulk_in, bulk_out = native_bus.bulk_in, native_bus.bulk_out

    if mode == "in":
        # pyusb's fastest form, dev.read(ep, buffer): into one preallocated buffer. (A fresh
        # 64 KiB array per read, dev.read(ep, n), costs 5.5 or 16 µs depending on whether
        # glibc has just trimmed its heap: a baseline that flips between runs.)
        view = memoryview(array.array("B", bytes(length)))

        def native() -> None:
            for _ in range(n):
                data = bulk_in(handle, 0x81, length, 1000)
                m = len(data)
                view[:m] = data
                if m != length:
                    raise UserError("bench: short bulk IN")
    else:
        def native() -> None:
            for _ in range(n):
                bulk_out(handle, 0x01, payload, 1000)
                if len(array.array("B", bulk_in(handle, 0x81, length, 1000))) != length:
                    raise UserError("bench: short echo")

    with tempfile.TemporaryDirectory() as cache:
        run = _Running(manifest, wasm, Backends(usb=guest_bus), cache)
        try:
            rounds = 7 if quick else 80
            s, b = measure_pair(run.poll, native, rounds=rounds, warmup=2)
        finally:
            run.close()
    what = "64 KiB bulk IN" if mode == "in" else "32 B bulk OUT + 32 B bulk IN"
    shape = "pyusb-shaped Python, read into a preallocated buffer" if mode == "in" \
        else "pyusb-shaped Python"
    return s / n, b / n, _side(f"{what} from wasm (kernel)", s / n, "transfer"), \
        _side(f"{what}, {shape}", b / n, "transfer"), rounds, \
        f"{n} transfers per round, SimUsbBackend each side"


def _bench_usb_in(quick: bool) -> tuple[float, dict, dict, int, str]:
    s, b, subj, base, rounds, note = _bench_usb("in", quick)
    subj["throughput_mib_s"] = 65536 / s / (1 << 20)
    base["throughput_mib_s"] = 65536 / b / (1 << 20)
    return b / s, subj, base, rounds, note + "; ratio = wasm throughput / native throughput"


def _bench_usb_rt(quick: bool) -> tuple[float, dict, dict, int, str]:
    s, b, subj, base, rounds, note = _bench_usb("rt", quick)
    return s / b, subj, base, rounds, note


def _bench_cold_start(quick: bool) -> tuple[float, dict, dict, int, str]:
    import wasmtime

    from wasi_hw.host import SimI2cBackend
    from wasi_hw.host.devices import Bme280
    from wasi_hw.kernel import (
        AotCache,
        AuditLog,
        Backends,
        KernelEngine,
        Sandbox,
        load_manifest,
        make_hosts,
        module_interface,
    )

    wasm = _driver_wasm("bme280")
    manifest = load_manifest(_root() / "drivers" / "bme280" / "manifest.toml")
    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", 0x76, Bme280())
    backends = Backends(i2c=sim, clock=sim.clock)
    audit = AuditLog()
    with tempfile.TemporaryDirectory() as cache_dir, KernelEngine() as engine:
        cache = AotCache(engine, cache_dir, describe=module_interface)    # as the kernel's
        cache.compile(wasm)
        if not quick:
            # a cache entry is sealed once it has settled (kernel/_cache.py): as every entry
            # written by an earlier run is; the first load after that verifies and seals it
            from wasi_hw.kernel import SETTLE_S
            time.sleep(SETTLE_S + 0.05)
            cache.load(wasm)

        def start(module: wasmtime.Module, interface: Any = None) -> None:
            hosts = make_hosts(manifest, backends, report_sink=lambda r: None,
                               log_sink=lambda lvl, m: None)
            Sandbox(engine, module, manifest, interface=interface).start(hosts, audit)

        def from_wasm() -> None:            # the module's interface is read from it
            start(wasmtime.Module(engine.engine, wasm))

        def from_cache() -> None:           # the interface recorded with the entry
            loaded = cache.load(wasm)
            if loaded.source != "cache" or loaded.interface is None:
                raise UserError(f"bench: AoT cache miss ({loaded.why})")
            start(loaded.module, loaded.interface)

        rounds = 5 if quick else 40
        s, b = measure_pair(from_wasm, from_cache, rounds=rounds, warmup=2)
    return s / b, _side("compile .wasm + link + instantiate", s, "start"), \
        _side("AoT cache load + link + instantiate", b, "start"), rounds, \
        f"bme280.wasm ({len(wasm)} bytes), kernel engine settings" + \
        ("" if quick else "; cache entry sealed (settled, as any entry from an earlier run)")


_CRC_WAT = """
(module
  (memory (export "memory") 2)
  (func (export "crc32") (param $n i32) (result i32)
    (local $crc i32) (local $i i32) (local $k i32)
    (local.set $crc (i32.const -1))
    (block $done (loop $outer
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $crc (i32.xor (local.get $crc) (i32.load8_u (local.get $i))))
      (local.set $k (i32.const 8))
      (loop $inner
        (local.set $crc (i32.xor (i32.shr_u (local.get $crc) (i32.const 1))
          (i32.and (i32.const 0xEDB88320)
                   (i32.sub (i32.const 0) (i32.and (local.get $crc) (i32.const 1))))))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br_if $inner (local.get $k)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $outer)))
    (i32.xor (local.get $crc) (i32.const -1)))
)
"""


def _kernel_entry(target: str | None, wat: str, data: bytes, export: str) -> Callable[..., Any]:
    """``export`` of ``wat`` in an engine of its own for ``target`` (None: Cranelift AoT,
    "pulley64": the Pulley interpreter) with ``data`` at address 0 of its memory, entered
    through the kernel's call path (unchecked where available): ~1 µs, so the figure is the
    engines' speed, not the Python → wasm entry cost."""
    import wasmtime

    from wasi_hw.kernel import HostCalls

    cfg = wasmtime.Config()
    if target:
        cfg.target = target
    engine = wasmtime.Engine(cfg)          # one engine per target: nothing shared
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, wasmtime.Module(engine, wat), []).exports(store)
    cast(wasmtime.Memory, exports["memory"]).write(store, data, 0)
    return HostCalls(wasmtime.Linker(engine)).caller(store, cast(wasmtime.Func, exports[export]))


def _interp_pair(quick: bool, run: Callable[[str | None], Callable[[], None]]) -> \
        tuple[float, float, int]:
    """(Pulley seconds, AoT seconds, rounds) of one compute kernel, ``run(target)`` making
    a checked run."""
    pulley, native = run("pulley64"), run(None)
    rounds = 3 if quick else 15
    s, b = measure_pair(pulley, native, rounds=rounds, warmup=1)
    return s, b, rounds


def _bench_crc32(quick: bool) -> tuple[float, dict, dict, int, str]:
    size = 65536
    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    want = zlib.crc32(data)

    def make(target: str | None) -> Callable[[], None]:
        crc = _kernel_entry(target, _CRC_WAT, data, "crc32")

        def run() -> None:
            got = crc(size) & 0xFFFFFFFF
            if got != want:
                raise UserError(f"bench: CRC32 {got:#x} != zlib's {want:#x} ({target})")

        return run

    s, b, rounds = _interp_pair(quick, make)
    return s / b, _side("CRC32 64 KiB, Pulley interpreter", s, "run"), \
        _side("CRC32 64 KiB, Cranelift AoT", b, "run"), rounds, \
        "bitwise CRC32 checked against zlib"


_MM_N = 64
_MM_WAT = f"""
(module
  (memory (export "memory") 1)
  ;; C = A x B for {_MM_N}x{_MM_N} i32 matrices (A at 0, B after it, C after B); returns the
  ;; wrapping sum of C
  (func (export "matmul") (result i32)
    (local $i i32) (local $j i32) (local $k i32) (local $acc i32) (local $sum i32)
    (loop $li
      (local.set $j (i32.const 0))
      (loop $lj
        (local.set $acc (i32.const 0))
        (local.set $k (i32.const 0))
        (loop $lk
          (local.set $acc (i32.add (local.get $acc) (i32.mul
            (i32.load (i32.shl (i32.add (i32.mul (local.get $i) (i32.const {_MM_N}))
                                        (local.get $k)) (i32.const 2)))
            (i32.load offset={_MM_N * _MM_N * 4}
              (i32.shl (i32.add (i32.mul (local.get $k) (i32.const {_MM_N})) (local.get $j))
                       (i32.const 2))))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $lk (i32.lt_u (local.get $k) (i32.const {_MM_N}))))
        (i32.store offset={2 * _MM_N * _MM_N * 4}
          (i32.shl (i32.add (i32.mul (local.get $i) (i32.const {_MM_N})) (local.get $j))
                   (i32.const 2))
          (local.get $acc))
        (local.set $sum (i32.add (local.get $sum) (local.get $acc)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $lj (i32.lt_u (local.get $j) (i32.const {_MM_N}))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $li (i32.lt_u (local.get $i) (i32.const {_MM_N}))))
    (local.get $sum))
)
"""


def _bench_matmul(quick: bool) -> tuple[float, dict, dict, int, str]:
    import struct

    n = _MM_N
    a = [(i * 7 + 3) % 251 - 125 for i in range(n * n)]
    b = [(i * 13 + 5) % 241 - 120 for i in range(n * n)]
    want = sum(a[i * n + k] * b[k * n + j] for i in range(n) for j in range(n)
               for k in range(n))
    want = (want + (1 << 31)) % (1 << 32) - (1 << 31)      # i32, wrapping
    data = struct.pack(f"<{2 * n * n}i", *a, *b)

    def make(target: str | None) -> Callable[[], None]:
        mm = _kernel_entry(target, _MM_WAT, data, "matmul")

        def run() -> None:
            got = mm()
            if got != want:
                raise UserError(f"bench: matmul sum {got} != {want} ({target})")

        return run

    s, b_, rounds = _interp_pair(quick, make)
    return s / b_, _side(f"{n}x{n} i32 matmul, Pulley interpreter", s, "run"), \
        _side(f"{n}x{n} i32 matmul, Cranelift AoT", b_, "run"), rounds, \
        "result checked against Python's"


_RSS_KERNEL = r"""
import json, sys, tempfile, dataclasses
from pathlib import Path
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
from wasi_hw.host import SimI2cBackend
from wasi_hw.host.devices import Bme280
from wasi_hw.kernel import Backends, Kernel, load_manifest
k = int(sys.argv[1]); root = Path(sys.argv[2])
wasm = (root / "build/wasm/bme280.wasm").read_bytes()
base = load_manifest(root / "drivers/bme280/manifest.toml")
sim = SimI2cBackend(["i2c-1"]); sim.attach("i2c-1", 0x76, Bme280())
with tempfile.TemporaryDirectory() as cache:
    kernel = Kernel(Backends(i2c=sim, clock=sim.clock), cache_dir=cache)
    def add(i):
        slot = kernel.add(dataclasses.replace(base, name=f"bme280-{i}"), wasm)
        kernel.start()
        assert slot.state == "running", slot.last_error
        slot.instance.call("poll")
    add(0)
    one = rss()
    for i in range(1, k + 1):
        add(i)
    many = rss()
    kernel.close()
print(json.dumps({"one": one, "many": many, "k": k}))
"""

_RSS_REFERENCE = r"""
import json
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
from wasi_hw.host import SimI2cBackend
from wasi_hw.host.devices import Bme280
from wasi_hw.apps.reference import Bme280Driver
sim = SimI2cBackend(["i2c-1"]); sim.attach("i2c-1", 0x76, Bme280())
d = Bme280Driver(sim, "i2c-1", 0x76); d.init(); d.poll()
print(json.dumps({"rss": rss()}))
"""


def _child_json(code: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"bench: memory child failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bench_rss(quick: bool) -> tuple[float, dict, dict, int, str]:
    _driver_wasm("bme280")
    root = str(_root())
    k = 4 if quick else 16
    reps = 1 if quick else 3
    per_driver = statistics.median(
        (r["many"] - r["one"]) / r["k"] for r in (_child_json(_RSS_KERNEL, str(k), root)
                                                 for _ in range(reps)))
    per_process = statistics.median(_child_json(_RSS_REFERENCE)["rss"] for _ in range(reps))
    return per_driver / per_process, \
        {"label": "RSS per extra bme280 driver in one kernel", "bytes": per_driver,
         "per": "driver"}, \
        {"label": "RSS of an extra Python process running the reference driver",
         "bytes": per_process, "per": "process"}, reps, \
        f"{k} extra drivers; median of {reps} child runs"


def _bench_export_call(quick: bool) -> tuple[float, dict, dict, int, str]:
    """Informational: entering ``poll`` as the kernel does (the native entry where built, else
    the ctypes unchecked call) vs `Func.__call__`; the ctypes unchecked call is kept as a
    third figure."""
    import wasmtime

    from wasi_hw.host import SimI2cBackend
    from wasi_hw.host.devices import Bme280
    from wasi_hw.kernel import Backends, HostCalls, fast_path_available, load_manifest, native

    if not fast_path_available():
        raise UserError("bench: the fast path is unavailable here (wasmtime version)")
    wasm = _driver_wasm("bme280")
    manifest = load_manifest(_root() / "drivers" / "bme280" / "manifest.toml")
    sim = SimI2cBackend(["i2c-1"])
    sim.attach("i2c-1", 0x76, Bme280())
    with tempfile.TemporaryDirectory() as cache:
        run = _Running(manifest, wasm, Backends(i2c=sim, clock=sim.clock), cache)
        try:
            inst = run.instance
            store = inst.store
            func = cast(wasmtime.Func, inst.instance.exports(store)["poll"])
            far = 1 << 40
            store.set_epoch_deadline(far)   # every side: no per-call deadline upkeep
            ctypes_call = HostCalls(None, fast=True).caller(store, func)  # type: ignore[arg-type]
            entry = native.entry(store, func)
            fast = (lambda: entry(far)) if entry is not None else ctypes_call
            label = "native entry" if entry is not None else "wasmtime_func_call_unchecked"

            def checked() -> None:
                func(store)

            rounds = 15 if quick else 300
            inner = 5 if quick else 20
            with inst.active():     # host calls go to this instance's shims (as in `call`)
                s, b = measure_pair(fast, checked, rounds=rounds, inner=inner)
                c, _ = measure_pair(ctypes_call, checked, rounds=rounds // 3 + 1, inner=inner)
        finally:
            run.close()
    subject = _side(f"poll entered via {label}", s, "poll")
    subject["ctypes_unchecked_s"] = c
    return b / s, subject, _side("poll entered via Func.__call__", b, "poll"), rounds, \
        "speed-up of the kernel's call into wasm (informational; ratio = checked / kernel's)"


def _bench_host_call(quick: bool) -> tuple[float, dict, dict, int, str]:
    """Informational: one wasm → Python host call as the kernel makes it (the native
    trampoline where built, else the ctypes unchecked callback) vs `Linker.define_func`;
    the ctypes callback is kept as a third figure."""
    import wasmtime

    from wasi_hw.kernel import HostCalls, native

    wat = """(module (import "h" "f" (func $f (param i32 i32) (result i32)))
      (func (export "loop") (param $n i32) (result i32) (local $acc i32)
        (loop $l (local.set $acc (i32.add (local.get $acc) (call $f (local.get $n) (i32.const 1))))
          (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (local.get $n)))
        (local.get $acc)))"""
    n = 2000
    key = ("h-bench", "f")
    table = {key: lambda a, b: a + b}
    callers = {}
    for how in ("native", "ctypes", "checked"):
        engine = wasmtime.Engine()
        linker = wasmtime.Linker(engine)
        calls = HostCalls(linker, fast=how != "checked")
        if how == "native":
            if not native.available():
                continue
            native.define(linker, "h", "f", ("i32", "i32"), ("i32",), key)
        else:
            calls.define("h", "f", ("i32", "i32"), ("i32",), table[key])
        store = wasmtime.Store(engine)
        inst = linker.instantiate(store, wasmtime.Module(engine, wat))
        loop = calls.caller(store, cast(wasmtime.Func, inst.exports(store)["loop"]))
        callers[how] = (lambda loop=loop: loop(n), calls.fast)
    if not callers["ctypes"][1]:
        raise UserError("bench: the fast path is unavailable here (wasmtime version)")
    rounds = 5 if quick else 40
    fast = callers.get("native", callers["ctypes"])[0]
    label = "native trampoline" if "native" in callers else "ctypes unchecked callback"
    prev = native.set_current(table) if "native" in callers else None
    try:
        s, b = measure_pair(fast, callers["checked"][0], rounds=rounds, warmup=2)
        c, _ = measure_pair(callers["ctypes"][0], callers["checked"][0], rounds=rounds // 2 + 1,
                            warmup=1)
    finally:
        if "native" in callers:
            native.set_current(prev)
    subject = _side(f"host call, {label}", s / n, "call")
    subject["ctypes_unchecked_s"] = c / n
    return b / s, subject, _side("host call, Linker.define_func", b / n, "call"), rounds, \
        "speed-up of the kernel's host-call path (informational; ratio = checked / kernel's)"


FIGURES: tuple[Figure, ...] = (
    Figure("bme280_read", "BME280 full read: wasm driver / Python reference driver (sim)",
           1.00, "<=", "paper +8 %", _bench_bme280),
    Figure("i2c_write_read", "one I2C write_read: via wasm / direct backend call",
           1.5, "<=", "+4–7 µs per call (Rust host)", _bench_i2c_call),
    Figure("usb_bulk_in_64k", "USB bulk 64 KiB IN throughput: wasm / pyusb-shaped Python",
           0.97, ">=", "0.96–0.99", _bench_usb_in),
    Figure("usb_round_trip_32b", "USB 32 B bulk round trip: wasm / pyusb-shaped Python",
           1.05, "<=", "1.035–1.08", _bench_usb_rt),
    Figure("cold_start", "cold start: compile from .wasm / AoT cache load (+ instantiate)",
           100.0, ">=", "≈ 22× (Pi)", _bench_cold_start),
    Figure("matmul_interp", "matrix kernel (64x64 i32 matmul): Pulley interpreter / Cranelift AoT",
           10.0, ">=", "> 10×", _bench_matmul),
    Figure("crc32_interp", "CRC32 (bitwise): Pulley interpreter / Cranelift AoT",
           10.0, ">=", "informational", _bench_crc32),
    Figure("rss_per_driver", "RSS: per extra driver / per extra Python process",
           0.10, "<=", "–", _bench_rss),
    Figure("export_call_speedup", "call into wasm: Func.__call__ / the kernel's entry (poll)",
           1.0, ">=", "informational", _bench_export_call),
    Figure("host_call_speedup", "host call: define_func / the kernel's path",
           1.0, ">=", "informational", _bench_host_call),
)


def _imc_figures() -> tuple[Figure, ...]:
    """The IMC figures (`_bench_imc`: local and remote paths, publications over NATS)."""
    from ._bench_imc import IMC_FIGURES
    return tuple(Figure(*f) for f in IMC_FIGURES)


FIGURES = FIGURES + _imc_figures()


def _machine() -> dict:
    import wasmtime  # noqa: F401

    from wasi_hw.kernel import fast_path_available, installed_wasmtime
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu or platform.processor(), "cpus": os.cpu_count(),
            "wasmtime": installed_wasmtime(), "fast_path": fast_path_available(),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run_bench(*, quick: bool = False, only: Sequence[str] | None = None,
              progress: IO[str] | None = None) -> dict:
    """Run the figures (all, or those named in ``only``); see the module docstring."""
    names = {f.name for f in FIGURES}
    unknown = [n for n in (only or ()) if n not in names]
    if unknown:
        raise UserError(
            f"unknown figure(s) {', '.join(unknown)} (figures: {', '.join(sorted(names))})"
        )
    out: dict[str, Any] = {"machine": _machine(), "quick": quick, "figures": []}
    for fig in FIGURES:
        if only and fig.name not in only:
            continue
        if progress is not None:
            print(f"bench: {fig.name} …", file=progress, flush=True)
        t0 = time.perf_counter()
        ratio, subject, baseline, rounds, note = fig.run(quick)
        res = _result(fig, ratio, subject, baseline, rounds, note)
        res["wall_s"] = time.perf_counter() - t0
        out["figures"].append(res)
    return out


def _abs(side: dict) -> str:
    if "bytes" in side:
        return f"{side['bytes'] / (1 << 20):.2f} MiB/{side['per']}"
    s = side["median_s"]
    text = f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"
    if "throughput_mib_s" in side:
        text += f" ({side['throughput_mib_s']:.0f} MiB/s)"
    return f"{text}/{side['per']}"


def format_table(results: dict) -> str:
    m = results["machine"]
    lines = [f"wasi-hw bench{' --quick (not for quoting)' if results['quick'] else ''} — "
             f"absolute times are this machine's: {m['cpu']} ({m['cpus']} CPUs), Python "
             f"{m['python']}, wasmtime {m['wasmtime']}, fast path "
             f"{'on' if m['fast_path'] else 'off'}", ""]
    head = f"{'figure':<21} {'ratio':>8}  {'goal':>7}  {'met':<4} {'subject':<26} {'baseline':<26}"
    lines += [head, "-" * len(head)]
    for f in results["figures"]:
        met = "yes" if f["met"] else "NO"
        if f["anchor"] == "informational":
            met = "info"
        lines.append(f"{f['name']:<21} {f['ratio']:>8.3f}  {f['goal_op']}{f['goal']:<5g}  "
                     f"{met:<4} {_abs(f['subject']):<26} {_abs(f['baseline']):<26}")
    lines.append("")
    for f in results["figures"]:
        lines.append(f"{f['name']}: {f['title']}; subject = {f['subject']['label']}, "
                     f"baseline = {f['baseline']['label']}; {f['rounds']} rounds"
                     + (f"; {f['note']}" if f["note"] else ""))
    return "\n".join(lines)


def plot_ratios(results: dict, path: Path | str) -> None:
    """A PNG of every figure's ratio (log scale) with its goal marked."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("--plot needs matplotlib (pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = results["figures"]
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(figs) + 1.6))
    names = [f["name"] for f in figs][::-1]
    ratios = [f["ratio"] for f in figs][::-1]
    colours = ["#7f7f7f" if f["anchor"] == "informational" else
               ("#2ca02c" if f["met"] else "#d62728") for f in figs][::-1]
    ax.barh(names, ratios, color=colours)
    for y, f in enumerate(figs[::-1]):
        ax.plot([f["goal"]] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.text(f["ratio"] * 1.08, y, f"{f['ratio']:.3g} (goal {f['goal_op']} {f['goal']:g})",
                va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(ratios + [f["goal"] for f in figs]) / 2,
                max(ratios + [f["goal"] for f in figs]) * 8)
    ax.set_xlabel("ratio (log scale); black bar = goal; green met, red missed, grey informational")
    m = results["machine"]
    ax.set_title(f"wasi-hw bench — {m['cpu']}, Python {m['python']}, wasmtime {m['wasmtime']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
