"""Fleet benchmarks: deploy → first report, move downtime, registry propagation, object reads.

Contract: `run_fleet_bench(quick=False, progress=None)` starts its own `nats-server`
(loopback, temp store) and three ``wasi-hw node run`` processes, measures, stops them all, and
returns ``{"machine": ..., "quick": bool, "figures": [...]}``; each figure has ``name``,
``title``, ``unit`` ("ms" or "ratio"), ``median`` and ``samples`` (every round), ``goal`` /
``goal_op`` / ``met`` where the issue sets a goal, and ``note``. Times are wall-clock on
this machine, medians over rounds:

- ``deploy_first_report_{uncached,cached}``: `Manager.deploy` called → the module's first
  report received by a subscriber (a new binary each uncached round, so the node compiles it;
  the same binary again for cached, loaded from the node's AoT cache).
- ``move_downtime_{64k,1m,16m}``: the counter module (poll every 5 ms) moved between two
  nodes: last report received from the source → first from the target. Goal ≤ 50 ms at 1 MiB.
- ``registry_propagation``: a registry write → every node's cache has seen its revision (each
  node asked over ``ctl.<node>.view`` until it has).
- ``objstore_get_{1m,16m}``: our chunk read through a pull consumer / nats-py's
  `ObjectStore.get` of the same object (ratio; below 1 is faster).
`format_fleet_table(results)` renders them.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["run_fleet_bench", "format_fleet_table"]


def _figure(name: str, title: str, samples: list[float], unit: str = "ms", *,
            goal: float | None = None, note: str = "") -> dict:
    med = statistics.median(samples)
    fig = {"name": name, "title": title, "unit": unit, "median": round(med, 3),
           "samples": [round(s, 3) for s in samples], "note": note}
    if goal is not None:
        fig.update(goal=goal, goal_op="<=", met=med <= goal)
    return fig


async def _bench(work: Path, quick: bool, progress: Callable[[str], None]) -> list[dict]:
    from wasi_hw.fleet import (
        Manager,
        NatsServer,
        ObjectBucket,
        connect,
        ctl_subject,
        evt_subject,
        running_on,
        wait_for,
        write_counter,
    )

    from ._fleet_up import stop_groups

    rounds = 3 if quick else 9
    lattice = "bench"
    server = NatsServer(jetstream=True, workdir=work / "nats").start()
    procs: list[subprocess.Popen] = []
    figures: list[dict] = []
    try:
        for i in (1, 2, 3):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "wasi_hw", "node", "run", "--nats", server.url,
                 "--name", f"n{i}", "--lattice", lattice, "--heartbeat", "0.5", "--ttl", "3",
                 "--cache-dir", str(work / f"cache{i}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        nc = await connect(server.url)
        m = await Manager.open(nc, lattice)
        await wait_for(m.registry, lambda v: all((v.get(f"node.n{i}") or {}).get("state") == "up"
                                                 for i in (1, 2, 3)), 60)
        # every report of every module, stamped at arrival
        arrivals: dict[str, list[tuple[float, str]]] = {}
        changed = asyncio.Event()

        async def on_report(msg: Any) -> None:
            body = json.loads(msg.data)
            arrivals.setdefault(body["module"], []).append((time.perf_counter(), body["node"]))
            changed.set()

        await nc.subscribe(evt_subject(lattice, "*", "report"), cb=on_report)

        async def until(pred: Callable[[], bool], timeout: float = 60) -> None:
            async def run() -> None:
                while not pred():
                    changed.clear()
                    await changed.wait()
            await asyncio.wait_for(run(), timeout)

        # -- deploy → first report ---------------------------------------------------------
        progress("deploy → first report")
        uncached: list[float] = []
        cached: list[float] = []
        for r in range(rounds):
            manifest = write_counter(work / f"d{r}", interval_ms=1000, name="dep",
                                              version=r + 1)
            for bucket in (uncached, cached):
                arrivals.pop("dep", None)
                t0 = time.perf_counter()
                await m.deploy(manifest, {"node": "n1"})
                await until(lambda: bool(arrivals.get("dep")))
                bucket.append((arrivals["dep"][0][0] - t0) * 1000)
                await m.stop("dep")
                await m.wait_for_module("dep", lambda rec, st: st.get("state") == "stopped", 30)
        figures.append(_figure("deploy_first_report_uncached", "deploy → first report, compiled "
                               "on the node", uncached))
        figures.append(_figure("deploy_first_report_cached", "deploy → first report, from the "
                               "node's AoT cache", cached))

        # -- move downtime -------------------------------------------------------------------
        for label, pages in (("64k", 1), ("1m", 16), ("16m", 256)):
            progress(f"move downtime {label}")
            name = f"mv{label}"
            manifest = write_counter(work / name, pages=pages, interval_ms=5, name=name,
                                              fill=True)
            await m.deploy(manifest, {"node": "n1"})
            await m.wait_for_module(name, running_on("n1"), 60)
            gaps = []
            where = "n1"
            for _ in range(rounds):
                target = "n2" if where == "n1" else "n1"

                def warmed(name: str = name) -> bool:
                    return len(arrivals.get(name, ())) >= 3

                def arrived(name: str = name, target: str = target) -> bool:
                    return any(n == target for _, n in arrivals[name])

                await until(warmed)
                arrivals[name] = []
                await m.move(name, target)
                await until(arrived)
                seq = arrivals[name]
                first = next(i for i, (_, n) in enumerate(seq) if n == target)
                last_src = max((t for t, n in seq[:first] if n == where), default=None)
                if last_src is not None:
                    gaps.append((seq[first][0] - last_src) * 1000)
                await m.wait_for_module(name, running_on(target), 60)
                where = target
            await m.stop(name)
            goal = 50.0 if label == "1m" else None
            figures.append(_figure(f"move_downtime_{label}", f"move downtime, {pages * 64} KiB "
                                   "of memory (last report on the source → first on the target)",
                                   gaps, goal=goal, note="memory filled with data (no zero pages); "
                                   "includes up to one 5 ms poll interval"))

        # -- registry change → every node's cache -------------------------------------------
        progress("registry propagation")
        samples = []
        for r in range(rounds * 3):
            t0 = time.perf_counter()
            rev = await m.registry.put("bench.probe", {"round": r})
            pending = {"n1", "n2", "n3"}
            while pending:
                for n in list(pending):
                    reply = await nc.request(ctl_subject(lattice, n, "view"), b"", timeout=5)
                    if json.loads(reply.data)["revision"] >= rev:
                        pending.discard(n)
            samples.append((time.perf_counter() - t0) * 1000)
        figures.append(_figure("registry_propagation", "registry write → every node's cache "
                               "has it (3 nodes)", samples,
                               note="includes the request/reply round trips that ask the nodes"))

        # -- object store reads --------------------------------------------------------------
        progress("object store reads")
        objects = await ObjectBucket.open(nc, "WASIHW_BENCH_OBJ")
        for label, size in (("1m", 1 << 20), ("16m", 16 << 20)):
            data = os.urandom(size)
            await objects.put(label, data)
            ours, theirs = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                assert await objects.get(label) == data
                t1 = time.perf_counter()
                assert (await objects.obs.get(label)).data == data
                t2 = time.perf_counter()
                ours.append(t1 - t0)
                theirs.append(t2 - t1)
            ratio = statistics.median(ours) / statistics.median(theirs)
            figures.append(_figure(f"objstore_get_{label}", f"object read {label.upper()}: "
                                   "pull consumer / nats-py ObjectStore.get", [ratio], "ratio",
                                   note=f"ours {statistics.median(ours) * 1000:.1f} ms, nats-py "
                                        f"{statistics.median(theirs) * 1000:.1f} ms"))
        await nc.close()
    finally:
        stop_groups(procs, grace=10)
        server.close()
    return figures


def run_fleet_bench(*, quick: bool = False,
                    progress: Callable[[str], None] | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="wasihw-fleet-bench-") as tmp:
        figures = asyncio.run(_bench(Path(tmp), quick, progress or (lambda s: None)))
    return {"machine": {"python": platform.python_version(), "machine": platform.machine(),
                        "cpus": os.cpu_count(), "load": os.getloadavg()[0]},
            "quick": quick, "figures": figures}


def format_fleet_table(results: dict) -> str:
    lines = [f"{'figure':<32}{'median':>10}  {'goal':<10}note"]
    for f in results["figures"]:
        goal = (
            f"{f['goal_op']} {f['goal']:g}" + (" ok" if f["met"] else " MISSED")
            if "goal" in f
            else ""
        )
        lines.append(f"{f['name']:<32}{f['median']:>8.2f} {'ms' if f['unit'] == 'ms' else 'x ':<2} "
                     f"{goal:<10}{f['note']}")
    return "\n".join(lines)
