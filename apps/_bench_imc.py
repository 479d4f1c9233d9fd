"""IMC figures for ``wasi-hw bench``: the local path, the remote path, publications.

Contract: `IMC_FIGURES` lists `(name, title, goal, goal_op, anchor, run)` tuples in the shape
of `wasi_hw.apps._bench.Figure` (the bench appends them to its `FIGURES`); each ``run(quick)``
returns ``(ratio, subject, baseline, rounds, note)`` like every figure. All of them start a
real ``nats-server`` on loopback (`wasi_hw.fleet.NatsServer`) and child processes:

- ``imc_local_remote_32b`` / ``_4k``: a wasm caller's call of a wasm service in the same
  kernel (the local path: one copy each way) / the same call to the same service served by a
  kernel in another process over NATS. The subject also carries the local path's parts
  (``parts_s``): the caller's entry (poll of an empty module), the provider's entry
  (``imc_serve`` alone), one copy of the payload between two memories, and the rest (host
  call crossing, rules, lock, header) by difference.
- ``imc_remote_vs_nats``: that remote call (kernel process → kernel process, 32 B) / a bare
  nats-py request–reply between two Python processes on the same server, same payload.
- ``imc_publish_vs_nats``: the latency of one 32 B publication from a wasm module in this
  kernel until a kernel in another process has queued it for its subscriber (it acknowledges
  each with a bare nats-py publish) / the same with a bare nats-py publisher and subscriber
  process.
Rounds alternate subject and baseline (ABAB) after warm-up; medians are reported.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from wasi_hw import UserError

__all__ = ["IMC_FIGURES", "end_child"]

# A provider: offers "echo" (serve buffer at 1024: header + 4096 B); the reply is the request.
_PROVIDER_WAT = """(module
  (import "wasi_imc" "offer" (func $offer (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "echo")
  (func (export "init") (result i32)
    (call $offer (i32.const 0) (i32.const 4) (i32.const 1024) (i32.const 4104) (i32.const 16)))
  (func (export "poll") (result i32) (i32.const 0))
  (func (export "imc_serve") (result i32) (i32.load (i32.const 1028))))"""

# A caller: each poll calls the service named at 0 (length at 64) with the request at 4096
# (length at 68) into 16384 (capacity at 72); returns the errno.
_CALLER_WAT = """(module
  (import "wasi_imc" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (call $call (i32.const 0) (i32.load (i32.const 64)) (i32.const 4096) (i32.load (i32.const 68))
      (i32.const 16384) (i32.load (i32.const 72)) (i32.const 0) (i32.const 84))))"""

# A publisher: each poll publishes the 32 bytes at 4096 on topic "reading".
_PUBLISHER_WAT = """(module
  (import "wasi_imc" "publish" (func $publish (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "reading")
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32)
    (call $publish (i32.const 0) (i32.const 7) (i32.const 4096) (i32.const 32))))"""

_EMPTY_WAT = """(module (memory (export "memory") 1)
  (func (export "init") (result i32) (i32.const 0))
  (func (export "poll") (result i32) (i32.const 0)))"""

# Child: a kernel serving "echo" (as "echo"), or counting publications of "pub.reading".
_CHILD_KERNEL = r"""
import sys, threading, wasmtime
from dataclasses import replace
from wasi_hw.fleet import NatsBridge
from wasi_hw.kernel import Backends, ImcPolicy, Kernel, adhoc_manifest
url, mode, wat, lattice = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
bridge = NatsBridge(url, lattice=lattice, name="bench-child").start()
k = Kernel(Backends(), imc_remote=bridge, tick_ms=5)
m = adhoc_manifest("x.wasm", bus="i2c-1", allow=[0x76])
if mode == "serve":
    m = replace(m, name="provider", imc=ImcPolicy(offer=frozenset({"echo"})),
                limits=replace(m.limits, max_transfer=8192))
    k.add(m, wasmtime.wat2wasm(wat))
else:
    m = replace(m, name="sub", imc=ImcPolicy(subscribe=["pub.reading"]))
    k.add(m, wasmtime.wat2wasm(wat))
    state = {"n": 0, "want": 0}
    deliver = k.imc.deliver
    def counting(topic, data):
        deliver(topic, data)
        state["n"] += 1
        if state["want"] and state["n"] % state["want"] == 0:
            bridge.loop.create_task(bridge.nc.publish("bench.done", b""))
    k.imc.deliver = counting
    async def arm(msg):
        state["n"], state["want"] = 0, int(msg.data)
        await msg.respond(b"armed")
    bridge.run(bridge.nc.subscribe("bench.arm", cb=arm))
    bridge.run(bridge.nc.flush())
k.start()
if mode == "sub":
    k.slots["sub"].hosts["wasi_imc"].subscribe("pub.reading")
    bridge.run(bridge.nc.flush())
print("ready", flush=True)
sys.stdin.read()
k.close(); bridge.close()
"""

# Child: bare nats-py responder, or a subscriber that signals after N messages.
_CHILD_BARE = r"""
import asyncio, sys, nats
async def main(url, mode):
    nc = await nats.connect(url)
    if mode == "serve":
        async def cb(m): await m.respond(m.data)
        await nc.subscribe("bare.echo", queue="bare.echo", cb=cb)
    else:
        state = {"n": 0, "want": 0}
        async def arm(m):
            state["n"], state["want"] = 0, int(m.data)
            await m.respond(b"armed")
        async def cb(m):
            state["n"] += 1
            if state["want"] and state["n"] % state["want"] == 0:
                await nc.publish("bare.done", b"")
        await nc.subscribe("bare.arm", cb=arm)
        await nc.subscribe("bare.reading", cb=cb)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await nc.close()
asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def end_child(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Ends a child that exits when its stdin closes: closes stdin, waits up to `grace`
    seconds, then kills it; returns once it is gone (at once if it already is)."""
    if proc.poll() is None:
        try:
            assert proc.stdin is not None   # a PIPE, else the except below kills it
            proc.stdin.close()
            proc.wait(grace)
        except Exception:  # noqa: BLE001
            proc.kill()
            proc.wait()


class _Child:
    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stderr is not None   # PIPEs
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.close()
            raise UserError(f"bench: child process did not start: {self.proc.stderr.read()[-800:]}")

    def close(self) -> None:
        end_child(self.proc)


class _World:
    """A nats-server, a kernel in this process with a NATS link, and its modules."""

    def __init__(self) -> None:
        from wasi_hw.fleet import NatsBridge, NatsServer

        self._tmp = tempfile.TemporaryDirectory()
        self.server = NatsServer(workdir=self._tmp.name).start()
        self.bridge = NatsBridge(self.server.url, lattice="bench", name="bench").start()
        self.children: list[_Child] = []
        self.kernel: Any = None

    def child(self, code: str, *args: str) -> _Child:
        c = _Child(code, self.server.url, *args)
        self.children.append(c)
        return c

    def close(self) -> None:
        for c in self.children:
            c.close()
        if self.kernel is not None:
            self.kernel.close()
        self.bridge.close()
        self.server.close()
        self._tmp.cleanup()


def _kernel(world: _World, modules: dict[str, tuple[str, Any]]) -> Any:
    from dataclasses import replace

    import wasmtime

    from wasi_hw.kernel import Backends, Kernel, adhoc_manifest

    k = Kernel(Backends(), imc_remote=world.bridge, tick_ms=5)
    base = adhoc_manifest("x.wasm", bus="i2c-1", allow=[0x76])
    for name, (wat, imc) in modules.items():
        k.add(replace(base, name=name, imc=imc, limits=replace(base.limits, max_transfer=8192)),
              bytes(wasmtime.wat2wasm(wat)))
    k.start()
    world.kernel = k
    return k


def _caller(k: Any, name: str, service: str, size: int) -> Callable[[], int]:
    inst = k.slots[name].instance
    mem = inst.mem
    mem.write(0, service.encode())
    mem.write(64, len(service).to_bytes(4, "little") + size.to_bytes(4, "little")
              + (8192).to_bytes(4, "little"))
    mem.write(4096, bytes(range(256)) * (size // 256) + bytes(size % 256))
    poll = inst.call

    def call() -> int:
        return poll("poll")
    if call() != 0:
        raise UserError(f"bench: IMC call of {service!r} failed (errno {call()})")
    return call


def _abab(subject: Callable[[], object], baseline: Callable[[], object], rounds: int,
          inner: int) -> tuple[float, float]:
    from ._bench import measure_pair

    return measure_pair(subject, baseline, rounds=rounds, warmup=2, inner=inner)


def _local_remote(size: int, quick: bool) -> tuple[float, dict, dict, int, str]:
    from wasi_hw import copy_between
    from wasi_hw.kernel import IMC_HEADER as HEADER
    from wasi_hw.kernel import ImcPolicy

    world = _World()
    try:
        world.child(_CHILD_KERNEL, "serve", _PROVIDER_WAT, "bench")
        k = _kernel(world, {
            "provider": (_PROVIDER_WAT.replace('"echo"', '"locl"'),
                         ImcPolicy(offer=frozenset({"locl"}))),
            "local": (_CALLER_WAT, ImcPolicy(call=frozenset({"locl"}))),
            "remote": (_CALLER_WAT, ImcPolicy(call=frozenset({"echo"}))),
            "empty": (_EMPTY_WAT, ImcPolicy()),
        })
        local = _caller(k, "local", "locl", size)
        remote = _caller(k, "remote", "echo", size)
        rounds = 5 if quick else 30
        inner = 20 if quick else 200
        s, b = _abab(local, remote, rounds, max(1, inner // 10))     # the figure: ABAB
        # the local path's parts, timed round-robin with the whole (same instances)
        prov = k.slots["provider"].instance
        pmem, cmem = prov.mem, k.slots["local"].instance.mem
        empty = k.slots["empty"].instance
        sid = k.imc.provider("locl").sid

        def serve_alone() -> None:
            pmem.write_struct(1024, HEADER, sid, size)
            prov.call("imc_serve")

        sides = {"whole": local, "caller_entry": lambda: empty.call("poll"),
                 "provider_entry": serve_alone,
                 "copy": lambda: copy_between(cmem, 4096, pmem, 1032, size)}
        times: dict[str, list[float]] = {n: [] for n in sides}
        short = 20          # short batches: the median round is one the scheduler left alone
        for r in range(3 * rounds + 2):
            for name, fn in sides.items():
                t0 = time.perf_counter()
                for _ in range(short):
                    fn()
                if r >= 2:
                    times[name].append((time.perf_counter() - t0) / short)
        med = {n: statistics.median(v) for n, v in times.items()}
        parts = {"caller_entry": med["caller_entry"],
                 "provider_entry (incl. header write)": med["provider_entry"],
                 "copies (2)": 2 * med["copy"],
                 "host call + rules + lock": max(0.0, med["whole"] - med["caller_entry"]
                                                 - med["provider_entry"] - 2 * med["copy"]),
                 "whole": med["whole"]}
    finally:
        world.close()
    subject = {"label": f"local IMC round trip, {size} B", "median_s": s, "per": "call",
               "parts_s": parts}
    baseline = {"label": f"remote IMC round trip (2 kernel processes, NATS), {size} B",
                "median_s": b, "per": "call"}
    return s / b, subject, baseline, rounds, \
        "wasm caller → wasm service → reply; parts of the local path in subject.parts_s"


def _bench_local_remote_32(quick: bool) -> tuple[float, dict, dict, int, str]:
    return _local_remote(32, quick)


def _bench_local_remote_4k(quick: bool) -> tuple[float, dict, dict, int, str]:
    return _local_remote(4096, quick)


def _bench_remote_vs_nats(quick: bool) -> tuple[float, dict, dict, int, str]:
    import nats

    from wasi_hw.kernel import ImcPolicy

    world = _World()
    try:
        world.child(_CHILD_KERNEL, "serve", _PROVIDER_WAT, "bench")
        world.child(_CHILD_BARE, "serve")
        k = _kernel(world, {"remote": (_CALLER_WAT, ImcPolicy(call=frozenset({"echo"})))})
        remote = _caller(k, "remote", "echo", 32)
        loop = asyncio.new_event_loop()
        nc = loop.run_until_complete(nats.connect(world.server.url))
        payload = bytes(range(32))
        inner = 10 if quick else 20

        async def bare_batch() -> float:
            t0 = time.perf_counter()
            for _ in range(inner):
                await nc.request("bare.echo", payload, timeout=2)
            return (time.perf_counter() - t0) / inner

        def kernel_batch() -> float:
            t0 = time.perf_counter()
            for _ in range(inner):
                remote()
            return (time.perf_counter() - t0) / inner

        rounds = 5 if quick else 100
        for _ in range(2):
            kernel_batch(), loop.run_until_complete(bare_batch())
        a, b = [], []
        for _ in range(rounds):
            a.append(kernel_batch())
            b.append(loop.run_until_complete(bare_batch()))   # timed inside the loop
        loop.run_until_complete(nc.close())
        loop.close()
    finally:
        world.close()
    s, bb = statistics.median(a), statistics.median(b)
    return (
        s / bb,
        {"label": "remote IMC call, kernel → kernel process, 32 B", "median_s": s, "per": "call"},
        {
            "label": "nats-py request–reply, Python → Python process, 32 B",
            "median_s": bb,
            "per": "call",
        },
        rounds,
        "same nats-server, same payload; the bare side is timed inside its loop",
    )


def _bench_publish_vs_nats(quick: bool) -> tuple[float, dict, dict, int, str]:
    import nats

    from wasi_hw.kernel import ImcPolicy

    world = _World()
    try:
        world.child(_CHILD_KERNEL, "sub", _EMPTY_WAT, "bench")
        world.child(_CHILD_BARE, "sub")
        k = _kernel(world, {"pub": (_PUBLISHER_WAT, ImcPolicy(publish=frozenset({"reading"})))})
        pub = k.slots["pub"].instance
        pub.mem.write(4096, bytes(range(32)))
        inner = 10 if quick else 20
        done = threading.Event()

        async def on_done(msg: Any) -> None:
            done.set()

        world.bridge.run(world.bridge.nc.subscribe("bench.done", cb=on_done))
        world.bridge.run(world.bridge.nc.request("bench.arm", b"1", timeout=5))   # ack each
        loop = asyncio.new_event_loop()
        nc = loop.run_until_complete(nats.connect(world.server.url))
        bare_done = asyncio.Event()

        async def on_bare_done(msg: Any) -> None:
            bare_done.set()

        loop.run_until_complete(nc.subscribe("bare.done", cb=on_bare_done))
        loop.run_until_complete(nc.request("bare.arm", b"1", timeout=5))
        payload = bytes(range(32))
        poll = pub.call

        def kernel_batch() -> float:
            t0 = time.perf_counter()
            for _ in range(inner):
                done.clear()
                poll("poll")
                if not done.wait(5):
                    raise UserError("bench: a publication was not delivered")
            return (time.perf_counter() - t0) / inner

        async def bare_batch() -> float:
            t0 = time.perf_counter()
            for _ in range(inner):
                bare_done.clear()
                await nc.publish("bare.reading", payload)
                await asyncio.wait_for(bare_done.wait(), 5)
            return (time.perf_counter() - t0) / inner

        rounds = 5 if quick else 100
        kernel_batch(), loop.run_until_complete(bare_batch())
        a, b = [], []
        for _ in range(rounds):
            a.append(kernel_batch())
            b.append(loop.run_until_complete(bare_batch()))
        loop.run_until_complete(nc.close())
        loop.close()
    finally:
        world.close()
    s, bb = statistics.median(a), statistics.median(b)
    return s / bb, {"label": "publication wasm → subscriber's queue in another kernel process, "
                             "acknowledged, 32 B", "median_s": s, "per": "publication"}, \
        {"label": "nats-py publish → subscriber process, acknowledged, 32 B",
         "median_s": bb, "per": "publication"}, rounds, \
        "latency: each publication waits for the subscriber side's acknowledgement (a bare " \
        "nats-py publish on both sides)"


IMC_FIGURES = (
    (
        "imc_local_remote_32b",
        "IMC 32 B round trip: local (same kernel) / remote (NATS, 2 processes)",
        0.05,
        "<=",
        "ThingSpire local bypass",
        _bench_local_remote_32,
    ),
    (
        "imc_local_remote_4k",
        "IMC 4 KiB round trip: local (same kernel) / remote (NATS, 2 processes)",
        0.05,
        "<=",
        "ThingSpire local bypass",
        _bench_local_remote_4k,
    ),
    (
        "imc_remote_vs_nats",
        "remote IMC kernel→kernel / bare nats-py request–reply (32 B)",
        1.25,
        "<=",
        "engine's own round trip",
        _bench_remote_vs_nats,
    ),
    (
        "imc_publish_vs_nats",
        "publication kernel→kernel / bare nats-py publish→subscribe (32 B)",
        1.25,
        "<=",
        "engine's own delivery",
        _bench_publish_vs_nats,
    ),
)
